//! The maintenance thread ("peepool-maint"): holds only a `Weak` to the
//! pool, wakes at least once a second (sooner when a time option is short,
//! and at once on shutdown), closes idle connections past `idle_timeout`
//! (down to `min_connections`) and idle ones past their lifetime, refills to
//! `min_connections`, and reports leaks once.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard};

use super::cell::{W_CALL, W_OUT, W_STATE};
use super::clock::{now_ns, ns};
use super::log::{plog, Level};
use super::{Reason, Shared, SlotState};
use crate::backend::{Backend, Connection};

fn tick(options: &crate::config::PoolOptions) -> Duration {
    let mut t = Duration::from_secs(1);
    for d in [
        options.idle_timeout,
        options.stale_timeout,
        options.leak_threshold,
    ]
    .into_iter()
    .flatten()
    {
        t = t.min(d / 2);
    }
    t.max(Duration::from_millis(10))
}

pub(super) fn start<B: Backend>(shared: &Arc<Shared<B>>) {
    let weak = Arc::downgrade(shared);
    let period = tick(&shared.options);
    let spawned = std::thread::Builder::new()
        .name("peepool-maint".to_string())
        .spawn(move || run(weak, period));
    match spawned {
        Ok(h) => *shared.maint.0.lock() = Some((h, super::fork::generation())),
        Err(e) => plog!(
            shared.log,
            Level::Error,
            "could not start the maintenance thread: {e}"
        ),
    }
}

/// The maintenance thread's handle and the fork generation it lives in.
#[derive(Default)]
pub(super) struct Thread(Mutex<Option<(JoinHandle<()>, u64)>>);

/// How long `join` waits for a maintenance round stuck in a connect.
const JOIN_PATIENCE: Duration = Duration::from_secs(5);

impl Thread {
    /// Waits (after shutdown woke it) for the thread to end, so that no
    /// library code runs once `pool_free` has returned and the library may
    /// be unloaded. A round blocked in a connect to a server that does not
    /// answer is left to finish on its own after `JOIN_PATIENCE`. Not in a
    /// fork child (the thread is the parent's) nor on the thread itself.
    pub(super) fn join(&self) {
        let Some((h, gen)) = self.0.lock().take() else {
            return;
        };
        if gen != super::fork::generation() || h.thread().id() == std::thread::current().id() {
            return;
        }
        let start = Instant::now();
        while !h.is_finished() {
            if start.elapsed() > JOIN_PATIENCE {
                return;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        let _ = h.join();
    }
}

fn run<B: Backend>(weak: Weak<Shared<B>>, period: Duration) {
    loop {
        let Some(shared) = weak.upgrade() else { return };
        let fork_gen = super::fork::generation();
        if shared.fork_gen.load(std::sync::atomic::Ordering::Relaxed) != fork_gen {
            return; // Never runs in a fork child (threads are not copied), but be sure.
        }
        let keep = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| shared.maintain()))
            .unwrap_or(true);
        if !keep {
            return;
        }
        let mut g = shared.state.lock();
        if g.closed {
            return;
        }
        shared.maint_cv.wait_for(&mut g, period);
        if g.closed {
            return;
        }
    }
}

impl<B: Backend> Shared<B> {
    /// One round of maintenance; false once the pool is closed.
    pub(super) fn maintain(&self) -> bool {
        let max = self.options.max_connections;
        let min = self.options.min_connections;
        let now = now_ns();
        let mut g = self.lock();
        if g.closed {
            return false;
        }
        let mut out = Vec::new();
        // Parked connections this round may close join the idle list.
        let idle_limit = self.options.idle_timeout.map(ns);
        g.unpark(|c| {
            now >= c.expires_at.load(Ordering::Relaxed)
                || idle_limit
                    .is_some_and(|l| now.saturating_sub(c.returned_at.load(Ordering::Relaxed)) > l)
        });
        // Idle connections past their lifetime.
        let mut i = 0;
        while i < g.idle.len() {
            let idx = g.idle[i] as usize;
            if now >= g.cell(idx).expires_at.load(Ordering::Relaxed) {
                g.idle.remove(i);
                out.push((g.remove(idx, Reason::Stale), Reason::Stale));
            } else {
                i += 1;
            }
        }
        // Idle longer than idle_timeout, oldest first, down to min_connections.
        if let Some(limit) = idle_limit {
            let mut i = 0;
            while i < g.idle.len() && g.open > min {
                let idx = g.idle[i] as usize;
                if now.saturating_sub(g.cell(idx).returned_at.load(Ordering::Relaxed)) > limit {
                    g.idle.remove(i);
                    out.push((g.remove(idx, Reason::Idle), Reason::Idle));
                } else {
                    i += 1;
                }
            }
        }
        // Leaks: held longer than leak_threshold, reported once.
        let mut leaks = Vec::new();
        if let Some(limit) = self.options.leak_threshold {
            let limit = ns(limit);
            let cells = self.cells.clone();
            for (idx, s) in g.slots.iter_mut().enumerate() {
                let Some(cell) = cells.get(idx) else { continue };
                let checked_out =
                    matches!(cell.word.load(Ordering::Acquire) & W_STATE, W_OUT | W_CALL);
                let held = now.saturating_sub(cell.checked_out_at.load(Ordering::Relaxed));
                if s.state == SlotState::Out && checked_out && !s.leak_reported && held > limit {
                    s.leak_reported = true;
                    let (name, tid) = match &s.holder {
                        Some(t) => (
                            t.name().unwrap_or("<unnamed>").to_string(),
                            format!("{:?}", t.id()),
                        ),
                        None => ("<unknown>".to_string(), "?".to_string()),
                    };
                    leaks.push((s.serial, held, name, tid));
                }
            }
            g.counters.leaks += leaks.len() as u64;
        }
        g.dispatch(max);
        drop(g);
        for ((c, serial), reason) in out {
            if reason == Reason::Stale {
                plog!(
                    self.log,
                    Level::Debug,
                    "Connection {serial} was stale, closing."
                );
            } else {
                plog!(
                    self.log,
                    Level::Debug,
                    "Connection {serial} was idle too long, closing."
                );
            }
            self.close_conn(c, serial, reason);
        }
        for (serial, held, name, tid) in leaks {
            plog!(
                self.log,
                Level::Warn,
                "possible connection leak: connection {serial} held for {:.3}s by thread '{name}' ({tid})",
                held as f64 / 1e9
            );
        }
        // Refill to min_connections, one connect at a time, outside the lock.
        loop {
            let mut g = self.lock();
            if g.closed {
                return false;
            }
            let have = g.open + g.pending;
            if have >= min || !g.has_capacity(max) {
                return true;
            }
            g.pending += 1;
            let r = MutexGuard::unlocked(&mut g, || {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.backend.connect()))
                    .unwrap_or_else(|_| Err(crate::error::Error::connect("connect panicked")))
            });
            g.pending = g.pending.saturating_sub(1);
            match r {
                Ok(conn) => {
                    if g.closed {
                        drop(g);
                        conn.close();
                        return false;
                    }
                    let idx = g.install(conn, now_ns(), &self.options, true);
                    let serial = g.slots[idx].serial;
                    g.dispatch(max);
                    drop(g);
                    plog!(
                        self.log,
                        Level::Debug,
                        "Created new connection {serial} (min_connections)."
                    );
                }
                Err(e) => {
                    g.last_connect_error = Some(e.message.clone());
                    g.dispatch(max);
                    drop(g);
                    plog!(
                        self.log,
                        Level::Warn,
                        "could not open a connection to keep min_connections: {}",
                        e.message
                    );
                    return true;
                }
            }
        }
    }
}
