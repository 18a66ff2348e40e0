//! PostgreSQL through the `postgres` crate. Parameters are sent the way
//! libpq's untyped parameters are (text, type left to the server; blobs in
//! binary as bytea); results arrive in binary and are printed on the client
//! exactly as the server's output functions would (see [`text`]), asking the
//! server for the few values only it can print.

pub mod text;
pub mod tls;

use std::collections::HashMap;
use std::error::Error as _;

use postgres::types::{private::BytesMut, FromSql, IsNull, ToSql, Type};
use postgres::{Client, Config, NoTls, Row, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::backend::{contains_ignore_ascii_case, int_text, Backend, Connection};
use crate::config::{scrub, ConnectOptions, ParsedUrl};
use crate::error::{Error, Result};
use crate::value::{ResultBuilder, ResultSet, Value};

use text::{Cell, Settings};

/// The libpq-style options a URL may carry after the pool's own.
pub const KNOWN_OPTIONS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "user",
    "password",
    "dbname",
    "options",
    "application_name",
    "sslmode",
    "sslrootcert",
    "target_session_attrs",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_retries",
    "tcp_user_timeout",
    "channel_binding",
    "load_balance_hosts",
];

pub struct PostgresBackend {
    config: Config,
    password: Option<String>,
    connect: ConnectOptions,
    /// `None`: TLS is never used (`sslmode=disable`).
    tls: Option<MakeRustlsConnect>,
}

impl PostgresBackend {
    pub fn new(url: &ParsedUrl, connect: &ConnectOptions) -> Result<PostgresBackend> {
        url.check_params("postgres", KNOWN_OPTIONS)?;
        // sslmode and sslrootcert are peepool's to apply (see tls.rs); the
        // driver only learns whether TLS is attempted and required.
        let ssl_mode = tls::SslMode::parse(url.param("sslmode").unwrap_or("prefer"))?;
        let tls = tls::connector(ssl_mode, url.param("sslrootcert"))?;
        let mut s = format!("postgresql:{}", url.rest);
        let mut first = true;
        for (k, v) in &url.params {
            if k == "sslmode" || k == "sslrootcert" {
                continue;
            }
            s.push(if first { '?' } else { '&' });
            first = false;
            s.push_str(k);
            s.push('=');
            s.push_str(&percent_encode(v));
        }
        let password = url_password(url);
        let mut config: Config = s.parse().map_err(|e: postgres::Error| {
            Error::config(format!(
                "malformed PostgreSQL URL: {}",
                scrub(&error_text(&e), password.as_deref())
            ))
        })?;
        let password = config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .or(password);
        if let Some(t) = connect.connect_timeout {
            config.connect_timeout(t);
        }
        config.ssl_mode(ssl_mode.driver_mode());
        Ok(PostgresBackend {
            config,
            password,
            connect: connect.clone(),
            tls,
        })
    }

    fn open(
        config: &Config,
        connect: &ConnectOptions,
        password: Option<&str>,
        tls: Option<&MakeRustlsConnect>,
    ) -> Result<PostgresConn> {
        let client = match tls {
            Some(tls) => config.connect(tls.clone()),
            None => config.connect(NoTls),
        };
        let mut client = client.map_err(|e| {
            Error::connect(scrub(
                &format!("could not connect to PostgreSQL: {}", error_text(&e)),
                password,
            ))
        })?;
        let mut tx = Tx::Idle;
        if let Some(sql) = &connect.init_sql {
            client.batch_execute(sql).map_err(|e| {
                Error::connect(scrub(
                    &format!("init_sql failed: {}", error_text(&e)),
                    password,
                ))
            })?;
            let upper = sql.to_ascii_uppercase();
            if upper.contains("BEGIN") || upper.contains("START") {
                tx = Tx::Unknown;
            }
        }
        let mut conn = PostgresConn {
            client,
            lost: false,
            tx,
            stmts: StmtCache::new(connect.statement_cache),
            settings: Settings::default(),
            settings_dirty: true,
            settings_touched_in_tx: false,
            probe_timeout: connect.connect_timeout,
            abandoned: false,
        };
        conn.read_settings()
            .map_err(|e| Error::connect(scrub(&e.message, password)))?;
        Ok(conn)
    }
}

