//! The pool core against fake backends: fast, deterministic, with fault
//! injection. Tests are named after the behaviour or after the scenario of
//! peewee's tests/pool.py / r2d2's src/test.rs they mirror.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use peepool::{
    Backend, ConnId, Connection, Error, Level, Pool, PoolOptions, ResultSet, Status, Value,
    WaitTimeout,
};

#[derive(Default)]
struct Ctl {
    connects: AtomicUsize,
    closes: AtomicUsize,
    pings: AtomicUsize,
    rollbacks: AtomicUsize,
    is_closed_calls: AtomicUsize,
    fail_connect: AtomicBool,
    /// The Nth connect (1-based) fails; 0 = none.
    fail_nth: AtomicUsize,
    connect_delay_ms: AtomicU64,
    /// Every connection reports itself closed.
    all_dead: AtomicBool,
    ping_fails: AtomicBool,
    rollback_fails: AtomicBool,
    in_tx: AtomicBool,
    /// A "gate" statement is in flight.
    gate_entered: AtomicBool,
    /// Lets a "gate" statement finish.
    gate_open: AtomicBool,
    /// Connections say their checks read only memory (as SQLite's do).
    local_checks: AtomicBool,
}

impl Ctl {
    /// Waits until a "gate" statement is running: a test then knows a call
    /// is in flight without guessing with a sleep.
    fn wait_gate_entered(&self) {
        while !self.gate_entered.load(SeqCst) {
            thread::sleep(Duration::from_millis(1));
        }
    }
}

#[derive(Clone, Default)]
struct Fake(Arc<Ctl>);

struct FakeConn {
    n: u64,
    ctl: Arc<Ctl>,
    in_tx: bool,
}

impl Backend for Fake {
    type Conn = FakeConn;
    fn connect(&self) -> peepool::Result<FakeConn> {
        let n = self.0.connects.fetch_add(1, SeqCst) + 1;
        let d = self.0.connect_delay_ms.load(SeqCst);
        if d > 0 {
            thread::sleep(Duration::from_millis(d));
        }
        if self.0.fail_connect.load(SeqCst) || self.0.fail_nth.load(SeqCst) == n {
            return Err(Error::connect(format!("connection refused (attempt {n})")));
        }
        Ok(FakeConn {
            n: n as u64,
            ctl: self.0.clone(),
            in_tx: false,
        })
    }
    fn name(&self) -> &'static str {
        "fake"
    }
}

