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

use crate::backend::{Backend, Connection};
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
            cache: HashMap::new(),
            tick: 0,
            cache_size: connect.statement_cache,
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
    if matches!(w1.as_str(), "PREPARE" | "EXECUTE" | "DEALLOCATE") {
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
    cache: HashMap<(String, Vec<bool>), (Statement, u64)>,
    tick: u64,
    cache_size: usize,
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

/// A parameter sent as libpq sends an untyped one: text format (blobs binary).
#[derive(Debug)]
struct Param<'a>(Value<'a>);

impl ToSql for Param<'_> {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self.0 {
            Value::Null => return Ok(IsNull::Yes),
            Value::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
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

/// The first keyword of a statement, upper-cased, after spaces, comments and `(`.
fn first_keywords(sql: &str) -> (String, String) {
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
    let w1 = words.next().unwrap_or("").to_ascii_uppercase();
    let w2 = words.next().unwrap_or("").to_ascii_uppercase();
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
        let (w1, w2) = first_keywords(sql);
        if ok {
            match w1.as_str() {
                "BEGIN" | "START" => self.tx = Tx::Active,
                "COMMIT" | "END" | "ABORT" if w2 != "PREPARED" => self.tx_ended(),
                "ROLLBACK" if w2 != "PREPARED" && w2 != "TO" => self.tx_ended(),
                "PREPARE" if w2 == "TRANSACTION" => self.tx_ended(),
                _ => {}
            }
        } else if matches!(w1.as_str(), "COMMIT" | "END" | "ABORT" | "ROLLBACK")
            && w2 != "PREPARED"
            && w2 != "TO"
        {
            // A failed COMMIT or ROLLBACK still ends the transaction; when in
            // doubt the release rollback is harmless.
            self.tx = Tx::Unknown;
        }
        let lower = sql.to_ascii_lowercase();
        if matches!(w1.as_str(), "SET" | "RESET" | "DISCARD")
            || lower.contains("set_config")
            || lower.contains("timezone")
        {
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

    fn statement(&mut self, sql: &str, types: &[Type]) -> Result<Statement> {
        let key = (
            sql.to_string(),
            types
                .iter()
                .map(|t| *t == Type::BYTEA)
                .collect::<Vec<bool>>(),
        );
        self.tick += 1;
        if let Some((stmt, used)) = self.cache.get_mut(&key) {
            *used = self.tick;
            return Ok(stmt.clone());
        }
        let stmt = match self.client.prepare_typed(sql, types) {
            Ok(s) => s,
            Err(e) => return Err(self.fail(e)),
        };
        if self.cache.len() >= self.cache_size {
            if let Some(oldest) = self
                .cache
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone())
            {
                self.cache.remove(&oldest);
            }
        }
        self.cache.insert(key, (stmt.clone(), self.tick));
        Ok(stmt)
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

    fn run_execute(&mut self, sql: &str, params: &[Value<'_>]) -> Result<u64> {
        if self.lost {
            return Err(Self::gone());
        }
        check_param_count(params)?;
        let wrapped: Vec<Param> = params.iter().map(|p| Param(*p)).collect();
        let types = Self::types_of(params);
        let r = if self.cache_size > 0 {
            let stmt = self.statement(sql, &types)?;
            let refs: Vec<&(dyn ToSql + Sync)> =
                wrapped.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
            self.client.execute(&stmt, &refs)
        } else {
            let pairs: Vec<(&(dyn ToSql + Sync), Type)> = wrapped
                .iter()
                .zip(types)
                .map(|(p, t)| (p as &(dyn ToSql + Sync), t))
                .collect();
            self.client.execute_typed(sql, &pairs)
        };
        self.note_sql(sql, r.is_ok());
        r.map_err(|e| self.fail(e))
    }

    fn run_query(
        &mut self,
        sql: &str,
        params: &[Value<'_>],
    ) -> Result<(Vec<String>, Vec<Type>, Vec<Row>)> {
        if self.lost {
            return Err(Self::gone());
        }
        check_param_count(params)?;
        let wrapped: Vec<Param> = params.iter().map(|p| Param(*p)).collect();
        let types = Self::types_of(params);
        let (r, cols) = if self.cache_size > 0 {
            let stmt = self.statement(sql, &types)?;
            let refs: Vec<&(dyn ToSql + Sync)> =
                wrapped.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
            let cols = stmt
                .columns()
                .iter()
                .map(|c| (c.name().to_string(), c.type_().clone()))
                .collect::<Vec<_>>();
            (self.client.query(&stmt, &refs), Some(cols))
        } else {
            let pairs: Vec<(&(dyn ToSql + Sync), Type)> = wrapped
                .iter()
                .zip(types)
                .map(|(p, t)| (p as &(dyn ToSql + Sync), t))
                .collect();
            // A result type that is not built in and not yet known to this
            // connection is looked up by the driver while the rows are still
            // arriving; with more rows than its buffers hold that waits for
            // ever (rust-postgres#1348, open). No public API avoids it; the
            // README tells to cast such columns to text.
            (self.client.query_typed(sql, &pairs), None)
        };
        self.note_sql(sql, r.is_ok());
        let rows = match r {
            Ok(rows) => rows,
            Err(e) => {
                let lookup = cols.is_none() && type_lookup_failed(sql, &e);
                let err = self.fail(e);
                return Err(if lookup { type_lookup_error(err) } else { err });
            }
        };
        // The driver keeps an unnamed statement's columns only with its rows
        // (no public accessor for the Describe it got), so with
        // statement_cache=0 a query with no row has no columns.
        let cols = cols.unwrap_or_else(|| {
            rows.first()
                .map(|row| {
                    row.columns()
                        .iter()
                        .map(|c| (c.name().to_string(), c.type_().clone()))
                        .collect()
                })
                .unwrap_or_default()
        });
        let (names, types) = cols.into_iter().unzip();
        Ok((names, types, rows))
    }

    /// Ask the server for the text of values only it can print: their binary
    /// form goes back as a parameter of their own type through `format('%s')`,
    /// which calls the type's output function.
    fn server_texts(&mut self, cells: &[(Vec<u8>, Type)]) -> Result<Vec<String>> {
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
                .map(|(r, (_, t))| (r as &(dyn ToSql + Sync), t.clone()))
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

    fn materialise(
        &mut self,
        names: Vec<String>,
        types: Vec<Type>,
        rows: Vec<Row>,
    ) -> Result<ResultSet> {
        if self.settings_dirty && !rows.is_empty() {
            self.read_settings()?;
        }
        let ncols = names.len();
        let mut cells: Vec<Option<Cell>> = Vec::with_capacity(rows.len() * ncols);
        let mut pending: Vec<(usize, Vec<u8>, Type)> = Vec::new();
        for row in &rows {
            for (c, ty) in types.iter().enumerate() {
                let raw: Option<Raw> = row
                    .try_get(c)
                    .map_err(|e| Error::database(format!("reading column {c}: {e}")))?;
                let cell = match raw {
                    None => None,
                    Some(Raw(b)) => {
                        let cell = text::decode(ty, b, &self.settings);
                        if cell == Cell::Server {
                            pending.push((cells.len(), b.to_vec(), ty.clone()));
                        }
                        Some(cell)
                    }
                };
                cells.push(cell);
            }
        }
        let mut server: HashMap<usize, (String, Vec<u8>)> = HashMap::new();
        if !pending.is_empty() {
            let items: Vec<(Vec<u8>, Type)> = pending
                .iter()
                .map(|(_, b, t)| (b.clone(), t.clone()))
                .collect();
            let texts = self.server_texts(&items)?;
            for ((idx, raw, _), t) in pending.into_iter().zip(texts) {
                server.insert(idx, (t, raw));
            }
        }
        let mut b = ResultBuilder::new(names);
        for (i, cell) in cells.into_iter().enumerate() {
            match cell {
                None => b.push_null(),
                Some(Cell::Int(v)) => b.push_int(v),
                Some(Cell::Double(v, t)) => b.push_double(v, &t),
                Some(Cell::Numeric(t)) => b.push_numeric(&t),
                Some(Cell::Text(t)) => b.push_text(&t),
                Some(Cell::Blob(raw, t)) => b.push_blob(&raw, Some(t.as_bytes())),
                Some(Cell::Other(t)) => b.push_other(&t),
                Some(Cell::Server) => {
                    let (t, raw) = server.remove(&i).unwrap_or_default();
                    let ty = &types[i % ncols.max(1)];
                    let base = match ty.kind() {
                        postgres::types::Kind::Domain(base) => base.clone(),
                        _ => ty.clone(),
                    };
                    match base.oid() {
                        text::oid::BYTEA => b.push_blob(&raw, Some(t.as_bytes())),
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
            }
            if ncols > 0 && (i + 1) % ncols == 0 {
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

    fn execute(&mut self, sql: &str, params: &[Value<'_>]) -> Result<u64> {
        self.run_execute(sql, params)
    }

    fn query(&mut self, sql: &str, params: &[Value<'_>]) -> Result<ResultSet> {
        let (names, types, rows) = self.run_query(sql, params)?;
        self.materialise(names, types, rows)
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
