//! The database side of the pool: a [`Backend`] opens connections, a
//! [`Connection`] runs statements. One file per database; [`AnyBackend`]
//! chooses among them by the URL's scheme.

use crate::config::{ConnectOptions, ParsedUrl};
use crate::error::{Error, Result};
use crate::value::{ResultSet, Value};

pub mod mysql;
pub mod postgres;
pub mod sqlite;

/// Opens connections to one database. Shared by every thread of a pool.
pub trait Backend: Send + Sync + 'static {
    type Conn: Connection;

    /// Open a new connection, run `init_sql`, bounded by `connect_timeout`.
    /// A failure is `POOL_ERR_CONNECT` with the driver's reason (never a
    /// password). Called without the pool's lock held.
    fn connect(&self) -> Result<Self::Conn>;

    /// A short name for logs: `sqlite`, `postgres`, `mysql`.
    fn name(&self) -> &'static str;
}

/// One open connection. Used by one thread at a time (the pool guarantees
/// it), never while the pool's lock is held (except `is_closed` and
/// `in_transaction` when `checks_are_local` says they cost no I/O).
pub trait Connection: Send + 'static {
    /// A check with no I/O: whether the connection is known to be closed or
    /// broken (closed socket, unknown transaction state, a lost link seen by
    /// an earlier call).
    fn is_closed(&mut self) -> bool;

    /// A liveness probe with a round trip (PostgreSQL `SELECT 1`, MySQL
    /// ping; SQLite touches the handle).
    fn ping(&mut self) -> Result<()>;

    /// Whether a transaction is (or may be) open, so release must roll back.
    /// Without I/O where the backend can tell.
    fn in_transaction(&mut self) -> bool;

    /// Whether `is_closed` and `in_transaction` are plain reads of memory
    /// the connection owns (no I/O, no lock, nothing that can block) whose
    /// answers change only through the connection's own calls. The pool
    /// then runs them under its lock, and asks them at the end of each call:
    /// a connection that answered "open, no transaction" is given back and
    /// checked out again without the lock and without asking again until
    /// its next call. Default: no.
    fn checks_are_local(&self) -> bool {
        false
    }

    /// Whether a release would find nothing to do: the checks are local,
    /// the connection is not broken and no transaction is open. The pool
    /// asks it at the end of every call (one dispatch rather than three).
    fn is_clean(&mut self) -> bool {
        self.checks_are_local() && !self.is_closed() && !self.in_transaction()
    }

    /// Run a statement; the number of rows it changed.
    fn execute(&mut self, sql: &str, params: &[Value<'_>]) -> Result<u64>;

    /// Run a statement and materialise its rows, in the box the C ABI
    /// hands to the caller as it is (built by [`crate::ResultBuilder`]).
    fn query(&mut self, sql: &str, params: &[Value<'_>]) -> Result<Box<ResultSet>>;

    fn begin(&mut self) -> Result<()>;
    fn commit(&mut self) -> Result<()>;
    fn rollback(&mut self) -> Result<()>;

    /// Close, telling the server. Called without the pool's lock.
    fn close(self)
    where
        Self: Sized,
    {
        drop(self)
    }
}

/// Any of the three backends, chosen by the URL's scheme.
pub enum AnyBackend {
    Sqlite(sqlite::SqliteBackend),
    Postgres(postgres::PostgresBackend),
    Mysql(mysql::MysqlBackend),
}

/// A connection of any backend. The pool keeps each one boxed in its slot,
/// so the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub enum AnyConn {
    Sqlite(sqlite::SqliteConn),
    Postgres(postgres::PostgresConn),
    Mysql(mysql::MysqlConn),
}

impl AnyBackend {
    /// Build the backend a parsed URL names; pool options are already out
    /// of `url.params`, and every remaining parameter must be the driver's.
    pub fn from_url(url: &ParsedUrl) -> Result<AnyBackend> {
        let connect: &ConnectOptions = &url.connect;
        match url.scheme.as_str() {
            "sqlite" | "sqlite3" => Ok(AnyBackend::Sqlite(sqlite::SqliteBackend::new(url, connect)?)),
            "postgres" | "postgresql" => Ok(AnyBackend::Postgres(postgres::PostgresBackend::new(url, connect)?)),
            "mysql" | "mariadb" => Ok(AnyBackend::Mysql(mysql::MysqlBackend::new(url, connect)?)),
            other => Err(Error::config(format!(
                "unsupported URL scheme '{other}:' (expected sqlite:, postgres://, postgresql://, mysql:// or mariadb://)"
            ))),
        }
    }
}

macro_rules! each_conn {
    ($self:expr, $c:ident => $body:expr) => {
        match $self {
            AnyConn::Sqlite($c) => $body,
            AnyConn::Postgres($c) => $body,
            AnyConn::Mysql($c) => $body,
        }
    };
}

impl Backend for AnyBackend {
    type Conn = AnyConn;

    fn connect(&self) -> Result<AnyConn> {
        match self {
            AnyBackend::Sqlite(b) => b.connect().map(AnyConn::Sqlite),
            AnyBackend::Postgres(b) => b.connect().map(AnyConn::Postgres),
            AnyBackend::Mysql(b) => b.connect().map(AnyConn::Mysql),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            AnyBackend::Sqlite(b) => b.name(),
            AnyBackend::Postgres(b) => b.name(),
            AnyBackend::Mysql(b) => b.name(),
        }
    }
}

impl Connection for AnyConn {
    fn is_closed(&mut self) -> bool {
        each_conn!(self, c => c.is_closed())
    }
    fn ping(&mut self) -> Result<()> {
        each_conn!(self, c => c.ping())
    }
    fn in_transaction(&mut self) -> bool {
        each_conn!(self, c => c.in_transaction())
    }
    fn checks_are_local(&self) -> bool {
        each_conn!(self, c => c.checks_are_local())
    }
    fn is_clean(&mut self) -> bool {
        each_conn!(self, c => c.is_clean())
    }
    fn execute(&mut self, sql: &str, params: &[Value<'_>]) -> Result<u64> {
        each_conn!(self, c => c.execute(sql, params))
    }
    fn query(&mut self, sql: &str, params: &[Value<'_>]) -> Result<Box<ResultSet>> {
        each_conn!(self, c => c.query(sql, params))
    }
    fn begin(&mut self) -> Result<()> {
        each_conn!(self, c => c.begin())
    }
    fn commit(&mut self) -> Result<()> {
        each_conn!(self, c => c.commit())
    }
    fn rollback(&mut self) -> Result<()> {
        each_conn!(self, c => c.rollback())
    }
    fn close(self) {
        each_conn!(self, c => c.close())
    }
}

/// Whether `hay` contains `needle` (lower-case ASCII), ignoring ASCII case:
/// `hay.to_ascii_lowercase().contains(needle)` without the copy.
pub(crate) fn contains_ignore_ascii_case(hay: &str, needle: &str) -> bool {
    hay.as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// The decimal text of `v` (as `v.to_string()`), written into `buf`.
pub(crate) fn int_text(v: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    let mut n = v.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_print_as_decimal_text() {
        for v in [0, 7, -7, 10, -10, i64::MAX, i64::MIN, 1_000_000] {
            assert_eq!(int_text(v, &mut [0; 20]), v.to_string().as_bytes());
        }
    }

    #[test]
    fn substring_search_ignores_ascii_case() {
        assert!(contains_ignore_ascii_case(
            "SELECT SET_CONFIG(1)",
            "set_config"
        ));
        assert!(contains_ignore_ascii_case("x timezone", "timezone"));
        assert!(!contains_ignore_ascii_case("time zone", "timezone"));
        assert!(!contains_ignore_ascii_case("tz", "timezone"));
        assert!(!contains_ignore_ascii_case("TİMEZONE", "timezone"));
    }
}
