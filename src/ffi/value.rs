//! `pool_value_t`: statement parameters, and the `POOL_TYPE_*` kinds shared
//! with result cells.

use std::ffi::{c_char, c_void, CStr};

use crate::error::{Error, Result};
use crate::ffi::ffi_boundary;
use crate::value::Value;

/// SQL NULL.
pub const POOL_TYPE_NULL: u32 = 0;
/// A 64-bit signed integer (`i64`).
pub const POOL_TYPE_INT64: u32 = 1;
/// A double (`f64`).
pub const POOL_TYPE_DOUBLE: u32 = 2;
/// UTF-8 text (`data`, `len` bytes, no NUL needed).
pub const POOL_TYPE_TEXT: u32 = 3;
/// Binary data (`data`, `len` bytes).
pub const POOL_TYPE_BLOB: u32 = 4;
/// An exact decimal kept as text (result cells only).
pub const POOL_TYPE_NUMERIC: u32 = 5;
/// Any other type, readable as text (result cells only).
pub const POOL_TYPE_OTHER: u32 = 6;

/// A statement parameter, passed by value in an array to `pool_execute` /
/// `pool_query`. Build one with `pool_null`, `pool_int64`, `pool_double`,
/// `pool_text`, `pool_text_n` or `pool_blob`, or fill the fields yourself:
///
/// - `type`: one of `POOL_TYPE_NULL`, `POOL_TYPE_INT64`, `POOL_TYPE_DOUBLE`,
///   `POOL_TYPE_TEXT`, `POOL_TYPE_BLOB` (a plain `uint32_t`, so no invalid
///   enum can be passed; any other value is `POOL_ERR_INVALID_ARGUMENT`).
/// - `i64`: the value of an INT64. - `f64`: the value of a DOUBLE.
/// - `data`, `len`: TEXT (UTF-8, `len` bytes, no NUL needed) or BLOB bytes;
///   `data` may be NULL only when `len` is 0.
///
/// The value borrows `data`: it must stay valid until the call that uses it
/// returns; peepool copies what it keeps.
/// cbindgen:field-names=[type, i64, f64, data, len]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct pool_value_t {
    pub kind: u32,
    pub i64: i64,
    pub f64: f64,
    pub data: *const c_void,
    pub len: usize,
}

impl pool_value_t {
    const NULL: pool_value_t = pool_value_t {
        kind: POOL_TYPE_NULL,
        i64: 0,
        f64: 0.0,
        data: std::ptr::null(),
        len: 0,
    };
}

/// The bytes of a TEXT or BLOB parameter, checked.
fn bytes<'a>(v: &pool_value_t, n: usize, what: &str) -> Result<&'a [u8]> {
    if v.len == 0 {
        return Ok(&[]);
    }
    if v.data.is_null() {
        return Err(Error::invalid_argument(format!(
            "parameter {n} ({what}) has data NULL with len {}",
            v.len
        )));
    }
    if v.len > isize::MAX as usize {
        return Err(Error::invalid_argument(format!(
            "parameter {n} ({what}) has an impossible len {}",
            v.len
        )));
    }
    // SAFETY: the caller promises `data` points at `len` readable bytes that
    // stay valid for the call (documented on pool_value_t).
    Ok(unsafe { std::slice::from_raw_parts(v.data as *const u8, v.len) })
}

/// Converts the C parameter array into `Value`s borrowing its data, naming
/// the first bad parameter (counted from 1).
/// Converted parameters: up to four on the stack (no allocation for the
/// common statement), more in a `Vec`.
pub(crate) struct Params<'a> {
    inline: [Value<'a>; 4],
    len: usize,
    heap: Vec<Value<'a>>,
}

impl<'a> std::ops::Deref for Params<'a> {
    type Target = [Value<'a>];

    fn deref(&self) -> &[Value<'a>] {
        if self.len <= self.inline.len() {
            &self.inline[..self.len]
        } else {
            &self.heap
        }
    }
}

impl<'a> Params<'a> {
    pub(crate) fn new() -> Params<'a> {
        Params {
            inline: [Value::Null; 4],
            len: 0,
            heap: Vec::new(),
        }
    }
}

