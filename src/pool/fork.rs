//! fork() detection: a `pthread_atfork` child handler bumps a global
//! generation; every pool remembers the generation it last saw and, in a
//! child, forgets (never closes) every connection it inherited.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);
static INSTALL: Once = Once::new();

extern "C" fn in_child() {
    FORK_GENERATION.fetch_add(1, Ordering::SeqCst);
}

/// Register the handler once per process.
pub(crate) fn install() {
    INSTALL.call_once(|| {
        // SAFETY: registers a handler that only touches an atomic
        // (async-signal-safe), valid for the life of the process.
        unsafe {
            libc::pthread_atfork(None, None, Some(in_child));
        }
    });
}

/// How many forks this process is from the one that installed the handler.
#[inline]
pub(crate) fn generation() -> u64 {
    FORK_GENERATION.load(Ordering::Relaxed)
}
