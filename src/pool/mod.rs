//! The generic pool core: r2d2's shape with HikariCP's fairness, and
//! HikariCP's thread-affine shortcut.
//!
//! One `parking_lot::Mutex<State>` guards a slot table, a LIFO idle list and
//! a FIFO queue of waiters. No driver call that can do I/O (connect, ping,
//! rollback, execute, close) ever runs under the lock. Each slot's
//! connection lives in a `ConnCell` that never moves, whose atomic word
//! holds the id's generation and who governs the slot (see `cell`):
//!
//! - A statement runs on the connection in its cell: one compare-and-swap
//!   marks it "in a call", one ends the call (and records whether the
//!   connection came out clean: checks local, no transaction, not broken).
//! - A release of a clean connection within its lifetime, while no thread
//!   waits, parks it in its cell with one compare-and-swap and remembers
//!   the slot in a thread-local hint; the same thread's next checkout takes
//!   it back with one compare-and-swap when the clock says no check is due
//!   (within its lifetime and `check_idle`). A parked connection counts as
//!   idle; any other checkout through the lock moves the parked ones into
//!   the idle list first, so that the list stays ordered by return.
//! - Everything else (a connection to open, ping, roll back, evict; a
//!   waiter; `close_*`, `shutdown`, maintenance, stats) takes the lock,
//!   which claims a cell from the paths without it by a compare-and-swap.
//!   `is_closed` and `in_transaction` run under the lock only when the
//!   connection says they are plain memory reads (`checks_are_local`:
//!   SQLite, PostgreSQL), which makes a checkout and a release one lock
//!   round trip each even there; otherwise they run outside it.
//!
//! Waiters: a returned connection goes to the idle list (for the next
//! checkout, usually the releasing thread's) while no waiter has waited
//! `HANDOFF_AFTER`; once one has, every returned connection is handed
//! directly to the waiters in arrival order.
//!
//! Counting (what [`Stats`] reports): `open` is every connection the pool
//! owns — idle, checked out, being checked or returned, condemned but not yet
//! closed; connects still in progress are not in `open` but count against
//! `max_connections` with it. `in_use = open - idle`. `waiting` is the number
//! of threads queued in `connect`. `timeouts` counts every `connect` that
//! ended in `POOL_ERR_EXHAUSTED` (at once or after waiting).
//!
//! No FFI and no SQL driver code lives here.

use std::collections::VecDeque;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::thread::Thread;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::backend::{Backend, Connection};
use crate::config::{PoolOptions, WaitTimeout};
use crate::error::{Error, Result, Status};
use crate::value::{ResultSet, Value};

mod cell;
mod clock;
mod fork;
pub(crate) mod log;
mod maintenance;
mod tag;
#[cfg(test)]
mod tests;
mod thread;

pub use log::{Level, Logger};

use cell::{
    gen_of, word, Cells, ConnCell, W_CALL, W_CLEAN, W_CLOSE, W_LOCKED, W_LOST, W_OUT, W_PARKED,
    W_REVOKED, W_STATE,
};
use clock::{now_ns, ns, Rng};
use log::{plog, Log};

/// A connection handle: pool tag (bits 63..52, never 0), slot index
/// (51..32) and generation (31..0, never 0). 0 is the null handle.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ConnId(pub u64);

const SLOT_BITS: u32 = 20;
const MAX_SLOTS: usize = 1 << SLOT_BITS;

impl ConnId {
    pub const NULL: ConnId = ConnId(0);

    fn new(tag: u32, slot: usize, gen: u32) -> ConnId {
        ConnId(
            ((tag as u64 & 0xfff) << 52)
                | (((slot as u64) & (MAX_SLOTS as u64 - 1)) << 32)
                | gen as u64,
        )
    }

    pub fn pool_tag(self) -> u32 {
        (self.0 >> 52) as u32
    }

    pub fn is_null(self) -> bool {
        self.0 == 0
    }

    fn slot(self) -> usize {
        ((self.0 >> 32) as usize) & (MAX_SLOTS - 1)
    }

    fn generation(self) -> u32 {
        self.0 as u32
    }
}

/// A snapshot of the pool's gauges and counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
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

/// Why a connection was closed; each close is counted once, under one.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Reason {
    /// Past its lifetime (`stale_timeout`).
    Stale,
    /// Idle longer than `idle_timeout`.
    Idle,
    /// Failed a check, a rollback, or lost its link.
    Dead,
    /// `manual_close`.
    Manual,
    /// `close_stale`.
    Reclaimed,
    /// `close_idle`, `close_all`, `shutdown`.
    Cleared,
}

impl Reason {
    fn name(self) -> &'static str {
        match self {
            Reason::Stale => "stale",
            Reason::Idle => "idle",
            Reason::Dead => "dead",
            Reason::Manual => "manual",
            Reason::Reclaimed => "reclaimed",
            Reason::Cleared => "cleared",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum SlotState {
    /// No connection; on the free-slot list.
    Free,
    /// In the idle list, connection inside.
    Idle,
    /// Taken off the idle list (or made) for one checkout: being checked, or
    /// granted to a waiter. Not in the idle list, not yet handed out.
    Reserved,
    /// Checked out or parked: the cell's word says which (`W_OUT`,
    /// `W_CALL`, `W_PARKED`), and threads change it without the lock.
    Out,
    /// Being released: in_transaction/rollback run outside the lock.
    Returning,
    /// A fork child's slot whose connection a call of the parent was using
    /// when the process forked: never used again, its connection forgotten.
    Retired,
}

/// What only holders of the pool's lock read and write about a slot; the
/// connection and what the paths without the lock need are in its
/// [`ConnCell`], at the same index.
struct Slot {
    state: SlotState,
    /// Serial number for logs ("connection 7").
    serial: u64,
    holder: Option<Thread>,
    leak_reported: bool,
    /// Close when it comes back (close_all) while the lock governs it;
    /// `W_CLOSE` in the cell's word once it is out.
    close_on_return: Option<Reason>,
    /// Revoked while a call was in flight (`W_REVOKED`): why it is closed
    /// when the call returns (close_stale, shutdown).
    revoked: Option<Reason>,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            state: SlotState::Free,
            serial: 0,
            holder: None,
            leak_reported: false,
            close_on_return: None,
            revoked: None,
        }
    }
}

const GRANT_NONE: u64 = 0;
const GRANT_PERMIT: u64 = 1;
const GRANT_CLOSED: u64 = 2;
const GRANT_SLOT_BASE: u64 = 3;

/// A thread queued in `connect`. `grant` is written and read only under
/// the pool's lock (the atomic is just for interior mutability).
struct Waiter {
    cv: Condvar,
    grant: AtomicU64,
    /// Has waited longer than `HANDOFF_AFTER` (counted in `State::overdue`).
    overdue: AtomicBool,
}

/// A thread counted in `Shared::nwait` until this drops.
struct Registered<'a>(&'a AtomicUsize);

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How long a waiter may be passed over. A connection released while no
/// waiter has waited this long goes to the idle list, where the releasing
/// thread (or any thread arriving) takes it again without a sleep and a
/// wake-up; once the oldest waiter has waited this long, every connection
/// that comes back is handed to the waiters in arrival order. So waiters
/// past this bound are served strictly first come, first served, and no
/// waiter waits much longer than this bound plus its turn in the queue.
/// (parking_lot's eventual fairness, with a bound of 0.5 ms rather than
/// its random ~0.5 ms.)
const HANDOFF_AFTER: Duration = Duration::from_micros(500);

#[derive(Default)]
struct Counters {
    opened_total: u64,
    closed_stale: u64,
    closed_idle: u64,
    closed_dead: u64,
    closed_manual: u64,
    closed_reclaimed: u64,
    closed_cleared: u64,
    checkouts: u64,
    timeouts: u64,
    wait_us_total: u64,
    leaks: u64,
}

impl Counters {
    fn count_close(&mut self, reason: Reason) {
        match reason {
            Reason::Stale => self.closed_stale += 1,
            Reason::Idle => self.closed_idle += 1,
            Reason::Dead => self.closed_dead += 1,
            Reason::Manual => self.closed_manual += 1,
            Reason::Reclaimed => self.closed_reclaimed += 1,
            Reason::Cleared => self.closed_cleared += 1,
        }
    }

