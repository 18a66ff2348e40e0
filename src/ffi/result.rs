//! `pool_result_t`: a materialised query result and its getters.

use std::ffi::{c_char, c_void};

use crate::error::{pool_status_t, Result};
use crate::ffi::{arg_out, ffi_boundary, null_out, BoxHandle};
use crate::value::{Kind, ResultSet};

/// The rows of a query, all in memory (like libpq's `PGresult`). Opaque:
/// made by `pool_query`, ended by `pool_result_free`.
///
/// Backed by a Rust `Box<ResultSet>`. Independent of the connection and the
/// pool it came from. Read-only, so it may be read from several threads at
/// once; `pool_result_free` must not race with a reader.
///
/// Functions: `pool_result_rows`, `pool_result_columns`,
/// `pool_result_column_name`, `pool_result_type`, `pool_result_is_null`,
/// `pool_result_int64`, `pool_result_double`, `pool_result_text`,
/// `pool_result_blob`, `pool_result_free`. Rows and columns count from 0.
pub struct pool_result_t {
    _private: [u8; 0],
}

impl BoxHandle for pool_result_t {
    type Rust = ResultSet;
}

/// The body of a getter with one out-pointer: borrow `res`, check `out`,
/// and write what `get` reads from the result.
fn get_into<T>(
    res: *const pool_result_t,
    out: *mut T,
    get: impl FnOnce(&ResultSet) -> Result<T>,
) -> Result<()> {
    let res = pool_result_t::borrow(res, "res")?;
    let out = arg_out(out, "out")?;
    *out = get(res)?;
    Ok(())
}

fn kind_code(k: Kind) -> u32 {
    use crate::ffi::value::*;
    match k {
        Kind::Null => POOL_TYPE_NULL,
        Kind::Int => POOL_TYPE_INT64,
        Kind::Double => POOL_TYPE_DOUBLE,
        Kind::Text => POOL_TYPE_TEXT,
        Kind::Blob => POOL_TYPE_BLOB,
        Kind::Numeric => POOL_TYPE_NUMERIC,
        Kind::Other => POOL_TYPE_OTHER,
    }
}

/// The number of rows in `res`; 0 when `res` is NULL. Thread-safe.
#[no_mangle]
pub extern "C" fn pool_result_rows(res: *const pool_result_t) -> usize {
    ffi_boundary!(value 0; {
        pool_result_t::borrow(res, "res").map_or(0, |r| r.rows())
    })
}

/// The number of columns in `res`; 0 when `res` is NULL. Thread-safe.
#[no_mangle]
pub extern "C" fn pool_result_columns(res: *const pool_result_t) -> usize {
    ffi_boundary!(value 0; {
        pool_result_t::borrow(res, "res").map_or(0, |r| r.columns())
    })
}

/// The name of column `col`.
///
/// - `out`: receives a NUL-terminated UTF-8 name owned by `res`, valid until
///   `pool_result_free(res)`; NULL on failure.
///
/// Returns `POOL_OK`; `POOL_ERR_INVALID_ARGUMENT` (NULL `res` or `out`,
/// `col` out of range). Thread-safe.
#[no_mangle]
pub extern "C" fn pool_result_column_name(
    res: *const pool_result_t,
    col: usize,
    out: *mut *const c_char,
) -> pool_status_t {
    ffi_boundary!(out out = std::ptr::null(); {
        get_into(res, out, |r| Ok(r.column_name_cstr(col)?.as_ptr()))
    })
}

/// The kind of the cell at (`row`, `col`): one of the `POOL_TYPE_*`
/// constants (`POOL_TYPE_NUMERIC` for exact decimals, `POOL_TYPE_OTHER` for
/// types readable only as text).
///
/// - `out`: receives the kind; `POOL_TYPE_NULL` (0) on failure.
///
/// Returns `POOL_OK`; `POOL_ERR_INVALID_ARGUMENT` (NULL `res` or `out`, row
/// or column out of range). Thread-safe.
#[no_mangle]
pub extern "C" fn pool_result_type(
    res: *const pool_result_t,
    row: usize,
    col: usize,
    out: *mut u32,
) -> pool_status_t {
    ffi_boundary!(out out = 0; {
        get_into(res, out, |r| Ok(kind_code(r.kind(row, col)?)))
    })
}

/// Whether the cell at (`row`, `col`) is SQL NULL.
///
/// - `out`: receives the answer; false on failure.
///
/// Returns `POOL_OK`; `POOL_ERR_INVALID_ARGUMENT` (NULL `res` or `out`, row
/// or column out of range). Thread-safe.
#[no_mangle]
pub extern "C" fn pool_result_is_null(
    res: *const pool_result_t,
    row: usize,
    col: usize,
    out: *mut bool,
) -> pool_status_t {
    ffi_boundary!(out out = false; {
        get_into(res, out, |r| r.is_null(row, col))
    })
}

