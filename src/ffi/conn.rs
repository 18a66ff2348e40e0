//! Statements on a `pool_conn_t`: execute, query, transactions. The pool is
//! found from the tag inside the connection id.

use std::ffi::c_char;

use crate::error::pool_status_t;
use crate::ffi::value::{params_to_values, Params};
use crate::ffi::{
    arg_out, arg_str, ffi_boundary, pool_conn_t, pool_result_t, pool_value_t, registry, BoxHandle,
};

/// Runs one statement that returns no rows (or whose rows are discarded).
///
/// - `conn`: a checked-out connection.
/// - `sql`: NUL-terminated UTF-8; placeholders are the database's own
///   (SQLite `?`/`?1`/`$1`, PostgreSQL `$1`, MySQL `?`).
/// - `params`: `nparams` values (see `pool_int64`, `pool_text`, ...);
///   borrowed for the call only; may be NULL when `nparams` is 0.
/// - `affected`: receives the number of rows changed; may be NULL; 0 on
///   failure.
///
/// Returns `POOL_OK`; `POOL_ERR_INVALID_ARGUMENT` (NULL `sql`, `sql` not
/// UTF-8, NULL `params` with `nparams` > 0, a bad parameter — the message
/// names it); `POOL_ERR_INVALID_HANDLE` (stale handle or freed pool);
/// `POOL_ERR_BUSY` (a call on `conn` in flight in another thread);
/// `POOL_ERR_DATABASE` (the statement failed; SQLSTATE in
/// `pool_last_sqlstate()`).
///
/// Thread safety: one call at a time per connection; any thread.
#[no_mangle]
pub extern "C" fn pool_execute(
    conn: pool_conn_t,
    sql: *const c_char,
    params: *const pool_value_t,
    nparams: usize,
    affected: *mut u64,
) -> pool_status_t {
    ffi_boundary!(out affected = 0; {
        let sql = arg_str(sql, "sql")?;
        let mut values = Params::new();
        params_to_values(params, nparams, &mut values)?;
        let n = registry::with_pool(conn.into(), |pool| pool.execute(conn.into(), sql, &values))?;
        crate::ffi::null_out(affected, n);
        Ok(())
    })
}

/// Runs one statement and materialises all its rows (like libpq's
/// `PGresult`).
///
/// - `conn`, `sql`, `params`, `nparams`: as for `pool_execute`.
/// - `out`: receives the result; NULL on failure.
///
/// Returns as `pool_execute`, plus `POOL_ERR_INVALID_ARGUMENT` for a NULL
/// `out`.
///
/// Ownership: the caller owns `*out` and frees it with `pool_result_free`;
/// it does not depend on the connection or the pool (it may outlive both).
/// Thread safety: one call at a time per connection; any thread.
#[no_mangle]
pub extern "C" fn pool_query(
    conn: pool_conn_t,
    sql: *const c_char,
    params: *const pool_value_t,
    nparams: usize,
    out: *mut *mut pool_result_t,
) -> pool_status_t {
    ffi_boundary!(out out = std::ptr::null_mut(); {
        let sql = arg_str(sql, "sql")?;
        let mut values = Params::new();
        params_to_values(params, nparams, &mut values)?;
        let out = arg_out(out, "out")?;
        let result = registry::with_pool(conn.into(), |pool| pool.query(conn.into(), sql, &values))?;
        *out = pool_result_t::into_raw(result);
        Ok(())
    })
}

/// Starts a transaction on `conn`. A transaction still open when the
/// connection is released is rolled back.
///
/// Returns `POOL_OK`; `POOL_ERR_INVALID_HANDLE`; `POOL_ERR_BUSY`;
/// `POOL_ERR_DATABASE`. No pointer arguments; the null handle `{0}` is
/// `POOL_ERR_INVALID_HANDLE`. Thread safety: one call at a time per
/// connection (another thread meanwhile gets `POOL_ERR_BUSY`).
#[no_mangle]
pub extern "C" fn pool_begin(conn: pool_conn_t) -> pool_status_t {
    ffi_boundary!(; {
        registry::with_pool(conn.into(), |pool| pool.begin(conn.into()))
    })
}

/// Commits the transaction open on `conn`.
///
/// Returns `POOL_OK`; `POOL_ERR_INVALID_HANDLE`; `POOL_ERR_BUSY`;
/// `POOL_ERR_DATABASE`. No pointer arguments; the null handle `{0}` is
/// `POOL_ERR_INVALID_HANDLE`. Thread safety: one call at a time per
/// connection (another thread meanwhile gets `POOL_ERR_BUSY`).
#[no_mangle]
pub extern "C" fn pool_commit(conn: pool_conn_t) -> pool_status_t {
    ffi_boundary!(; {
        registry::with_pool(conn.into(), |pool| pool.commit(conn.into()))
    })
}

/// Rolls back the transaction open on `conn`.
///
/// Returns `POOL_OK`; `POOL_ERR_INVALID_HANDLE`; `POOL_ERR_BUSY`;
/// `POOL_ERR_DATABASE`. No pointer arguments; the null handle `{0}` is
/// `POOL_ERR_INVALID_HANDLE`. Thread safety: one call at a time per
/// connection (another thread meanwhile gets `POOL_ERR_BUSY`).
#[no_mangle]
pub extern "C" fn pool_rollback(conn: pool_conn_t) -> pool_status_t {
    ffi_boundary!(; {
        registry::with_pool(conn.into(), |pool| pool.rollback(conn.into()))
    })
}