fn url_password(url: &ParsedUrl) -> Option<String> {
    if let Some(p) = url.param("password") {
        return Some(p.to_string());
    }
    let auth = url.rest.strip_prefix("//")?;
    let auth = &auth[..auth.find('/').unwrap_or(auth.len())];
    let userinfo = &auth[..auth.rfind('@')?];
    let (_, pass) = userinfo.split_once(':')?;
    crate::config::percent_decode(pass)
        .ok()
        .or_else(|| Some(pass.to_string()))
}

fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Whether a `statement_cache=0` query failed in the driver's own lookup of a
/// result type that is not built in (enum, domain, composite, or an array or
/// range of one). tokio-postgres 0.7.18 looks such a type up with named
/// statements (`s0`, `s1`, ... prepared in one round trip, run in the next;
/// rust-postgres#1204); through a transaction-mode pooler the next round trip
/// may reach another server connection, where the name does not exist (26000)
/// or names another process's statement (42P05). The query itself never names
/// a statement here, so only the lookup can, unless the SQL is the SQL-level
/// PREPARE / EXECUTE / DEALLOCATE.
fn type_lookup_failed(sql: &str, e: &postgres::Error) -> bool {
    let Some(db) = e.as_db_error() else {
        return false;
    };
    if !matches!(db.code().code(), "26000" | "42P05") {
        return false;
    }
    let (w1, _) = first_keywords(sql);
    if is_any(w1, &["PREPARE", "EXECUTE", "DEALLOCATE"]) {
        return false;
    }
    db.message()
        .strip_prefix("prepared statement \"s")
        .and_then(|rest| rest.split_once('"'))
        .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The error of a failed type lookup, saying what happened and what to do;
/// the server's SQLSTATE is kept.
fn type_lookup_error(err: Error) -> Error {
    let msg = format!(
        "statement_cache=0: a result column has a type that is not built in (an enum, \
         domain, composite, or an array or range of one), which the driver looks up with \
         named prepared statements; behind a transaction-mode pooler that lookup reached \
         another server connection. The statement itself has run (outside a transaction it \
         is committed); only its result is lost. Cast such columns to text in the query \
         (col::text), or use PgBouncer 1.21 or later with max_prepared_statements > 0. \
         Server said: {}",
        err.message
    );
    let mut err = err;
    err.message = msg;
    err
}

/// An error's message with its causes, and for a server error its fields.
fn error_text(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{}: {}", db.severity(), db.message());
        if let Some(d) = db.detail() {
            s.push_str(&format!("\nDETAIL: {d}"));
        }
        if let Some(h) = db.hint() {
            s.push_str(&format!("\nHINT: {h}"));
        }
        return s;
    }
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s
}

impl Backend for PostgresBackend {
    type Conn = PostgresConn;

    fn connect(&self) -> Result<PostgresConn> {
        let Some(limit) = self.connect.connect_timeout else {
            return Self::open(
                &self.config,
                &self.connect,
                self.password.as_deref(),
                self.tls.as_ref(),
            );
        };
        // Bound the whole connect (TCP, authentication, init_sql) by running it
        // on a helper thread; a late connection is dropped when it arrives.
        let (tx, rx) = std::sync::mpsc::channel();
        let (config, connect, password, tls) = (
            self.config.clone(),
            self.connect.clone(),
            self.password.clone(),
            self.tls.clone(),
        );
        std::thread::Builder::new()
            .name("peepool-pg-connect".into())
            .spawn(move || {
                let _ = tx.send(Self::open(
                    &config,
                    &connect,
                    password.as_deref(),
                    tls.as_ref(),
                ));
            })
            .map_err(|e| Error::connect(format!("could not start a connect thread: {e}")))?;
        match rx.recv_timeout(limit) {
            Ok(r) => r,
            Err(_) => Err(Error::connect(format!(
                "could not connect to PostgreSQL: timed out after {:.3} s (connect_timeout)",
                limit.as_secs_f64()
            ))),
        }
    }