/// The cell at (`row`, `col`) as a 64-bit integer: any integer type, and
/// numeric or text holding an exact integer in range.
///
/// - `out`: receives the value; 0 on failure.
///
/// Returns `POOL_OK`; `POOL_ERR_INVALID_ARGUMENT` (NULL `res` or `out`, row
/// or column out of range); `POOL_ERR_CONVERSION` (NULL, or not an exact
/// integer in range; the message shows the value). Thread-safe.
#[no_mangle]
pub extern "C" fn pool_result_int64(
    res: *const pool_result_t,
    row: usize,
    col: usize,
    out: *mut i64,
) -> pool_status_t {
    ffi_boundary!(out out = 0; {
        get_into(res, out, |r| r.int64(row, col))
    })
}

/// The cell at (`row`, `col`) as a double: floating and integer types, and
/// numeric or text holding a number.
///
/// - `out`: receives the value; 0.0 on failure.
///
/// Returns `POOL_OK`; `POOL_ERR_INVALID_ARGUMENT` (NULL `res` or `out`, row
/// or column out of range); `POOL_ERR_CONVERSION` (NULL, or not a number).
/// Thread-safe.
#[no_mangle]
pub extern "C" fn pool_result_double(
    res: *const pool_result_t,
    row: usize,
    col: usize,
    out: *mut f64,
) -> pool_status_t {
    ffi_boundary!(out out = 0.0; {
        get_into(res, out, |r| r.double(row, col))
    })
}

/// The cell at (`row`, `col`) as text: the bytes the database's own client
/// library prints for it (a blob gives its bytes; PostgreSQL bytea `\x..`).
///
/// - `out`: receives a pointer to the bytes, followed by a NUL; owned by
///   `res`, valid until `pool_result_free(res)`; NULL on failure. The text
///   may itself contain NUL bytes: use `len`.
/// - `len`: receives the length in bytes without the NUL; may be NULL; 0 on
///   failure.
///
/// Returns `POOL_OK`; `POOL_ERR_INVALID_ARGUMENT` (NULL `res` or `out`, row
/// or column out of range); `POOL_ERR_CONVERSION` (the cell is NULL).
/// Thread-safe.
#[no_mangle]
pub extern "C" fn pool_result_text(
    res: *const pool_result_t,
    row: usize,
    col: usize,
    out: *mut *const c_char,
    len: *mut usize,
) -> pool_status_t {
    ffi_boundary!(out out = std::ptr::null(), out len = 0; {
        let res = pool_result_t::borrow(res, "res")?;
        let out = arg_out(out, "out")?;
        let text = res.text_with_nul(row, col)?;
        *out = text.as_ptr() as *const c_char;
        null_out(len, text.len() - 1);
        Ok(())
    })
}

/// The cell at (`row`, `col`) as bytes: a binary value's raw bytes, any
/// other value's text form.
///
/// - `out`: receives a pointer to the bytes, owned by `res`, valid until
///   `pool_result_free(res)`; NULL on failure.
/// - `len`: receives the length in bytes; must not be NULL; 0 on failure.
///
/// Returns `POOL_OK`; `POOL_ERR_INVALID_ARGUMENT` (NULL `res`, `out` or
/// `len`, row or column out of range); `POOL_ERR_CONVERSION` (the cell is
/// NULL). Thread-safe.
#[no_mangle]
pub extern "C" fn pool_result_blob(
    res: *const pool_result_t,
    row: usize,
    col: usize,
    out: *mut *const c_void,
    len: *mut usize,
) -> pool_status_t {
    ffi_boundary!(out out = std::ptr::null(), out len = 0; {
        let res = pool_result_t::borrow(res, "res")?;
        let out = arg_out(out, "out")?;
        let len = arg_out(len, "len")?;
        let bytes = res.blob(row, col)?;
        *out = bytes.as_ptr() as *const c_void;
        *len = bytes.len();
        Ok(())
    })
}

/// Frees a result; every pointer obtained from it becomes invalid. NULL is
/// accepted (nothing happens). Thread safety: from any thread, once, and
/// not while another thread still reads `res`.
#[no_mangle]
pub extern "C" fn pool_result_free(res: *mut pool_result_t) {
    ffi_boundary!(void; {
        if let Some(r) = pool_result_t::take(res) {
            ResultSet::recycle(r);
        }
        Ok(())
    })
}