impl Connection for FakeConn {
    fn is_closed(&mut self) -> bool {
        self.ctl.is_closed_calls.fetch_add(1, SeqCst);
        self.ctl.all_dead.load(SeqCst)
    }
    fn ping(&mut self) -> peepool::Result<()> {
        self.ctl.pings.fetch_add(1, SeqCst);
        if self.ctl.ping_fails.load(SeqCst) {
            Err(Error::database("ping failed").with_sqlstate("08006"))
        } else {
            Ok(())
        }
    }
    fn in_transaction(&mut self) -> bool {
        self.in_tx || self.ctl.in_tx.load(SeqCst)
    }
    fn checks_are_local(&self) -> bool {
        self.ctl.local_checks.load(SeqCst)
    }
    /// Returns the connection's number; "gate" waits until the test opens
    /// the gate, "lost" loses the link, "fail" is an ordinary error.
    fn execute(&mut self, sql: &str, _params: &[Value<'_>]) -> peepool::Result<u64> {
        match sql {
            "gate" => {
                self.ctl.gate_entered.store(true, SeqCst);
                while !self.ctl.gate_open.load(SeqCst) {
                    thread::sleep(Duration::from_millis(1));
                }
            }
            "lost" => {
                return Err(Error::database("server closed the connection unexpectedly")
                    .with_sqlstate("08006"))
            }
            "fail" => return Err(Error::database("syntax error").with_sqlstate("42601")),
            _ => {}
        }
        Ok(self.n)
    }
    fn query(&mut self, _sql: &str, _params: &[Value<'_>]) -> peepool::Result<Box<ResultSet>> {
        Ok(Box::default())
    }
    fn begin(&mut self) -> peepool::Result<()> {
        self.in_tx = true;
        Ok(())
    }
    fn commit(&mut self) -> peepool::Result<()> {
        self.in_tx = false;
        Ok(())
    }
    fn rollback(&mut self) -> peepool::Result<()> {
        self.ctl.rollbacks.fetch_add(1, SeqCst);
        if self.ctl.rollback_fails.load(SeqCst) {
            return Err(Error::database("rollback failed"));
        }
        self.in_tx = false;
        Ok(())
    }
    fn close(self) {
        self.ctl.closes.fetch_add(1, SeqCst);
    }
}

fn opts(max: usize) -> PoolOptions {
    PoolOptions {
        max_connections: max,
        ..PoolOptions::default()
    }
}

fn pool(max: usize) -> (Pool<Fake>, Arc<Ctl>) {
    pool_with(opts(max))
}

fn pool_with(o: PoolOptions) -> (Pool<Fake>, Arc<Ctl>) {
    let f = Fake::default();
    let ctl = f.0.clone();
    (Pool::new(f, o), ctl)
}

/// Which fake connection an id is on.
fn conn_no(p: &Pool<Fake>, id: ConnId) -> u64 {
    p.execute(id, "x", &[]).unwrap()
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

// ---- peewee tests/pool.py scenarios ----

#[test]
fn test_reuse_connection_lifo() {
    let (p, ctl) = pool(10);
    let a = p.connect().unwrap();
    let b = p.connect().unwrap();
    let (na, nb) = (conn_no(&p, a), conn_no(&p, b));
    p.release(a).unwrap();
    p.release(b).unwrap();
    // Most recently returned first.
    let c = p.connect().unwrap();
    assert_eq!(conn_no(&p, c), nb);
    let d = p.connect().unwrap();
    assert_eq!(conn_no(&p, d), na);
    assert_ne!(c, b, "every checkout gets a new id");
    assert_eq!(ctl.connects.load(SeqCst), 2);
    let s = p.stats();
    assert_eq!(
        (s.open, s.in_use, s.idle, s.checkouts, s.opened_total),
        (2, 2, 0, 4, 2)
    );
}

#[test]
fn test_max_conns_immediate_exhausted() {
    let (p, _ctl) = pool(3);
    let ids: Vec<_> = (0..3).map(|_| p.connect().unwrap()).collect();
    let e = p.connect().unwrap_err();
    assert_eq!(e.status, Status::POOL_ERR_EXHAUSTED);
    assert!(
        e.message.contains("Exceeded maximum connections."),
        "{}",
        e.message
    );
    assert!(
        e.message.contains("total=3, in_use=3, idle=0, waiting=0"),
        "{}",
        e.message
    );
    p.release(ids[0]).unwrap();
    p.connect().unwrap();
    assert_eq!(p.stats().timeouts, 1);
}

#[test]
fn unlimited_when_max_connections_is_zero() {
    let (p, ctl) = pool(0);
    let ids: Vec<_> = (0..100).map(|_| p.connect().unwrap()).collect();
    assert_eq!(ctl.connects.load(SeqCst), 100);
    assert_eq!(p.stats().in_use, 100);
    for id in ids {
        p.release(id).unwrap();
    }
    assert_eq!(p.stats().idle, 100);
}

#[test]
fn timeout_waits_and_succeeds_on_release() {
    let (p, _ctl) = pool_with(PoolOptions {
        max_connections: 1,
        timeout: WaitTimeout::Wait(Duration::from_secs(5)),
        ..opts(1)
    });
    let a = p.connect().unwrap();
    let n = conn_no(&p, a);
    let p2 = p.clone();
    let t = thread::spawn(move || {
        let id = p2.connect().unwrap();
        conn_no(&p2, id)
    });
    wait_until("waiter", Duration::from_secs(2), || p.stats().waiting == 1);
    thread::sleep(Duration::from_millis(20));
    p.release(a).unwrap();
    assert_eq!(
        t.join().unwrap(),
        n,
        "the released connection is handed over"
    );
    let s = p.stats();
    assert!(s.wait_us_total >= 15_000, "{s:?}");
    assert_eq!(s.timeouts, 0);
}

#[test]
fn timeout_expires_with_counts_in_message() {
    let (p, ctl) = pool_with(PoolOptions {
        timeout: WaitTimeout::Wait(Duration::from_millis(100)),
        ..opts(2)
    });
    let _a = p.connect().unwrap();
    let _b = p.connect().unwrap();
    ctl.fail_connect.store(false, SeqCst);
    let start = Instant::now();
    let e = p.connect().unwrap_err();
    let waited = start.elapsed();
    assert_eq!(e.status, Status::POOL_ERR_EXHAUSTED);
    assert!(
        waited >= Duration::from_millis(95) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    assert!(
        e.message.contains("total=2, in_use=2, idle=0, waiting=0"),
        "{}",
        e.message
    );
    let s = p.stats();
    assert_eq!(s.timeouts, 1);
    assert!(s.wait_us_total >= 95_000, "{s:?}");
    assert_eq!(s.waiting, 0);
}

#[test]
fn exhausted_message_carries_last_connect_error() {
    let (p, ctl) = pool(1);
    ctl.fail_nth.store(1, SeqCst);
    assert_eq!(p.connect().unwrap_err().status, Status::POOL_ERR_CONNECT);
    let _a = p.connect().unwrap();
    let e = p.connect().unwrap_err();
    assert!(
        e.message
            .contains("last connect error: connection refused (attempt 1)"),
        "{}",
        e.message
    );
}

#[test]
fn waiters_are_served_in_arrival_order() {
    let (p, _ctl) = pool_with(PoolOptions {
        timeout: WaitTimeout::Forever,
        ..opts(1)
    });
    let held = p.connect().unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut threads = Vec::new();
    for i in 0..4 {
        let (p2, order) = (p.clone(), order.clone());
        threads.push(thread::spawn(move || {
            let id = p2.connect().unwrap();
            order.lock().unwrap().push(i);
            thread::sleep(Duration::from_millis(5));
            p2.release(id).unwrap();
        }));
        let want = i + 1;
        wait_until("queued", Duration::from_secs(2), || {
            p.stats().waiting == want
        });
    }
    p.release(held).unwrap();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3]);
}

#[test]
fn test_stale_timeout_at_checkout() {
    let (p, ctl) = pool_with(PoolOptions {
        stale_timeout: Some(Duration::from_millis(50)),
        ..opts(5)
    });
    let a = p.connect().unwrap();
    p.release(a).unwrap();
    thread::sleep(Duration::from_millis(80));
    let b = p.connect().unwrap();
    assert_eq!(conn_no(&p, b), 2, "the stale one is not reused");
    assert_eq!(ctl.closes.load(SeqCst), 1);
    assert_eq!(p.stats().closed_stale, 1);
}

#[test]
fn test_stale_on_checkout_release() {
    let (p, ctl) = pool_with(PoolOptions {
        stale_timeout: Some(Duration::from_millis(50)),
        ..opts(5)
    });
    let a = p.connect().unwrap();
    thread::sleep(Duration::from_millis(80));
    p.release(a).unwrap();
    assert_eq!(ctl.closes.load(SeqCst), 1);
    let s = p.stats();
    assert_eq!((s.closed_stale, s.idle, s.open), (1, 0, 0));
}

#[test]
fn stale_jitter_lifetimes_within_bounds() {
    // Lifetimes in (100ms, 200ms]: none stale at 70ms, all stale at 230ms.
    let (p, _ctl) = pool_with(PoolOptions {
        stale_timeout: Some(Duration::from_millis(200)),
        stale_jitter: 0.5,
        ..opts(0)
    });
    let ids: Vec<_> = (0..20).map(|_| p.connect().unwrap()).collect();
    thread::sleep(Duration::from_millis(70));
    for id in &ids {
        p.release(*id).unwrap();
    }
    assert_eq!(p.stats().closed_stale, 0);
    thread::sleep(Duration::from_millis(160));
    let ids: Vec<_> = (0..20).map(|_| p.connect().unwrap()).collect();
    let s = p.stats();
    assert_eq!(s.closed_stale, 20, "{s:?}");
    drop(ids);
}

#[test]
fn dead_connection_replaced_invisibly() {
    let (p, ctl) = pool(5);
    let a = p.connect().unwrap();
    p.release(a).unwrap();
    ctl.all_dead.store(true, SeqCst);
    let b = p.connect().unwrap();
    ctl.all_dead.store(false, SeqCst);
    assert_eq!(conn_no(&p, b), 2);
    assert_eq!(p.stats().closed_dead, 1);
    assert_eq!(ctl.closes.load(SeqCst), 1);
}

#[test]
fn failed_ping_replaced_invisibly() {
    let (p, ctl) = pool_with(PoolOptions {
        check_idle: Duration::ZERO,
        ..opts(5)
    });
    let a = p.connect().unwrap();
    p.release(a).unwrap();
    ctl.ping_fails.store(true, SeqCst);
    let b = p.connect().unwrap();
    assert_eq!(conn_no(&p, b), 2);
    assert_eq!(p.stats().closed_dead, 1);
}

#[test]
fn check_idle_avoids_ping_for_hot_connection() {
    let (p, ctl) = pool_with(PoolOptions {
        check_idle: Duration::from_millis(50),
        ..opts(5)
    });
    for _ in 0..10 {
        let a = p.connect().unwrap();
        p.release(a).unwrap();
    }
    assert_eq!(ctl.pings.load(SeqCst), 0, "hot connection: no round trip");
    assert_eq!(
        ctl.is_closed_calls.load(SeqCst),
        9,
        "but the no-I/O check runs"
    );
    thread::sleep(Duration::from_millis(80));
    let a = p.connect().unwrap();
    assert_eq!(
        ctl.pings.load(SeqCst),
        1,
        "idle longer than check_idle: pinged"
    );
    p.release(a).unwrap();
    // check_on_checkout off: no check at all.
    let (p, ctl) = pool_with(PoolOptions {
        check_on_checkout: false,
        check_idle: Duration::ZERO,
        ..opts(5)
    });
    let a = p.connect().unwrap();
    p.release(a).unwrap();
    let _a = p.connect().unwrap();
    assert_eq!(
        (ctl.pings.load(SeqCst), ctl.is_closed_calls.load(SeqCst)),
        (0, 0)
    );
}

/// `connect_hot` takes the idle connection only when its check needs no
/// I/O, and otherwise leaves everything to `connect`: nothing opened,
/// probed, evicted or counted. (Its lifetime check is `connect`'s own.)
#[test]
fn connect_hot_takes_only_what_needs_no_io() {
    let (p, ctl) = pool_with(PoolOptions {
        check_idle: Duration::from_secs(60),
        ..opts(2)
    });
    assert_eq!(p.connect_hot(), None, "nothing idle: connect would open");
    assert_eq!(ctl.connects.load(SeqCst), 0);
    let a = p.connect().unwrap();
    p.release(a).unwrap();
    assert_eq!(p.connect_hot(), None, "a check that is not local needs I/O");
    ctl.local_checks.store(true, SeqCst);
    let b = p.connect_hot().expect("hot and local: taken");
    assert_ne!(a, b, "a fresh id");
    assert_eq!(conn_no(&p, b), 1);
    assert_eq!(p.connect_hot(), None, "the only one is out");
    // Local checks change only through calls: a call finds it broken.
    ctl.all_dead.store(true, SeqCst);
    p.execute(b, "x", &[]).unwrap();
    p.release(b).unwrap();
    assert_eq!(p.connect_hot(), None, "dead: connect evicts it");
    let s = p.stats();
    assert_eq!(
        (s.checkouts, s.idle, s.closed_total, s.opened_total),
        (2, 1, 0, 1),
        "{s:?}"
    );
    let c = p.connect().unwrap();
    assert_eq!(conn_no(&p, c), 2, "connect evicted the dead one");
    assert_eq!(p.stats().closed_dead, 1);
    ctl.all_dead.store(false, SeqCst);
    p.release(c).unwrap();
    p.shutdown();
    assert_eq!(p.connect_hot(), None, "closed");
}

#[test]
fn rollback_on_release() {
    let (p, ctl) = pool(5);
    let a = p.connect().unwrap();
    p.begin(a).unwrap();
    p.release(a).unwrap();
    assert_eq!(ctl.rollbacks.load(SeqCst), 1);
    let b = p.connect().unwrap();
    assert_eq!(conn_no(&p, b), 1, "rolled back and reused");
    p.commit(b).unwrap();
    p.release(b).unwrap();
    assert_eq!(
        ctl.rollbacks.load(SeqCst),
        1,
        "no rollback outside a transaction"
    );
}

#[test]
fn failing_rollback_discards() {
    let (p, ctl) = pool(5);
    let a = p.connect().unwrap();
    p.begin(a).unwrap();
    ctl.rollback_fails.store(true, SeqCst);
    p.release(a).unwrap();
    let s = p.stats();
    assert_eq!((s.closed_dead, s.idle, s.open), (1, 0, 0));
    assert_eq!(ctl.closes.load(SeqCst), 1);
}

#[test]
fn lost_link_evicts_on_release() {
    let (p, ctl) = pool(5);
    let a = p.connect().unwrap();
    let e = p.execute(a, "lost", &[]).unwrap_err();
    assert_eq!(e.sqlstate.as_deref(), Some("08006"));
    assert!(e.is_connection_lost());
    // An ordinary error does not evict.
    let b = p.connect().unwrap();
    assert_eq!(
        p.execute(b, "fail", &[]).unwrap_err().status,
        Status::POOL_ERR_DATABASE
    );
    p.release(a).unwrap();
    p.release(b).unwrap();
    let s = p.stats();
    assert_eq!((s.closed_dead, s.idle), (1, 1));
    assert_eq!(ctl.closes.load(SeqCst), 1);
    let c = p.connect().unwrap();
    assert_eq!(conn_no(&p, c), 2);
}

#[test]
fn test_manual_close() {
    let (p, ctl) = pool(5);
    let a = p.connect().unwrap();
    p.manual_close(a).unwrap();
    assert_eq!(ctl.closes.load(SeqCst), 1);
    assert_eq!(
        p.release(a).unwrap_err().status,
        Status::POOL_ERR_INVALID_HANDLE
    );
    assert_eq!(
        p.execute(a, "x", &[]).unwrap_err().status,
        Status::POOL_ERR_INVALID_HANDLE
    );
    let s = p.stats();
    assert_eq!((s.closed_manual, s.closed_total, s.open), (1, 1, 0));
    let b = p.connect().unwrap();
    assert_eq!(conn_no(&p, b), 2);
}

#[test]
fn test_close_idle() {
    let (p, ctl) = pool(5);
    let ids: Vec<_> = (0..3).map(|_| p.connect().unwrap()).collect();
    p.release(ids[0]).unwrap();
    p.release(ids[1]).unwrap();
    assert_eq!(p.close_idle(), 2);
    assert_eq!(ctl.closes.load(SeqCst), 2);
    let s = p.stats();
    assert_eq!((s.closed_cleared, s.open, s.in_use, s.idle), (2, 1, 1, 0));
    assert_eq!(conn_no(&p, ids[2]), 3, "in-use one untouched");
}

#[test]
fn test_close_stale_idle_holder_gets_invalid_handle() {
    let (p, ctl) = pool(5);
    let old = p.connect().unwrap();
    thread::sleep(Duration::from_millis(60));
    let young = p.connect().unwrap();
    assert_eq!(p.close_stale(Duration::from_millis(40)), 1);
    assert_eq!(ctl.closes.load(SeqCst), 1);
    assert_eq!(
        p.execute(old, "x", &[]).unwrap_err().status,
        Status::POOL_ERR_INVALID_HANDLE
    );
    assert_eq!(
        p.release(old).unwrap_err().status,
        Status::POOL_ERR_INVALID_HANDLE
    );
    assert_eq!(conn_no(&p, young), 2);
    let s = p.stats();
    assert_eq!((s.closed_reclaimed, s.open), (1, 1));
}

#[test]
fn close_stale_busy_holder_finishes_its_call_then_closed() {
    let (p, ctl) = pool(1);
    let a = p.connect().unwrap();
    let p2 = p.clone();
    let t = thread::spawn(move || p2.execute(a, "gate", &[]));
    ctl.wait_gate_entered();
    assert_eq!(p.close_stale(Duration::ZERO), 1);
    assert_eq!(
        ctl.closes.load(SeqCst),
        0,
        "not closed under a call in flight"
    );
    assert_eq!(p.stats().open, 1, "still counts against max_connections");
    assert_eq!(p.connect().unwrap_err().status, Status::POOL_ERR_EXHAUSTED);
    ctl.gate_open.store(true, SeqCst);
    assert_eq!(t.join().unwrap().unwrap(), 1, "the call in flight finishes");
    assert_eq!(ctl.closes.load(SeqCst), 1);
    assert_eq!(
        p.execute(a, "x", &[]).unwrap_err().status,
        Status::POOL_ERR_INVALID_HANDLE
    );
    let s = p.stats();
    assert_eq!((s.closed_reclaimed, s.open), (1, 0));
    p.connect().unwrap();
}

#[test]
fn test_close_all() {
    let (p, ctl) = pool(2);
    let a = p.connect().unwrap();
    let b = p.connect().unwrap();
    p.release(a).unwrap();
    p.close_all();
    assert_eq!(ctl.closes.load(SeqCst), 1);
    // The holder keeps using it until it gives it back; still counted.
    assert_eq!(conn_no(&p, b), 2);
    assert_eq!(p.stats().open, 1);
    p.release(b).unwrap();
    assert_eq!(ctl.closes.load(SeqCst), 2);
    let s = p.stats();
    assert_eq!(
        (s.closed_cleared, s.closed_total, s.open, s.idle),
        (2, 2, 0, 0)
    );
    let c = p.connect().unwrap();
    assert_eq!(conn_no(&p, c), 3);
}

#[test]
fn invalid_handles_are_detected() {
    let (p, _ctl) = pool(5);
    let (q, _ctl2) = pool(5);
    let inv =
        |r: peepool::Result<()>| assert_eq!(r.unwrap_err().status, Status::POOL_ERR_INVALID_HANDLE);
    let a = p.connect().unwrap();
    assert_ne!(a.pool_tag(), 0);
    assert_ne!(a.pool_tag(), q.tag());
    // Foreign pool.
    inv(q.release(a));
    inv(q.execute(a, "x", &[]).map(|_| ()));
    // Null and forged.
    inv(p.release(ConnId::NULL));
    assert!(ConnId::NULL.is_null());
    inv(p.release(ConnId(a.0 ^ 0x1234)));
    inv(p.release(ConnId(a.0 + (5u64 << 32))));
    inv(p.release(ConnId(u64::MAX)));
    p.release(a).unwrap();
    // Double release and use after release.
    inv(p.release(a));
    inv(p.execute(a, "x", &[]).map(|_| ()));
    inv(p.manual_close(a));
    // Same slot, next checkout: the old id stays dead.
    let b = p.connect().unwrap();
    assert_ne!(a, b);
    inv(p.release(a));
    p.release(b).unwrap();
}

#[test]
fn busy_from_second_thread_during_slow_call() {
    let (p, ctl) = pool(5);
    let a = p.connect().unwrap();
    let p2 = p.clone();
    let t = thread::spawn(move || p2.execute(a, "gate", &[]));
    ctl.wait_gate_entered();
    assert_eq!(
        p.execute(a, "x", &[]).unwrap_err().status,
        Status::POOL_ERR_BUSY
    );
    assert_eq!(p.release(a).unwrap_err().status, Status::POOL_ERR_BUSY);
    assert_eq!(p.manual_close(a).unwrap_err().status, Status::POOL_ERR_BUSY);
    // The pool itself is not blocked by the call in flight.
    let b = p.connect().unwrap();
    p.release(b).unwrap();
    ctl.gate_open.store(true, SeqCst);
    t.join().unwrap().unwrap();
    p.release(a).unwrap();
}

#[test]
fn thread_connect_same_id_until_thread_release() {
    let (p, _ctl) = pool(5);
    let a = p.thread_connect().unwrap();
    assert_eq!(p.thread_connect().unwrap(), a);
    let other = {
        let p2 = p.clone();
        thread::spawn(move || {
            let id = p2.thread_connect().unwrap();
            p2.thread_release().unwrap();
            id
        })
        .join()
        .unwrap()
    };
    assert_ne!(other, a);
    p.thread_release().unwrap();
    assert_eq!(
        p.release(a).unwrap_err().status,
        Status::POOL_ERR_INVALID_HANDLE
    );
    p.thread_release().unwrap(); // none held: still Ok
    let b = p.thread_connect().unwrap();
    assert_ne!(b, a);
    // pool.release of the thread's connection also ends it.
    p.release(b).unwrap();
    let c = p.thread_connect().unwrap();
    assert_ne!(c, b);
    p.thread_release().unwrap();
    assert_eq!(p.stats().in_use, 0);
}

/// Regression: after its link was lost, the thread's connection was handed
/// back by every `thread_connect` until `thread_release`, so a worker that
/// never releases failed for ever after a server restart.
#[test]
fn thread_connect_replaces_a_connection_whose_link_was_lost() {
    let (p, _ctl) = pool(5);
    let a = p.thread_connect().unwrap();
    assert!(p.execute(a, "lost", &[]).unwrap_err().is_connection_lost());
    let b = p.thread_connect().unwrap();
    assert_ne!(b, a);
    assert_eq!(conn_no(&p, b), 2, "a fresh connection");
    assert_eq!(p.thread_connect().unwrap(), b);
    let s = p.stats();
    assert_eq!((s.closed_dead, s.open, s.in_use), (1, 1, 1));
    p.thread_release().unwrap();
}

#[test]
fn thread_exit_releases_thread_connection() {
    let (p, ctl) = pool(5);
    let p2 = p.clone();
    let id = thread::spawn(move || p2.thread_connect().unwrap())
        .join()
        .unwrap();
    let s = p.stats();
    assert_eq!((s.in_use, s.idle), (0, 1));
    assert_eq!(
        p.release(id).unwrap_err().status,
        Status::POOL_ERR_INVALID_HANDLE
    );
    assert_eq!(ctl.closes.load(SeqCst), 0);
    // A thread that outlives its pool exits cleanly.
    let (q, qctl) = pool(5);
    let q2 = q.clone();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let t = thread::spawn(move || {
        q2.thread_connect().unwrap();
        drop(q2);
        let _ = rx.recv();
    });
    thread::sleep(Duration::from_millis(20));
    drop(q);
    tx.send(()).unwrap();
    t.join().unwrap();
    assert_eq!(
        qctl.closes.load(SeqCst),
        1,
        "revoked by the pool's drop, closed once"
    );
}

#[test]
fn min_connections_refilled_by_maintenance() {
    let (p, ctl) = pool_with(PoolOptions {
        min_connections: 3,
        ..opts(5)
    });
    wait_until("refill", Duration::from_secs(3), || p.stats().idle == 3);
    let a = p.connect().unwrap();
    p.manual_close(a).unwrap();
    wait_until("refill again", Duration::from_secs(3), || {
        p.stats().open == 3
    });
    assert_eq!(ctl.connects.load(SeqCst), 4);
}

#[test]
fn min_connections_connect_failure_is_not_fatal() {
    let f = Fake::default();
    f.0.fail_connect.store(true, SeqCst);
    let ctl = f.0.clone();
    let logs = Arc::new(Mutex::new(Vec::<(Level, String)>::new()));
    let p = Pool::new(
        f,
        PoolOptions {
            min_connections: 2,
            ..opts(5)
        },
    );
    let l2 = logs.clone();
    p.set_logger(Some(Arc::new(move |lvl, m: &str| {
        l2.lock().unwrap().push((lvl, m.to_string()))
    })));
    wait_until("attempts", Duration::from_secs(3), || {
        ctl.connects.load(SeqCst) >= 2
    });
    ctl.fail_connect.store(false, SeqCst);
    wait_until("refill", Duration::from_secs(3), || p.stats().open == 2);
    assert!(logs
        .lock()
        .unwrap()
        .iter()
        .any(|(l, m)| *l == Level::Warn && m.contains("connection refused")));
}

#[test]
fn idle_timeout_closes_down_to_min() {
    let (p, ctl) = pool_with(PoolOptions {
        min_connections: 1,
        idle_timeout: Some(Duration::from_millis(60)),
        ..opts(5)
    });
    let ids: Vec<_> = (0..4).map(|_| p.connect().unwrap()).collect();
    for id in ids {
        p.release(id).unwrap();
    }
    wait_until("idle closes", Duration::from_secs(3), || {
        p.stats().closed_idle == 3
    });
    thread::sleep(Duration::from_millis(150));
    let s = p.stats();
    assert_eq!((s.open, s.closed_idle), (1, 3), "kept min_connections");
    assert_eq!(ctl.closes.load(SeqCst), 3);
}

#[test]
fn leak_logged_once_with_thread_name() {
    let (p, _ctl) = pool_with(PoolOptions {
        leak_threshold: Some(Duration::from_millis(40)),
        ..opts(5)
    });
    let logs = Arc::new(Mutex::new(Vec::<(Level, String)>::new()));
    let l2 = logs.clone();
    p.set_logger(Some(Arc::new(move |lvl, m: &str| {
        l2.lock().unwrap().push((lvl, m.to_string()))
    })));
    let p2 = p.clone();
    let id = thread::Builder::new()
        .name("leaky-worker".into())
        .spawn(move || p2.connect().unwrap())
        .unwrap()
        .join()
        .unwrap();
    wait_until("leak report", Duration::from_secs(3), || {
        p.stats().leaks == 1
    });
    thread::sleep(Duration::from_millis(150));
    assert_eq!(p.stats().leaks, 1, "reported once");
    let warns: Vec<_> = logs
        .lock()
        .unwrap()
        .iter()
        .filter(|(l, m)| *l == Level::Warn && m.contains("leak"))
        .cloned()
        .collect();
    assert_eq!(warns.len(), 1, "{warns:?}");
    assert!(
        warns[0].1.contains("leaky-worker") && warns[0].1.contains("ThreadId"),
        "{}",
        warns[0].1
    );
    p.release(id).unwrap();
}

#[test]
fn debug_events_go_to_the_logger() {
    let (p, _ctl) = pool_with(PoolOptions {
        stale_timeout: Some(Duration::from_millis(30)),
        ..opts(5)
    });
    let logs = Arc::new(Mutex::new(Vec::<String>::new()));
    let l2 = logs.clone();
    p.set_logger(Some(Arc::new(move |_l, m: &str| {
        l2.lock().unwrap().push(m.to_string())
    })));
    let a = p.connect().unwrap();
    p.release(a).unwrap();
    thread::sleep(Duration::from_millis(50));
    let b = p.connect().unwrap();
    thread::sleep(Duration::from_millis(50));
    p.release(b).unwrap();
    p.set_logger(None);
    let logs = logs.lock().unwrap().join("\n");
    for want in [
        "No connection available in pool.",
        "Created new connection 1.",
        "Returning 1 to pool.",
        "Connection 1 was stale, closing.",
        "Closing stale connection 2.",
    ] {
        assert!(logs.contains(want), "missing {want:?} in:\n{logs}");
    }
}

#[test]
fn connect_failure_returned_at_once() {
    let (p, ctl) = pool_with(PoolOptions {
        timeout: WaitTimeout::Wait(Duration::from_secs(5)),
        ..opts(1)
    });
    ctl.fail_connect.store(true, SeqCst);
    let start = Instant::now();
    let e = p.connect().unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(e.status, Status::POOL_ERR_CONNECT);
    assert!(e.message.contains("connection refused"), "{}", e.message);
    let s = p.stats();
    assert_eq!(
        (
            s.open,
            s.opened_total,
            s.closed_total,
            s.checkouts,
            s.timeouts,
            s.waiting
        ),
        (0, 0, 0, 0, 0, 0)
    );
    ctl.fail_connect.store(false, SeqCst);
    p.connect().unwrap();
}

#[test]
fn failed_connect_passes_its_place_to_a_waiter() {
    let (p, ctl) = pool_with(PoolOptions {
        timeout: WaitTimeout::Wait(Duration::from_secs(5)),
        ..opts(1)
    });
    ctl.connect_delay_ms.store(100, SeqCst);
    ctl.fail_nth.store(1, SeqCst);
    let p2 = p.clone();
    let first = thread::spawn(move || p2.connect());
    thread::sleep(Duration::from_millis(30));
    let p3 = p.clone();
    let second = thread::spawn(move || p3.connect());
    assert_eq!(
        first.join().unwrap().unwrap_err().status,
        Status::POOL_ERR_CONNECT
    );
    let id = second.join().unwrap().unwrap();
    assert_eq!(conn_no(&p, id), 2);
}

#[test]
fn no_lock_held_during_connect() {
    let (p, ctl) = pool(5);
    let a = p.connect().unwrap();
    ctl.connect_delay_ms.store(300, SeqCst);
    let p2 = p.clone();
    let slow = thread::spawn(move || p2.connect().unwrap());
    thread::sleep(Duration::from_millis(50));
    let start = Instant::now();
    let _ = p.stats();
    p.release(a).unwrap();
    let b = p.connect().unwrap(); // the idle one, not a new connect
    assert!(
        start.elapsed() < Duration::from_millis(100),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(conn_no(&p, b), 1);
    slow.join().unwrap();
}

#[test]
fn shutdown_wakes_waiters_with_closed_and_revokes() {
    let (p, ctl) = pool_with(PoolOptions {
        timeout: WaitTimeout::Forever,
        ..opts(2)
    });
    let idle = p.connect().unwrap();
    let held = p.connect().unwrap();
    p.release(idle).unwrap();
    let busy = p.connect().unwrap();
    let p2 = p.clone();
    let waiter = thread::spawn(move || p2.connect());
    wait_until("waiter", Duration::from_secs(2), || p.stats().waiting == 1);
    let p3 = p.clone();
    let call = thread::spawn(move || p3.execute(busy, "gate", &[]));
    ctl.wait_gate_entered();
    p.shutdown();
    assert_eq!(
        waiter.join().unwrap().unwrap_err().status,
        Status::POOL_ERR_CLOSED
    );
    assert_eq!(
        ctl.closes.load(SeqCst),
        1,
        "the held one closed now, the busy one later"
    );
    ctl.gate_open.store(true, SeqCst);
    assert!(call.join().unwrap().is_ok(), "the call in flight finishes");
    assert_eq!(ctl.closes.load(SeqCst), 2);
    assert_eq!(
        p.execute(held, "x", &[]).unwrap_err().status,
        Status::POOL_ERR_INVALID_HANDLE
    );
    assert_eq!(p.connect().unwrap_err().status, Status::POOL_ERR_CLOSED);
    p.shutdown(); // idempotent
    let s = p.stats();
    assert_eq!((s.open, s.closed_cleared), (0, 2));
}

#[test]
fn drop_of_last_clone_shuts_down() {
    let (p, ctl) = pool_with(PoolOptions {
        min_connections: 2,
        ..opts(5)
    });
    wait_until("refill", Duration::from_secs(3), || p.stats().open == 2);
    let weak = p.downgrade();
    let p2 = p.clone();
    drop(p);
    assert!(weak.upgrade().is_some());
    drop(p2);
    assert!(weak.upgrade().is_none());
    assert_eq!(ctl.closes.load(SeqCst), 2);
}

#[test]
fn pooled_conn_guard_releases_on_drop() {
    let (p, ctl) = pool(1);
    {
        let c = p.get().unwrap();
        assert_eq!(c.execute("x", &[]).unwrap(), 1);
        c.begin().unwrap();
        assert_eq!(p.get().unwrap_err().status, Status::POOL_ERR_EXHAUSTED);
    }
    assert_eq!(ctl.rollbacks.load(SeqCst), 1);
    let c = p.get().unwrap();
    let id = c.id();
    c.close_for_good().unwrap();
    assert_eq!(
        p.release(id).unwrap_err().status,
        Status::POOL_ERR_INVALID_HANDLE
    );
    assert_eq!(p.stats().closed_manual, 1);
}

#[test]
fn fork_child_never_touches_parent_connections() {
    let (p, ctl) = pool(5);
    let held = p.connect().unwrap();
    let idle = p.connect().unwrap();
    p.release(idle).unwrap();
    // SAFETY: the child only uses the pool and then _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let code = (|| {
            let before = (
                ctl.closes.load(SeqCst),
                ctl.rollbacks.load(SeqCst),
                ctl.pings.load(SeqCst),
                ctl.is_closed_calls.load(SeqCst),
            );
            if p.execute(held, "x", &[]).map_err(|e| e.status)
                != Err(Status::POOL_ERR_INVALID_HANDLE)
            {
                return 10;
            }
            let s = p.stats();
            if s.open != 0 || s.idle != 0 {
                return 11;
            }
            let c = match p.connect() {
                Ok(c) => c,
                Err(_) => return 12,
            };
            if p.execute(c, "x", &[]) != Ok(3) {
                return 13; // a fresh connection (the parent made 1 and 2)
            }
            if p.release(c).is_err() || p.release(held).is_ok() {
                return 14;
            }
            let after = (
                ctl.closes.load(SeqCst),
                ctl.rollbacks.load(SeqCst),
                ctl.pings.load(SeqCst),
                ctl.is_closed_calls.load(SeqCst),
            );
            if before != after {
                return 15; // nothing said on the inherited connections
            }
            0
        })();
        // SAFETY: end the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(libc::WIFEXITED(status), "child did not exit: {status}");
    assert_eq!(libc::WEXITSTATUS(status), 0, "child check failed");
    // The parent's connections still work.
    assert_eq!(conn_no(&p, held), 1);
    let again = p.connect().unwrap();
    assert_eq!(conn_no(&p, again), 2);
    assert_eq!(ctl.closes.load(SeqCst), 0);
}
