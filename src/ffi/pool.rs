//! `pool_t`: making and freeing a pool, checking connections out and in,
//! closing them, and the calling thread's own connection.

use std::ffi::c_char;
use std::sync::Arc;
use std::time::Duration;

use crate::backend::AnyBackend;
use crate::config::ParsedUrl;
use crate::error::{pool_status_t, Error};
use crate::ffi::{arg_out, arg_str, ffi_boundary, registry, ArcHandle};
use crate::pool::{ConnId, Pool};

/// A connection pool. Opaque: made by `pool_new`, ended by `pool_free`.
///
/// Backed by a Rust `Arc<Pool<AnyBackend>>` (given out with `Arc::into_raw`);
/// the pool core inside stays alive while a call on one of its connections
/// is in flight.
///
/// Thread safety: a `pool_t *` may be used by any number of threads at once,
/// except that `pool_free` must not race with another call on the same pool.
///
/// Functions: `pool_new`, `pool_free`, `pool_connect`, `pool_release`,
/// `pool_manual_close`, `pool_close_idle`, `pool_close_stale`,
/// `pool_close_all`, `pool_thread_connect`, `pool_thread_release`,
/// `pool_stats`, `pool_set_logger`.
pub struct pool_t {
    _private: [u8; 0],
}

impl ArcHandle for pool_t {
    type Rust = Pool<AnyBackend>;
}

/// A checked-out connection: an opaque 64-bit id (pool tag, slot and
/// generation) passed by value. `id` 0 is the null handle and never valid.
///
/// Every checkout gets a new id. A stale id (released twice, used after
/// `pool_release` or `pool_manual_close`, revoked by `pool_free`, given to
/// another pool, or forged) is answered with `POOL_ERR_INVALID_HANDLE`.
/// A connection is used by one thread at a time; a second thread calling on
/// it while a call is in flight gets `POOL_ERR_BUSY`.
///
/// Functions: `pool_execute`, `pool_query`, `pool_begin`, `pool_commit`,
/// `pool_rollback`, and `pool_release` / `pool_manual_close` on its pool.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct pool_conn_t {
    pub id: u64,
}

impl From<ConnId> for pool_conn_t {
    fn from(id: ConnId) -> pool_conn_t {
        pool_conn_t { id: id.0 }
    }
}

impl From<pool_conn_t> for ConnId {
    fn from(c: pool_conn_t) -> ConnId {
        ConnId(c.id)
    }
}

/// Creates a pool from a URL. Opens no connection by itself (with
/// `min_connections` > 0 a background thread opens them).
///
/// - `url`: NUL-terminated UTF-8, e.g. `sqlite:app.db?max_connections=8`,
///   `postgres://user:pass@host/db?timeout=5`, `mysql://root@host/db`.
///   Pool options travel in the query string (see the README); an unknown
///   option is an error that names it. Copied; the caller keeps ownership.
/// - `out`: receives the new pool; set to NULL on failure.
///
/// Returns `POOL_OK`; `POOL_ERR_INVALID_ARGUMENT` when `url` or `out` is
/// NULL or `url` is not UTF-8; `POOL_ERR_CONFIG` for a malformed URL, an
/// unsupported scheme, or an unknown or bad option (message names it, never
/// a password).
///
/// Ownership: the caller owns `*out` and must end it with `pool_free`.
/// Thread safety: may be called from any thread.
#[no_mangle]
pub extern "C" fn pool_new(url: *const c_char, out: *mut *mut pool_t) -> pool_status_t {
    ffi_boundary!(out out = std::ptr::null_mut(); {
        let url = arg_str(url, "url")?;
        let out = arg_out(out, "out")?;
        let parsed = ParsedUrl::parse(url)?;
        let backend = AnyBackend::from_url(&parsed)?;
        let pool = Pool::new(backend, parsed.pool.clone());
        registry::register(&pool);
        *out = pool_t::into_raw(Arc::new(pool));
        Ok(())
    })
}

