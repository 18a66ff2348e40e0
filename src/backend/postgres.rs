//! PostgreSQL, over the `postgres` crate.
//!
//! Every statement goes to the server as one simple query: parameters are
//! written into the statement as quoted literals on the client, the way
//! psycopg2 (peewee's PostgreSQL driver) does it. That buys three things at
//! once:
//!
//! - results come back in the server's own text form, byte for byte what
//!   libpq's `PQgetvalue` gives under the session's settings (DateStyle,
//!   IntervalStyle, TimeZone, `extra_float_digits`, `bytea_output`), for every
//!   type, enums, domains and extensions included;
//! - a parameter binds like one of libpq's untyped parameters: a quoted
//!   literal has type `unknown` and takes the type the server infers, so an
//!   int64 goes into an int4 or numeric column and text into uuid, jsonb,
//!   date or an enum;
//! - no named server-side statement is ever created, so the pool works
//!   behind PgBouncer in transaction mode with any `statement_cache`.
//!
//! The cost: the server parses each statement anew (`statement_cache` is
//! accepted and has no effect here), and a result carries no column types,
//! so every non-NULL cell is of kind `Other`: the typed getters parse its
//! text, and `pool_result_blob` on a bytea gives its `\x...` text.
//!
//! Literals are written as `E'...'` strings (backslashes and quotes
//! escaped), which read the same whatever `standard_conforming_strings` is.

use postgres::{Client, Config, NoTls, SimpleQueryMessage};

use crate::backend::{Backend, Connection};
use crate::config::{scrub, ConnectOptions, ParsedUrl};
use crate::error::{Error, Result};
use crate::value::{ResultBuilder, ResultSet, Value};

/// The libpq-style options this backend takes from the URL's query string.
const KNOWN_PARAMS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "user",
    "password",
    "dbname",
    "options",
    "application_name",
    "sslmode",
    "keepalives",
    "keepalives_idle",
    "target_session_attrs",
    "channel_binding",
    "load_balance_hosts",
];

/// The SQLSTATE reported when the link to the server is gone.
const LINK_LOST: &str = "08006";

pub struct PostgresBackend {
    config: Config,
    password: Option<String>,
    init_sql: Option<String>,
}

pub struct PostgresConn {
    client: Client,
    password: Option<String>,
    lost: bool,
    /// Whether a transaction is, or may be, open (see `track`).
    in_txn: bool,
}

impl PostgresBackend {
    pub fn new(url: &ParsedUrl, connect: &ConnectOptions) -> Result<PostgresBackend> {
        url.check_params("postgres", KNOWN_PARAMS)?;
        let mut text = format!("postgresql:{}", url.rest);
        let mut sep = '?';
        for (k, v) in &url.params {
            text.push(sep);
            text.push_str(&encode(k));
            text.push('=');
            text.push_str(&encode(v));
            sep = '&';
        }
        let password =
            url_password(&url.rest).or_else(|| url.param("password").map(str::to_string));
        let mut config: Config = text.parse().map_err(|e: postgres::Error| {
            Error::config(format!(
                "malformed postgres URL: {}",
                scrub(&e.to_string(), password.as_deref())
            ))
        })?;
        if config.get_dbname().is_none() {
            if let Some(user) = config.get_user().map(str::to_string) {
                config.dbname(&user);
            }
        }
        if let Some(d) = connect.connect_timeout {
            config.connect_timeout(d);
        }
        Ok(PostgresBackend {
            config,
            password,
            init_sql: connect.init_sql.clone(),
        })
    }
}

