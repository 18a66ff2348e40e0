//! The calling thread's last error, status names, and the version.

use std::ffi::{c_char, c_int, CStr};

use crate::error::Status;
use crate::ffi::{ffi_boundary, last_error_ptr, last_sqlstate_ptr};

const VERSION: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(v) => v,
        Err(_) => panic!("the package version contains a NUL"),
    };

/// The library's version, e.g. `"0.1.0"`; equals `PEEPOOL_VERSION_STRING`
/// of the header it was built with. Static: never NULL, never freed.
/// Does not change the thread's last error. Thread-safe.
#[no_mangle]
pub extern "C" fn pool_version() -> *const c_char {
    ffi_boundary!(value VERSION.as_ptr(); { VERSION.as_ptr() })
}

/// The static name and description of a status code, e.g.
/// `"POOL_ERR_EXHAUSTED: pool exhausted"`; `"unknown status"` for a value
/// that is not a `pool_status_t`. Never NULL, never freed. Does not change
/// the thread's last error. Thread-safe.
#[no_mangle]
pub extern "C" fn pool_status_str(code: c_int) -> *const c_char {
    ffi_boundary!(value c"unknown status".as_ptr(); {
        let s: &'static CStr = match Status::from_code(code as i64) {
            Some(Status::POOL_OK) => c"POOL_OK: ok",
            Some(Status::POOL_ERR_INVALID_ARGUMENT) => c"POOL_ERR_INVALID_ARGUMENT: invalid argument",
            Some(Status::POOL_ERR_CONFIG) => c"POOL_ERR_CONFIG: invalid configuration",
            Some(Status::POOL_ERR_CONNECT) => c"POOL_ERR_CONNECT: could not connect",
            Some(Status::POOL_ERR_EXHAUSTED) => c"POOL_ERR_EXHAUSTED: pool exhausted",
            Some(Status::POOL_ERR_INVALID_HANDLE) => c"POOL_ERR_INVALID_HANDLE: invalid connection handle",
            Some(Status::POOL_ERR_BUSY) => c"POOL_ERR_BUSY: connection busy in another thread",
            Some(Status::POOL_ERR_DATABASE) => c"POOL_ERR_DATABASE: database error",
            Some(Status::POOL_ERR_CONVERSION) => c"POOL_ERR_CONVERSION: value conversion failed",
            Some(Status::POOL_ERR_CLOSED) => c"POOL_ERR_CLOSED: pool closed",
            Some(Status::POOL_ERR_INTERNAL) => c"POOL_ERR_INTERNAL: internal error",
            None => c"unknown status",
        };
        s.as_ptr()
    })
}

/// The message of the calling thread's last failed `pool_` call (UTF-8,
/// never containing a password), or `""` when its last call succeeded.
/// Never NULL. Owned by the library: valid until this thread's next
/// `pool_` call other than `pool_last_error`, `pool_last_sqlstate`,
/// `pool_status_str`, `pool_version` and the value/result accessors that
/// cannot fail, which leave it alone. Thread-local, so thread-safe; in Go,
/// read it in the same C helper as the call.
#[no_mangle]
pub extern "C" fn pool_last_error() -> *const c_char {
    ffi_boundary!(value c"".as_ptr(); { last_error_ptr() })
}

/// The SQLSTATE of the calling thread's last failed call when it was a
/// database error and the backend gives one (PostgreSQL and MySQL five
/// characters; SQLite its extended result code), else `""`. Never NULL;
/// lifetime and thread safety as `pool_last_error`.
#[no_mangle]
pub extern "C" fn pool_last_sqlstate() -> *const c_char {
    ffi_boundary!(value c"".as_ptr(); { last_sqlstate_ptr() })
}
