//! MySQL / MariaDB through the `mysql` crate (sync API, no pool of its own).
//!
//! - A URL that names a host connects over TCP even when the host is local:
//!   the crate's `prefer_socket` (on by default, which silently drops TLS) is
//!   turned off unless the URL asks for `prefer_socket=true` or `socket=`.
//! - Statements without parameters go through the text protocol, so every
//!   cell is the server's own text, as `mysql_fetch_row` prints it.
//!   Statements with parameters go through the binary protocol (prepared,
//!   cached per connection up to `statement_cache`); their cells are
//!   formatted on the client exactly as the server formats them in text.
//! - The sync `Conn` never reconnects by itself; a lost link is reported as
//!   SQLSTATE `08S01` and the connection is marked closed.

use mysql::consts::{ColumnFlags, ColumnType};
use mysql::prelude::Queryable;
use mysql::{Column, Conn, Opts, OptsBuilder, SslOpts};

use crate::backend::{contains_ignore_ascii_case, int_text, Backend, Connection};
use crate::config::{
    parse_bool, parse_optional_seconds, percent_decode, scrub, ConnectOptions, ParsedUrl,
};
use crate::error::{Error, Result};
use crate::value::{ResultBuilder, ResultSet, Value};

/// Driver options a `mysql://` URL may carry.
const KNOWN_PARAMS: &[&str] = &[
    "user",
    "password",
    "host",
    "port",
    "database",
    "dbname",
    "socket",
    "prefer_socket",
    "ssl-mode",
    "ssl_mode",
    "sslmode",
    "require_ssl",
    "verify_ca",
    "verify_identity",
    "ssl-ca",
    "root_cert_path",
    "compress",
    "tcp_nodelay",
    "read_timeout",
    "write_timeout",
];

/// The binary character set number: a string column in it holds bytes.
const BINARY_CHARSET: u16 = 63;
/// `decimals` of a floating column without a fixed scale.
const NOT_FIXED_DEC: u8 = 31;

pub struct MysqlBackend {
    opts: Opts,
    password: Option<String>,
    connect: ConnectOptions,
}

pub struct MysqlConn {
    conn: Option<Conn>,
    lost: bool,
    /// A transaction is (or may be) open.
    in_tx: bool,
    /// `autocommit` may be off, so any statement may open a transaction.
    autocommit_off: bool,
    statement_cache: usize,
    password: Option<String>,
    /// Bounds `ping` (connect_timeout): a checkout must not wait for ever on
    /// a server that accepts TCP but no longer answers.
    probe_timeout: Option<std::time::Duration>,
}

fn decode(what: &str, s: &str) -> Result<String> {
    percent_decode(s).map_err(|e| Error::config(format!("malformed mysql URL: {what}: {e}")))
}