/// The password in `//user:password@host...`, %-decoded.
fn url_password(rest: &str) -> Option<String> {
    let auth = rest.strip_prefix("//")?;
    let auth = &auth[..auth.find(['/', '?']).unwrap_or(auth.len())];
    let userinfo = &auth[..auth.rfind('@')?];
    let (_, pw) = userinfo.split_once(':')?;
    crate::config::percent_decode(pw).ok()
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~,".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Backend for PostgresBackend {
    type Conn = PostgresConn;

    fn connect(&self) -> Result<PostgresConn> {
        let client = self.config.connect(NoTls).map_err(|e| {
            Error::connect(format!(
                "could not connect to PostgreSQL: {}",
                scrub(&describe(&e), self.password.as_deref())
            ))
        })?;
        let mut conn = PostgresConn {
            client,
            password: self.password.clone(),
            lost: false,
            in_txn: false,
        };
        if let Some(sql) = &self.init_sql {
            if let Err(e) = conn.client.batch_execute(sql) {
                return Err(Error::connect(format!(
                    "init_sql failed: {}",
                    scrub(&describe(&e), self.password.as_deref())
                )));
            }
            conn.in_txn = opens_transaction(sql);
        }
        Ok(conn)
    }

    fn name(&self) -> &'static str {
        "postgres"
    }
}

/// The driver's message with the server's detail and hint, when it has them.
fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut m = format!("{}: {}", db.severity(), db.message());
            if let Some(d) = db.detail() {
                m.push_str(&format!(" (detail: {d})"));
            }
            if let Some(h) = db.hint() {
                m.push_str(&format!(" (hint: {h})"));
            }
            m
        }
        None => {
            let mut m = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(s) = src {
                m.push_str(&format!(": {s}"));
                src = s.source();
            }
            m
        }
    }
}

impl PostgresConn {
    fn error(&mut self, e: postgres::Error) -> Error {
        let message = scrub(&describe(&e), self.password.as_deref());
        match e.code() {
            Some(code) => {
                let code = code.code().to_string();
                let err = Error::database(message).with_sqlstate(code);
                if err.is_connection_lost() {
                    self.lost = true;
                }
                err
            }
            None => {
                // No SQLSTATE: the driver lost the link (I/O error, closed
                // socket, protocol error). Never reuse this connection.
                self.lost = true;
                Error::database(format!("connection to the server lost: {message}"))
                    .with_sqlstate(LINK_LOST)
            }
        }
    }

