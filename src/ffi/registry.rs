//! The live pools, by tag, so a call given only a `pool_conn_t`
//! (`pool_execute`, `pool_query`, ...) can find its pool from the tag in the
//! connection id. Holds weak references: the registry never keeps a pool
//! alive; `pool_free` removes the entry. A tag is 12 bits, so with more than
//! 4095 pools alive at once several share one; the pool that owns the id
//! is then the one that answers.

use std::collections::BTreeMap;

use parking_lot::RwLock;

use crate::backend::AnyBackend;
use crate::error::{Error, Result};
use crate::pool::{ConnId, Pool, WeakPool};

type Registry = BTreeMap<u32, Vec<WeakPool<AnyBackend>>>;

static POOLS: RwLock<Registry> = RwLock::new(BTreeMap::new());

/// Records `pool` under its tag.
pub(crate) fn register(pool: &Pool<AnyBackend>) {
    let mut pools = POOLS.write();
    let entry = pools.entry(pool.tag()).or_default();
    entry.retain(|w| w.upgrade().is_some());
    entry.push(pool.downgrade());
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
    let found = {
        let pools = POOLS.read();
        match pools.get(&id.pool_tag()).map(Vec::as_slice) {
            Some([one]) => one.upgrade(),
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
