//! The pool core against a model (issue 6): proptest generates random
//! sequences of pool operations over a fake backend whose connections fail
//! at random (connect refused or panicking, server gone while idle, a lost
//! link in a statement, a failing or panicking rollback), and a plain model
//! of DESIGN.md section 2 predicts, after every operation, its status, which
//! fake connection a checkout gets (LIFO), which connections were closed and
//! every counter of `Stats`. Released, closed and revoked handles must be
//! refused afterwards; after `shutdown` (what `pool_free` does) checkouts
//! get `POOL_ERR_CLOSED`. When the pool is dropped, every connection it opened
//! must have been closed exactly once.
//!
//! Time is not modelled: the pool has no test clock, so options that act on
//! time (stale_timeout, idle_timeout, leak_threshold, min_connections, which
//! start the maintenance thread) are left out; check_idle is 0 (always
//! ping) or an hour (never). `close_stale` is used with age 0 (everything
//! checked out) and an hour (nothing).
//!
//! `PROPTEST_CASES=N` runs more cases than the default 1000.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use peepool::{
    Backend, ConnId, Connection, Error, Pool, PoolOptions, ResultSet, Stats, Status, Value,
    WaitTimeout,
};
use proptest::prelude::*;
use proptest::sample::Index;

/// How a connection's server side is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Death {
    /// The driver knows: `is_closed` says so (no round trip needed).
    Closed,
    /// Only a round trip finds out: `ping` fails.
    Silent,
    /// `ping` panics (a driver bug the pool must contain).
    PingPanics,
}

/// What the fake does on the next `connect` / `rollback`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    None,
    Fail,
    Panic,
}

/// Shared state of the fake backend, set by the test between calls.
#[derive(Default)]
struct Ctl {
    /// Connections say their checks are local (as SQLite's are): the pool
    /// then parks clean ones and checks them out without its lock.
    local: bool,
    /// Connect attempts so far; a connection's number is its attempt's.
    attempts: u64,
    next_connect: Option<Fault>,
    next_rollback: Option<Fault>,
    dead: BTreeMap<u64, Death>,
    /// Numbers of the connections closed, in order.
    closed: Vec<u64>,
}

#[derive(Clone, Default)]
struct Fake(Arc<Mutex<Ctl>>);

struct FakeConn {
    no: u64,
    ctl: Arc<Mutex<Ctl>>,
    in_tx: bool,
    local: bool,
}

const INJECTED: &str = "injected fault";

fn lost() -> Error {
    Error::database("server closed the connection unexpectedly").with_sqlstate("08006")
}

impl Backend for Fake {
    type Conn = FakeConn;
    fn connect(&self) -> peepool::Result<FakeConn> {
        let (no, fault, local) = {
            let mut c = self.0.lock().unwrap();
            c.attempts += 1;
            (
                c.attempts,
                c.next_connect.take().unwrap_or(Fault::None),
                c.local,
            )
        };
        match fault {
            Fault::None => Ok(FakeConn {
                no,
                ctl: self.0.clone(),
                in_tx: false,
                local,
            }),
            Fault::Fail => Err(Error::connect(format!("connection refused (attempt {no})"))),
            Fault::Panic => panic!("{INJECTED}: connect"),
        }
    }
    fn name(&self) -> &'static str {
        "fake"
    }
}

impl FakeConn {
    fn death(&self) -> Option<Death> {
        self.ctl.lock().unwrap().dead.get(&self.no).copied()
    }

    /// Statements on a connection whose server is gone report a lost link.
    fn alive(&self) -> peepool::Result<()> {
        match self.death() {
            Some(_) => Err(lost()),
            None => Ok(()),
        }
    }
}