impl MysqlBackend {
    pub fn new(url: &ParsedUrl, connect: &ConnectOptions) -> Result<MysqlBackend> {
        url.check_params("mysql", KNOWN_PARAMS)?;
        let mut user = None;
        let mut password = None;
        let mut host = None;
        let mut port = None;
        let mut db = None;

        // "//user:pass@host:port/db"
        let rest = url.rest.as_str();
        if !rest.is_empty() {
            let rest = rest.strip_prefix("//").ok_or_else(|| {
                Error::config(
                    "malformed mysql URL: expected mysql://user:password@host:port/database",
                )
            })?;
            let (authority, path) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, ""),
            };
            let hostport = match authority.rfind('@') {
                Some(at) => {
                    let userinfo = &authority[..at];
                    match userinfo.split_once(':') {
                        Some((u, p)) => {
                            user = Some(decode("user", u)?);
                            password = Some(decode("password", p)?);
                        }
                        None => user = Some(decode("user", userinfo)?),
                    }
                    &authority[at + 1..]
                }
                None => authority,
            };
            let (h, p) = if let Some(stripped) = hostport.strip_prefix('[') {
                let close = stripped.find(']').ok_or_else(|| {
                    Error::config("malformed mysql URL: unclosed '[' in the host")
                })?;
                let after = &stripped[close + 1..];
                let p = match after.strip_prefix(':') {
                    Some(p) => Some(p),
                    None if after.is_empty() => None,
                    None => {
                        return Err(Error::config(
                            "malformed mysql URL: junk after ']' in the host",
                        ))
                    }
                };
                (&stripped[..close], p)
            } else {
                match hostport.rsplit_once(':') {
                    Some((h, p)) => (h, Some(p)),
                    None => (hostport, None),
                }
            };
            if !h.is_empty() {
                host = Some(decode("host", h)?);
            }
            if let Some(p) = p {
                if !p.is_empty() {
                    port = Some(p.to_string());
                }
            }
            if !path.is_empty() {
                db = Some(decode("database", path)?);
            }
        }

        let mut socket = None;
        let mut prefer_socket = None;
        let mut ssl_mode: Option<String> = None;
        let mut root_cert = None;
        let mut compress = None;
        let mut tcp_nodelay = true;
        let mut read_timeout = None;
        let mut write_timeout = None;
        for (k, v) in &url.params {
            match k.as_str() {
                "user" => user = Some(v.clone()),
                "password" => password = Some(v.clone()),
                "host" => host = Some(v.clone()),
                "port" => port = Some(v.clone()),
                "database" | "dbname" => db = Some(v.clone()),
                "socket" => socket = Some(v.clone()),
                "prefer_socket" => prefer_socket = Some(parse_bool(k, v)?),
                "ssl-mode" | "ssl_mode" | "sslmode" => {
                    ssl_mode = Some(v.to_ascii_lowercase().replace('-', "_"))
                }
                "require_ssl" if parse_bool(k, v)? => {
                    ssl_mode.get_or_insert_with(|| "required".into());
                }
                "verify_ca" if parse_bool(k, v)? => {
                    ssl_mode = Some("verify_ca".into());
                }
                "verify_identity" if parse_bool(k, v)? => {
                    ssl_mode = Some("verify_identity".into());
                }
                "ssl-ca" | "root_cert_path" => root_cert = Some(v.clone()),
                "compress" => {
                    compress = match v.trim().to_ascii_lowercase().as_str() {
                        "true" | "on" | "yes" => Some(mysql::Compression::default()),
                        "false" | "off" | "no" => None,
                        "fast" => Some(mysql::Compression::fast()),
                        "best" => Some(mysql::Compression::best()),
                        lvl => match lvl.parse::<u32>() {
                            Ok(n) if n <= 9 => Some(mysql::Compression::new(n)),
                            _ => {
                                return Err(Error::config(format!(
                                    "option 'compress' must be true/false/fast/best/0..9, got '{v}'"
                                )))
                            }
                        },
                    }
                }
                "tcp_nodelay" => tcp_nodelay = parse_bool(k, v)?,
                "read_timeout" => read_timeout = parse_optional_seconds(k, v)?,
                "write_timeout" => write_timeout = parse_optional_seconds(k, v)?,
                _ => {}
            }
        }

        let port: u16 = match port {
            None => 3306,
            Some(p) => p.trim().parse().map_err(|_| {
                Error::config(format!(
                    "option 'port' must be a TCP port number, got '{p}'"
                ))
            })?,
        };
        let ssl_opts = match ssl_mode.as_deref() {
            None | Some("disabled") | Some("disable") => None,
            Some("required") | Some("require") => Some(
                SslOpts::default()
                    .with_danger_accept_invalid_certs(true)
                    .with_danger_skip_domain_validation(true),
            ),
            Some("verify_ca") => Some(SslOpts::default().with_danger_skip_domain_validation(true)),
            Some("verify_identity") | Some("verify_full") => Some(SslOpts::default()),
            Some(other) => {
                return Err(Error::config(format!(
                    "option 'ssl-mode' must be disabled, required, verify_ca or verify_identity, got '{other}' \
                     (the mysql crate has no 'preferred' mode)"
                )))
            }
        };
        let ssl_opts =
            match (ssl_opts, root_cert) {
                (Some(s), Some(path)) => {
                    Some(s.with_root_cert_path(Some(std::path::PathBuf::from(path))))
                }
                (Some(s), None) => Some(s),
                (None, Some(_)) => return Err(Error::config(
                    "option 'ssl-ca' needs TLS: add ssl-mode=verify_ca or ssl-mode=verify_identity",
                )),
                (None, None) => None,
            };

        let prefer_socket = prefer_socket.unwrap_or(socket.is_some());
        let builder = OptsBuilder::new()
            .user(user)
            .pass(password.clone())
            .ip_or_hostname(Some(host.unwrap_or_else(|| "localhost".to_string())))
            .tcp_port(port)
            .db_name(db)
            .socket(socket)
            .prefer_socket(prefer_socket)
            .ssl_opts(ssl_opts)
            .compress(compress)
            .tcp_nodelay(tcp_nodelay)
            .read_timeout(read_timeout)
            .write_timeout(write_timeout)
            .tcp_connect_timeout(connect.connect_timeout)
            .stmt_cache_size(connect.statement_cache);
        Ok(MysqlBackend {
            opts: Opts::from(builder),
            password,
            connect: connect.clone(),
        })
    }

    fn connect_error(&self, e: &mysql::Error) -> Error {
        Error::connect(scrub(
            &format!("could not connect to MySQL/MariaDB: {e}"),
            self.password.as_deref(),
        ))
    }

    fn open(&self) -> Result<Conn> {
        let opts = self.opts.clone();
        let Some(limit) = self.connect.connect_timeout else {
            return Conn::new(opts).map_err(|e| self.connect_error(&e));
        };
        // Bound TCP connect, TLS and authentication together: the crate only
        // bounds the TCP connect, and read timeouts set for the handshake
        // would stay on the connection.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("peepool-mysql-connect".into())
            .spawn(move || {
                let _ = tx.send(Conn::new(opts));
            })
            .map_err(|e| Error::connect(format!("could not start the connect thread: {e}")))?;
        match rx.recv_timeout(limit) {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(self.connect_error(&e)),
            Err(_) => Err(Error::connect(format!(
                "could not connect to MySQL/MariaDB: timed out after {:.3} s (connect_timeout)",
                limit.as_secs_f64()
            ))),
        }
    }
}

