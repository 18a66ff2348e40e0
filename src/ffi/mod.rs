//! The C ABI: every `pool_*` symbol of `libpeepool.so`, one file per
//! exported object. `include/peepool.h` is generated from these files by
//! `build.rs` (cbindgen), so the doc comments here are the header's docs.
//!
//! Every export runs its body through [`ffi_boundary!`], the one boundary of
//! the library: it clears the calling thread's last error, sets out-pointers
//! to their null value, runs the body under `catch_unwind`, and turns an
//! `Err(Error)` into its status (keeping the message and SQLSTATE for
//! `pool_last_error()` / `pool_last_sqlstate()`) and a panic into
//! `POOL_ERR_INTERNAL`. The macro wraps the body rather than the whole
//! function (as rustls-ffi's `ffi_panic_boundary!` does) because cbindgen
//! reads the source without expanding macros; `tests/ffi_abi.rs` checks that
//! every `#[no_mangle]` function in this directory uses it.
//!
//! Opaque pointers never meet a bare `as` cast in an export: `ArcHandle`
//! and `BoxHandle` say what backs each one.

#![allow(non_camel_case_types)]
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::error::{pool_status_t, Error, Result, Status};

// Declaration order is the header's order (cbindgen `sort_by = "None"`).
pub mod conn;
pub mod error;
pub mod log;
pub mod pool;
pub mod registry;
pub mod result;
pub mod stats;
pub mod value;

pub use conn::*;
pub use error::*;
pub use log::*;
pub use pool::*;
pub use result::*;
pub use stats::*;
pub use value::*;

/// The boundary of every export.
///
/// * `ffi_boundary!(out a = v, ...; { body })` — `body` is a block of type
///   `Result<()>`; each listed out-pointer is set to its null value first
///   and again on failure (when non-NULL); returns `pool_status_t`.
/// * `ffi_boundary!(void; { body })` — for `void` exports (the `_free`
///   functions): same error handling, status dropped.
/// * `ffi_boundary!(value fallback; { body })` — for exports that return a
///   value and cannot fail (accessors, value builders): does not touch the
///   last error unless the body panics, then returns `fallback`.
#[macro_export]
#[doc(hidden)]
macro_rules! ffi_boundary {
    (value $fallback:expr; $body:block) => {
        $crate::ffi::value_boundary(move || $body, $fallback)
    };
    (void; $body:block) => {{
        $crate::ffi::clear_last_error();
        let _ = $crate::ffi::status_boundary(move || -> $crate::error::Result<()> { $body });
    }};
    ($(out $out:ident = $null:expr),* ; $body:block) => {{
        $crate::ffi::clear_last_error();
        $( $crate::ffi::null_out($out, $null); )*
        let status = $crate::ffi::status_boundary(move || -> $crate::error::Result<()> { $body });
        if status != $crate::error::Status::POOL_OK {
            // A body that wrote an output and then failed leaves nothing behind.
            $( $crate::ffi::null_out($out, $null); )*
        }
        status
    }};
}

pub use crate::ffi_boundary;

thread_local! {
    /// The calling thread's last error message and SQLSTATE, kept as C
    /// strings so `pool_last_error()` can hand out a pointer.
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
    static LAST_SQLSTATE: RefCell<Option<CString>> = const { RefCell::new(None) };
    /// Whether the thread's last call failed. Clearing the error only clears
    /// this flag (no destructor, so a plain TLS store): the strings stay
    /// until the next failure replaces them, which keeps every call that
    /// succeeds free of frees.
    static HAS_ERROR: Cell<bool> = const { Cell::new(false) };
}

fn to_cstring(s: &str) -> CString {
    CString::new(s.replace('\0', "\\0")).unwrap_or_default()
}

#[doc(hidden)]
#[inline]
pub fn clear_last_error() {
    HAS_ERROR.set(false);
}

fn set_last_error(e: &Error) {
    let _ = LAST_ERROR.try_with(|l| *l.borrow_mut() = Some(to_cstring(&e.message)));
    let _ = LAST_SQLSTATE.try_with(|l| *l.borrow_mut() = e.sqlstate.as_deref().map(to_cstring));
    HAS_ERROR.set(true);
}

/// The thread's last error message, or `""` when its last call succeeded;
/// valid until the next `set_last_error` on this thread.
pub(crate) fn last_error_ptr() -> *const c_char {
    last_ptr(&LAST_ERROR)
}

pub(crate) fn last_sqlstate_ptr() -> *const c_char {
    last_ptr(&LAST_SQLSTATE)
}

fn last_ptr(which: &'static std::thread::LocalKey<RefCell<Option<CString>>>) -> *const c_char {
    if !HAS_ERROR.get() {
        return c"".as_ptr();
    }
    which
        .try_with(|l| l.borrow().as_ref().map(|c| c.as_ptr()))
        .ok()
        .flatten()
        .unwrap_or(c"".as_ptr())
}

fn panic_error(payload: Box<dyn Any + Send>) -> Error {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string());
    Error::internal(format!(
        "internal error (a bug in peepool, please report it): {what}"
    ))
}

/// Runs `body` under `catch_unwind`; an error or a panic is stored as the
/// thread's last error and becomes the returned status.
#[doc(hidden)]
pub fn status_boundary(body: impl FnOnce() -> Result<()>) -> pool_status_t {
    let err = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return Status::POOL_OK,
        Ok(Err(e)) => e,
        Err(payload) => panic_error(payload),
    };
    set_last_error(&err);
    err.status
}