    fn name(&self) -> &'static str {
        "postgres"
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tx {
    Idle,
    Active,
    Failed,
    Unknown,
}

pub struct PostgresConn {
    client: Client,
    lost: bool,
    tx: Tx,
    /// Named prepared statements (`statement_cache=N`; none when N is 0).
    stmts: StmtCache,
    settings: Settings,
    settings_dirty: bool,
    settings_touched_in_tx: bool,
    /// Bounds `ping` (connect_timeout): a checkout must not wait for ever on
    /// a server that accepts TCP but no longer answers.
    probe_timeout: Option<std::time::Duration>,
    /// A probe timed out with its request unanswered: closing waits for the
    /// answer (tokio-postgres), so it must not hold up the caller.
    abandoned: bool,
}

/// A named prepared statement owned by the connection's [`StmtCache`], with
/// what its text does to the state the connection tracks (read once).
struct CachedStmt {
    sql: Box<str>,
    /// Per parameter: declared bytea (a blob) rather than left to the server.
    blobs: Box<[bool]>,
    stmt: Statement,
    class: SqlClass,
}

/// The connection's prepared statements, keyed by their SQL text and which
/// parameters are blobs, most recently used last; at most `capacity`, the
/// least recently used closed first. A linear scan that compares lengths
/// first and starts at the most recent entry finds a repeated statement
/// without hashing or copying its text (as the SQLite backend's cache).
struct StmtCache {
    entries: Vec<CachedStmt>,
    capacity: usize,
}

impl StmtCache {
    fn new(capacity: usize) -> StmtCache {
        StmtCache {
            entries: Vec::new(),
            capacity,
        }
    }

    /// The index of the entry for `sql` with these parameters, made most
    /// recently used (so always the last one).
    fn find(&mut self, sql: &str, params: &[Value<'_>]) -> Option<usize> {
        let i = self.entries.iter().rposition(|e| {
            e.sql.len() == sql.len()
                && e.blobs.len() == params.len()
                && *e.sql == *sql
                && e.blobs
                    .iter()
                    .zip(params)
                    .all(|(&blob, p)| blob == matches!(p, Value::Blob(_)))
        })?;
        let last = self.entries.len() - 1;
        if i != last {
            self.entries[i..].rotate_left(1);
        }
        Some(last)
    }

    /// Add a statement just prepared, dropping (which closes it on the
    /// server) the least recently used one when full; its index.
    fn insert(&mut self, sql: &str, params: &[Value<'_>], stmt: Statement) -> usize {
        if self.entries.len() >= self.capacity && !self.entries.is_empty() {
            self.entries.remove(0);
        }
        self.entries.push(CachedStmt {
            sql: sql.into(),
            blobs: params.iter().map(|p| matches!(p, Value::Blob(_))).collect(),
            stmt,
            class: SqlClass::of(sql),
        });
        self.entries.len() - 1
    }
}

/// What a statement does to the state a connection tracks, read from its
/// text: its first two keywords, and whether it may change a session
/// setting the text forms depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SqlClass {
    /// Once it has run: a transaction is open (BEGIN, START).
    begins: bool,
    /// Once it has run: none is (COMMIT, END, ABORT, ROLLBACK, PREPARE
    /// TRANSACTION; not their `PREPARED` forms nor ROLLBACK TO).
    ends: bool,
    /// When it fails: whether one is open is unknown (a failed COMMIT or
    /// ROLLBACK still ends the transaction; when in doubt the release
    /// rollback is harmless).
    fail_unknown: bool,
    /// SET, RESET, DISCARD, or a text that mentions `set_config` or
    /// `timezone` (any case).
    settings: bool,
}

impl SqlClass {
    fn of(sql: &str) -> SqlClass {
        let (w1, w2) = first_keywords(sql);
        let prepared = w2.eq_ignore_ascii_case("PREPARED");
        let to = w2.eq_ignore_ascii_case("TO");
        SqlClass {
            begins: is_any(w1, &["BEGIN", "START"]),
            ends: (is_any(w1, &["COMMIT", "END", "ABORT"]) && !prepared)
                || (w1.eq_ignore_ascii_case("ROLLBACK") && !prepared && !to)
                || (w1.eq_ignore_ascii_case("PREPARE") && w2.eq_ignore_ascii_case("TRANSACTION")),
            fail_unknown: is_any(w1, &["COMMIT", "END", "ABORT", "ROLLBACK"]) && !prepared && !to,
            settings: is_any(w1, &["SET", "RESET", "DISCARD"])
                || contains_ignore_ascii_case(sql, "set_config")
                || contains_ignore_ascii_case(sql, "timezone"),
        }
    }
}

/// Whether `word` is one of `keywords` (upper case), ignoring ASCII case.
fn is_any(word: &str, keywords: &[&str]) -> bool {
    keywords.iter().any(|k| word.eq_ignore_ascii_case(k))
}

/// Up to this many parameters reach the driver from the stack.
const STACK_PARAMS: usize = 4;

/// `params` as the driver takes them (as [`Param`]s), on the stack when
/// there are few.
fn with_params<R>(params: &[Value<'_>], f: impl FnOnce(&[&(dyn ToSql + Sync)]) -> R) -> R {
    if params.len() <= STACK_PARAMS {
        let mut ps = [Param(Value::Null); STACK_PARAMS];
        for (slot, p) in ps.iter_mut().zip(params) {
            *slot = Param(*p);
        }
        let refs: [&(dyn ToSql + Sync); STACK_PARAMS] = [&ps[0], &ps[1], &ps[2], &ps[3]];
        f(&refs[..params.len()])
    } else {
        let ps: Vec<Param> = params.iter().map(|p| Param(*p)).collect();
        let refs: Vec<&(dyn ToSql + Sync)> = ps.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        f(&refs)
    }
}

/// A parameter sent as libpq sends an untyped one: text format (blobs binary).
#[derive(Debug, Clone, Copy)]
struct Param<'a>(Value<'a>);

impl ToSql for Param<'_> {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self.0 {
            Value::Null => return Ok(IsNull::Yes),
            Value::Int(i) => out.extend_from_slice(int_text(i, &mut [0; 20])),
            Value::Double(d) => out.extend_from_slice(text::float8_text(d).as_bytes()),
            Value::Text(s) => out.extend_from_slice(s.as_bytes()),
            Value::Blob(b) => out.extend_from_slice(b),
        }
        Ok(IsNull::No)
    }
    fn accepts(_ty: &Type) -> bool {
        true
    }
    fn to_sql_checked(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        self.to_sql(ty, out)
    }
    fn encode_format(&self, _ty: &Type) -> postgres::types::Format {
        match self.0 {
            Value::Blob(_) => postgres::types::Format::Binary,
            _ => postgres::types::Format::Text,
        }
    }
}