impl Backend for MysqlBackend {
    type Conn = MysqlConn;

    fn connect(&self) -> Result<MysqlConn> {
        let conn = self.open()?;
        let mut c = MysqlConn {
            conn: Some(conn),
            lost: false,
            in_tx: false,
            autocommit_off: false,
            statement_cache: self.connect.statement_cache,
            password: self.password.clone(),
            probe_timeout: self.connect.connect_timeout,
        };
        if let Some(init) = &self.connect.init_sql {
            if let Err(e) = c.run_text(init, None) {
                return Err(Error::connect(format!("init_sql failed: {}", e.message)));
            }
        }
        Ok(c)
    }

    fn name(&self) -> &'static str {
        "mysql"
    }
}

/// Whether the error means the link to the server is gone.
fn is_lost(e: &mysql::Error) -> bool {
    match e {
        mysql::Error::IoError(_) | mysql::Error::CodecError(_) => true,
        mysql::Error::MySqlError(m) => {
            // 2006/2013: client-side "gone away"/"lost connection"; 1927
            // connection killed; 1053 server shutdown; 1152/1184 aborted.
            matches!(m.code, 2006 | 2013 | 1927 | 1053 | 1152 | 1184) || m.state.starts_with("08")
        }
        #[allow(unreachable_patterns)]
        mysql::Error::TlsError(_) => true,
        mysql::Error::DriverError(d) => matches!(
            d,
            mysql::DriverError::PacketOutOfSync
                | mysql::DriverError::UnexpectedPacket
                | mysql::DriverError::ConnectTimeout
                | mysql::DriverError::Timeout
                | mysql::DriverError::CouldNotConnect(_)
        ),
        _ => false,
    }
}

/// What a statement's leading keywords say about the transaction.
enum TxEffect {
    Begin,
    End,
    /// `SET ... autocommit ...`: it may now be off.
    Autocommit,
    None,
}