    fn closed_total(&self) -> u64 {
        self.closed_stale
            + self.closed_idle
            + self.closed_dead
            + self.closed_manual
            + self.closed_reclaimed
            + self.closed_cleared
    }
}

struct State<C> {
    slots: Vec<Slot>,
    /// The slots' cells (shared with `Shared::cells`).
    cells: Arc<Cells<C>>,
    free_slots: Vec<u32>,
    /// LIFO: the most recently returned is last.
    idle: Vec<u32>,
    waiters: VecDeque<Arc<Waiter>>,
    /// Waiters that have waited longer than `HANDOFF_AFTER`.
    overdue: usize,
    /// Connections owned (see the module doc).
    open: usize,
    /// Connects in progress, counted against max_connections.
    pending: usize,
    closed: bool,
    /// The fork generation this state belongs to.
    fork_gen: u64,
    rng: Rng,
    next_serial: u64,
    counters: Counters,
    last_connect_error: Option<String>,
}

/// What a checkout's check under the lock says (`check_in_memory`).
enum Verdict {
    Alive,
    /// Past its lifetime.
    Stale,
    /// Its in-memory check failed.
    Dead,
    /// Only a check outside the lock can tell: with a ping when it has
    /// been idle longer than `check_idle`.
    NeedsIo {
        need_ping: bool,
    },
}

/// What `connect` does next.
enum Next {
    Search,
    /// Check and hand out a Reserved slot.
    Check(usize),
    /// Open a new connection; `pending` already counts it.
    Open,
}

pub(crate) struct Shared<B: Backend> {
    backend: B,
    options: PoolOptions,
    tag: u32,
    state: Mutex<State<B::Conn>>,
    /// The slots' connections, reached without the lock by the paths that
    /// need none (see `cell`).
    cells: Arc<Cells<B::Conn>>,
    /// Threads registered to wait in `connect`: while any is, a release
    /// goes through the lock (to the idle list and the waiters) instead of
    /// parking its connection.
    nwait: AtomicUsize,
    /// Wakes the maintenance thread (shutdown).
    maint_cv: Condvar,
    /// The maintenance thread, joined by `shutdown`.
    maint: maintenance::Thread,
    log: Log,
    /// Fork generation last seen (fast check without the lock).
    fork_gen: AtomicU64,
    /// Leak detection is on: checkouts remember their thread.
    track_holder: bool,
    /// `options.check_idle` in nanoseconds.
    check_idle_ns: u64,
}

/// A connection pool. Cheap to clone (an `Arc`); `Send + Sync`. Dropping
/// the last clone shuts the pool down.
pub struct Pool<B: Backend> {
    handle: Arc<Handle<B>>,
}

/// Owns the pool's lifetime: its drop is the last `Pool` clone going away.
struct Handle<B: Backend> {
    shared: Arc<Shared<B>>,
}

impl<B: Backend> Drop for Handle<B> {
    fn drop(&mut self) {
        self.shared.shutdown();
    }
}

/// A pool reference that does not keep it open.
pub struct WeakPool<B: Backend> {
    handle: Weak<Handle<B>>,
}

impl<B: Backend> Clone for WeakPool<B> {
    fn clone(&self) -> Self {
        WeakPool {
            handle: self.handle.clone(),
        }
    }
}

impl<B: Backend> WeakPool<B> {
    pub fn upgrade(&self) -> Option<Pool<B>> {
        self.handle.upgrade().map(|handle| Pool { handle })
    }

    /// Whether this refers to `pool` (the same pool, not an equal one).
    pub fn is(&self, pool: &Pool<B>) -> bool {
        std::ptr::eq(self.handle.as_ptr(), Arc::as_ptr(&pool.handle))
    }
}

impl<B: Backend> Clone for Pool<B> {
    fn clone(&self) -> Self {
        Pool {
            handle: self.handle.clone(),
        }
    }
}

impl<B: Backend> Drop for Shared<B> {
    fn drop(&mut self) {
        let st = self.state.get_mut();
        let same_process = st.fork_gen == fork::generation();
        for (idx, slot) in st.slots.iter().enumerate() {
            let Some(cell) = st.cells.get(idx) else {
                continue;
            };
            // SAFETY: `&mut self`: no other thread reaches any cell.
            let Some(c) = unsafe { cell.conn() }.take() else {
                continue;
            };
            if same_process && slot.state != SlotState::Retired {
                c.close();
            } else {
                std::mem::forget(c);
            }
        }
        tag::release(self.tag);
        fork::unregister_dead();
    }
}

impl<B: Backend> fork::ForkLock for Shared<B> {
    fn lock_for_fork(&self) {
        std::mem::forget(self.state.lock());
    }

    unsafe fn unlock_after_fork(&self) {
        // SAFETY: the caller took the lock with `lock_for_fork` on this
        // thread and forgot its guard.
        unsafe {
            self.state
                .force_unlock(parking_lot::lock_api::GuardNoSend::new())
        }
    }
}

impl<B: Backend> Pool<B> {
    /// Make a pool. Opens nothing itself; starts the maintenance thread
    /// when `options.needs_maintenance()`.
    pub fn new(backend: B, options: PoolOptions) -> Pool<B> {
        fork::install();
        let tag = tag::allocate();
        let seed = now_ns() ^ ((tag as u64) << 40) ^ (&options as *const _ as u64);
        let mut rng = Rng::new(seed);
        // Random first generations make a dropped pool's ids unlikely to
        // match a later pool that reuses its tag.
        let _ = rng.next_u64();
        let fork_gen = fork::generation();
        let cells = Arc::new(Cells::new());
        let shared = Arc::new(Shared {
            backend,
            tag,
            cells: cells.clone(),
            nwait: AtomicUsize::new(0),
            state: Mutex::new(State {
                slots: Vec::new(),
                cells,
                free_slots: Vec::new(),
                idle: Vec::new(),
                waiters: VecDeque::new(),
                overdue: 0,
                open: 0,
                pending: 0,
                closed: false,
                fork_gen,
                rng,
                next_serial: 1,
                counters: Counters::default(),
                last_connect_error: None,
            }),
            maint_cv: Condvar::new(),
            maint: maintenance::Thread::default(),
            log: Log::from_env(),
            fork_gen: AtomicU64::new(fork_gen),
            track_holder: options.leak_threshold.is_some(),
            check_idle_ns: ns(options.check_idle),
            options,
        });
        fork::register(Arc::downgrade(&shared) as Weak<dyn fork::ForkLock>);
        if shared.options.needs_maintenance() {
            maintenance::start(&shared);
        }
        Pool {
            handle: Arc::new(Handle { shared }),
        }
    }

    #[inline]
    fn shared(&self) -> &Shared<B> {
        &self.handle.shared
    }

    pub fn tag(&self) -> u32 {
        self.shared().tag
    }

    /// Whether `id` is a connection this pool has checked out now. Only
    /// needed to tell apart pools that share a tag (more than 4095 alive at
    /// once); takes the pool's lock.
    pub fn owns(&self, id: ConnId) -> bool {
        self.shared().is_valid(id)
    }

    pub fn downgrade(&self) -> WeakPool<B> {
        WeakPool {
            handle: Arc::downgrade(&self.handle),
        }
    }

    pub fn options(&self) -> &PoolOptions {
        &self.shared().options
    }

    pub fn backend(&self) -> &B {
        &self.shared().backend
    }

    /// Check out a connection: the most recently returned idle one, or a new
    /// one; when full, wait as `options.timeout` says (first come, first
    /// served once a waiter has waited `HANDOFF_AFTER`; direct handoff).
    pub fn connect(&self) -> Result<ConnId> {
        self.shared().connect()
    }

    /// `connect`'s common case alone: the most recently returned idle
    /// connection, checked out when checking it reads only memory (SQLite;
    /// PostgreSQL within `check_idle` of its last use). `None`
    /// when `connect` would open a connection, probe one, evict one or
    /// wait; or when the pool is closed.
    pub fn connect_hot(&self) -> Option<ConnId> {
        self.shared().connect_hot()
    }

