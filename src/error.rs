//! Status codes and the error type shared by the pool core, the backends and
//! the C ABI.

use std::fmt;

/// The result of every fallible call. Explicit values, append-only: a value
/// once published never changes meaning.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum pool_status_t {
    /// Success.
    POOL_OK = 0,
    /// A NULL pointer, invalid UTF-8, or a row/column out of range.
    POOL_ERR_INVALID_ARGUMENT = 1,
    /// A malformed URL, an unknown option or a bad option value.
    POOL_ERR_CONFIG = 2,
    /// A new connection could not be opened (the driver's reason, no password).
    POOL_ERR_CONNECT = 3,
    /// No connection became free within `timeout`.
    POOL_ERR_EXHAUSTED = 4,
    /// The connection handle is stale, forged, released or from another pool.
    POOL_ERR_INVALID_HANDLE = 5,
    /// Another thread is using the connection right now.
    POOL_ERR_BUSY = 6,
    /// The server or SQLite rejected a statement; see `pool_last_sqlstate()`.
    POOL_ERR_DATABASE = 7,
    /// A typed getter cannot convert the value (NULL included).
    POOL_ERR_CONVERSION = 8,
    /// The pool is being freed.
    POOL_ERR_CLOSED = 9,
    /// A bug in peepool (a caught panic); the process is still safe.
    POOL_ERR_INTERNAL = 10,
}

/// The Rust name of the status codes.
pub type Status = pool_status_t;

impl pool_status_t {
    /// Every status, in value order.
    pub const ALL: [pool_status_t; 11] = [
        Status::POOL_OK,
        Status::POOL_ERR_INVALID_ARGUMENT,
        Status::POOL_ERR_CONFIG,
        Status::POOL_ERR_CONNECT,
        Status::POOL_ERR_EXHAUSTED,
        Status::POOL_ERR_INVALID_HANDLE,
        Status::POOL_ERR_BUSY,
        Status::POOL_ERR_DATABASE,
        Status::POOL_ERR_CONVERSION,
        Status::POOL_ERR_CLOSED,
        Status::POOL_ERR_INTERNAL,
    ];

    /// The status with this integer value, if there is one (never a transmute).
    pub fn from_code(code: i64) -> Option<Status> {
        Self::ALL.iter().copied().find(|s| *s as i64 == code)
    }

    /// A short static description, as `sqlite3_errstr` gives.
    pub fn describe(self) -> &'static str {
        match self {
            Status::POOL_OK => "ok",
            Status::POOL_ERR_INVALID_ARGUMENT => "invalid argument",
            Status::POOL_ERR_CONFIG => "invalid configuration",
            Status::POOL_ERR_CONNECT => "could not connect",
            Status::POOL_ERR_EXHAUSTED => "pool exhausted",
            Status::POOL_ERR_INVALID_HANDLE => "invalid connection handle",
            Status::POOL_ERR_BUSY => "connection busy in another thread",
            Status::POOL_ERR_DATABASE => "database error",
            Status::POOL_ERR_CONVERSION => "value conversion failed",
            Status::POOL_ERR_CLOSED => "pool closed",
            Status::POOL_ERR_INTERNAL => "internal error",
        }
    }
}

/// An error: a status, a message for people, and the SQLSTATE of a database
/// error where the backend has one (SQLite gives its extended result code).
///
/// Boxed, so that `Result<()>` is one word and `Result<T>` for a small `T`
/// two: every call through the C ABI returns one, and the hot paths (a
/// checkout, a release, a query) only ever return `Ok`, which then costs no
/// copy of a 56-byte error slot. The fields are reached through `Deref`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(Box<ErrorInner>);

/// The parts of an [`Error`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorInner {
    pub status: Status,
    pub message: String,
    pub sqlstate: Option<String>,
}

impl std::ops::Deref for Error {
    type Target = ErrorInner;

    fn deref(&self) -> &ErrorInner {
        &self.0
    }
}

impl std::ops::DerefMut for Error {
    fn deref_mut(&mut self) -> &mut ErrorInner {
        &mut self.0
    }
}

impl Error {
    #[cold]
    pub fn new(status: Status, message: impl Into<String>) -> Error {
        Error(Box::new(ErrorInner {
            status,
            message: message.into(),
            sqlstate: None,
        }))
    }

    pub fn with_sqlstate(mut self, sqlstate: impl Into<String>) -> Error {
        self.sqlstate = Some(sqlstate.into());
        self
    }

    pub fn invalid_argument(message: impl Into<String>) -> Error {
        Error::new(Status::POOL_ERR_INVALID_ARGUMENT, message)
    }

    pub fn config(message: impl Into<String>) -> Error {
        Error::new(Status::POOL_ERR_CONFIG, message)
    }

    pub fn connect(message: impl Into<String>) -> Error {
        Error::new(Status::POOL_ERR_CONNECT, message)
    }

    pub fn database(message: impl Into<String>) -> Error {
        Error::new(Status::POOL_ERR_DATABASE, message)
    }

    pub fn conversion(message: impl Into<String>) -> Error {
        Error::new(Status::POOL_ERR_CONVERSION, message)
    }

    pub fn invalid_handle() -> Error {
        Error::new(
            Status::POOL_ERR_INVALID_HANDLE,
            "invalid connection handle: released, closed, revoked, from another pool or never issued",
        )
    }

    pub fn busy() -> Error {
        Error::new(
            Status::POOL_ERR_BUSY,
            "connection is in use by a call in another thread",
        )
    }

    pub fn closed() -> Error {
        Error::new(Status::POOL_ERR_CLOSED, "the pool is closed")
    }

    pub fn internal(message: impl Into<String>) -> Error {
        Error::new(Status::POOL_ERR_INTERNAL, message)
    }

    /// Whether the error says the link to the server is gone, so the
    /// connection must never be reused: SQLSTATE class 08 (connection
    /// exception) or 57P01–57P03 (admin shutdown, crash shutdown, cannot
    /// connect now). Backends report a lost link with a class-08 SQLSTATE
    /// (MySQL 2006/2013 as `08S01`).
    pub fn is_connection_lost(&self) -> bool {
        match self.sqlstate.as_deref() {
            Some(s) => s.starts_with("08") || matches!(s, "57P01" | "57P02" | "57P03"),
            None => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;