/// By the first two words (ASCII letters, digits and `_`, any case) and,
/// for COMMIT, ROLLBACK and SET, what the text mentions; nothing allocated.
fn tx_effect(sql: &str) -> TxEffect {
    let s = sql.trim_start().trim_start_matches('(');
    let mut words = s
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .filter(|w| !w.is_empty());
    let w1 = words.next().unwrap_or("");
    let w2 = words.next().unwrap_or("");
    let is = |w: &str, k: &str| w.eq_ignore_ascii_case(k);
    let mentions = |k: &str| contains_ignore_ascii_case(sql, k);
    let end = is(w1, "COMMIT") || is(w1, "ROLLBACK");
    if is(w1, "BEGIN")
        || (is(w1, "START") && is(w2, "TRANSACTION"))
        || is(w1, "XA")
        || is(w1, "LOCK")
        || (end && mentions("chain"))
    {
        TxEffect::Begin
    } else if is(w1, "ROLLBACK") && (is(w2, "TO") || mentions("savepoint")) {
        TxEffect::None
    } else if end {
        TxEffect::End
    } else if is(w1, "SET") && mentions("autocommit") {
        TxEffect::Autocommit
    } else {
        TxEffect::None
    }
}

/// Whether the text holds a `;` before its last non-blank character (a
/// multi-statement text whose effects cannot be told by its first word).
fn is_multi(sql: &str) -> bool {
    let t = sql.trim_end().trim_end_matches(';');
    t.contains(';')
}

impl MysqlConn {
    fn conn(&mut self) -> Result<&mut Conn> {
        if self.lost {
            return Err(
                Error::database("the connection to the MySQL server was lost")
                    .with_sqlstate("08S01"),
            );
        }
        self.conn
            .as_mut()
            .ok_or_else(|| Error::database("the connection is closed").with_sqlstate("08S01"))
    }

    fn map_err(&mut self, e: mysql::Error) -> Error {
        let pw = self.password.as_deref();
        if is_lost(&e) {
            self.lost = true;
            return Error::database(scrub(
                &format!("lost connection to the MySQL server: {e}"),
                pw,
            ))
            .with_sqlstate("08S01");
        }
        match e {
            mysql::Error::MySqlError(m) => {
                let msg = scrub(
                    &format!("ERROR {} ({}): {}", m.code, m.state, m.message),
                    pw,
                );
                Error::database(msg).with_sqlstate(m.state)
            }
            mysql::Error::DriverError(mysql::DriverError::MismatchedStmtParams(want, got)) => {
                Error::invalid_argument(format!(
                    "the statement has {want} placeholders but {got} parameters were given"
                ))
            }
            other => Error::database(scrub(&other.to_string(), pw)),
        }
    }

    /// Update the transaction tracking after a statement ran (or failed).
    fn track(&mut self, sql: &str, ok: bool) {
        if is_multi(sql) {
            // Unknown effect: assume a transaction may be open.
            self.in_tx = true;
            if contains_ignore_ascii_case(sql, "autocommit") {
                self.autocommit_off = true;
            }
            return;
        }
        match tx_effect(sql) {
            TxEffect::Begin if ok => self.in_tx = true,
            TxEffect::End if ok => self.in_tx = false,
            TxEffect::Autocommit => {
                // Conservative: once touched, autocommit may be off for good.
                self.autocommit_off = true;
                self.in_tx = true;
            }
            _ => {
                if ok && self.autocommit_off {
                    self.in_tx = true;
                }
            }
        }
    }

    /// Run a statement over the text protocol; collect its last result set
    /// when `builder` is wanted.
    fn run_text(
        &mut self,
        sql: &str,
        want_rows: Option<()>,
    ) -> Result<(u64, Option<Box<ResultSet>>)> {
        let conn = self.conn()?;
        let result = (|| -> std::result::Result<(u64, Option<Box<ResultSet>>), mysql::Error> {
            let mut qr = conn.query_iter(sql)?;
            collect(&mut qr, want_rows.is_some())
        })();
        self.track(sql, result.is_ok());
        result.map_err(|e| self.map_err(e))
    }