    fn run(&mut self, sql: &str, params: &[Value<'_>]) -> Result<Vec<SimpleQueryMessage>> {
        if self.lost || self.client.is_closed() {
            self.lost = true;
            return Err(Error::database("connection to the server lost").with_sqlstate(LINK_LOST));
        }
        let text = interpolate(sql, params)?;
        let result = self.client.simple_query(&text);
        self.track(sql, result.is_ok());
        result.map_err(|e| self.error(e))
    }

    /// Keep `in_txn` up to date from the statement just run. The crate does
    /// not expose the server's transaction status, so this errs toward
    /// "open": a needless ROLLBACK on release costs a round trip, a missed
    /// one would hand out a connection in someone's transaction.
    fn track(&mut self, sql: &str, ok: bool) {
        if has_several_statements(sql) {
            self.in_txn = true;
            return;
        }
        match first_keyword(sql).as_str() {
            "BEGIN" | "START" | "SAVEPOINT" => self.in_txn = true,
            "COMMIT" | "END" | "ABORT" if ok => self.in_txn = false,
            "ROLLBACK" if ok && !is_rollback_to(sql) => self.in_txn = false,
            "PREPARE" if ok && sql.to_ascii_uppercase().contains("TRANSACTION") => {
                self.in_txn = false
            }
            _ => {}
        }
    }
}

fn first_keyword(sql: &str) -> String {
    skip_space_and_comments(sql)
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_uppercase()
}

fn is_rollback_to(sql: &str) -> bool {
    let words: Vec<String> = sql
        .split_whitespace()
        .take(3)
        .map(|w| w.trim_end_matches(';').to_ascii_uppercase())
        .collect();
    words.get(1).map(String::as_str) == Some("TO")
        || (words.get(1).map(String::as_str) == Some("TRANSACTION")
            && words.get(2).map(String::as_str) == Some("TO"))
        || (words.get(1).map(String::as_str) == Some("WORK")
            && words.get(2).map(String::as_str) == Some("TO"))
}

fn opens_transaction(sql: &str) -> bool {
    has_several_statements(sql) || matches!(first_keyword(sql).as_str(), "BEGIN" | "START")
}

fn skip_space_and_comments(mut s: &str) -> &str {
    loop {
        let t = s.trim_start();
        if let Some(rest) = t.strip_prefix("--") {
            s = rest.find('\n').map_or("", |i| &rest[i + 1..]);
        } else if let Some(rest) = t.strip_prefix("/*") {
            s = rest.find("*/").map_or("", |i| &rest[i + 2..]);
        } else {
            return t;
        }
    }
}

/// Whether a `;` outside quotes and comments is followed by more SQL.
fn has_several_statements(sql: &str) -> bool {
    let mut after_semicolon = false;
    let mut several = false;
    scan(sql, |piece| match piece {
        Piece::Code(c) => {
            for ch in c.chars() {
                if ch == ';' {
                    after_semicolon = true;
                } else if after_semicolon && !ch.is_whitespace() {
                    several = true;
                }
            }
        }
        Piece::Quoted(_) | Piece::Placeholder(_) => {
            if after_semicolon {
                several = true;
            }
        }
        Piece::Comment(_) => {}
    });
    several
}

enum Piece<'a> {
    Code(&'a str),
    Quoted(&'a str),
    Comment(&'a str),
    Placeholder(usize),
}

/// Split SQL into code, quoted text ('...', E'...', "...", $tag$...$tag$),
/// comments and `$N` placeholders, as PostgreSQL's lexer does.
fn scan<'a>(sql: &'a str, mut f: impl FnMut(Piece<'a>)) {
    let b = sql.as_bytes();
    let mut i = 0;
    let mut code_start = 0;
    while i < b.len() {
        let start = i;
        let end = match b[i] {
            b'\'' => {
                let escapes =
                    i > 0 && matches!(b[i - 1], b'E' | b'e') && !is_ident_char_before(b, i - 1);
                Some(quoted_end(b, i + 1, b'\'', escapes))
            }
            b'"' => Some(quoted_end(b, i + 1, b'"', false)),
            b'-' if b.get(i + 1) == Some(&b'-') => {
                Some(sql[i..].find('\n').map_or(b.len(), |n| i + n + 1))
            }
            b'/' if b.get(i + 1) == Some(&b'*') => Some(block_comment_end(b, i + 2)),
            b'$' if !is_ident_char_before(b, i) => {
                let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
                if digits > 0 {
                    if i > code_start {
                        f(Piece::Code(&sql[code_start..i]));
                    }
                    let n = sql[i + 1..i + 1 + digits].parse().unwrap_or(usize::MAX);
                    f(Piece::Placeholder(n));
                    i += 1 + digits;
                    code_start = i;
                    continue;
                }
                dollar_quote_end(sql, i)
            }
            _ => None,
        };
        match end {
            Some(end) => {
                if start > code_start {
                    f(Piece::Code(&sql[code_start..start]));
                }
                let piece = &sql[start..end];
                if b[start] == b'-' || b[start] == b'/' {
                    f(Piece::Comment(piece));
                } else {
                    f(Piece::Quoted(piece));
                }
                i = end;
                code_start = end;
            }
            None => i += 1,
        }
    }
    if code_start < b.len() {
        f(Piece::Code(&sql[code_start..]));
    }
}

fn is_ident_char_before(b: &[u8], i: usize) -> bool {
    i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_' || b[i - 1] >= 0x80)
}

fn quoted_end(b: &[u8], mut i: usize, quote: u8, backslash_escapes: bool) -> usize {
    while i < b.len() {
        if backslash_escapes && b[i] == b'\\' {
            i += 2;
        } else if b[i] == quote {
            if b.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

fn block_comment_end(b: &[u8], mut i: usize) -> usize {
    let mut depth = 1;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

/// `$tag$ ... $tag$` starting at `i`, if that is one.
fn dollar_quote_end(sql: &str, i: usize) -> Option<usize> {
    let rest = &sql[i + 1..];
    let tag_len = rest
        .bytes()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c >= 0x80)
        .count();
    if rest.as_bytes().get(tag_len) != Some(&b'$') {
        return None;
    }
    let delim = &sql[i..i + tag_len + 2];
    let body = i + delim.len();
    Some(
        sql[body..]
            .find(delim)
            .map_or(sql.len(), |n| body + n + delim.len()),
    )
}

/// The statement with each `$N` replaced by parameter N as a literal.
fn interpolate(sql: &str, params: &[Value<'_>]) -> Result<String> {
    let mut out = String::with_capacity(sql.len() + 16 * params.len());
    let mut used = vec![false; params.len()];
    let mut bad: Option<usize> = None;
    scan(sql, |piece| match piece {
        Piece::Code(s) | Piece::Quoted(s) | Piece::Comment(s) => out.push_str(s),
        Piece::Placeholder(n) => match params.get(n.wrapping_sub(1)) {
            Some(v) => {
                used[n - 1] = true;
                push_literal(&mut out, v);
            }
            None => {
                bad.get_or_insert(n);
            }
        },
    });
    if let Some(n) = bad {
        return Err(Error::invalid_argument(format!(
            "the statement refers to parameter ${n} but {} parameter(s) were given",
            params.len()
        )));
    }
    if let Some(unused) = used.iter().position(|u| !u) {
        return Err(Error::invalid_argument(format!(
            "parameter {} is not used by the statement (PostgreSQL placeholders are $1, $2, ...)",
            unused + 1
        )));
    }
    if params
        .iter()
        .any(|v| matches!(v, Value::Text(t) if t.contains('\0')))
    {
        return Err(Error::invalid_argument(
            "a text parameter contains a NUL byte, which PostgreSQL text cannot hold",
        ));
    }
    Ok(out)
}

fn push_literal(out: &mut String, v: &Value<'_>) {
    match v {
        Value::Null => out.push_str("NULL"),
        Value::Int(i) => {
            out.push('\'');
            out.push_str(&i.to_string());
            out.push('\'');
        }
        Value::Double(d) => {
            out.push('\'');
            if d.is_nan() {
                out.push_str("NaN");
            } else if d.is_infinite() {
                out.push_str(if *d > 0.0 { "Infinity" } else { "-Infinity" });
            } else {
                out.push_str(&format!("{d:?}"));
            }
            out.push('\'');
        }
        Value::Text(t) => {
            out.push_str("E'");
            for c in t.chars() {
                match c {
                    '\'' => out.push_str("''"),
                    '\\' => out.push_str("\\\\"),
                    c => out.push(c),
                }
            }
            out.push('\'');
        }
        Value::Blob(bytes) => {
            out.push_str("'\\x");
            for byte in bytes.iter() {
                out.push_str(&format!("{byte:02x}"));
            }
            out.push_str("'::bytea");
        }
    }
}

impl Connection for PostgresConn {
    fn is_closed(&mut self) -> bool {
        self.lost || self.client.is_closed()
    }

    fn ping(&mut self) -> Result<()> {
        self.run("SELECT 1", &[]).map(|_| ())
    }

    fn in_transaction(&mut self) -> bool {
        self.in_txn
    }

    fn execute(&mut self, sql: &str, params: &[Value<'_>]) -> Result<u64> {
        let messages = self.run(sql, params)?;
        Ok(messages
            .iter()
            .rev()
            .find_map(|m| match m {
                SimpleQueryMessage::CommandComplete(n) => Some(*n),
                _ => None,
            })
            .unwrap_or(0))
    }

    fn query(&mut self, sql: &str, params: &[Value<'_>]) -> Result<ResultSet> {
        let messages = self.run(sql, params)?;
        // The last statement that describes rows is the result (as libpq's
        // PQexec keeps the last result of a multi-statement string).
        let start = messages
            .iter()
            .rposition(|m| matches!(m, SimpleQueryMessage::RowDescription(_)));
        let Some(start) = start else {
            let mut b = ResultBuilder::new(Vec::new());
            if let Some(SimpleQueryMessage::CommandComplete(n)) = messages.last() {
                b.set_rows_affected(*n);
            }
            return Ok(b.finish());
        };
        let SimpleQueryMessage::RowDescription(columns) = &messages[start] else {
            return Err(Error::internal("row description expected"));
        };
        let names = columns.iter().map(|c| c.name().to_string()).collect();
        let mut b = ResultBuilder::new(names);
        for m in &messages[start + 1..] {
            match m {
                SimpleQueryMessage::Row(row) => {
                    for i in 0..row.len() {
                        match row.get(i) {
                            Some(text) => b.push_other(text.as_bytes()),
                            None => b.push_null(),
                        }
                    }
                    b.end_row();
                }
                SimpleQueryMessage::CommandComplete(n) => {
                    b.set_rows_affected(*n);
                    break;
                }
                _ => {}
            }
        }
        Ok(b.finish())
    }

    fn begin(&mut self) -> Result<()> {
        self.run("BEGIN", &[]).map(|_| ())
    }

    fn commit(&mut self) -> Result<()> {
        self.run("COMMIT", &[]).map(|_| ())
    }

    fn rollback(&mut self) -> Result<()> {
        self.run("ROLLBACK", &[]).map(|_| ())
    }

    fn close(self) {
        let _ = self.client.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_outside_quotes_only() {
        let sql =
            "SELECT $1, '$1', \"$1\", $$ $1 $$, $tag$ $2 $tag$ -- $1\n, /* $1 */ $2, E'\\'$1'";
        let out = interpolate(sql, &[Value::Int(7), Value::Text("it's")]).unwrap();
        assert_eq!(
            out,
            "SELECT '7', '$1', \"$1\", $$ $1 $$, $tag$ $2 $tag$ -- $1\n, /* $1 */ E'it''s', E'\\'$1'"
        );
    }

    #[test]
    fn literals() {
        let out = interpolate(
            "$1 $2 $3 $4 $5",
            &[
                Value::Null,
                Value::Double(0.1),
                Value::Double(f64::NEG_INFINITY),
                Value::Text("a\\b"),
                Value::Blob(&[0, 255]),
            ],
        )
        .unwrap();
        assert_eq!(out, "NULL '0.1' '-Infinity' E'a\\\\b' '\\x00ff'::bytea");
    }

    #[test]
    fn parameter_count_mismatch_is_an_argument_error() {
        assert!(interpolate("SELECT $2", &[Value::Int(1)]).is_err());
        assert!(interpolate("SELECT 1", &[Value::Int(1)]).is_err());
        assert!(interpolate("SELECT $1", &[Value::Text("a\0b")]).is_err());
    }

    #[test]
    fn transaction_tracking_keywords() {
        assert_eq!(first_keyword("  -- c\n /* x */ begin;"), "BEGIN");
        assert!(is_rollback_to("ROLLBACK TO SAVEPOINT a"));
        assert!(!is_rollback_to("ROLLBACK"));
        assert!(has_several_statements("SELECT 1; SELECT 2"));
        assert!(!has_several_statements("SELECT ';'; "));
    }

    #[test]
    fn password_is_found_for_scrubbing() {
        assert_eq!(url_password("//u:s%40cret@h/db").as_deref(), Some("s@cret"));
        assert_eq!(url_password("//u@h/db"), None);
    }
}