/// Frees a pool: waiters in `pool_connect` wake with `POOL_ERR_CLOSED`,
/// idle connections are closed, connections still checked out are revoked
/// (closed now, or when a call in flight on them returns; afterwards every
/// call on them gets `POOL_ERR_INVALID_HANDLE`).
///
/// - `pool`: from `pool_new`, or NULL (then nothing happens).
///
/// Ownership: `pool` is invalid after the call; do not free it twice.
/// Thread safety: must not race with other calls on the same `pool`
/// (calls on its connections from other threads are safe).
#[no_mangle]
pub extern "C" fn pool_free(pool: *mut pool_t) {
    ffi_boundary!(void; {
        if let Some(pool) = pool_t::take(pool) {
            pool.shutdown();
            registry::unregister(&pool);
            drop(pool);
        }
        Ok(())
    })
}

/// Checks a connection out: an idle one (most recently returned first) or a
/// new one while fewer than `max_connections` are open; otherwise waits up
/// to the `timeout` option (default: fail at once).
///
/// - `pool`: the pool.
/// - `out`: receives the connection; the null handle `{0}` on failure.
///
/// Returns `POOL_OK`; `POOL_ERR_INVALID_ARGUMENT` (NULL `pool` or `out`);
/// `POOL_ERR_EXHAUSTED` (no connection free within `timeout`);
/// `POOL_ERR_CONNECT` (a new connection could not be opened; the driver's
/// reason in `pool_last_error()`); `POOL_ERR_CLOSED` (the pool is being
/// freed).
///
/// Ownership: the connection is the caller's until `pool_release` or
/// `pool_manual_close`. Thread safety: any thread.
#[no_mangle]
pub extern "C" fn pool_connect(pool: *mut pool_t, out: *mut pool_conn_t) -> pool_status_t {
    ffi_boundary!(out out = pool_conn_t { id: 0 }; {
        let borrowed = pool_t::borrow(pool, "pool")?;
        let out = arg_out(out, "out")?;
        *out = match borrowed.connect_hot() {
            Some(id) => id,
            // It may open, probe or wait: hold a reference, so that
            // `pool_free` on another thread wakes it with POOL_ERR_CLOSED
            // instead of freeing the pool under it.
            None => pool_t::acquire(pool, "pool")?.connect()?,
        }
        .into();
        Ok(())
    })
}

/// Gives a connection back to its pool (rolling back an open transaction);
/// the handle is invalid afterwards.
///
/// - `pool`: the pool it came from.
/// - `conn`: a handle from `pool_connect` or `pool_thread_connect`.
///
/// Returns `POOL_OK`; `POOL_ERR_INVALID_ARGUMENT` (NULL `pool`);
/// `POOL_ERR_INVALID_HANDLE` (null, stale, forged, or from another pool);
/// `POOL_ERR_BUSY` (a call on it is in flight in another thread).
/// Thread safety: any thread.
#[no_mangle]
pub extern "C" fn pool_release(pool: *mut pool_t, conn: pool_conn_t) -> pool_status_t {
    ffi_boundary!(; {
        pool_t::borrow(pool, "pool")?.release(conn.into())
    })
}

/// Closes a checked-out connection instead of returning it (peewee's
/// `manual_close`); the handle is invalid afterwards and a place is free for
/// a new connection.
///
/// - `pool`: the pool it came from. - `conn`: the connection.
///
/// Returns `POOL_OK`; `POOL_ERR_INVALID_ARGUMENT` (NULL `pool`);
/// `POOL_ERR_INVALID_HANDLE`; `POOL_ERR_BUSY`. Thread safety: any thread.
#[no_mangle]
pub extern "C" fn pool_manual_close(pool: *mut pool_t, conn: pool_conn_t) -> pool_status_t {
    ffi_boundary!(; {
        pool_t::acquire(pool, "pool")?.manual_close(conn.into())
    })
}