/// Runs `body` under `catch_unwind`; a panic is stored as the thread's last
/// error and `fallback` returned.
#[doc(hidden)]
pub fn value_boundary<T>(body: impl FnOnce() -> T, fallback: T) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(v) => v,
        Err(payload) => {
            set_last_error(&panic_error(payload));
            fallback
        }
    }
}

/// Writes `null` through `out` when `out` is non-NULL: an out-pointer holds
/// its null value unless the call succeeds.
#[doc(hidden)]
pub fn null_out<T>(out: *mut T, null: T) {
    if !out.is_null() {
        // SAFETY: the caller passed a pointer to a writable T (the export's
        // documented contract); NULL is excluded above.
        unsafe { out.write(null) }
    }
}

fn null_arg(name: &str) -> Error {
    Error::invalid_argument(format!("argument '{name}' is NULL"))
}

/// Borrows `*ptr`, or fails with "argument 'name' is NULL".
pub(crate) fn arg_ref<'a, T>(ptr: *const T, name: &str) -> Result<&'a T> {
    // SAFETY: non-NULL pointers from C point at a live T for the call's
    // duration (the export's documented contract).
    unsafe { ptr.as_ref() }.ok_or_else(|| null_arg(name))
}

/// The writable out-pointer `ptr`, or "argument 'name' is NULL".
pub(crate) fn arg_out<'a, T>(ptr: *mut T, name: &str) -> Result<&'a mut T> {
    // SAFETY: as for `arg_ref`; out-pointers are writable and not aliased
    // for the call's duration.
    unsafe { ptr.as_mut() }.ok_or_else(|| null_arg(name))
}

/// A NUL-terminated UTF-8 argument, naming it when NULL or not UTF-8.
pub(crate) fn arg_str<'a>(ptr: *const c_char, name: &str) -> Result<&'a str> {
    if ptr.is_null() {
        return Err(null_arg(name));
    }
    // SAFETY: non-NULL and NUL-terminated by the export's contract.
    let c = unsafe { CStr::from_ptr(ptr) };
    let bytes = c.to_bytes();
    if bytes.is_ascii() {
        // SAFETY: ASCII is UTF-8. (`is_ascii` scans a word at a time: SQL
        // text is nearly always ASCII and the full validator costs more.)
        return Ok(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    std::str::from_utf8(bytes)
        .map_err(|_| Error::invalid_argument(format!("argument '{name}' is not valid UTF-8")))
}

/// An opaque C type backed by an `Arc<Self::Rust>` made with `Arc::into_raw`.
pub(crate) trait ArcHandle: Sized {
    type Rust;

    fn into_raw(value: Arc<Self::Rust>) -> *mut Self {
        Arc::into_raw(value) as *mut Self
    }

    /// A new strong reference to the value behind a pointer that came from
    /// `into_raw` and was not yet given to `free`. Owned, not borrowed, so a
    /// call that blocks (a waiter in `pool_connect`) keeps the value alive
    /// while another thread's `free` drops the C side's reference.
    fn acquire(ptr: *const Self, name: &str) -> Result<Arc<Self::Rust>> {
        if ptr.is_null() {
            return Err(null_arg(name));
        }
        // SAFETY: `ptr` came from `into_raw` and its reference is still held
        // by the caller (contract), so the count is at least one here.
        unsafe {
            Arc::increment_strong_count(ptr as *const Self::Rust);
            Ok(Arc::from_raw(ptr as *const Self::Rust))
        }
    }

    /// Borrows the value behind a pointer from `into_raw`, without touching
    /// its count: for calls that cannot block, which by the contract never
    /// race with `free`.
    fn borrow<'a>(ptr: *const Self, name: &str) -> Result<&'a Self::Rust> {
        arg_ref(ptr as *const Self::Rust, name)
    }

    /// Takes back the reference `into_raw` gave out; `None` for NULL.
    fn take(ptr: *mut Self) -> Option<Arc<Self::Rust>> {
        if ptr.is_null() {
            return None;
        }
        // SAFETY: `ptr` came from `into_raw` and is freed once (contract).
        Some(unsafe { Arc::from_raw(ptr as *const Self::Rust) })
    }
}

/// An opaque C type backed by a `Box<Self::Rust>` made with `Box::into_raw`.
pub(crate) trait BoxHandle: Sized {
    type Rust;

    fn into_raw(value: Box<Self::Rust>) -> *mut Self {
        Box::into_raw(value) as *mut Self
    }

    fn borrow<'a>(ptr: *const Self, name: &str) -> Result<&'a Self::Rust> {
        arg_ref(ptr as *const Self::Rust, name)
    }

    /// Takes back ownership; `None` for NULL.
    fn take(ptr: *mut Self) -> Option<Box<Self::Rust>> {
        if ptr.is_null() {
            return None;
        }
        // SAFETY: `ptr` came from `into_raw` and is freed once (contract).
        Some(unsafe { Box::from_raw(ptr as *mut Self::Rust) })
    }
}

/// For tests of the boundary itself: a status-returning body that panics.
/// Not exported from the shared library.
#[doc(hidden)]
pub fn __boundary_panics_status(out: *mut u64) -> pool_status_t {
    ffi_boundary!(out out = 0; {
        null_out(out, 7);
        panic!("deliberate panic in a test body");
    })
}

/// For tests of the boundary itself: a value-returning body that panics.
#[doc(hidden)]
pub fn __boundary_panics_value() -> usize {
    ffi_boundary!(value 0; {
        if std::hint::black_box(true) {
            panic!("deliberate panic in a value body");
        }
        1
    })
}