    /// Give a connection back (rolled back if in a transaction).
    pub fn release(&self, id: ConnId) -> Result<()> {
        self.shared().release(id)
    }

    /// Close a checked-out connection for good instead of returning it.
    pub fn manual_close(&self, id: ConnId) -> Result<()> {
        self.shared().manual_close(id)
    }

    /// Close every idle connection; how many.
    pub fn close_idle(&self) -> usize {
        self.shared().close_idle()
    }

    /// Condemn connections checked out for `age` or longer: closed now, or
    /// when the call in flight returns; their ids become invalid. How many.
    pub fn close_stale(&self, age: Duration) -> usize {
        self.shared().close_stale(age)
    }

    /// Close idle connections now and those in use when they come back.
    pub fn close_all(&self) {
        self.shared().close_all()
    }

    /// The calling thread's connection: the same id until `thread_release`
    /// (or `release` of it); given back when the thread exits.
    pub fn thread_connect(&self) -> Result<ConnId> {
        let shared = &self.handle.shared;
        let hook: Weak<dyn thread::ThreadHook> =
            Arc::downgrade(shared) as Weak<dyn thread::ThreadHook>;
        if let Some(id) = thread::get(shared.tag, &hook) {
            if shared.is_broken(id) {
                // Its link is lost: handing it back would fail every call
                // for ever; releasing it evicts it as dead.
                thread::take(shared.tag, &hook);
                let _ = shared.release(id);
            } else if shared.is_valid(id) {
                return Ok(id);
            } else {
                thread::take(shared.tag, &hook);
            }
        }
        let id = shared.connect()?;
        thread::set(shared.tag, hook, id);
        Ok(id)
    }

    /// Give back the calling thread's connection; Ok when it holds none.
    pub fn thread_release(&self) -> Result<()> {
        let shared = &self.handle.shared;
        let hook: Weak<dyn thread::ThreadHook> =
            Arc::downgrade(shared) as Weak<dyn thread::ThreadHook>;
        match thread::take(shared.tag, &hook) {
            Some(id) if shared.is_valid(id) => shared.release(id),
            _ => Ok(()),
        }
    }

    pub fn stats(&self) -> Stats {
        self.shared().stats()
    }

    /// Set (or with `None` remove) the log callback. Without one,
    /// `PEEPOOL_LOG` (read when the pool was made) says what goes to stderr.
    pub fn set_logger(&self, logger: Option<Logger>) {
        self.shared().log.set_logger(logger)
    }

    /// Run `f` on the connection, outside the pool's lock. A second thread
    /// meanwhile gets `POOL_ERR_BUSY`. An error that says the link is gone
    /// marks the connection for eviction on release.
    pub fn with_conn<R>(&self, id: ConnId, f: impl FnOnce(&mut B::Conn) -> Result<R>) -> Result<R> {
        self.shared().with_conn(id, f)
    }

    pub fn execute(&self, id: ConnId, sql: &str, params: &[Value<'_>]) -> Result<u64> {
        self.with_conn(id, |c| c.execute(sql, params))
    }

    pub fn query(&self, id: ConnId, sql: &str, params: &[Value<'_>]) -> Result<Box<ResultSet>> {
        self.with_conn(id, |c| c.query(sql, params))
    }

    pub fn begin(&self, id: ConnId) -> Result<()> {
        self.with_conn(id, |c| c.begin())
    }

    pub fn commit(&self, id: ConnId) -> Result<()> {
        self.with_conn(id, |c| c.commit())
    }

    pub fn rollback(&self, id: ConnId) -> Result<()> {
        self.with_conn(id, |c| c.rollback())
    }

    /// Close the pool: waiters get `POOL_ERR_CLOSED`, idle connections are
    /// closed, checked-out ones revoked (closed now, or when the call in
    /// flight returns), the maintenance thread stops. Idempotent.
    pub fn shutdown(&self) {
        self.shared().shutdown()
    }

    /// Check out a connection as an RAII guard that releases it on drop.
    pub fn get(&self) -> Result<PooledConn<'_, B>> {
        let id = self.connect()?;
        Ok(PooledConn {
            pool: self,
            id,
            done: false,
        })
    }
}

/// A checked-out connection for Rust users; released when dropped.
pub struct PooledConn<'a, B: Backend> {
    pool: &'a Pool<B>,
    id: ConnId,
    done: bool,
}

impl<B: Backend> PooledConn<'_, B> {
    pub fn id(&self) -> ConnId {
        self.id
    }

    pub fn execute(&self, sql: &str, params: &[Value<'_>]) -> Result<u64> {
        self.pool.execute(self.id, sql, params)
    }

    pub fn query(&self, sql: &str, params: &[Value<'_>]) -> Result<Box<ResultSet>> {
        self.pool.query(self.id, sql, params)
    }

    pub fn begin(&self) -> Result<()> {
        self.pool.begin(self.id)
    }

    pub fn commit(&self) -> Result<()> {
        self.pool.commit(self.id)
    }

    pub fn rollback(&self) -> Result<()> {
        self.pool.rollback(self.id)
    }

    /// Run `f` on the underlying connection.
    pub fn with_conn<R>(&self, f: impl FnOnce(&mut B::Conn) -> Result<R>) -> Result<R> {
        self.pool.with_conn(self.id, f)
    }

    /// Close the connection for good instead of returning it.
    pub fn close_for_good(mut self) -> Result<()> {
        self.done = true;
        self.pool.manual_close(self.id)
    }
}

impl<B: Backend> Drop for PooledConn<'_, B> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.pool.release(self.id);
        }
    }
}

impl<B: Backend> thread::ThreadHook for Shared<B> {
    fn release_from_thread(&self, id: ConnId) {
        let _ = self.release(id);
    }
}

type Guard<'a, C> = MutexGuard<'a, State<C>>;

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}

impl<C: Connection> State<C> {
    fn has_capacity(&self, max: usize) -> bool {
        max == 0 || self.open + self.pending < max
    }

    fn next_gen(gen: u32) -> u32 {
        match gen.wrapping_add(1) {
            0 => 1,
            g => g,
        }
    }

    /// The cell of a slot (every slot has one: `install` makes it first).
    #[inline]
    fn cell(&self, idx: usize) -> &ConnCell<C> {
        match self.cells.get(idx) {
            Some(c) => c,
            None => unreachable!("slot {idx} has no cell"),
        }
    }

    /// The connection of a slot the lock governs (`W_LOCKED`); `None` when
    /// it has none or a ping or rollback has it out.
    #[inline]
    fn conn_mut(&mut self, idx: usize) -> Option<&mut C> {
        let cell = self.cell(idx);
        debug_assert_eq!(cell.word.load(Ordering::Relaxed) & W_STATE, W_LOCKED);
        // SAFETY: `&mut self` is the lock's guard and the word is
        // `W_LOCKED`: nothing else reaches the connection (see `cell`).
        unsafe { cell.conn() }.as_mut()
    }

    /// Take the connection out of a slot the lock governs, to ping or roll
    /// it back outside the lock; `put_conn` puts it back.
    fn take_conn(&mut self, idx: usize) -> Option<C> {
        let cell = self.cell(idx);
        debug_assert_eq!(cell.word.load(Ordering::Relaxed) & W_STATE, W_LOCKED);
        // SAFETY: as in `conn_mut`.
        unsafe { cell.conn() }.take()
    }

    fn put_conn(&mut self, idx: usize, conn: C) {
        let cell = self.cell(idx);
        // SAFETY: as in `conn_mut`.
        *unsafe { cell.conn() } = Some(conn);
    }