/// A value in the binary form the server sent, sent back as is.
#[derive(Debug)]
struct RawParam<'a>(&'a [u8]);

impl ToSql for RawParam<'_> {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(self.0);
        Ok(IsNull::No)
    }
    fn accepts(_ty: &Type) -> bool {
        true
    }
    fn to_sql_checked(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        self.to_sql(ty, out)
    }
}

/// A result value's raw bytes, whatever its type.
struct Raw<'a>(&'a [u8]);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(
        _ty: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Raw<'a>, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw))
    }
    fn accepts(_ty: &Type) -> bool {
        true
    }
}

/// The first two words of a statement (runs of ASCII letters, as written),
/// after spaces, comments and `(`.
fn first_keywords(sql: &str) -> (&str, &str) {
    let b = sql.as_bytes();
    let mut i = 0;
    loop {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'(') {
            i += 1;
        }
        if b[i..].starts_with(b"--") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            match sql[i + 2..].find("*/") {
                Some(e) => i = i + 2 + e + 2,
                None => i = b.len(),
            }
        } else {
            break;
        }
    }
    let mut words = sql[i..]
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| !w.is_empty());
    let w1 = words.next().unwrap_or("");
    let w2 = words.next().unwrap_or("");
    (w1, w2)
}

impl PostgresConn {
    fn gone() -> Error {
        Error::database("the connection to the PostgreSQL server is closed").with_sqlstate("08003")
    }

