//! The live pools, by tag, so a call given only a `pool_conn_t`
//! (`pool_execute`, `pool_query`, ...) can find its pool from the tag in the
//! connection id. Holds weak references: the registry never keeps a pool
//! alive (a thread's one-entry cache keeps the memory of a freed pool until
//! the thread's next lookup); `pool_free` removes the entry. A tag is 12
//! bits, so with more than 4095 pools alive at once several share one; the
//! pool that owns the id is then the one that answers.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;

use crate::backend::AnyBackend;
use crate::error::{Error, Result};
use crate::pool::{ConnId, Pool, WeakPool};

type Registry = BTreeMap<u32, Vec<WeakPool<AnyBackend>>>;

static POOLS: RwLock<Registry> = RwLock::new(BTreeMap::new());

/// Bumped under the write lock by every change to `POOLS`.
static GENERATION: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The thread's last lookup that found the only pool of its tag, with
    /// the registry generation it was made under. While the generation is
    /// unchanged the answer holds, so a thread calling on its connections
    /// over and over skips the registry's lock and map. It holds the pool
    /// itself, not a weak reference: a call then touches no shared
    /// reference count (whose cache line moves between CPUs when threads
    /// call at once). A freed pool's memory is kept until the thread's next
    /// lookup or its exit; `pool_free` has shut it down already.
    static LAST: RefCell<Option<(u64, u32, Pool<AnyBackend>)>> = const { RefCell::new(None) };
}

/// Records `pool` under its tag.
pub(crate) fn register(pool: &Pool<AnyBackend>) {
    let mut pools = POOLS.write();
    let entry = pools.entry(pool.tag()).or_default();
    entry.retain(|w| w.upgrade().is_some());
    entry.push(pool.downgrade());
    GENERATION.fetch_add(1, Ordering::Release);
}

/// Forgets `pool` (and any dead pool under its tag).
pub(crate) fn unregister(pool: &Pool<AnyBackend>) {
    let mut pools = POOLS.write();
    if let Some(entry) = pools.get_mut(&pool.tag()) {
        entry.retain(|w| !w.is(pool) && w.upgrade().is_some());
        if entry.is_empty() {
            pools.remove(&pool.tag());
        }
    }
    GENERATION.fetch_add(1, Ordering::Release);
}

/// Runs `f` on the pool a connection id belongs to; fails with
/// `POOL_ERR_INVALID_HANDLE` for the null handle, a forged tag, or a pool
/// that was freed. The pool stays alive while `f` runs, even if another
/// thread frees it meanwhile (its connections are then revoked).
pub(crate) fn with_pool<R>(
    id: ConnId,
    f: impl FnOnce(&Pool<AnyBackend>) -> Result<R>,
) -> Result<R> {
    if id.is_null() {
        return Err(Error::new(
            crate::Status::POOL_ERR_INVALID_HANDLE,
            "argument 'conn' is the null handle (id 0)",
        ));
    }
    let tag = id.pool_tag();
    let mut f = Some(f);
    // A shared borrow for the call: a call made from inside `f` (a logger
    // callback) may read the cache too, and none can drop the pool.
    let cached = LAST
        .try_with(|l| {
            let last = l.try_borrow().ok()?;
            match &*last {
                Some((gen, t, pool)) if *t == tag && *gen == GENERATION.load(Ordering::Acquire) => {
                    f.take().map(|f| f(pool))
                }
                _ => None,
            }
        })
        .ok()
        .flatten();
    if let Some(r) = cached {
        return r;
    }
    let pool = lookup(id, tag)?;
    match f.take() {
        Some(f) => f(&pool),
        None => unreachable!("`f` runs only on a cache hit, which returned"),
    }
}

/// The registry's answer for `id` (tag `tag`), cached for the thread when
/// it is the only pool of its tag.
fn lookup(id: ConnId, tag: u32) -> Result<Pool<AnyBackend>> {
    let found = {
        let pools = POOLS.read();
        // Read under the lock: writers bump it while holding the write lock.
        let gen = GENERATION.load(Ordering::Acquire);
        match pools.get(&tag).map(Vec::as_slice) {
            Some([one]) => one.upgrade().inspect(|pool| remember(gen, tag, pool)),
            Some(several) => several
                .iter()
                .filter_map(WeakPool::upgrade)
                .find(|p| p.owns(id)),
            None => None,
        }
    };
    found.ok_or_else(|| {
        Error::new(
            crate::Status::POOL_ERR_INVALID_HANDLE,
            "argument 'conn' belongs to no live pool (its pool was freed, or the handle is forged)",
        )
    })
}

/// Caches `pool` for the thread. The entry it replaces is dropped after
/// the cache is let go: dropping a freed pool's last reference shuts it
/// down, which may log, and a logger may call back into the library.
fn remember(gen: u64, tag: u32, pool: &Pool<AnyBackend>) {
    let old = LAST
        .try_with(|l| {
            l.try_borrow_mut()
                .ok()
                .and_then(|mut last| last.replace((gen, tag, pool.clone())))
        })
        .ok()
        .flatten();
    drop(old);
}