    /// Put a new connection in a slot (state Reserved, or Idle when `idle`).
    fn install(&mut self, conn: C, now: u64, options: &PoolOptions, idle: bool) -> usize {
        let expires_at = match options.stale_timeout {
            Some(d) => {
                let life = ns(d) as f64 * (1.0 - self.rng.unit() * options.stale_jitter);
                now.saturating_add(life as u64)
            }
            None => u64::MAX,
        };
        let idx = match self.free_slots.pop() {
            Some(i) => i as usize,
            None => {
                let idx = self.slots.len();
                // Random first generations make a dropped pool's ids
                // unlikely to match a later pool that reuses its tag.
                let g = (self.rng.next_u64() as u32) | 1;
                self.cells
                    .make(idx)
                    .word
                    .store(word(g, W_LOCKED), Ordering::Relaxed);
                self.slots.push(Slot::new());
                idx
            }
        };
        let serial = self.next_serial;
        self.next_serial += 1;
        self.put_conn(idx, conn);
        let cell = self.cell(idx);
        cell.expires_at.store(expires_at, Ordering::Relaxed);
        cell.returned_at.store(now, Ordering::Relaxed);
        cell.returned_seq.store(0, Ordering::Relaxed);
        let s = &mut self.slots[idx];
        s.serial = serial;
        s.close_on_return = None;
        s.revoked = None;
        s.leak_reported = false;
        s.holder = None;
        s.state = if idle {
            SlotState::Idle
        } else {
            SlotState::Reserved
        };
        self.open += 1;
        self.counters.opened_total += 1;
        if idle {
            self.idle.push(idx as u32);
        }
        idx
    }

    /// Hand out a Reserved slot (connection inside) as a fresh id.
    /// `holder`: remember the calling thread (only leak reports name it;
    /// `thread::current()` costs an `Arc` clone and drop per checkout).
    #[inline]
    fn checkout(&mut self, idx: usize, tag: u32, now: u64, holder: bool) -> ConnId {
        // Not in a transaction (idle or new), and checked as far as
        // `check_on_checkout` asks: clean when the checks are local.
        let local = self.conn_mut(idx).is_some_and(|c| c.checks_are_local());
        let s = &mut self.slots[idx];
        s.state = SlotState::Out;
        s.holder = if holder {
            Some(std::thread::current())
        } else {
            None
        };
        s.leak_reported = false;
        s.revoked = None;
        let mut bits = W_OUT;
        if local {
            bits |= W_CLEAN;
        }
        if s.close_on_return.take().is_some() {
            bits |= W_CLOSE;
        }
        self.counters.checkouts += 1;
        let cell = self.cell(idx);
        let gen = Self::next_gen(gen_of(cell.word.load(Ordering::Relaxed)));
        cell.checked_out_at.store(now, Ordering::Relaxed);
        // Release: whoever next takes the word sees the connection as this
        // thread left it.
        cell.word.store(word(gen, bits), Ordering::Release);
        ConnId::new(tag, idx, gen)
    }

    /// Take back from the paths without the lock a cell whose word was `w`
    /// (`W_OUT` or `W_PARKED`): true when the word was still `w`, and the
    /// lock now governs the slot (state Returning, or Idle when parked; the
    /// caller files it).
    fn claim(&mut self, idx: usize, w: u64) -> bool {
        let taken = self
            .cell(idx)
            .word
            .compare_exchange(
                w,
                word(gen_of(w), W_LOCKED),
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_ok();
        if taken {
            self.slots[idx].state = if w & W_STATE == W_PARKED {
                SlotState::Idle
            } else {
                SlotState::Returning
            };
        }
        taken
    }

    /// Move parked connections that `pick` chooses (by their cell) into the
    /// idle list, which stays ordered by the time they came back; how many.
    fn unpark(&mut self, mut pick: impl FnMut(&ConnCell<C>) -> bool) -> usize {
        // SeqCst: a release that parks after this sees the flag cleared and
        // sets it again, or its cell is seen below (see `release_fast`).
        let flag = &self.cells.maybe_parked;
        if !flag.load(Ordering::SeqCst) || !flag.swap(false, Ordering::SeqCst) {
            return 0;
        }
        let (mut moved, mut left) = (0, false);
        for idx in 0..self.slots.len() {
            if self.slots[idx].state != SlotState::Out {
                continue;
            }
            let cell = self.cell(idx);
            let w = cell.word.load(Ordering::SeqCst);
            if w & W_STATE != W_PARKED {
                continue;
            }
            if !pick(cell) {
                left = true;
            } else if self.claim(idx, w) {
                self.idle.push(idx as u32);
                moved += 1;
            }
        }
        if left {
            self.cells.maybe_parked.store(true, Ordering::SeqCst);
        }
        if moved > 0 {
            let cells = &*self.cells;
            self.idle.sort_by_key(|&i| match cells.get(i as usize) {
                Some(c) => c.return_order(),
                None => (0, 0),
            });
        }
        moved
    }

    /// Every parked connection into the idle list; how many.
    fn unpark_all(&mut self) -> usize {
        self.unpark(|_| true)
    }

    /// Parked connections (idle outside the idle list).
    fn parked(&self) -> usize {
        (0..self.slots.len())
            .filter(|&idx| {
                self.slots[idx].state == SlotState::Out
                    && self.cell(idx).word.load(Ordering::Relaxed) & W_STATE == W_PARKED
            })
            .count()
    }

    /// Take the connection out and free the slot; counted under `reason`.
    /// The lock must govern the slot (`claim`). The caller closes the
    /// connection outside the lock.
    fn remove(&mut self, idx: usize, reason: Reason) -> (Option<C>, u64) {
        let conn = self.take_conn(idx);
        let cell = self.cell(idx);
        let gen = Self::next_gen(gen_of(cell.word.load(Ordering::Relaxed)));
        cell.word.store(word(gen, W_LOCKED), Ordering::Relaxed);
        let s = &mut self.slots[idx];
        let serial = s.serial;
        let was_free = s.state == SlotState::Free;
        s.state = SlotState::Free;
        s.holder = None;
        s.close_on_return = None;
        s.revoked = None;
        if !was_free {
            self.free_slots.push(idx as u32);
            self.open = self.open.saturating_sub(1);
            self.counters.count_close(reason);
        }
        (conn, serial)
    }

    /// Serve waiters in arrival order: an idle connection by direct handoff
    /// once some waiter is overdue (see `HANDOFF_AFTER`), else a permit to
    /// open one while there is room.
    #[inline]
    fn dispatch(&mut self, max: usize) {
        if !self.waiters.is_empty() {
            self.dispatch_waiters(max);
        }
    }

    fn dispatch_waiters(&mut self, max: usize) {
        while let Some(w) = self.waiters.front() {
            let grant = if !self.idle.is_empty() {
                if self.overdue == 0 {
                    // Left for the next checkout; the front waiter's timer
                    // comes back for it within HANDOFF_AFTER.
                    break;
                }
                let idx = self.idle.pop().unwrap_or_default();
                self.slots[idx as usize].state = SlotState::Reserved;
                GRANT_SLOT_BASE + idx as u64
            } else if !self.closed && self.has_capacity(max) {
                self.pending += 1;
                GRANT_PERMIT
            } else {
                break;
            };
            if w.overdue.load(Ordering::Relaxed) {
                self.overdue -= 1;
            }
            w.grant.store(grant, Ordering::Relaxed);
            w.cv.notify_one();
            self.waiters.pop_front();
        }
    }

    /// The slot of a valid, checked-out id, and its cell's word (`W_OUT`),
    /// or INVALID_HANDLE / BUSY. The word may change once this returns: a
    /// holder of the lock that acts on it `claim`s it.
    #[inline]
    fn lookup(&self, id: ConnId, tag: u32) -> Result<(usize, u64)> {
        if id.is_null() || id.pool_tag() != tag {
            return Err(Error::invalid_handle());
        }
        let idx = id.slot();
        match self.slots.get(idx) {
            Some(s) if s.state == SlotState::Out => {}
            _ => return Err(Error::invalid_handle()),
        }
        let w = self.cell(idx).word.load(Ordering::Acquire);
        if gen_of(w) != id.generation() {
            return Err(Error::invalid_handle());
        }
        match w & W_STATE {
            W_OUT => Ok((idx, w)),
            W_CALL if w & W_REVOKED == 0 => Err(Error::busy()),
            _ => Err(Error::invalid_handle()),
        }
    }

    /// `lookup` and `claim`: the lock governs the slot of `id` when this
    /// returns its index and the word it had.
    fn claim_out(&mut self, id: ConnId, tag: u32) -> Result<(usize, u64)> {
        loop {
            let (idx, w) = self.lookup(id, tag)?;
            if self.claim(idx, w) {
                return Ok((idx, w));
            }
        }
    }

    fn exhausted_message(&self, max: usize) -> String {
        let idle = self.idle.len();
        let mut m = format!(
            "Exceeded maximum connections. (total={}, in_use={}, idle={}, waiting={}, max={})",
            self.open + self.pending,
            self.open - idle.min(self.open),
            idle,
            self.waiters.len(),
            max
        );
        if let Some(e) = &self.last_connect_error {
            m.push_str("; last connect error: ");
            m.push_str(e);
        }
        m
    }
}

impl<B: Backend> Shared<B> {
    #[inline]
    fn lock(&self) -> Guard<'_, B::Conn> {
        let mut g = self.state.lock();
        if g.fork_gen != fork::generation() {
            self.after_fork(&mut g);
        }
        g
    }