    /// Map a driver error, marking the connection lost when the link is gone.
    fn fail(&mut self, e: postgres::Error) -> Error {
        if matches!(self.tx, Tx::Active) {
            self.tx = Tx::Failed;
        }
        if let Some(db) = e.as_db_error() {
            let code = db.code().code().to_string();
            if matches!(db.severity(), "FATAL" | "PANIC") || self.client.is_closed() {
                self.lost = true;
            }
            if code == "08P01" && db.message().starts_with("bind message supplies") {
                return Error::invalid_argument(db.message().to_string());
            }
            return Error::database(error_text(&e)).with_sqlstate(code);
        }
        let io = {
            let mut src = e.source();
            let mut found = false;
            while let Some(c) = src {
                if c.is::<std::io::Error>() {
                    found = true;
                }
                src = c.source();
            }
            found
        };
        if e.is_closed() || io || self.client.is_closed() {
            self.lost = true;
            return Error::database(format!(
                "connection to the PostgreSQL server was lost: {}",
                error_text(&e)
            ))
            .with_sqlstate("08006");
        }
        let msg = error_text(&e);
        if msg.contains("parameters but got") {
            return Error::invalid_argument(msg);
        }
        Error::database(msg)
    }

    fn read_settings(&mut self) -> Result<()> {
        let rows = self
            .client
            .simple_query("SELECT current_setting('TimeZone'), current_setting('DateStyle'), current_setting('IntervalStyle'), current_setting('extra_float_digits'), current_setting('bytea_output')")
            .map_err(|e| self.fail(e))?;
        for m in rows {
            if let postgres::SimpleQueryMessage::Row(r) = m {
                let g = |i: usize| r.get(i).unwrap_or("").to_string();
                self.settings = Settings::from_values(&g(0), &g(1), &g(2), &g(3), &g(4));
            }
        }
        self.settings_dirty = false;
        Ok(())
    }

    /// Track transaction state and session settings from the SQL run.
    fn note_sql(&mut self, sql: &str, ok: bool) {
        self.note(SqlClass::of(sql), ok);
    }

    /// [`note_sql`](Self::note_sql) with the statement's class already known.
    fn note(&mut self, class: SqlClass, ok: bool) {
        if ok {
            if class.begins {
                self.tx = Tx::Active;
            } else if class.ends {
                self.tx_ended();
            }
        } else if class.fail_unknown {
            self.tx = Tx::Unknown;
        }
        if class.settings {
            self.settings_dirty = true;
            if self.tx != Tx::Idle {
                self.settings_touched_in_tx = true;
            }
        }
    }

    fn tx_ended(&mut self) {
        self.tx = Tx::Idle;
        if self.settings_touched_in_tx {
            self.settings_dirty = true;
            self.settings_touched_in_tx = false;
        }
    }