/// Converts the C parameters into `out` (filled in place: the caller's
/// stack slot, not a large value moved through a `Result`).
pub(crate) fn params_to_values<'a>(
    params: *const pool_value_t,
    nparams: usize,
    out: &mut Params<'a>,
) -> Result<()> {
    if nparams == 0 {
        return Ok(());
    }
    if params.is_null() {
        return Err(Error::invalid_argument(format!(
            "argument 'params' is NULL but 'nparams' is {nparams}"
        )));
    }
    if nparams > isize::MAX as usize / std::mem::size_of::<pool_value_t>() {
        return Err(Error::invalid_argument(format!(
            "argument 'nparams' is too large ({nparams})"
        )));
    }
    // SAFETY: `params` points at `nparams` values for the call's duration.
    let raw = unsafe { std::slice::from_raw_parts(params, nparams) };
    if nparams > out.inline.len() {
        out.heap.reserve_exact(nparams);
    }
    for (i, v) in raw.iter().enumerate() {
        let value = param_value(v, i + 1)?;
        match out.inline.get_mut(i) {
            Some(slot) if nparams <= 4 => *slot = value,
            _ => out.heap.push(value),
        }
    }
    out.len = nparams;
    Ok(())
}

fn param_value<'a>(v: &pool_value_t, n: usize) -> Result<Value<'a>> {
    Ok(match v.kind {
        POOL_TYPE_NULL => Value::Null,
        POOL_TYPE_INT64 => Value::Int(v.i64),
        POOL_TYPE_DOUBLE => Value::Double(v.f64),
        POOL_TYPE_TEXT => Value::Text(std::str::from_utf8(bytes(v, n, "text")?).map_err(|_| {
            Error::invalid_argument(format!("parameter {n} (text) is not valid UTF-8"))
        })?),
        POOL_TYPE_BLOB => Value::Blob(bytes(v, n, "blob")?),
        t => {
            return Err(Error::invalid_argument(format!(
                "parameter {n} has unknown type {t}"
            )))
        }
    })
}

/// A NULL parameter. Never fails; thread-safe.
#[no_mangle]
pub extern "C" fn pool_null() -> pool_value_t {
    ffi_boundary!(value pool_value_t::NULL; { pool_value_t::NULL })
}

/// An INT64 parameter holding `v`. Never fails; thread-safe.
#[no_mangle]
pub extern "C" fn pool_int64(v: i64) -> pool_value_t {
    ffi_boundary!(value pool_value_t::NULL; {
        pool_value_t { kind: POOL_TYPE_INT64, i64: v, ..pool_value_t::NULL }
    })
}

/// A DOUBLE parameter holding `v`. Never fails; thread-safe.
#[no_mangle]
pub extern "C" fn pool_double(v: f64) -> pool_value_t {
    ffi_boundary!(value pool_value_t::NULL; {
        pool_value_t { kind: POOL_TYPE_DOUBLE, f64: v, ..pool_value_t::NULL }
    })
}

/// A TEXT parameter from the NUL-terminated string `s` (its bytes without
/// the NUL); NULL `s` gives a NULL parameter. The value borrows `s`, which
/// must stay valid until the statement using it returns. UTF-8 is checked
/// by `pool_execute`/`pool_query`. Thread-safe.
#[no_mangle]
pub extern "C" fn pool_text(s: *const c_char) -> pool_value_t {
    ffi_boundary!(value pool_value_t::NULL; {
        if s.is_null() {
            return pool_value_t::NULL;
        }
        // SAFETY: non-NULL and NUL-terminated by contract.
        let len = unsafe { CStr::from_ptr(s) }.to_bytes().len();
        pool_value_t { kind: POOL_TYPE_TEXT, data: s as *const c_void, len, ..pool_value_t::NULL }
    })
}

/// A TEXT parameter of `len` bytes at `s` (no NUL needed; may contain
/// NULs); NULL `s` gives a NULL parameter. Borrows `s` like `pool_text`.
/// Thread-safe.
#[no_mangle]
pub extern "C" fn pool_text_n(s: *const c_char, len: usize) -> pool_value_t {
    ffi_boundary!(value pool_value_t::NULL; {
        if s.is_null() {
            return pool_value_t::NULL;
        }
        pool_value_t { kind: POOL_TYPE_TEXT, data: s as *const c_void, len, ..pool_value_t::NULL }
    })
}

/// A BLOB parameter of `len` bytes at `data`. `data` may be NULL when `len`
/// is 0 (an empty blob); NULL with `len` > 0 is refused, naming the
/// parameter, by the call that uses it. Borrows `data` for that call.
/// Thread-safe.
#[no_mangle]
pub extern "C" fn pool_blob(data: *const c_void, len: usize) -> pool_value_t {
    ffi_boundary!(value pool_value_t::NULL; {
        pool_value_t { kind: POOL_TYPE_BLOB, data, len, ..pool_value_t::NULL }
    })
}