    /// In a fork child: forget (never close, roll back or ping) every
    /// inherited connection, invalidate every inherited id, drop the
    /// parent's waiters and counts. Nothing of the parent is restarted. The
    /// fork handlers released the lock in the child, so it is free here
    /// whatever the parent's threads were doing.
    #[cold]
    fn after_fork(&self, g: &mut Guard<'_, B::Conn>) {
        let current = fork::generation();
        let st = &mut **g;
        st.idle.clear();
        st.free_slots.clear();
        let cells = st.cells.clone();
        for (i, s) in st.slots.iter_mut().enumerate() {
            let Some(cell) = cells.get(i) else { continue };
            let w = cell.word.load(Ordering::Acquire);
            let gen = State::<B::Conn>::next_gen(gen_of(w));
            cell.fast_checkouts.store(0, Ordering::Relaxed);
            s.holder = None;
            s.close_on_return = None;
            s.revoked = None;
            if s.state == SlotState::Retired || w & W_STATE == W_CALL {
                // A call of the parent holds the connection (this thread
                // forked inside it, or a thread the child does not have was
                // in it): leave it be, for good.
                cell.word.store(word(gen, W_LOCKED), Ordering::Relaxed);
                s.state = SlotState::Retired;
                continue;
            }
            // SAFETY: no call holds it (above), and no other thread of the
            // parent exists here.
            if let Some(c) = unsafe { cell.conn() }.take() {
                std::mem::forget(c);
            }
            cell.word.store(word(gen, W_LOCKED), Ordering::Relaxed);
            s.state = SlotState::Free;
            st.free_slots.push(i as u32);
        }
        st.free_slots.reverse();
        st.cells.maybe_parked.store(false, Ordering::Relaxed);
        self.nwait.store(0, Ordering::Relaxed);
        // Parent threads' waiters do not exist here; just forget them.
        std::mem::forget(std::mem::take(&mut st.waiters));
        st.overdue = 0;
        st.open = 0;
        st.pending = 0;
        st.counters = Counters::default();
        st.last_connect_error = None;
        st.fork_gen = current;
        self.fork_gen.store(current, Ordering::Relaxed);
        MutexGuard::unlocked(g, || {
            plog!(
                self.log,
                Level::Debug,
                "fork detected: forgot the parent's connections."
            )
        });
    }

    fn close_conn(&self, conn: Option<B::Conn>, serial: u64, reason: Reason) {
        if let Some(c) = conn {
            let _ = catch_unwind(AssertUnwindSafe(move || c.close()));
            plog!(
                self.log,
                Level::Debug,
                "Closing connection {serial} ({}).",
                reason.name()
            );
        }
    }

    fn is_valid(&self, id: ConnId) -> bool {
        let st = self.lock();
        match st.lookup(id, self.tag) {
            Ok(_) => true,
            Err(e) => e.status == Status::POOL_ERR_BUSY,
        }
    }

    /// Whether `id` is checked out, in no call, and marked broken (its link
    /// was lost during a call).
    fn is_broken(&self, id: ConnId) -> bool {
        let st = self.lock();
        matches!(st.lookup(id, self.tag), Ok((_, w)) if w & W_LOST != 0)
    }

    fn connect(&self) -> Result<ConnId> {
        if let Some(id) = self.connect_fast() {
            return Ok(id);
        }
        let max = self.options.max_connections;
        let mut g = self.lock();
        let mut next = Next::Search;
        loop {
            match next {
                Next::Search => {
                    if g.closed {
                        return Err(Error::closed());
                    }
                    // The most recently returned, parked ones included.
                    g.unpark_all();
                    if let Some(idx) = g.idle.pop() {
                        g.slots[idx as usize].state = SlotState::Reserved;
                        next = Next::Check(idx as usize);
                    } else if g.has_capacity(max) && g.slots.len() - g.free_slots.len() < MAX_SLOTS
                    {
                        g.pending += 1;
                        if self.log.enabled(Level::Debug) {
                            MutexGuard::unlocked(&mut g, || {
                                plog!(self.log, Level::Debug, "No connection available in pool.")
                            });
                        }
                        next = Next::Open;
                    } else {
                        next = self.wait(&mut g)?;
                    }
                }
                Next::Check(idx) => {
                    let now = now_ns();
                    if g.closed {
                        let (c, serial) = g.remove(idx, Reason::Cleared);
                        g.dispatch(max);
                        drop(g);
                        self.close_conn(c, serial, Reason::Cleared);
                        return Err(Error::closed());
                    }
                    let need_ping = match self.check_in_memory(&mut g, idx, now) {
                        Verdict::Alive => {
                            return Ok(g.checkout(idx, self.tag, now, self.track_holder))
                        }
                        Verdict::Stale => {
                            self.evict_at_checkout(&mut g, idx, Reason::Stale);
                            next = Next::Search;
                            continue;
                        }
                        Verdict::Dead => {
                            self.evict_at_checkout(&mut g, idx, Reason::Dead);
                            next = Next::Search;
                            continue;
                        }
                        Verdict::NeedsIo { need_ping } => need_ping,
                    };
                    let Some(mut conn) = g.take_conn(idx) else {
                        let _ = g.remove(idx, Reason::Dead);
                        next = Next::Search;
                        continue;
                    };
                    let alive = MutexGuard::unlocked(&mut g, || {
                        catch_unwind(AssertUnwindSafe(|| {
                            !conn.is_closed() && (!need_ping || conn.ping().is_ok())
                        }))
                        .unwrap_or(false)
                    });
                    g.put_conn(idx, conn);
                    if g.closed {
                        continue; // Check again: closes it and returns CLOSED.
                    }
                    if !alive {
                        self.evict_at_checkout(&mut g, idx, Reason::Dead);
                        next = Next::Search;
                        continue;
                    }
                    return Ok(g.checkout(idx, self.tag, now, self.track_holder));
                }
                Next::Open => {
                    let r = MutexGuard::unlocked(&mut g, || {
                        catch_unwind(AssertUnwindSafe(|| self.backend.connect())).unwrap_or_else(
                            |p| {
                                Err(Error::connect(format!(
                                    "connect panicked: {}",
                                    panic_message(&*p)
                                )))
                            },
                        )
                    });
                    g.pending = g.pending.saturating_sub(1);
                    match r {
                        Ok(conn) => {
                            let now = now_ns();
                            let idx = g.install(conn, now, &self.options, false);
                            if g.closed {
                                let (c, serial) = g.remove(idx, Reason::Cleared);
                                drop(g);
                                self.close_conn(c, serial, Reason::Cleared);
                                return Err(Error::closed());
                            }
                            let id = g.checkout(idx, self.tag, now, self.track_holder);
                            if self.log.enabled(Level::Debug) {
                                let serial = g.slots[idx].serial;
                                drop(g);
                                plog!(self.log, Level::Debug, "Created new connection {serial}.");
                            }
                            return Ok(id);
                        }
                        Err(mut e) => {
                            e.status = Status::POOL_ERR_CONNECT;
                            g.last_connect_error = Some(e.message.clone());
                            g.dispatch(max);
                            drop(g);
                            plog!(
                                self.log,
                                Level::Warn,
                                "could not open a connection: {}",
                                e.message
                            );
                            return Err(e);
                        }
                    }
                }
            }
        }
    }