    /// The index in `stmts` of the named statement for `sql` with these
    /// parameters, prepared now on a miss.
    fn statement(&mut self, sql: &str, params: &[Value<'_>]) -> Result<usize> {
        if let Some(i) = self.stmts.find(sql, params) {
            return Ok(i);
        }
        let stmt = match self.client.prepare_typed(sql, &Self::types_of(params)) {
            Ok(s) => s,
            Err(e) => return Err(self.fail(e)),
        };
        Ok(self.stmts.insert(sql, params, stmt))
    }

    fn types_of(params: &[Value<'_>]) -> Vec<Type> {
        params
            .iter()
            .map(|p| {
                if matches!(p, Value::Blob(_)) {
                    Type::BYTEA
                } else {
                    Type::UNKNOWN
                }
            })
            .collect()
    }

    /// The parameters with their declared types, for an unnamed statement
    /// (`statement_cache=0`).
    fn typed_params<'p>(params: &'p [Param<'p>]) -> Vec<(&'p (dyn ToSql + Sync), Type)> {
        params
            .iter()
            .map(|p| {
                let ty = if matches!(p.0, Value::Blob(_)) {
                    Type::BYTEA
                } else {
                    Type::UNKNOWN
                };
                (p as &(dyn ToSql + Sync), ty)
            })
            .collect()
    }

    fn run_execute(&mut self, sql: &str, params: &[Value<'_>]) -> Result<u64> {
        if self.lost {
            return Err(Self::gone());
        }
        check_param_count(params)?;
        if self.stmts.capacity > 0 {
            let i = self.statement(sql, params)?;
            let e = &self.stmts.entries[i];
            let class = e.class;
            let r = with_params(params, |refs| self.client.execute(&e.stmt, refs));
            self.note(class, r.is_ok());
            return r.map_err(|e| self.fail(e));
        }
        let wrapped: Vec<Param> = params.iter().map(|p| Param(*p)).collect();
        let r = self
            .client
            .execute_typed(sql, &Self::typed_params(&wrapped));
        self.note_sql(sql, r.is_ok());
        r.map_err(|e| self.fail(e))
    }

    fn run_query(&mut self, sql: &str, params: &[Value<'_>]) -> Result<Box<ResultSet>> {
        if self.lost {
            return Err(Self::gone());
        }
        check_param_count(params)?;
        if self.stmts.capacity > 0 {
            let i = self.statement(sql, params)?;
            let e = &self.stmts.entries[i];
            let class = e.class;
            let r = with_params(params, |refs| self.client.query(&e.stmt, refs));
            self.note(class, r.is_ok());
            let rows = r.map_err(|e| self.fail(e))?;
            // The names straight from the statement into the result's arena.
            let columns = self.stmts.entries[i].stmt.columns();
            let b = ResultBuilder::with_names(columns.iter().map(|c| c.name()));
            return self.materialise(b, rows);
        }
        let wrapped: Vec<Param> = params.iter().map(|p| Param(*p)).collect();
        // A result type that is not built in and not yet known to this
        // connection is looked up by the driver while the rows are still
        // arriving; with more rows than its buffers hold that waits for
        // ever (rust-postgres#1348, open). No public API avoids it; the
        // README tells to cast such columns to text.
        let r = self.client.query_typed(sql, &Self::typed_params(&wrapped));
        self.note_sql(sql, r.is_ok());
        let rows = match r {
            Ok(rows) => rows,
            Err(e) => {
                let lookup = type_lookup_failed(sql, &e);
                let err = self.fail(e);
                return Err(if lookup { type_lookup_error(err) } else { err });
            }
        };
        // The driver keeps an unnamed statement's columns only with its rows
        // (no public accessor for the Describe it got), so with
        // statement_cache=0 a query with no row has no columns.
        let columns = rows.first().map_or(&[][..], |row| row.columns());
        let b = ResultBuilder::with_names(columns.iter().map(|c| c.name()));
        self.materialise(b, rows)
    }

    /// Ask the server for the text of values only it can print: their binary
    /// form goes back as a parameter of their own type through `format('%s')`,
    /// which calls the type's output function.
    fn server_texts(&mut self, cells: &[(&[u8], &Type)]) -> Result<Vec<String>> {
        let mut out = Vec::with_capacity(cells.len());
        for chunk in cells.chunks(500) {
            let sql = (1..=chunk.len())
                .map(|i| format!("format('%s', ${i})"))
                .collect::<Vec<_>>()
                .join(", ");
            let raws: Vec<RawParam> = chunk.iter().map(|(b, _)| RawParam(b)).collect();
            let pairs: Vec<(&(dyn ToSql + Sync), Type)> = raws
                .iter()
                .zip(chunk)
                .map(|(r, (_, t))| (r as &(dyn ToSql + Sync), (*t).clone()))
                .collect();
            let rows = match self.client.query_typed(&format!("SELECT {sql}"), &pairs) {
                Ok(r) => r,
                Err(e) => return Err(self.fail(e)),
            };
            let row = rows.first().ok_or_else(|| {
                Error::internal("the server returned no row for a text conversion")
            })?;
            for i in 0..chunk.len() {
                let s: Option<String> = row.try_get(i).map_err(|e| {
                    Error::database(format!("reading the server's text of a value: {e}"))
                })?;
                out.push(s.unwrap_or_default());
            }
        }
        Ok(out)
    }

    /// The rows' cells into `b` (which holds the column names), each decoded
    /// on the client and copied once, into the result's arena. The first
    /// value only the server can print hands the rest over to
    /// [`materialise_with_server`](Self::materialise_with_server).
    fn materialise(&mut self, mut b: ResultBuilder, rows: Vec<Row>) -> Result<Box<ResultSet>> {
        if self.settings_dirty && !rows.is_empty() {
            self.read_settings()?;
        }
        for (r, row) in rows.iter().enumerate() {
            for (c, column) in row.columns().iter().enumerate() {
                let raw: Option<Raw> = row
                    .try_get(c)
                    .map_err(|e| Error::database(format!("reading column {c}: {e}")))?;
                match raw {
                    None => b.push_null(),
                    Some(Raw(bytes)) => match text::decode(column.type_(), bytes, &self.settings) {
                        Cell::Server => return self.materialise_with_server(b, &rows, r, c),
                        cell => push_cell(&mut b, cell),
                    },
                }
            }
            b.end_row();
        }
        b.set_rows_affected(rows.len() as u64);
        Ok(b.finish())
    }

    /// The cells from (`row0`, `col0`) on, which holds a value only the
    /// server can print: every such value is sent back to the server (one
    /// round trip per 500) and its text stored with the others.
    fn materialise_with_server(
        &mut self,
        mut b: ResultBuilder,
        rows: &[Row],
        row0: usize,
        col0: usize,
    ) -> Result<Box<ResultSet>> {
        let ncols = rows[row0].len();
        let start = row0 * ncols + col0;
        let end = rows.len() * ncols;
        let mut cells: Vec<Option<Cell>> = Vec::with_capacity(end - start);
        let mut pending: Vec<(usize, &[u8], &Type)> = Vec::new();
        for i in start..end {
            let (row, c) = (&rows[i / ncols], i % ncols);
            let raw: Option<Raw> = row
                .try_get(c)
                .map_err(|e| Error::database(format!("reading column {c}: {e}")))?;
            let cell = match raw {
                None => None,
                Some(Raw(bytes)) => {
                    let ty = row.columns()[c].type_();
                    let cell = text::decode(ty, bytes, &self.settings);
                    if cell == Cell::Server {
                        pending.push((i, bytes, ty));
                    }
                    Some(cell)
                }
            };
            cells.push(cell);
        }
        let mut server: HashMap<usize, (String, &[u8])> = HashMap::new();
        if !pending.is_empty() {
            let items: Vec<(&[u8], &Type)> = pending.iter().map(|&(_, b, t)| (b, t)).collect();
            let texts = self.server_texts(&items)?;
            for ((idx, raw, _), t) in pending.into_iter().zip(texts) {
                server.insert(idx, (t, raw));
            }
        }
        for (i, cell) in (start..end).zip(cells) {
            match cell {
                None => b.push_null(),
                Some(Cell::Server) => {
                    let (t, raw) = server.remove(&i).unwrap_or_default();
                    let ty = rows[i / ncols].columns()[i % ncols].type_();
                    let base = match ty.kind() {
                        postgres::types::Kind::Domain(base) => base.clone(),
                        _ => ty.clone(),
                    };
                    match base.oid() {
                        text::oid::BYTEA => b.push_blob(raw, Some(t.as_bytes())),
                        text::oid::FLOAT4 | text::oid::FLOAT8 => {
                            let v = t.parse::<f64>().unwrap_or(match t.as_str() {
                                "Infinity" => f64::INFINITY,
                                "-Infinity" => f64::NEG_INFINITY,
                                _ => f64::NAN,
                            });
                            b.push_double(v, &t)
                        }
                        _ => b.push_other(t.as_bytes()),
                    }
                }
                Some(cell) => push_cell(&mut b, cell),
            }
            if (i + 1) % ncols == 0 {
                b.end_row();
            }
        }
        b.set_rows_affected(rows.len() as u64);
        Ok(b.finish())
    }

    fn simple(&mut self, sql: &str) -> Result<()> {
        if self.lost {
            return Err(Self::gone());
        }
        let r = self.client.batch_execute(sql);
        self.note_sql(sql, r.is_ok());
        r.map_err(|e| self.fail(e))
    }
}

/// A cell decoded on the client into the result (never [`Cell::Server`]).
fn push_cell(b: &mut ResultBuilder, cell: Cell<'_>) {
    match cell {
        Cell::Int(v) => b.push_int(v),
        Cell::Double(v, t) => b.push_double(v, &t),
        Cell::Numeric(t) => b.push_numeric(&t),
        Cell::Text(t) => b.push_text(&t),
        Cell::Blob(raw, t) => b.push_blob(raw, Some(t.as_bytes())),
        Cell::Other(t) => b.push_other(&t),
        // The callers ask the server for these texts first.
        Cell::Server => {
            debug_assert!(false, "a server-printed cell reached push_cell");
            b.push_other(b"")
        }
    }
}

/// The protocol counts parameters in 16 bits: past that the driver fails
/// halfway through writing its messages and the connection is lost, so
/// refuse before sending anything.
const MAX_PARAMS: usize = u16::MAX as usize;

fn check_param_count(params: &[Value<'_>]) -> Result<()> {
    if params.len() > MAX_PARAMS {
        return Err(Error::invalid_argument(format!(
            "PostgreSQL takes at most {MAX_PARAMS} parameters in a statement, got {}",
            params.len()
        )));
    }
    Ok(())
}

impl Connection for PostgresConn {
    fn is_closed(&mut self) -> bool {
        self.lost || self.client.is_closed()
    }

    fn ping(&mut self) -> Result<()> {
        if self.lost {
            return Err(Self::gone());
        }
        let Some(limit) = self.probe_timeout else {
            return match self.client.simple_query("SELECT 1") {
                Ok(_) => Ok(()),
                Err(e) => Err(self.fail(e)),
            };
        };
        match self.client.is_valid(limit) {
            Ok(()) => Ok(()),
            Err(e) => {
                let mut err = self.fail(e);
                if !self.lost {
                    // Timed out: the request is still in flight.
                    self.lost = true;
                    self.abandoned = true;
                    err = Error::database(format!(
                        "connection to the PostgreSQL server was lost: no answer to a \
                         liveness probe within {:.3} s (connect_timeout)",
                        limit.as_secs_f64()
                    ))
                    .with_sqlstate("08006");
                }
                Err(err)
            }
        }
    }

    fn in_transaction(&mut self) -> bool {
        self.tx != Tx::Idle
    }

    /// `is_closed` reads `lost` and whether the driver's request channel is
    /// closed (an atomic load in tokio-postgres); `in_transaction` reads
    /// `tx`, kept from the statements run. Neither does I/O or blocks.
    fn checks_are_local(&self) -> bool {
        true
    }

    fn execute(&mut self, sql: &str, params: &[Value<'_>]) -> Result<u64> {
        self.run_execute(sql, params)
    }

    fn query(&mut self, sql: &str, params: &[Value<'_>]) -> Result<Box<ResultSet>> {
        self.run_query(sql, params)
    }

    fn begin(&mut self) -> Result<()> {
        self.simple("BEGIN")
    }

    fn commit(&mut self) -> Result<()> {
        let r = self.simple("COMMIT");
        if r.is_err() && !self.lost {
            self.tx = Tx::Unknown;
        }
        r
    }

    fn rollback(&mut self) -> Result<()> {
        self.simple("ROLLBACK")
    }

    fn close(self) {
        if self.abandoned {
            // Ends when the server answers or the link dies.
            let _ = std::thread::Builder::new()
                .name("peepool-pg-close".into())
                .spawn(move || drop(self.client));
            return;
        }
        let _ = self.client.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(begins: bool, ends: bool, fail_unknown: bool, settings: bool) -> SqlClass {
        SqlClass {
            begins,
            ends,
            fail_unknown,
            settings,
        }
    }

    #[test]
    fn statements_are_classified_by_their_first_keywords() {
        let none = class(false, false, false, false);
        for (sql, want) in [
            ("SELECT 1", none),
            ("begin", class(true, false, false, false)),
            (
                "  /* c */ ( START TRANSACTION",
                class(true, false, false, false),
            ),
            ("-- note\nBEGIN", class(true, false, false, false)),
            ("Commit", class(false, true, true, false)),
            ("END", class(false, true, true, false)),
            ("abort", class(false, true, true, false)),
            ("ROLLBACK", class(false, true, true, false)),
            ("ROLLBACK TO SAVEPOINT a", none),
            ("rollback to a", none),
            ("COMMIT PREPARED 'x'", none),
            ("ROLLBACK PREPARED 'x'", none),
            ("PREPARE TRANSACTION 'x'", class(false, true, false, false)),
            ("PREPARE q AS SELECT 1", none),
            ("SET TimeZone = 'UTC'", class(false, false, false, true)),
            ("reset all", class(false, false, false, true)),
            ("DISCARD ALL", class(false, false, false, true)),
            (
                "SELECT SET_CONFIG('a', 'b', false)",
                class(false, false, false, true),
            ),
            ("SELECT now() AT TIME ZONE 'UTC'", none),
            (
                "SELECT current_setting('TIMEZONE')",
                class(false, false, false, true),
            ),
            ("", none),
            ("/* unterminated", none),
        ] {
            assert_eq!(SqlClass::of(sql), want, "{sql:?}");
        }
    }
}
