//! `pool_stats`: a snapshot of the pool's counters.

use crate::error::pool_status_t;
use crate::ffi::{arg_out, ffi_boundary, pool_t, ArcHandle};
use crate::pool::Stats;

/// A snapshot of a pool's gauges and counters (all since `pool_new`).
///
/// Gauges: `max_connections` (0 = unlimited), `open` (idle + in use +
/// condemned), `idle`, `in_use`, `waiting` (threads waiting in
/// `pool_connect`). Counters: `opened_total`, `closed_total`, closes by
/// reason (`closed_stale`: lifetime; `closed_idle`: idle_timeout;
/// `closed_dead`: failed check or lost link; `closed_manual`:
/// `pool_manual_close`; `closed_reclaimed`: `pool_close_stale`;
/// `closed_cleared`: `pool_close_idle` / `pool_close_all`), `checkouts`,
/// `timeouts`, `wait_us_total` (microseconds spent waiting, timed-out waits
/// included), `leaks` (connections held past `leak_threshold`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct pool_stats_t {
    pub max_connections: u64,
    pub open: u64,
    pub idle: u64,
    pub in_use: u64,
    pub waiting: u64,
    pub opened_total: u64,
    pub closed_total: u64,
    pub closed_stale: u64,
    pub closed_idle: u64,
    pub closed_dead: u64,
    pub closed_manual: u64,
    pub closed_reclaimed: u64,
    pub closed_cleared: u64,
    pub checkouts: u64,
    pub timeouts: u64,
    pub wait_us_total: u64,
    pub leaks: u64,
}

impl From<Stats> for pool_stats_t {
    fn from(s: Stats) -> pool_stats_t {
        pool_stats_t {
            max_connections: s.max_connections,
            open: s.open,
            idle: s.idle,
            in_use: s.in_use,
            waiting: s.waiting,
            opened_total: s.opened_total,
            closed_total: s.closed_total,
            closed_stale: s.closed_stale,
            closed_idle: s.closed_idle,
            closed_dead: s.closed_dead,
            closed_manual: s.closed_manual,
            closed_reclaimed: s.closed_reclaimed,
            closed_cleared: s.closed_cleared,
            checkouts: s.checkouts,
            timeouts: s.timeouts,
            wait_us_total: s.wait_us_total,
            leaks: s.leaks,
        }
    }
}

/// Fills `out` with a snapshot of the pool's counters (taken under the
/// pool's lock, so consistent with each other).
///
/// - `pool`: the pool.
/// - `out`: caller-owned struct to fill; zeroed on failure.
///
/// Returns `POOL_OK`; `POOL_ERR_INVALID_ARGUMENT` (NULL `pool` or `out`).
/// Thread safety: any thread.
#[no_mangle]
pub extern "C" fn pool_stats(pool: *mut pool_t, out: *mut pool_stats_t) -> pool_status_t {
    ffi_boundary!(out out = pool_stats_t::default(); {
        let pool = pool_t::acquire(pool, "pool")?;
        let out = arg_out(out, "out")?;
        *out = pool.stats().into();
        Ok(())
    })
}