    /// The checkout's verdict on a connection taken off the idle list, as
    /// far as it can be reached under the lock: its lifetime, and its
    /// liveness when the check reads only memory (a hot connection whose
    /// backend says `checks_are_local`).
    #[inline]
    fn check_in_memory(&self, g: &mut State<B::Conn>, idx: usize, now: u64) -> Verdict {
        let cell = g.cell(idx);
        if now >= cell.expires_at.load(Ordering::Relaxed) {
            return Verdict::Stale;
        }
        if !self.options.check_on_checkout {
            return Verdict::Alive;
        }
        let idle_for = now.saturating_sub(cell.returned_at.load(Ordering::Relaxed));
        if self.check_idle_ns == 0 || idle_for > self.check_idle_ns {
            return Verdict::NeedsIo { need_ping: true };
        }
        match g.conn_mut(idx).filter(|c| c.checks_are_local()) {
            Some(c) => match catch_unwind(AssertUnwindSafe(|| c.is_closed())) {
                Ok(false) => Verdict::Alive,
                _ => Verdict::Dead,
            },
            None => Verdict::NeedsIo { need_ping: false },
        }
    }

    /// `connect`'s common case alone: the connection this thread parked
    /// last (without the lock), or the most recently returned idle one, when
    /// checking it takes no I/O. `None` when `connect` would open, probe,
    /// evict or wait (or the pool is closed).
    fn connect_hot(&self) -> Option<ConnId> {
        if let Some(id) = self.connect_fast() {
            return Some(id);
        }
        let mut g = self.lock();
        if g.closed {
            return None;
        }
        g.unpark_all();
        let idx = *g.idle.last()? as usize;
        let now = now_ns();
        match self.check_in_memory(&mut g, idx, now) {
            Verdict::Alive => {
                g.idle.pop();
                Some(g.checkout(idx, self.tag, now, self.track_holder))
            }
            _ => None,
        }
    }

    /// The fork generation changed since this pool last looked: the next
    /// lock forgets what the parent had.
    #[inline]
    fn forked(&self) -> bool {
        self.fork_gen.load(Ordering::Relaxed) != fork::generation()
    }

    /// The pool's address, which names it in the thread's hint.
    #[inline]
    fn addr(&self) -> usize {
        self as *const Self as usize
    }

