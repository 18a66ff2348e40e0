//! fork() safety: `pthread_atfork` handlers take every live pool's state
//! lock before `fork()` and release it after, in the parent and in the
//! child, so a child never inherits a lock held by a thread it does not
//! have. The child handler also bumps a global generation; each pool
//! remembers the generation it last saw and, at its first lock in a child,
//! forgets (never closes) every connection it inherited.
//!
//! The process-wide list of pools holds `Weak` references and is touched
//! only when a pool is made or dropped, and around a fork.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once, Weak};

use parking_lot::Mutex;

static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);
static INSTALL: Once = Once::new();

/// What the fork handlers need from a pool, without its backend type.
pub(crate) trait ForkLock: Send + Sync {
    /// Take the pool's state lock and keep it past the return.
    fn lock_for_fork(&self);
    /// Release the lock `lock_for_fork` took (in the parent, or in the child
    /// where the same thread continues).
    ///
    /// # Safety
    /// Only after `lock_for_fork` on this thread, once.
    unsafe fn unlock_after_fork(&self);
}

struct Pools {
    live: Vec<Weak<dyn ForkLock>>,
    /// The pools locked by the prepare handler, until parent/child.
    held: Vec<Arc<dyn ForkLock>>,
}

static POOLS: Mutex<Pools> = Mutex::new(Pools {
    live: Vec::new(),
    held: Vec::new(),
});

extern "C" fn prepare() {
    let mut pools = POOLS.lock();
    let held: Vec<Arc<dyn ForkLock>> = pools.live.iter().filter_map(Weak::upgrade).collect();
    for p in &held {
        p.lock_for_fork();
    }
    pools.held = held;
    // The list stays locked across fork(): no pool comes or goes meanwhile.
    std::mem::forget(pools);
}

/// In the parent and in the child: release what `prepare` took.
fn release_all() {
    // SAFETY: `prepare` ran on this thread (POSIX runs parent/child handlers
    // on the forking thread after its prepare handlers) and left POOLS
    // locked, so nobody else touches the data.
    let held = unsafe { std::mem::take(&mut (*POOLS.data_ptr()).held) };
    for p in &held {
        // SAFETY: locked by `prepare` on this thread.
        unsafe { p.unlock_after_fork() };
    }
    // SAFETY: locked by `prepare`, whose guard was forgotten.
    unsafe { POOLS.force_unlock(parking_lot::lock_api::GuardNoSend::new()) };
    // Dropping a last reference may drop a pool, which unregisters itself:
    // only now that the list is unlocked.
    drop(held);
}

extern "C" fn in_parent() {
    release_all();
}

extern "C" fn in_child() {
    FORK_GENERATION.fetch_add(1, Ordering::SeqCst);
    release_all();
}

/// Register the handlers once per process.
pub(crate) fn install() {
    INSTALL.call_once(|| {
        // SAFETY: the handlers are valid for the life of the process.
        unsafe {
            libc::pthread_atfork(Some(prepare), Some(in_parent), Some(in_child));
        }
    });
}

/// Add a pool to the list the handlers lock (at pool creation).
pub(crate) fn register(pool: Weak<dyn ForkLock>) {
    let mut pools = POOLS.lock();
    pools.live.retain(|w| w.strong_count() > 0);
    pools.live.push(pool);
}

/// Drop dead pools from the list (at pool drop).
pub(crate) fn unregister_dead() {
    POOLS.lock().live.retain(|w| w.strong_count() > 0);
}

/// How many forks this process is from the one that installed the handler.
#[inline]
pub(crate) fn generation() -> u64 {
    FORK_GENERATION.load(Ordering::Relaxed)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use crate::backend::{Backend, Connection};
    use crate::config::PoolOptions;
    use crate::error::Result;
    use crate::pool::Pool;
    use crate::value::{ResultSet, Value};

    /// A backend whose connections do nothing (shared with the core's tests).
    pub(crate) struct Nothing;
    pub(crate) struct NothingConn;

    impl Backend for Nothing {
        type Conn = NothingConn;
        fn connect(&self) -> Result<NothingConn> {
            Ok(NothingConn)
        }
        fn name(&self) -> &'static str {
            "nothing"
        }
    }

    impl Connection for NothingConn {
        fn is_closed(&mut self) -> bool {
            false
        }
        fn ping(&mut self) -> Result<()> {
            Ok(())
        }
        fn in_transaction(&mut self) -> bool {
            false
        }
        fn checks_are_local(&self) -> bool {
            true
        }
        fn execute(&mut self, _: &str, _: &[Value<'_>]) -> Result<u64> {
            Ok(0)
        }
        fn query(&mut self, _: &str, _: &[Value<'_>]) -> Result<Box<ResultSet>> {
            Ok(Box::default())
        }
        fn begin(&mut self) -> Result<()> {
            Ok(())
        }
        fn commit(&mut self) -> Result<()> {
            Ok(())
        }
        fn rollback(&mut self) -> Result<()> {
            Ok(())
        }
    }

    /// A thread holds the pool's lock when another forks: fork waits for it
    /// (the prepare handler), so the child finds the lock free at once and
    /// its pool works.
    #[test]
    fn fork_while_another_thread_holds_the_pool_lock() {
        let pool = Pool::new(Nothing, PoolOptions::default());
        let id = pool.connect().unwrap();
        pool.release(id).unwrap(); // Parked, and this thread's hint.
        let (locked_tx, locked_rx) = mpsc::channel();
        let holder = {
            let pool = pool.clone();
            std::thread::spawn(move || {
                let g = pool.shared().state.lock();
                locked_tx.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(300));
                drop(g);
            })
        };
        locked_rx.recv().unwrap();
        // SAFETY: the child only calls the pool (which the handlers made
        // consistent) and `_exit`.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let free = pool.shared().state.try_lock().is_some();
            // The parent's parked connection is not the child's to take.
            let works = free
                && pool.connect().is_ok_and(|id| pool.release(id).is_ok())
                && pool.stats().opened_total == 1;
            // SAFETY: ends the child without running the parent's destructors.
            unsafe { libc::_exit(if works { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waits for the child just forked.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        holder.join().unwrap();
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "the child found the pool's lock held or its pool broken (status {status})"
        );
        let id = pool.connect().unwrap();
        pool.release(id).unwrap();
    }
}