impl Connection for FakeConn {
    fn is_closed(&mut self) -> bool {
        self.death() == Some(Death::Closed)
    }
    fn ping(&mut self) -> peepool::Result<()> {
        match self.death() {
            None => Ok(()),
            Some(Death::PingPanics) => panic!("{INJECTED}: ping"),
            Some(_) => Err(lost()),
        }
    }
    fn in_transaction(&mut self) -> bool {
        self.in_tx
    }
    fn checks_are_local(&self) -> bool {
        self.local
    }
    /// "ok" returns the connection's number, "fail" is an ordinary error,
    /// "lost" loses the link for good, "panic" panics.
    fn execute(&mut self, sql: &str, _params: &[Value<'_>]) -> peepool::Result<u64> {
        self.alive()?;
        match sql {
            "fail" => Err(Error::database("syntax error").with_sqlstate("42601")),
            "lost" => {
                self.ctl.lock().unwrap().dead.insert(self.no, Death::Silent);
                Err(lost())
            }
            "panic" => panic!("{INJECTED}: execute"),
            _ => Ok(self.no),
        }
    }
    fn query(&mut self, _sql: &str, _params: &[Value<'_>]) -> peepool::Result<Box<ResultSet>> {
        self.alive()?;
        Ok(Box::default())
    }
    fn begin(&mut self) -> peepool::Result<()> {
        self.alive()?;
        self.in_tx = true;
        Ok(())
    }
    fn commit(&mut self) -> peepool::Result<()> {
        self.alive()?;
        self.in_tx = false;
        Ok(())
    }
    fn rollback(&mut self) -> peepool::Result<()> {
        self.alive()?;
        let fault = self.ctl.lock().unwrap().next_rollback.take();
        match fault.unwrap_or(Fault::None) {
            Fault::None => {
                self.in_tx = false;
                Ok(())
            }
            Fault::Fail => Err(Error::database("rollback failed")),
            Fault::Panic => panic!("{INJECTED}: rollback"),
        }
    }
    fn close(self) {
        self.ctl.lock().unwrap().closed.push(self.no);
    }
}

/// The pool's configuration for one case.
#[derive(Clone, Debug)]
struct Cfg {
    max: usize,
    check_on_checkout: bool,
    /// check_idle = 0: every idle checkout pings; otherwise an hour: none does.
    ping_always: bool,
    /// timeout = 1 ms instead of failing at once.
    wait: bool,
    /// The connections' checks are local (see `Ctl::local`). Their answers
    /// then change only through calls, so a server gone while the
    /// connection idles is never known without a round trip (`Kill` with
    /// `Death::Closed` becomes `Death::Silent`).
    local: bool,
    /// Per-case fault rates, in percent.
    connect_fail: u8,
    rollback_fail: u8,
    panic: u8,
}

impl Cfg {
    fn options(&self) -> PoolOptions {
        PoolOptions {
            max_connections: self.max,
            check_on_checkout: self.check_on_checkout,
            check_idle: if self.ping_always {
                Duration::ZERO
            } else {
                Duration::from_secs(3600)
            },
            timeout: if self.wait {
                WaitTimeout::Wait(Duration::from_millis(1))
            } else {
                WaitTimeout::Immediate
            },
            ..PoolOptions::default()
        }
    }

    /// A roll in 0..100 turned into a fault at this case's rates; a roll
    /// shrinks towards 0, that is towards no fault.
    fn fault(&self, roll: u8, rate: u8) -> Fault {
        let panic = self.panic.min(rate);
        if roll >= 100 - panic {
            Fault::Panic
        } else if roll >= 100 - rate {
            Fault::Fail
        } else {
            Fault::None
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Exec {
    Ok,
    Fail,
    Lost,
    Panic,
}

#[derive(Clone, Copy, Debug)]
enum StaleUse {
    Release,
    ManualClose,
    Execute,
}

#[derive(Clone, Debug)]
enum Op {
    Connect {
        roll: u8,
    },
    ThreadConnect {
        roll: u8,
    },
    ThreadRelease,
    Release {
        h: Index,
        roll: u8,
    },
    ManualClose {
        h: Index,
    },
    Execute {
        h: Index,
        kind: Exec,
    },
    Query {
        h: Index,
    },
    Begin {
        h: Index,
    },
    Commit {
        h: Index,
    },
    Rollback {
        h: Index,
        roll: u8,
    },
    /// The server side of an open connection (idle or checked out) goes away.
    Kill {
        c: Index,
        death: Death,
    },
    CloseIdle,
    CloseStale {
        everything: bool,
    },
    CloseAll,
    /// A released, closed or revoked handle is used again.
    UseStale {
        h: Index,
        how: StaleUse,
    },
    /// A made-up handle.
    Forged {
        id: u64,
    },
    /// What `pool_free` does: the pool refuses new checkouts and revokes
    /// the handles still out.
    Shutdown,
}

fn cfg_strategy() -> impl Strategy<Value = Cfg> {
    (
        0usize..=4,
        any::<bool>(),
        any::<bool>(),
        prop::bool::weighted(0.2),
        any::<bool>(),
        prop_oneof![Just(0u8), 0u8..=50],
        prop_oneof![Just(0u8), 0u8..=50],
        prop_oneof![2 => Just(0u8), 1 => 0u8..=20],
    )
        .prop_map(
            |(
                max,
                check_on_checkout,
                ping_always,
                wait,
                local,
                connect_fail,
                rollback_fail,
                panic,
            )| Cfg {
                max,
                check_on_checkout,
                ping_always,
                wait,
                local,
                connect_fail,
                rollback_fail,
                panic,
            },
        )
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let roll = || 0u8..100;
    let exec = prop_oneof![
        6 => Just(Exec::Ok),
        2 => Just(Exec::Fail),
        2 => Just(Exec::Lost),
        1 => Just(Exec::Panic),
    ];
    let death = prop_oneof![
        Just(Death::Closed),
        Just(Death::Silent),
        Just(Death::PingPanics)
    ];
    let how = prop_oneof![
        Just(StaleUse::Release),
        Just(StaleUse::ManualClose),
        Just(StaleUse::Execute)
    ];
    prop_oneof![
        8 => roll().prop_map(|roll| Op::Connect { roll }),
        2 => roll().prop_map(|roll| Op::ThreadConnect { roll }),
        1 => Just(Op::ThreadRelease),
        7 => (any::<Index>(), roll()).prop_map(|(h, roll)| Op::Release { h, roll }),
        1 => any::<Index>().prop_map(|h| Op::ManualClose { h }),
        5 => (any::<Index>(), exec).prop_map(|(h, kind)| Op::Execute { h, kind }),
        1 => any::<Index>().prop_map(|h| Op::Query { h }),
        3 => any::<Index>().prop_map(|h| Op::Begin { h }),
        1 => any::<Index>().prop_map(|h| Op::Commit { h }),
        1 => (any::<Index>(), roll()).prop_map(|(h, roll)| Op::Rollback { h, roll }),
        2 => (any::<Index>(), death).prop_map(|(c, death)| Op::Kill { c, death }),
        1 => Just(Op::CloseIdle),
        1 => any::<bool>().prop_map(|everything| Op::CloseStale { everything }),
        1 => Just(Op::CloseAll),
        2 => (any::<Index>(), how).prop_map(|(h, how)| Op::UseStale { h, how }),
        1 => any::<u64>().prop_map(|id| Op::Forged { id }),
        1 => Just(Op::Shutdown),
    ]
}

/// The model's view of one open connection.
#[derive(Clone, Debug)]
struct MConn {
    no: u64,
    in_tx: bool,
    death: Option<Death>,
    /// A call lost the link or panicked: evicted on release.
    broken: bool,
    /// `close_all` while it was out: closed when it comes back.
    condemned: bool,
}

/// What the pool should be: its connections, live handles and counters.
struct Model {
    cfg: Cfg,
    /// LIFO: the most recently returned is last.
    idle: Vec<MConn>,
    /// Checked out, in checkout order.
    out: Vec<(ConnId, MConn)>,
    /// Handles that must be refused from now on.
    dead_handles: Vec<ConnId>,
    thread_conn: Option<ConnId>,
    attempts: u64,
    closed: Vec<u64>,
    last_connect_error: Option<String>,
    stats: Stats,
    shut_down: bool,
}

impl Model {
    fn new(cfg: Cfg) -> Model {
        Model {
            stats: Stats {
                max_connections: cfg.max as u64,
                ..Stats::default()
            },
            cfg,
            idle: Vec::new(),
            out: Vec::new(),
            dead_handles: Vec::new(),
            thread_conn: None,
            attempts: 0,
            closed: Vec::new(),
            last_connect_error: None,
            shut_down: false,
        }
    }

    fn open(&self) -> usize {
        self.idle.len() + self.out.len()
    }

    fn close(&mut self, c: &MConn, counter: fn(&mut Stats) -> &mut u64) {
        self.closed.push(c.no);
        *counter(&mut self.stats) += 1;
        self.stats.closed_total += 1;
    }

    fn expected_stats(&self) -> Stats {
        let mut s = self.stats;
        s.open = self.open() as u64;
        s.idle = self.idle.len() as u64;
        s.in_use = self.out.len() as u64;
        s
    }

    fn exhausted_message(&self) -> String {
        let mut m = format!(
            "Exceeded maximum connections. (total={}, in_use={}, idle={}, waiting=0, max={})",
            self.open(),
            self.out.len(),
            self.idle.len(),
            self.cfg.max
        );
        if let Some(e) = &self.last_connect_error {
            m.push_str("; last connect error: ");
            m.push_str(e);
        }
        m
    }

    /// What `connect` does, given the fault the fake will apply if it is
    /// asked to open a connection: Ok(the connection checked out) or the
    /// error's status. Pushes the connection onto `out` under `id` later.
    fn connect(&mut self, fault: Fault) -> Result<MConn, (Status, Option<String>)> {
        if self.shut_down {
            return Err((Status::POOL_ERR_CLOSED, None));
        }
        while let Some(c) = self.idle.pop() {
            if self.cfg.check_on_checkout {
                let alive = match c.death {
                    None => true,
                    Some(Death::Closed) => false,
                    Some(_) => !self.cfg.ping_always,
                };
                if !alive {
                    self.close(&c, |s| &mut s.closed_dead);
                    continue;
                }
            }
            self.stats.checkouts += 1;
            return Ok(c);
        }
        if self.cfg.max != 0 && self.open() >= self.cfg.max {
            self.stats.timeouts += 1;
            return Err((Status::POOL_ERR_EXHAUSTED, Some(self.exhausted_message())));
        }
        self.attempts += 1;
        match fault {
            Fault::None => {
                self.stats.opened_total += 1;
                self.stats.checkouts += 1;
                Ok(MConn {
                    no: self.attempts,
                    in_tx: false,
                    death: None,
                    broken: false,
                    condemned: false,
                })
            }
            Fault::Fail => {
                let m = format!("connection refused (attempt {})", self.attempts);
                self.last_connect_error = Some(m.clone());
                Err((Status::POOL_ERR_CONNECT, Some(m)))
            }
            Fault::Panic => {
                let m = format!("connect panicked: {INJECTED}: connect");
                self.last_connect_error = Some(m.clone());
                Err((Status::POOL_ERR_CONNECT, Some(m)))
            }
        }
    }

    /// What `release` does with a connection taken off `out`.
    fn release(&mut self, id: ConnId, mut c: MConn, rollback: Fault) {
        self.dead_handles.push(id);
        if c.broken {
            return self.close(&c, |s| &mut s.closed_dead);
        }
        if c.condemned {
            return self.close(&c, |s| &mut s.closed_cleared);
        }
        if c.in_tx {
            if c.death.is_some() || rollback != Fault::None {
                return self.close(&c, |s| &mut s.closed_dead);
            }
            c.in_tx = false;
        }
        self.idle.push(c);
    }

    fn take_out(&mut self, id: ConnId) -> Option<MConn> {
        let i = self.out.iter().position(|(h, _)| *h == id)?;
        Some(self.out.remove(i).1)
    }
}

/// The pool under test, the fake's controls and the model, checked
/// against each other after every operation.
struct Harness {
    pool: Pool<Fake>,
    ctl: Arc<Mutex<Ctl>>,
    model: Model,
}

fn status<T>(r: &peepool::Result<T>) -> Status {
    match r {
        Ok(_) => Status::POOL_OK,
        Err(e) => e.status,
    }
}

impl Harness {
    fn new(cfg: Cfg) -> Harness {
        let fake = Fake::default();
        let ctl = fake.0.clone();
        ctl.lock().unwrap().local = cfg.local;
        Harness {
            pool: Pool::new(fake, cfg.options()),
            ctl,
            model: Model::new(cfg),
        }
    }

    fn pick(&self, h: &Index) -> Option<ConnId> {
        if self.model.out.is_empty() {
            None
        } else {
            Some(self.model.out[h.index(self.model.out.len())].0)
        }
    }

    fn conn_no(&self, id: ConnId) -> u64 {
        self.pool
            .with_conn(id, |c| Ok(c.no))
            .expect("a handle just checked out works")
    }

    fn set_connect_fault(&self, f: Fault) {
        self.ctl.lock().unwrap().next_connect = Some(f);
    }

    fn set_rollback_fault(&self, f: Fault) {
        self.ctl.lock().unwrap().next_rollback = Some(f);
    }

    /// `connect` or `thread_connect` (when `thread`), checked against the model.
    fn connect(&mut self, roll: u8, thread: bool) {
        let m = &mut self.model;
        if thread {
            if let Some(id) = m.thread_conn {
                let broken = m.out.iter().find(|(h, _)| *h == id).map(|(_, c)| c.broken);
                if broken == Some(false) {
                    let got = self.pool.thread_connect();
                    assert_eq!(got.as_ref().ok(), Some(&id), "same thread connection");
                    return;
                }
                if broken == Some(true) {
                    // Its link is lost: thread_connect evicts it (as a
                    // release of a broken connection) and opens a new one.
                    let c = m.take_out(id).expect("found above");
                    m.release(id, c, Fault::None);
                }
                m.thread_conn = None;
            }
        }
        let fault = m.cfg.fault(roll, m.cfg.connect_fail);
        let want = m.connect(fault);
        self.set_connect_fault(fault);
        let got = if thread {
            self.pool.thread_connect()
        } else {
            self.pool.connect()
        };
        // The fault is for this call only.
        self.ctl.lock().unwrap().next_connect = None;
        match (want, got) {
            (Ok(c), Ok(id)) => {
                assert!(!id.is_null());
                assert!(
                    !self.model.dead_handles.contains(&id),
                    "every checkout gets a new id"
                );
                assert_eq!(self.conn_no(id), c.no, "which connection (LIFO)");
                if thread {
                    self.model.thread_conn = Some(id);
                }
                self.model.out.push((id, c));
            }
            (Err((st, msg)), Err(e)) => {
                assert_eq!(e.status, st, "{}", e.message);
                if let Some(msg) = msg {
                    assert_eq!(e.message, msg);
                }
            }
            (want, got) => panic!("connect: model says {want:?}, pool says {got:?}"),
        }
    }

    /// Check that a handle the model holds no more is refused, changing nothing.
    fn check_refused(&self, id: ConnId, how: StaleUse) {
        let r = match how {
            StaleUse::Release => self.pool.release(id).map(|_| 0),
            StaleUse::ManualClose => self.pool.manual_close(id).map(|_| 0),
            StaleUse::Execute => self.pool.execute(id, "ok", &[]),
        };
        assert_eq!(
            status(&r),
            Status::POOL_ERR_INVALID_HANDLE,
            "{how:?} on a dead handle {id:?}"
        );
    }

    /// A statement-like call on `id`: the model says what happens from the
    /// connection's state; `f` runs it on the pool.
    fn statement(
        &mut self,
        id: ConnId,
        kind: Exec,
        f: impl FnOnce(&Pool<Fake>, ConnId) -> peepool::Result<u64>,
    ) {
        let i = self
            .model
            .out
            .iter()
            .position(|(h, _)| *h == id)
            .expect("picked from out");
        let c = &mut self.model.out[i].1;
        let r = catch_unwind(AssertUnwindSafe(|| f(&self.pool, id)));
        if c.death.is_some() {
            let e = r
                .expect("a dead connection reports, does not panic")
                .expect_err("a dead connection fails");
            assert_eq!(e.status, Status::POOL_ERR_DATABASE);
            assert!(e.is_connection_lost(), "{e:?}");
            c.broken = true;
            return;
        }
        match kind {
            Exec::Ok => {
                let r = r.expect("no panic");
                assert!(r.is_ok(), "{r:?}");
            }
            Exec::Fail => {
                let e = r.expect("no panic").expect_err("fails");
                assert_eq!(e.status, Status::POOL_ERR_DATABASE);
                assert!(!e.is_connection_lost());
            }
            Exec::Lost => {
                let e = r.expect("no panic").expect_err("fails");
                assert_eq!(e.status, Status::POOL_ERR_DATABASE);
                assert!(e.is_connection_lost());
                c.broken = true;
                c.death = Some(Death::Silent);
            }
            Exec::Panic => {
                assert!(r.is_err(), "the panic reaches the caller");
                c.broken = true;
            }
        }
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Connect { roll } => self.connect(*roll, false),
            Op::ThreadConnect { roll } => self.connect(*roll, true),
            Op::ThreadRelease => {
                let r = self.pool.thread_release();
                assert_eq!(status(&r), Status::POOL_OK);
                if let Some(id) = self.model.thread_conn.take() {
                    if let Some(c) = self.model.take_out(id) {
                        self.model.release(id, c, Fault::None);
                    }
                }
            }
            Op::Release { h, roll } => {
                let Some(id) = self.pick(h) else { return };
                let c = self.model.take_out(id).unwrap();
                let fault = self.model.cfg.fault(*roll, self.model.cfg.rollback_fail);
                self.set_rollback_fault(fault);
                let r = self.pool.release(id);
                self.ctl.lock().unwrap().next_rollback = None;
                assert_eq!(status(&r), Status::POOL_OK, "{r:?}");
                self.model.release(id, c, fault);
            }
            Op::ManualClose { h } => {
                let Some(id) = self.pick(h) else { return };
                let c = self.model.take_out(id).unwrap();
                let r = self.pool.manual_close(id);
                assert_eq!(status(&r), Status::POOL_OK, "{r:?}");
                self.model.dead_handles.push(id);
                self.model.close(&c, |s| &mut s.closed_manual);
            }
            Op::Execute { h, kind } => {
                let Some(id) = self.pick(h) else { return };
                let sql = match kind {
                    Exec::Ok => "ok",
                    Exec::Fail => "fail",
                    Exec::Lost => "lost",
                    Exec::Panic => "panic",
                };
                self.statement(id, *kind, |p, id| p.execute(id, sql, &[]));
            }
            Op::Query { h } => {
                let Some(id) = self.pick(h) else { return };
                self.statement(id, Exec::Ok, |p, id| p.query(id, "q", &[]).map(|_| 0));
            }
            Op::Begin { h } => {
                let Some(id) = self.pick(h) else { return };
                self.statement(id, Exec::Ok, |p, id| p.begin(id).map(|_| 0));
                let c = &mut self.model.out.iter_mut().find(|(x, _)| *x == id).unwrap().1;
                if c.death.is_none() {
                    c.in_tx = true;
                }
            }
            Op::Commit { h } => {
                let Some(id) = self.pick(h) else { return };
                self.statement(id, Exec::Ok, |p, id| p.commit(id).map(|_| 0));
                let c = &mut self.model.out.iter_mut().find(|(x, _)| *x == id).unwrap().1;
                if c.death.is_none() {
                    c.in_tx = false;
                }
            }
            Op::Rollback { h, roll } => {
                let Some(id) = self.pick(h) else { return };
                let fault = self.model.cfg.fault(*roll, self.model.cfg.rollback_fail);
                self.set_rollback_fault(fault);
                let kind = match fault {
                    Fault::None => Exec::Ok,
                    // An ordinary error: the connection is kept, still in
                    // its transaction.
                    Fault::Fail => Exec::Fail,
                    Fault::Panic => Exec::Panic,
                };
                self.statement(id, kind, |p, id| p.rollback(id).map(|_| 0));
                self.ctl.lock().unwrap().next_rollback = None;
                let c = &mut self.model.out.iter_mut().find(|(x, _)| *x == id).unwrap().1;
                if c.death.is_none() && fault == Fault::None {
                    c.in_tx = false;
                }
            }
            Op::Kill { c, death } => {
                let m = &mut self.model;
                let death = match death {
                    Death::Closed if m.cfg.local => &Death::Silent,
                    d => d,
                };
                let n = m.open();
                if n == 0 {
                    return;
                }
                let i = c.index(n);
                let conn = if i < m.idle.len() {
                    &mut m.idle[i]
                } else {
                    &mut m.out[i - m.idle.len()].1
                };
                conn.death = Some(*death);
                self.ctl.lock().unwrap().dead.insert(conn.no, *death);
            }
            Op::CloseIdle => {
                let n = self.pool.close_idle();
                let idle = std::mem::take(&mut self.model.idle);
                assert_eq!(n, idle.len(), "close_idle count");
                // Closed in the order they are listed, oldest first.
                for c in &idle {
                    self.model.close(c, |s| &mut s.closed_cleared);
                }
            }
            Op::CloseStale { everything } => {
                let age = if *everything {
                    Duration::ZERO
                } else {
                    Duration::from_secs(3600)
                };
                let n = self.pool.close_stale(age);
                if *everything {
                    let out = std::mem::take(&mut self.model.out);
                    assert_eq!(n, out.len(), "close_stale(0) count");
                    for (id, c) in out {
                        self.model.dead_handles.push(id);
                        self.model.close(&c, |s| &mut s.closed_reclaimed);
                    }
                } else {
                    assert_eq!(n, 0, "close_stale(1 h) count");
                }
            }
            Op::CloseAll => {
                self.pool.close_all();
                for (_, c) in self.model.out.iter_mut() {
                    c.condemned = true;
                }
                let idle = std::mem::take(&mut self.model.idle);
                for c in &idle {
                    self.model.close(c, |s| &mut s.closed_cleared);
                }
            }
            Op::UseStale { h, how } => {
                let d = &self.model.dead_handles;
                if !d.is_empty() {
                    self.check_refused(d[h.index(d.len())], *how);
                }
            }
            Op::Shutdown => {
                self.pool.shutdown();
                let m = &mut self.model;
                m.shut_down = true;
                for c in std::mem::take(&mut m.idle) {
                    m.close(&c, |s| &mut s.closed_cleared);
                }
                for (id, c) in std::mem::take(&mut m.out) {
                    m.dead_handles.push(id);
                    m.close(&c, |s| &mut s.closed_cleared);
                }
            }
            Op::Forged { id } => {
                let id = ConnId(*id);
                if !self.model.out.iter().any(|(h, _)| *h == id) {
                    self.check_refused(id, StaleUse::Execute);
                    self.check_refused(id, StaleUse::Release);
                }
            }
        }
    }

    fn check(&self, op: &Op) {
        let mut got = self.pool.stats();
        let want = self.model.expected_stats();
        if self.model.cfg.wait {
            // Each timed-out wait lasted its 1 ms, give or take the
            // nanoseconds between the pool's reading of its deadline and
            // of its start.
            assert!(
                got.wait_us_total >= 999 * want.timeouts,
                "wait_us_total {} for {} timeouts",
                got.wait_us_total,
                want.timeouts
            );
        } else {
            assert_eq!(got.wait_us_total, 0, "no wait without a timeout");
        }
        got.wait_us_total = 0;
        assert_eq!(got, want, "stats after {op:?}");
        let closed = self.ctl.lock().unwrap().closed.clone();
        let mut a = closed.clone();
        let mut b = self.model.closed.clone();
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b, "connections closed after {op:?}");
    }

    /// Drop the pool: everything it ever opened is closed, each once.
    fn finish(self) {
        let opened = self.model.stats.opened_total;
        let attempts = self.model.attempts;
        drop(self.pool);
        let ctl = self.ctl.lock().unwrap();
        assert_eq!(ctl.attempts, attempts, "connect attempts");
        let closed: BTreeSet<u64> = ctl.closed.iter().copied().collect();
        assert_eq!(closed.len(), ctl.closed.len(), "a connection closed twice");
        assert_eq!(
            closed.len() as u64,
            opened,
            "every connection closed at the end"
        );
    }
}

fn run(cfg: Cfg, ops: &[Op]) {
    let mut h = Harness::new(cfg);
    for op in ops {
        h.apply(op);
        h.check(op);
    }
    h.finish();
}

/// Injected panics are expected: keep them off stderr; anything else is
/// printed as usual.
fn quiet_injected_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| info.payload().downcast_ref::<&str>().copied())
                .unwrap_or("");
            if !msg.starts_with(INJECTED) {
                default(info);
            }
        }));
    });
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn pool_matches_model(
        cfg in cfg_strategy(),
        ops in prop::collection::vec(op_strategy(), 1..80),
    ) {
        quiet_injected_panics();
        run(cfg, &ops);
    }
}
