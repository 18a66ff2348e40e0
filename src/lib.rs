//! peepool: a database connection pool with a C ABI.
//!
//! `lib.rs` only declares modules and re-exports; see the README for the
//! C API and `pool::Pool` for the Rust one.

pub mod backend;
pub mod config;
pub mod error;
pub mod ffi;
pub mod pool;
pub mod value;

pub use backend::{AnyBackend, AnyConn, Backend, Connection};
pub use config::{ConnectOptions, ParsedUrl, PoolOptions, WaitTimeout};
pub use error::{Error, Result, Status};
pub use pool::{ConnId, Level, Logger, Pool, PooledConn, Stats, WeakPool};
pub use value::{Kind, ResultBuilder, ResultSet, Value};