    /// The checkout without the lock: the connection this thread parked
    /// last, when it is still parked and its checks need nothing but the
    /// clock (within its lifetime and, with `check_on_checkout`, used within
    /// `check_idle`; it was clean when parked and nothing touched it since).
    /// One compare-and-swap. `None` sends `connect` to the lock.
    #[inline]
    fn connect_fast(&self) -> Option<ConnId> {
        if self.track_holder {
            return None;
        }
        let idx = cell::hint(self.addr())?;
        let cell = self.cells.get(idx)?;
        let w = cell.word.load(Ordering::Acquire);
        if w & W_STATE != W_PARKED || self.forked() {
            return None;
        }
        let now = now_ns();
        if now >= cell.expires_at.load(Ordering::Relaxed) {
            return None;
        }
        if self.options.check_on_checkout
            && (self.check_idle_ns == 0
                || now.saturating_sub(cell.returned_at.load(Ordering::Relaxed))
                    > self.check_idle_ns)
        {
            return None;
        }
        let gen = State::<B::Conn>::next_gen(gen_of(w));
        // Written before the word, for `close_stale` and leak checks, which
        // read it once they see `W_OUT`: a thread that loses the race
        // writes the same time as the winner, within a clock tick.
        cell.checked_out_at.store(now, Ordering::Relaxed);
        cell.word
            .compare_exchange(
                w,
                word(gen, W_OUT | W_CLEAN),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .ok()?;
        let n = cell.fast_checkouts.load(Ordering::Relaxed);
        cell.fast_checkouts.store(n + 1, Ordering::Relaxed);
        Some(ConnId::new(self.tag, idx, gen))
    }

    /// A connection found stale or dead at checkout: removed, then logged
    /// and closed outside the lock.
    fn evict_at_checkout(&self, g: &mut Guard<'_, B::Conn>, idx: usize, reason: Reason) {
        let (c, serial) = g.remove(idx, reason);
        MutexGuard::unlocked(g, || {
            if reason == Reason::Stale {
                plog!(
                    self.log,
                    Level::Debug,
                    "Connection {serial} was stale, closing."
                );
            } else {
                plog!(self.log, Level::Debug, "Connection {serial} was closed.");
            }
            self.close_conn(c, serial, reason);
        });
    }

    /// The pool is full: fail at once or queue up, as `timeout` says.
    fn wait(&self, g: &mut Guard<'_, B::Conn>) -> Result<Next> {
        let max = self.options.max_connections;
        let deadline = match self.options.timeout {
            WaitTimeout::Immediate => {
                g.counters.timeouts += 1;
                return Err(Error::new(
                    Status::POOL_ERR_EXHAUSTED,
                    g.exhausted_message(max),
                ));
            }
            WaitTimeout::Wait(d) => Some(Instant::now() + d),
            WaitTimeout::Forever => None,
        };
        // Registered first, then a last look for parked connections: a
        // release that parks after this look sees the count and brings its
        // connection to the idle list (both sides SeqCst).
        self.nwait.fetch_add(1, Ordering::SeqCst);
        let _registered = Registered(&self.nwait);
        std::sync::atomic::fence(Ordering::SeqCst);
        if g.unpark_all() > 0 {
            return Ok(Next::Search);
        }
        let start = Instant::now();
        let handoff_at = start + HANDOFF_AFTER;
        let w = Arc::new(Waiter {
            cv: Condvar::new(),
            grant: AtomicU64::new(GRANT_NONE),
            overdue: AtomicBool::new(false),
        });
        g.waiters.push_back(w.clone());
        loop {
            let grant = w.grant.load(Ordering::Relaxed);
            if grant != GRANT_NONE {
                g.counters.wait_us_total += start.elapsed().as_micros() as u64;
                return match grant {
                    GRANT_PERMIT => Ok(Next::Open),
                    GRANT_CLOSED => Err(Error::closed()),
                    slot => Ok(Next::Check((slot - GRANT_SLOT_BASE) as usize)),
                };
            }
            let overdue = w.overdue.load(Ordering::Relaxed);
            let until = match (overdue, deadline) {
                (true, dl) => dl,
                (false, None) => Some(handoff_at),
                (false, Some(dl)) => Some(dl.min(handoff_at)),
            };
            match until {
                None => w.cv.wait(g),
                Some(t) => {
                    if w.cv.wait_until(g, t).timed_out()
                        && w.grant.load(Ordering::Relaxed) == GRANT_NONE
                    {
                        let timed_out = deadline.is_some_and(|dl| Instant::now() >= dl);
                        // Past the bound, or at a deadline shorter than it
                        // with a connection left idle meanwhile: from now on
                        // every connection that comes back is handed over
                        // (to this waiter when it is the oldest).
                        if !overdue && (!timed_out || !g.idle.is_empty()) {
                            w.overdue.store(true, Ordering::Relaxed);
                            g.overdue += 1;
                            g.dispatch(max);
                            continue;
                        }
                        if !timed_out {
                            continue;
                        }
                        if let Some(pos) = g.waiters.iter().position(|x| Arc::ptr_eq(x, &w)) {
                            g.waiters.remove(pos);
                        }
                        if w.overdue.load(Ordering::Relaxed) {
                            g.overdue -= 1;
                        }
                        g.counters.timeouts += 1;
                        g.counters.wait_us_total += start.elapsed().as_micros() as u64;
                        return Err(Error::new(
                            Status::POOL_ERR_EXHAUSTED,
                            g.exhausted_message(max),
                        ));
                    }
                }
            }
        }
    }

    /// The release without the lock: a clean connection within its
    /// lifetime, with no waiter, no close pending and no debug log (which
    /// names every return), is parked in its cell for this thread's next
    /// checkout. One compare-and-swap. False sends `release` to the lock.
    #[inline]
    fn release_fast(&self, id: ConnId) -> bool {
        if id.pool_tag() != self.tag {
            return false;
        }
        let idx = id.slot();
        let Some(cell) = self.cells.get(idx) else {
            return false;
        };
        let out = word(id.generation(), W_OUT | W_CLEAN);
        if cell.word.load(Ordering::Relaxed) != out
            || self.nwait.load(Ordering::Relaxed) != 0
            || self.forked()
            || self.log.enabled(Level::Debug)
        {
            return false;
        }
        let now = now_ns();
        if now >= cell.expires_at.load(Ordering::Relaxed) {
            return false;
        }
        // This thread holds it (the word is its id's, out, in no call).
        cell.returned_at.store(now, Ordering::Relaxed);
        let seq = cell::note_return(self.addr(), Some(idx));
        cell.returned_seq.store(seq, Ordering::Relaxed);
        let parked = word(id.generation(), W_PARKED);
        if cell
            .word
            .compare_exchange(out, parked, Ordering::SeqCst, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        // For the next look under the lock (`State::unpark`).
        let cells = &self.cells;
        if !cells.maybe_parked.load(Ordering::SeqCst) {
            cells.maybe_parked.store(true, Ordering::SeqCst);
        }
        // A thread began to wait meanwhile (see `wait`).
        if self.nwait.load(Ordering::SeqCst) != 0 {
            self.unpark_for_waiters(idx, parked);
        }
        true
    }

    /// A connection parked while a thread began to wait: to the idle list
    /// and the waiters, unless a checkout took it meanwhile.
    #[cold]
    fn unpark_for_waiters(&self, idx: usize, parked: u64) {
        let mut g = self.lock();
        if g.slots.get(idx).map(|s| s.state) == Some(SlotState::Out) && g.claim(idx, parked) {
            g.idle.push(idx as u32);
            g.dispatch(self.options.max_connections);
        }
    }

    fn release(&self, id: ConnId) -> Result<()> {
        if self.release_fast(id) {
            return Ok(());
        }
        let max = self.options.max_connections;
        let mut g = self.lock();
        let (idx, w) = g.claim_out(id, self.tag)?;
        let now = now_ns();
        let reason = if w & W_LOST != 0 {
            Some(Reason::Dead)
        } else if w & W_CLOSE != 0 {
            Some(Reason::Cleared)
        } else if now >= g.cell(idx).expires_at.load(Ordering::Relaxed) {
            Some(Reason::Stale)
        } else if g.closed {
            Some(Reason::Cleared)
        } else {
            None
        };
        if let Some(reason) = reason {
            let (c, serial) = g.remove(idx, reason);
            g.dispatch(max);
            drop(g);
            if reason == Reason::Stale {
                plog!(self.log, Level::Debug, "Closing stale connection {serial}.");
            }
            self.close_conn(c, serial, reason);
            return Ok(());
        }
        g.slots[idx].holder = None;
        // Asked once: a backend may answer from state the question resets.
        // Clean (the last call's end asked) means no.
        let mut in_tx_known = false;
        let in_tx = if w & W_CLEAN != 0 {
            Some(Ok(false))
        } else {
            g.conn_mut(idx)
                .filter(|c| c.checks_are_local())
                .map(|c| catch_unwind(AssertUnwindSafe(|| c.in_transaction())))
        };
        match in_tx {
            Some(Ok(false)) => {
                // Nothing to roll back: back to the idle list under this
                // same guard (one lock round trip per release).
                self.file_idle(g, idx, now);
                return Ok(());
            }
            Some(Ok(true)) => in_tx_known = true,
            Some(Err(_)) => {
                let (c, serial) = g.remove(idx, Reason::Dead);
                g.dispatch(max);
                drop(g);
                self.close_conn(c, serial, Reason::Dead);
                return Ok(());
            }
            None => {}
        }
        let Some(mut conn) = g.take_conn(idx) else {
            let _ = g.remove(idx, Reason::Dead);
            g.dispatch(max);
            return Ok(());
        };
        let rolled_back = MutexGuard::unlocked(&mut g, || {
            catch_unwind(AssertUnwindSafe(|| {
                if !(in_tx_known || conn.in_transaction()) {
                    return Ok(());
                }
                conn.rollback().map_err(|e| e.message.clone())
            }))
            .unwrap_or_else(|p| Err(format!("rollback panicked: {}", panic_message(&*p))))
        });
        g.put_conn(idx, conn);
        let reason = if rolled_back.is_err() {
            Some(Reason::Dead)
        } else if let Some(r) = g.slots[idx].close_on_return {
            Some(r)
        } else if g.closed {
            Some(Reason::Cleared)
        } else {
            None
        };
        if let Some(reason) = reason {
            let (c, serial) = g.remove(idx, reason);
            g.dispatch(max);
            drop(g);
            if let Err(e) = &rolled_back {
                plog!(
                    self.log,
                    Level::Warn,
                    "Connection {serial}: the rollback on release failed, closing it: {e}"
                );
            }
            self.close_conn(c, serial, reason);
            return Ok(());
        }
        self.file_idle(g, idx, now);
        Ok(())
    }

    /// A released connection (the lock governs it) to the idle list, and
    /// to the waiters.
    fn file_idle(&self, mut g: Guard<'_, B::Conn>, idx: usize, now: u64) {
        g.slots[idx].state = SlotState::Idle;
        let cell = g.cell(idx);
        cell.returned_at.store(now, Ordering::Relaxed);
        let seq = cell::note_return(self.addr(), None);
        cell.returned_seq.store(seq, Ordering::Relaxed);
        let serial = g.slots[idx].serial;
        g.idle.push(idx as u32);
        g.dispatch(self.options.max_connections);
        drop(g);
        plog!(self.log, Level::Debug, "Returning {serial} to pool.");
    }

    fn manual_close(&self, id: ConnId) -> Result<()> {
        let mut g = self.lock();
        let (idx, _) = g.claim_out(id, self.tag)?;
        let (c, serial) = g.remove(idx, Reason::Manual);
        g.dispatch(self.options.max_connections);
        drop(g);
        self.close_conn(c, serial, Reason::Manual);
        Ok(())
    }

    /// Every idle connection (parked ones too) out of its slot, to be
    /// closed outside the lock.
    fn take_idle(g: &mut State<B::Conn>) -> Vec<(Option<B::Conn>, u64)> {
        g.unpark_all();
        let idle = std::mem::take(&mut g.idle);
        idle.into_iter()
            .map(|idx| g.remove(idx as usize, Reason::Cleared))
            .collect()
    }

    fn close_idle(&self) -> usize {
        let mut g = self.lock();
        let out = Self::take_idle(&mut g);
        g.dispatch(self.options.max_connections);
        drop(g);
        let n = out.len();
        for (c, serial) in out {
            self.close_conn(c, serial, Reason::Cleared);
        }
        n
    }

    fn close_stale(&self, age: Duration) -> usize {
        let now = now_ns();
        let age = ns(age);
        let mut g = self.lock();
        let cells = self.cells.clone();
        let mut out = Vec::new();
        let mut n = 0;
        for idx in 0..g.slots.len() {
            let (SlotState::Out, Some(cell)) = (g.slots[idx].state, cells.get(idx)) else {
                continue;
            };
            let mut w = cell.word.load(Ordering::Acquire);
            loop {
                let state = w & W_STATE;
                let old = now.saturating_sub(cell.checked_out_at.load(Ordering::Relaxed)) >= age;
                if !old || !(state == W_OUT || state == W_CALL) || w & W_REVOKED != 0 {
                    break;
                }
                if state == W_CALL {
                    // Its call's end closes it.
                    match cell.word.compare_exchange(
                        w,
                        w | W_REVOKED,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => {
                            g.slots[idx].revoked = Some(Reason::Reclaimed);
                            n += 1;
                            break;
                        }
                        Err(now_w) => w = now_w,
                    }
                } else if g.claim(idx, w) {
                    out.push(g.remove(idx, Reason::Reclaimed));
                    n += 1;
                    break;
                } else {
                    w = cell.word.load(Ordering::Acquire);
                }
            }
        }
        g.dispatch(self.options.max_connections);
        drop(g);
        for (c, serial) in out {
            self.close_conn(c, serial, Reason::Reclaimed);
        }
        n
    }

    /// Add `bit` to the word of a slot that is out (`W_OUT` or `W_CALL`);
    /// false when it is not, or was parked meanwhile.
    fn mark_out(cell: &ConnCell<B::Conn>, bit: u64) -> bool {
        cell.word
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                matches!(w & W_STATE, W_OUT | W_CALL).then_some(w | bit)
            })
            .is_ok()
    }