    /// Run a statement with parameters over the binary protocol.
    fn run_binary(
        &mut self,
        sql: &str,
        params: &[Value<'_>],
        want_rows: bool,
    ) -> Result<(u64, Option<Box<ResultSet>>)> {
        let values: Vec<mysql::Value> = params
            .iter()
            .map(|p| match *p {
                Value::Null => mysql::Value::NULL,
                Value::Int(i) => mysql::Value::Int(i),
                Value::Double(d) => mysql::Value::Double(d),
                Value::Text(t) => mysql::Value::Bytes(t.as_bytes().to_vec()),
                Value::Blob(b) => mysql::Value::Bytes(b.to_vec()),
            })
            .collect();
        let cache = self.statement_cache;
        let conn = self.conn()?;
        let result = (|| -> std::result::Result<(u64, Option<Box<ResultSet>>), mysql::Error> {
            let stmt = conn.prep(sql)?;
            let run = (|| {
                let mut qr = conn.exec_iter(&stmt, mysql::Params::Positional(values))?;
                collect(&mut qr, want_rows)
            })();
            if cache == 0 {
                // No statement kept: close it on the server now.
                let closed = conn.close(stmt);
                let r = run?;
                closed?;
                return Ok(r);
            }
            run
        })();
        self.track(sql, result.is_ok());
        result.map_err(|e| self.map_err(e))
    }

    fn run(
        &mut self,
        sql: &str,
        params: &[Value<'_>],
        want_rows: bool,
    ) -> Result<(u64, Option<Box<ResultSet>>)> {
        if params.is_empty() {
            self.run_text(sql, if want_rows { Some(()) } else { None })
        } else {
            self.run_binary(sql, params, want_rows)
        }
    }

    fn simple(&mut self, sql: &str) -> Result<()> {
        let r = {
            let conn = self.conn()?;
            conn.query_drop(sql)
        };
        match r {
            Ok(()) => {
                self.track(sql, true);
                Ok(())
            }
            Err(e) => Err(self.map_err(e)),
        }
    }
}

impl Connection for MysqlConn {
    fn is_closed(&mut self) -> bool {
        self.lost || self.conn.is_none()
    }

    fn ping(&mut self) -> Result<()> {
        let r = match self.probe_timeout {
            None => self.conn()?.ping(),
            Some(limit) => {
                // The crate has no per-call read timeout: ping on a helper
                // thread, which keeps (and later drops) the connection when
                // no answer comes in time.
                self.conn()?;
                let mut conn = self.conn.take().expect("checked above");
                let (tx, rx) = std::sync::mpsc::channel();
                let spawned = std::thread::Builder::new()
                    .name("peepool-mysql-ping".into())
                    .spawn(move || {
                        let r = conn.ping();
                        let _ = tx.send((conn, r));
                    });
                if let Err(e) = spawned {
                    self.lost = true;
                    return Err(
                        Error::database(format!("could not start the ping thread: {e}"))
                            .with_sqlstate("08S01"),
                    );
                }
                match rx.recv_timeout(limit) {
                    Ok((conn, r)) => {
                        self.conn = Some(conn);
                        r
                    }
                    Err(_) => {
                        self.lost = true;
                        return Err(Error::database(format!(
                            "lost connection to the MySQL server: no answer to a ping \
                             within {:.3} s (connect_timeout)",
                            limit.as_secs_f64()
                        ))
                        .with_sqlstate("08S01"));
                    }
                }
            }
        };
        r.map_err(|e| {
            // A failed ping means the link is unusable, whatever the cause.
            let mut err = self.map_err(e);
            self.lost = true;
            if err.sqlstate.is_none() {
                err.sqlstate = Some("08S01".into());
            }
            err
        })
    }

    fn in_transaction(&mut self) -> bool {
        self.in_tx
    }

    fn execute(&mut self, sql: &str, params: &[Value<'_>]) -> Result<u64> {
        Ok(self.run(sql, params, false)?.0)
    }

    fn query(&mut self, sql: &str, params: &[Value<'_>]) -> Result<Box<ResultSet>> {
        let (affected, set) = self.run(sql, params, true)?;
        Ok(set.unwrap_or_else(|| {
            let mut b = ResultBuilder::new(Vec::new());
            b.set_rows_affected(affected);
            b.finish()
        }))
    }

    fn begin(&mut self) -> Result<()> {
        self.simple("START TRANSACTION")
    }

    fn commit(&mut self) -> Result<()> {
        self.simple("COMMIT")
    }

    fn rollback(&mut self) -> Result<()> {
        self.simple("ROLLBACK")
    }

    fn close(mut self) {
        // Dropping the Conn sends COM_QUIT (and closes cached statements);
        // a lost link has nobody to tell.
        drop(self.conn.take());
    }
}

// ---------------------------------------------------------------------------
// Cells: the text `mysql_fetch_row` gives, and the native kind.
// ---------------------------------------------------------------------------

/// Read every result set of a statement (text or binary protocol): the
/// rows changed in all, and the last set that has columns, when `want_rows`.
fn collect<P: mysql::prelude::Protocol>(
    qr: &mut mysql::QueryResult<'_, '_, '_, P>,
    want_rows: bool,
) -> std::result::Result<(u64, Option<Box<ResultSet>>), mysql::Error> {
    let mut affected = 0u64;
    let mut out = None;
    while let Some(set) = qr.iter() {
        let set_affected = set.affected_rows();
        let mut builder = match set.columns().as_ref() {
            cols if want_rows && !cols.is_empty() => Some(builder_for(cols)),
            _ => None,
        };
        for row in set {
            let row = row?;
            if let Some(b) = builder.as_mut() {
                // The set's columns, shared by its rows: nothing copied.
                let cols = row.columns_ref();
                for i in 0..row.len() {
                    match (cols.get(i), row.as_ref(i)) {
                        (Some(col), Some(v)) => push_cell(b, col, v),
                        _ => b.push_null(),
                    }
                }
                b.end_row();
            }
        }
        affected = affected.saturating_add(set_affected);
        if let Some(mut b) = builder {
            b.set_rows_affected(set_affected);
            out = Some(b.finish());
        }
    }
    Ok((affected, out))
}

/// A builder holding the columns' names (invalid UTF-8 replaced, as
/// `Column::name_str` does), copied straight into the result when they are
/// valid UTF-8, as they nearly always are.
fn builder_for(cols: &[Column]) -> ResultBuilder {
    if cols
        .iter()
        .all(|c| std::str::from_utf8(c.name_ref()).is_ok())
    {
        ResultBuilder::with_names(
            cols.iter()
                .map(|c| std::str::from_utf8(c.name_ref()).unwrap_or_default()),
        )
    } else {
        ResultBuilder::new(cols.iter().map(|c| c.name_str().into_owned()).collect())
    }
}

fn is_int_type(t: ColumnType) -> bool {
    matches!(
        t,
        ColumnType::MYSQL_TYPE_TINY
            | ColumnType::MYSQL_TYPE_SHORT
            | ColumnType::MYSQL_TYPE_INT24
            | ColumnType::MYSQL_TYPE_LONG
            | ColumnType::MYSQL_TYPE_LONGLONG
            | ColumnType::MYSQL_TYPE_YEAR
    )
}

/// Push one cell: `v` is text bytes (text protocol) or a binary value.
fn push_cell(b: &mut ResultBuilder, col: &Column, v: &mysql::Value) {
    let t = col.column_type();
    let owned: Vec<u8>;
    let text: &[u8] = match v {
        mysql::Value::NULL => {
            b.push_null();
            return;
        }
        mysql::Value::Bytes(bytes) => bytes,
        // What the text path below makes of `i.to_string()`, without it.
        mysql::Value::Int(i)
            if is_int_type(t)
                && t != ColumnType::MYSQL_TYPE_YEAR
                && !col.flags().contains(ColumnFlags::ZEROFILL_FLAG) =>
        {
            b.push_int(*i);
            return;
        }
        other => {
            owned = binary_text(col, other.clone()).into_bytes();
            &owned
        }
    };
    match t {
        _ if is_int_type(t) => {
            // An integer in its canonical form (no sign, zeros or spaces
            // that its decimal text would not have); anything else is kept
            // as exact text.
            let canonical = std::str::from_utf8(text)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
                .filter(|&i| int_text(i, &mut [0; 20]) == text);
            match canonical {
                Some(i) => b.push_int(i),
                None => b.push_numeric(&String::from_utf8_lossy(text)),
            }
        }
        ColumnType::MYSQL_TYPE_FLOAT | ColumnType::MYSQL_TYPE_DOUBLE => {
            let s = String::from_utf8_lossy(text);
            match s.parse::<f64>() {
                Ok(d) => b.push_double(d, &s),
                Err(_) => b.push_other(text),
            }
        }
        ColumnType::MYSQL_TYPE_DECIMAL | ColumnType::MYSQL_TYPE_NEWDECIMAL => {
            b.push_numeric(&String::from_utf8_lossy(text))
        }
        ColumnType::MYSQL_TYPE_BIT | ColumnType::MYSQL_TYPE_GEOMETRY => b.push_blob(text, None),
        ColumnType::MYSQL_TYPE_NULL => b.push_null(),
        ColumnType::MYSQL_TYPE_DATE
        | ColumnType::MYSQL_TYPE_NEWDATE
        | ColumnType::MYSQL_TYPE_TIME
        | ColumnType::MYSQL_TYPE_TIME2
        | ColumnType::MYSQL_TYPE_DATETIME
        | ColumnType::MYSQL_TYPE_DATETIME2
        | ColumnType::MYSQL_TYPE_TIMESTAMP
        | ColumnType::MYSQL_TYPE_TIMESTAMP2 => b.push_other(text),
        ColumnType::MYSQL_TYPE_JSON => b.push_text(text),
        _ => {
            let binary = col.character_set() == BINARY_CHARSET
                && !col
                    .flags()
                    .intersects(ColumnFlags::ENUM_FLAG | ColumnFlags::SET_FLAG);
            if binary {
                b.push_blob(text, None)
            } else if std::str::from_utf8(text).is_ok() {
                b.push_text(text)
            } else {
                b.push_other(text)
            }
        }
    }
}

fn zerofill(col: &Column, s: String) -> String {
    if col.flags().contains(ColumnFlags::ZEROFILL_FLAG) {
        let width = col.column_length() as usize;
        if s.len() < width {
            return format!("{}{s}", "0".repeat(width - s.len()));
        }
    }
    s
}

fn frac(decimals: u8, micros: u32) -> String {
    let d = decimals.min(6) as usize;
    if d == 0 {
        return String::new();
    }
    let digits = format!("{micros:06}");
    format!(".{}", &digits[..d])
}

/// The text the server sends for a value the binary protocol delivered.
fn binary_text(col: &Column, v: mysql::Value) -> String {
    let t = col.column_type();
    let dec = col.decimals();
    match v {
        mysql::Value::NULL => String::new(),
        mysql::Value::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
        mysql::Value::Int(i) => {
            if t == ColumnType::MYSQL_TYPE_YEAR {
                format!("{i:04}")
            } else {
                zerofill(col, i.to_string())
            }
        }
        mysql::Value::UInt(u) => {
            if t == ColumnType::MYSQL_TYPE_YEAR {
                format!("{u:04}")
            } else {
                zerofill(col, u.to_string())
            }
        }
        mysql::Value::Float(f) => {
            let s = if dec < NOT_FIXED_DEC {
                format!("{:.*}", dec as usize, f as f64)
            } else {
                gcvt(f as f64, true)
            };
            zerofill(col, s)
        }
        mysql::Value::Double(d) => {
            let s = if dec < NOT_FIXED_DEC {
                format!("{:.*}", dec as usize, d)
            } else {
                gcvt(d, t == ColumnType::MYSQL_TYPE_FLOAT)
            };
            zerofill(col, s)
        }
        mysql::Value::Date(y, mo, d, h, mi, s, us) => match t {
            ColumnType::MYSQL_TYPE_DATE | ColumnType::MYSQL_TYPE_NEWDATE => {
                format!("{y:04}-{mo:02}-{d:02}")
            }
            _ => format!(
                "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}{}",
                frac(dec, us)
            ),
        },
        mysql::Value::Time(neg, days, h, mi, s, us) => {
            let hours = days as u64 * 24 + h as u64;
            let sign = if neg && (hours != 0 || mi != 0 || s != 0 || us != 0) {
                "-"
            } else {
                ""
            };
            format!("{sign}{hours:02}:{mi:02}:{s:02}{}", frac(dec, us))
        }
    }
}

/// MariaDB's `my_gcvt` (strings/dtoa.c) with the field width the server
/// uses for FLOAT and DOUBLE columns (wide enough never to truncate):
/// the shortest round-trip digits (6 significant digits at most for FLOAT),
/// in positional form unless the exponent is below -14 or above 15 with no
/// fraction, then as `1.5e20` / `1e-300`.
pub fn gcvt(x: f64, is_float: bool) -> String {
    if !x.is_finite() {
        return "0".to_string();
    }
    let neg = x.is_sign_negative();
    let a = x.abs();
    if a == 0.0 {
        return if neg { "-0".into() } else { "0".into() };
    }
    // digits and decimal-point position (value = 0.DIGITS * 10^decpt)
    let sci = if is_float {
        format!("{:.5e}", a)
    } else {
        format!("{:e}", a)
    };
    let (mant, exp) = match sci.split_once('e') {
        Some(p) => p,
        None => return sci,
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    let len = digits.len() as i32;
    let decpt = exp + 1;
    const DBL_DIG: i32 = 15;
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if decpt > -DBL_DIG && (decpt <= DBL_DIG || len > decpt) {
        // 'f' format
        if decpt <= 0 {
            out.push_str("0.");
            for _ in 0..(-decpt) {
                out.push('0');
            }
            out.push_str(&digits);
        } else if decpt < len {
            out.push_str(&digits[..decpt as usize]);
            out.push('.');
            out.push_str(&digits[decpt as usize..]);
        } else {
            out.push_str(&digits);
            for _ in 0..(decpt - len) {
                out.push('0');
            }
        }
    } else {
        out.push_str(&digits[..1]);
        if len > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push_str(&(decpt - 1).to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcvt_matches_server_samples() {
        assert_eq!(gcvt(1e14, false), "100000000000000");
        assert_eq!(gcvt(1e15, false), "1e15");
        assert_eq!(gcvt(123456789012345678.0, false), "1.2345678901234568e17");
        assert_eq!(gcvt(0.00001, false), "0.00001");
        assert_eq!(gcvt(0.1, false), "0.1");
        assert_eq!(gcvt(1e300, false), "1e300");
        assert_eq!(gcvt(-1.25e-300, false), "-1.25e-300");
        assert_eq!(gcvt(1.1f32 as f64, true), "1.1");
        assert_eq!(gcvt(123456789f32 as f64, true), "123457000");
        assert_eq!(gcvt(16777217f32 as f64, true), "16777200");
        assert_eq!(gcvt(1e30f32 as f64, true), "1e30");
    }

    #[test]
    fn url_is_parsed_and_unknown_options_refused() {
        let u = ParsedUrl::parse("mysql://root:pw@127.0.0.1:3307/test?ssl-mode=disabled").unwrap();
        let b = MysqlBackend::new(&u, &u.connect).unwrap();
        assert_eq!(b.opts.get_tcp_port(), 3307);
        assert_eq!(b.opts.get_db_name(), Some("test"));
        assert!(!b.opts.get_prefer_socket());
        let u = ParsedUrl::parse("mysql://root@h/test?bogus=1").unwrap();
        let e = MysqlBackend::new(&u, &u.connect).err().unwrap();
        assert!(e.message.contains("bogus"));
    }

    #[test]
    fn tx_keywords() {
        assert!(matches!(tx_effect("  begin"), TxEffect::Begin));
        assert!(matches!(
            tx_effect("START TRANSACTION READ ONLY"),
            TxEffect::Begin
        ));
        assert!(matches!(tx_effect("commit"), TxEffect::End));
        assert!(matches!(
            tx_effect("ROLLBACK TO SAVEPOINT a"),
            TxEffect::None
        ));
        assert!(matches!(
            tx_effect("set autocommit=0"),
            TxEffect::Autocommit
        ));
        assert!(is_multi("BEGIN; SELECT 1"));
        assert!(!is_multi("SELECT 1;"));
    }
}
