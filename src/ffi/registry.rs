//! The live pools, by tag, so a call given only a `pool_conn_t`
//! (`pool_execute`, `pool_query`, ...) can find its pool from the tag in the
//! connection id. Holds weak references: the registry never keeps a pool
//! alive; `pool_free` removes the entry. A tag is 12 bits, so with more than
//! 4095 pools alive at once several share one; the pool that owns the id
//! is then the one that answers.

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
    /// over and over skips the registry's lock and map.
    static LAST: RefCell<Option<(u64, u32, WeakPool<AnyBackend>)>> = const { RefCell::new(None) };
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

/// The pool a connection id belongs to; `POOL_ERR_INVALID_HANDLE` for the
/// null handle, a forged tag, or a pool that was freed.
pub(crate) fn pool_of(id: ConnId) -> Result<Pool<AnyBackend>> {
    if id.is_null() {
        return Err(Error::new(
            crate::Status::POOL_ERR_INVALID_HANDLE,
            "argument 'conn' is the null handle (id 0)",
        ));
    }
    let tag = id.pool_tag();
    let cached = LAST
        .try_with(|l| match &*l.borrow() {
            Some((gen, t, pool)) if *t == tag && *gen == GENERATION.load(Ordering::Acquire) => {
                pool.upgrade()
            }
            _ => None,
        })
        .ok()
        .flatten();
    if let Some(pool) = cached {
        return Ok(pool);
    }
    let found = {
        let pools = POOLS.read();
        // Read under the lock: writers bump it while holding the write lock.
        let gen = GENERATION.load(Ordering::Acquire);
        match pools.get(&tag).map(Vec::as_slice) {
            Some([one]) => {
                let _ = LAST.try_with(|l| *l.borrow_mut() = Some((gen, tag, one.clone())));
                one.upgrade()
            }
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
