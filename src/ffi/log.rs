//! `pool_set_logger`: the pool's log lines to a C callback.

use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::Arc;

use crate::error::pool_status_t;
use crate::ffi::{ffi_boundary, pool_t, ArcHandle};
use crate::pool::{Level, Logger};

/// Log level of errors.
pub const POOL_LOG_ERROR: c_int = 1;
/// Log level of warnings (a leaked connection, a dead connection evicted).
pub const POOL_LOG_WARN: c_int = 2;
/// Log level of notable pool-wide events. Connection events go out at
/// `POOL_LOG_DEBUG`, as peewee's pool logs them.
pub const POOL_LOG_INFO: c_int = 3;
/// Log level of details: connections opened, reused, returned and closed.
pub const POOL_LOG_DEBUG: c_int = 4;

/// A log callback: `user_data` as given to `pool_set_logger`, a
/// `POOL_LOG_*` level, and a NUL-terminated UTF-8 message valid only during
/// the call (copy it to keep it).
pub type pool_log_fn =
    Option<unsafe extern "C" fn(user_data: *mut c_void, level: c_int, message: *const c_char)>;

/// A C callback and its `user_data`, callable from any thread.
struct CLogger {
    f: unsafe extern "C" fn(*mut c_void, c_int, *const c_char),
    user_data: *mut c_void,
}

// SAFETY: `pool_set_logger` documents that the callback is called from any
// thread with this `user_data`; making that safe is the caller's promise.
unsafe impl Send for CLogger {}
unsafe impl Sync for CLogger {}

impl CLogger {
    fn log(&self, level: Level, message: &str) {
        let msg = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
        // SAFETY: a valid function pointer given by the caller, with the
        // caller's user_data and a NUL-terminated message alive for the call.
        unsafe { (self.f)(self.user_data, level as c_int, msg.as_ptr()) }
    }
}

/// Sends the pool's log lines to `fn` instead of stderr.
///
/// - `pool`: the pool.
/// - `fn`: the callback, or NULL to go back to the default (stderr, as
///   the `PEEPOOL_LOG` environment variable says: error, warn, info, debug).
/// - `user_data`: passed to every call of `fn`; not touched by peepool.
///
/// The callback may be called from any thread, the pool's maintenance
/// thread included, possibly from several threads at once, until
/// `pool_set_logger` replaces it or `pool_free` returns. It must not call
/// back into this pool. `user_data` must stay valid that long: both return
/// only once no call of the old callback is in flight, so the old
/// `user_data` may be freed as soon as they return.
///
/// Returns `POOL_OK`; `POOL_ERR_INVALID_ARGUMENT` (NULL `pool`).
/// Thread safety: any thread.
#[no_mangle]
pub extern "C" fn pool_set_logger(
    pool: *mut pool_t,
    r#fn: pool_log_fn,
    user_data: *mut c_void,
) -> pool_status_t {
    ffi_boundary!(; {
        let pool = pool_t::acquire(pool, "pool")?;
        let logger: Option<Logger> = r#fn.map(|f| {
            let c = CLogger { f, user_data };
            Arc::new(move |level: Level, message: &str| c.log(level, message)) as Logger
        });
        pool.set_logger(logger);
        Ok(())
    })
}