    fn close_all(&self) {
        let mut g = self.lock();
        // Idle ones first (parked ones too), so that none is left that a
        // thread could take without the lock and keep.
        let mut out = Self::take_idle(&mut g);
        for idx in 0..g.slots.len() {
            match g.slots[idx].state {
                SlotState::Reserved | SlotState::Returning => {
                    let s = &mut g.slots[idx];
                    s.close_on_return.get_or_insert(Reason::Cleared);
                }
                // Parked since `take_idle`: closed now.
                SlotState::Out if !Self::mark_out(g.cell(idx), W_CLOSE) => {
                    let w = g.cell(idx).word.load(Ordering::Acquire);
                    if w & W_STATE == W_PARKED && g.claim(idx, w) {
                        out.push(g.remove(idx, Reason::Cleared));
                    }
                }
                _ => {}
            }
        }
        g.dispatch(self.options.max_connections);
        drop(g);
        for (c, serial) in out {
            self.close_conn(c, serial, Reason::Cleared);
        }
    }

    fn shutdown(&self) {
        let mut g = self.lock();
        if g.closed {
            return;
        }
        g.closed = true;
        g.overdue = 0;
        for w in std::mem::take(&mut g.waiters) {
            w.grant.store(GRANT_CLOSED, Ordering::Relaxed);
            w.cv.notify_one();
        }
        let mut out = Self::take_idle(&mut g);
        for idx in 0..g.slots.len() {
            if g.slots[idx].state != SlotState::Out {
                continue;
            }
            loop {
                let w = g.cell(idx).word.load(Ordering::Acquire);
                match w & W_STATE {
                    W_CALL if w & W_REVOKED != 0 => break, // close_stale's: its end closes it
                    W_CALL => {
                        if Self::mark_out(g.cell(idx), W_REVOKED) {
                            g.slots[idx].revoked = Some(Reason::Cleared);
                            break;
                        }
                    }
                    W_OUT | W_PARKED => {
                        if g.claim(idx, w) {
                            out.push(g.remove(idx, Reason::Cleared));
                            break;
                        }
                    }
                    _ => break,
                }
            }
        }
        drop(g);
        self.maint_cv.notify_all();
        for (c, serial) in out {
            self.close_conn(c, serial, Reason::Cleared);
        }
        self.maint.join();
        plog!(self.log, Level::Debug, "Pool shut down.");
    }

    fn with_conn<R>(&self, id: ConnId, f: impl FnOnce(&mut B::Conn) -> Result<R>) -> Result<R> {
        if self.forked() {
            // Forget the parent's connections first (its ids die).
            drop(self.lock());
        }
        if id.is_null() || id.pool_tag() != self.tag {
            return Err(Error::invalid_handle());
        }
        let idx = id.slot();
        let Some(cell) = self.cells.get(idx) else {
            return Err(Error::invalid_handle());
        };
        let gen = id.generation();
        let mut w = cell.word.load(Ordering::Relaxed);
        // The call takes the connection; a lost link from an earlier call
        // is kept, and whether it is clean is asked again at the end.
        let before = loop {
            if gen_of(w) != gen {
                return Err(Error::invalid_handle());
            }
            match w & W_STATE {
                W_OUT => {}
                W_CALL if w & W_REVOKED == 0 => return Err(Error::busy()),
                _ => return Err(Error::invalid_handle()),
            }
            let call = (w & !(W_STATE | W_CLEAN)) | W_CALL;
            match cell
                .word
                .compare_exchange_weak(w, call, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => break call,
                Err(now) => w = now,
            }
        };
        // SAFETY: this thread set W_CALL, so until it clears it only this
        // thread reaches the connection (see `cell`), and the cell stays
        // where it is while the pool lives, which `&self` guarantees.
        let conn = unsafe { cell.conn() };
        let r = catch_unwind(AssertUnwindSafe(|| match conn.as_mut() {
            Some(c) => {
                let r = f(c);
                let lost = matches!(&r, Err(e) if e.is_connection_lost());
                let clean = !lost && c.is_clean();
                (r, lost, clean)
            }
            None => (Err(Error::invalid_handle()), false, false),
        }));
        let (lost, clean) = match &r {
            Ok((_, lost, clean)) => (*lost, *clean),
            Err(_) => (true, false),
        };
        let mut w = before;
        loop {
            if gen_of(w) != gen || w & W_STATE != W_CALL || w & W_REVOKED != 0 {
                // Revoked during the call (close_stale, shutdown), or
                // forgotten by a fork child.
                self.end_revoked_call(idx, id, cell);
                break;
            }
            let mut after = (w & !W_STATE) | W_OUT;
            if lost {
                after |= W_LOST;
            }
            if clean && after & W_LOST == 0 {
                after |= W_CLEAN;
            }
            match cell
                .word
                .compare_exchange(w, after, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => break,
                // close_all marked it meanwhile.
                Err(now) => w = now,
            }
        }
        match r {
            Ok((r, _, _)) => r,
            Err(p) => resume_unwind(p),
        }
    }

    /// The end of a call revoked while it ran: the connection is closed
    /// now (`Slot::revoked` says why).
    #[cold]
    fn end_revoked_call(&self, idx: usize, id: ConnId, cell: &ConnCell<B::Conn>) {
        let mut g = self.lock();
        let w = cell.word.load(Ordering::Acquire);
        let ours = g.slots.get(idx).map(|s| s.state) == Some(SlotState::Out)
            && gen_of(w) == id.generation()
            && w & W_STATE == W_CALL
            && w & W_REVOKED != 0;
        // Not ours: a fork child forgot the parent's connection meanwhile.
        if !ours {
            return;
        }
        // Nothing else changes a revoked call's word, and the lock is held.
        cell.word
            .store(word(id.generation(), W_LOCKED), Ordering::Relaxed);
        let reason = g.slots[idx].revoked.unwrap_or(Reason::Cleared);
        let (c, serial) = g.remove(idx, reason);
        g.dispatch(self.options.max_connections);
        drop(g);
        self.close_conn(c, serial, reason);
    }

    fn stats(&self) -> Stats {
        let g = self.lock();
        let c = &g.counters;
        let idle = (g.idle.len() + g.parked()) as u64;
        let fast_checkouts: u64 = (0..g.slots.len())
            .map(|idx| g.cell(idx).fast_checkouts.load(Ordering::Relaxed))
            .sum();
        let open = g.open as u64;
        Stats {
            max_connections: self.options.max_connections as u64,
            open,
            idle,
            in_use: open.saturating_sub(idle),
            waiting: g.waiters.len() as u64,
            opened_total: c.opened_total,
            closed_total: c.closed_total(),
            closed_stale: c.closed_stale,
            closed_idle: c.closed_idle,
            closed_dead: c.closed_dead,
            closed_manual: c.closed_manual,
            closed_reclaimed: c.closed_reclaimed,
            closed_cleared: c.closed_cleared,
            checkouts: c.checkouts + fast_checkouts,
            timeouts: c.timeouts,
            wait_us_total: c.wait_us_total,
            leaks: c.leaks,
        }
    }
}

impl<B: Backend> std::fmt::Debug for Pool<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("tag", &self.tag())
            .field("backend", &self.backend().name())
            .finish_non_exhaustive()
    }
}

impl<B: Backend> std::fmt::Debug for PooledConn<'_, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledConn")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}