/// Closes every idle connection (checked-out ones are untouched).
///
/// - `pool`: the pool.
/// - `closed`: receives how many were closed; may be NULL.
///
/// Returns `POOL_OK`; `POOL_ERR_INVALID_ARGUMENT` (NULL `pool`).
/// Thread safety: any thread.
#[no_mangle]
pub extern "C" fn pool_close_idle(pool: *mut pool_t, closed: *mut usize) -> pool_status_t {
    ffi_boundary!(out closed = 0; {
        let n = pool_t::acquire(pool, "pool")?.close_idle();
        crate::ffi::null_out(closed, n);
        Ok(())
    })
}

/// Reclaims connections checked out for longer than `age_seconds`: each is
/// closed (at once, or when a call in flight on it returns) and its handle
/// becomes invalid.
///
/// - `pool`: the pool.
/// - `age_seconds`: age since checkout, in seconds (fractions allowed).
/// - `closed`: receives how many were reclaimed; may be NULL.
///
/// Returns `POOL_OK`; `POOL_ERR_INVALID_ARGUMENT` (NULL `pool`, or
/// `age_seconds` negative or NaN). Thread safety: any thread.
#[no_mangle]
pub extern "C" fn pool_close_stale(
    pool: *mut pool_t,
    age_seconds: f64,
    closed: *mut usize,
) -> pool_status_t {
    ffi_boundary!(out closed = 0; {
        let pool = pool_t::acquire(pool, "pool")?;
        if age_seconds.is_nan() || age_seconds < 0.0 {
            return Err(Error::invalid_argument(format!(
                "argument 'age_seconds' must be a number >= 0, got {age_seconds}"
            )));
        }
        let age = Duration::try_from_secs_f64(age_seconds).unwrap_or(Duration::MAX);
        let n = pool.close_stale(age);
        crate::ffi::null_out(closed, n);
        Ok(())
    })
}

/// Closes every idle connection and condemns every checked-out one: it
/// keeps working until released, then closes (it still counts against
/// `max_connections` until then). The pool stays usable.
///
/// - `pool`: the pool.
///
/// Returns `POOL_OK`; `POOL_ERR_INVALID_ARGUMENT` (NULL `pool`).
/// Thread safety: any thread.
#[no_mangle]
pub extern "C" fn pool_close_all(pool: *mut pool_t) -> pool_status_t {
    ffi_boundary!(; {
        pool_t::acquire(pool, "pool")?.close_all();
        Ok(())
    })
}

/// The calling thread's own connection from this pool: the same one on
/// every call from this thread until it is released, checked out on first
/// use (peewee's per-thread connection).
///
/// - `pool`: the pool.
/// - `out`: receives the connection; `{0}` on failure.
///
/// Returns as `pool_connect` (a NULL `pool` or `out` is
/// `POOL_ERR_INVALID_ARGUMENT`). Ownership: the thread's; give it back with
/// `pool_thread_release` or `pool_release`, or it goes back by itself when
/// the thread exits. Thread safety: any thread (each gets its own).
#[no_mangle]
pub extern "C" fn pool_thread_connect(pool: *mut pool_t, out: *mut pool_conn_t) -> pool_status_t {
    ffi_boundary!(out out = pool_conn_t { id: 0 }; {
        let pool = pool_t::acquire(pool, "pool")?;
        let out = arg_out(out, "out")?;
        *out = pool.thread_connect()?.into();
        Ok(())
    })
}

/// Gives back the calling thread's own connection from this pool, if it
/// holds one (`POOL_OK` also when it holds none).
///
/// - `pool`: the pool.
///
/// Returns `POOL_OK`; `POOL_ERR_INVALID_ARGUMENT` (NULL `pool`);
/// `POOL_ERR_BUSY`. Thread safety: any thread; acts on its own connection.
#[no_mangle]
pub extern "C" fn pool_thread_release(pool: *mut pool_t) -> pool_status_t {
    ffi_boundary!(; {
        pool_t::acquire(pool, "pool")?.thread_release()
    })
}
