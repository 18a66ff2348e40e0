//! The live pools, by tag, so a call given only a `pool_conn_t`
//! (`pool_execute`, `pool_query`, ...) can find its pool from the tag in the
//! connection id. Holds weak references: the registry never keeps a pool
//! alive; `pool_free` removes the entry.

use std::collections::BTreeMap;

use parking_lot::Mutex;

use crate::backend::AnyBackend;
use crate::error::{Error, Result};
use crate::pool::{ConnId, Pool, WeakPool};

static POOLS: Mutex<BTreeMap<u32, WeakPool<AnyBackend>>> = Mutex::new(BTreeMap::new());

/// Records `pool` under its tag (replacing a dead entry with the same tag).
pub(crate) fn register(pool: &Pool<AnyBackend>) {
    POOLS.lock().insert(pool.tag(), pool.downgrade());
}

/// Forgets the pool with this tag.
pub(crate) fn unregister(tag: u32) {
    POOLS.lock().remove(&tag);
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
    let weak = POOLS.lock().get(&id.pool_tag()).cloned();
    weak.and_then(|w| w.upgrade()).ok_or_else(|| {
        Error::new(
            crate::Status::POOL_ERR_INVALID_HANDLE,
            "argument 'conn' belongs to no live pool (its pool was freed, or the handle is forged)",
        )
    })
}
