//! Per-thread connections (`thread_connect`): a thread-local list of
//! (pool tag, weak hook to the pool, id). When the thread exits, its
//! connections go back to their pools; a pool already gone is skipped.

use std::cell::RefCell;
use std::sync::Weak;

use super::ConnId;

/// What the thread-exit hook needs from a pool, without its backend type.
pub(crate) trait ThreadHook: Send + Sync {
    fn release_from_thread(&self, id: ConnId);
}

struct Entry {
    tag: u32,
    pool: Weak<dyn ThreadHook>,
    id: ConnId,
}

#[derive(Default)]
struct ThreadConns(Vec<Entry>);

impl Drop for ThreadConns {
    fn drop(&mut self) {
        for e in self.0.drain(..) {
            if let Some(pool) = e.pool.upgrade() {
                // Never panic in a thread-local destructor.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    pool.release_from_thread(e.id)
                }));
            }
        }
    }
}

thread_local! {
    static THREAD_CONNS: RefCell<ThreadConns> = RefCell::new(ThreadConns::default());
}

fn same_pool(e: &Entry, tag: u32, pool: &Weak<dyn ThreadHook>) -> bool {
    e.tag == tag && Weak::ptr_eq(&e.pool, pool)
}

/// The id this thread holds for the pool, if any.
pub(crate) fn get(tag: u32, pool: &Weak<dyn ThreadHook>) -> Option<ConnId> {
    THREAD_CONNS
        .try_with(|c| {
            let mut c = c.try_borrow_mut().ok()?;
            // Drop entries of pools that are gone (their tag may be reused).
            c.0.retain(|e| e.pool.strong_count() > 0);
            c.0.iter().find(|e| same_pool(e, tag, pool)).map(|e| e.id)
        })
        .ok()
        .flatten()
}

/// Remember `id` as this thread's connection; false when the thread is
/// exiting and can hold none.
pub(crate) fn set(tag: u32, pool: Weak<dyn ThreadHook>, id: ConnId) -> bool {
    THREAD_CONNS
        .try_with(|c| match c.try_borrow_mut() {
            Ok(mut c) => {
                c.0.retain(|e| !same_pool(e, tag, &pool));
                c.0.push(Entry { tag, pool, id });
                true
            }
            Err(_) => false,
        })
        .unwrap_or(false)
}

/// Forget this thread's connection for the pool, returning it.
pub(crate) fn take(tag: u32, pool: &Weak<dyn ThreadHook>) -> Option<ConnId> {
    THREAD_CONNS
        .try_with(|c| {
            let mut c = c.try_borrow_mut().ok()?;
            let i = c.0.iter().position(|e| same_pool(e, tag, pool))?;
            Some(c.0.swap_remove(i).id)
        })
        .ok()
        .flatten()
}
