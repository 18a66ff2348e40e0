//! `statement_cache=0` through PgBouncer in transaction mode (issue 6): a
//! throw-away PgBouncer (tests/pgbouncer/bouncer.sh, default_pool_size=2) in
//! front of the test PostgreSQL, so that server connections are shared between
//! clients and between transactions. Anything that used a named statement,
//! or split Parse and Bind across two round trips, would land on the wrong
//! server connection here. What the driver cannot do through such a pooler
//! (README, PostgreSQL: a result column of a type that is not built in, and
//! the columns of a query with no row) is asserted as documented, so that a
//! driver that lifts a limit fails the test and the README gets updated.
//! Port: PEEPOOL_PGBOUNCER_RUST_PORT, default 6433
//! (the C harness's run.sh takes 6432). Without PgBouncer or PostgreSQL the
//! tests fail under CI=true or PEEPOOL_REQUIRE_SERVERS=1 and are skipped,
//! saying so, elsewhere.

mod common;
use common::servers_required;

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard};

use peepool::backend::postgres::{PostgresBackend, PostgresConn};
use peepool::backend::{Backend, Connection};
use peepool::config::ParsedUrl;
use peepool::{Pool, Value};

const DIRECT: &str = "postgres://postgres@127.0.0.1:5432/test";
const THREADS: usize = 8;

/// One bouncer at a time in this binary: each test starts and stops its own.
static SERIAL: Mutex<()> = Mutex::new(());

struct Bouncer {
    dir: PathBuf,
    port: u16,
    _serial: MutexGuard<'static, ()>,
}

impl Bouncer {
    fn start() -> Option<Bouncer> {
        Bouncer::start_with(&[])
    }

    /// With extra `[pgbouncer]` settings (`name=value`).
    fn start_with(settings: &[&str]) -> Option<Bouncer> {
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = backend(DIRECT).connect() {
            assert!(
                !servers_required(),
                "PostgreSQL is required but unreachable: {}",
                e.message
            );
            eprintln!("SKIP: PostgreSQL unreachable at {DIRECT}: {}", e.message);
            return None;
        }
        let port: u16 = std::env::var("PEEPOOL_PGBOUNCER_RUST_PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(6433);
        let dir = std::env::temp_dir().join(format!("peepool-pgbouncer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let out = Command::new("sh")
            .arg(script())
            .args(["start", dir.to_str().unwrap(), &port.to_string()])
            .args(settings)
            .output()
            .expect("sh runs");
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            // Exit 3: pgbouncer is not installed.
            if out.status.code() == Some(3) && !servers_required() {
                eprintln!("SKIP: {err}");
                return None;
            }
            panic!("could not start pgbouncer: {err}");
        }
        Some(Bouncer {
            dir,
            port,
            _serial: serial,
        })
    }

    fn url(&self, options: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/test?statement_cache=0{options}",
            self.port
        )
    }

    fn conn(&self) -> PostgresConn {
        backend(&self.url(""))
            .connect()
            .unwrap_or_else(|e| panic!("connect through pgbouncer: {}", e.message))
    }

    /// A command on PgBouncer's admin console (database `pgbouncer`).
    fn admin(&self, sql: &str) {
        let st = Command::new("psql")
            .args(["-X", "-q", "-h", "127.0.0.1", "-U", "postgres"])
            .args(["-p", &self.port.to_string(), "-d", "pgbouncer", "-c", sql])
            .status()
            .expect("psql runs");
        assert!(st.success(), "pgbouncer admin command failed: {sql}");
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let _ = Command::new("sh")
            .arg(script())
            .args(["stop", self.dir.to_str().unwrap()])
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/pgbouncer/bouncer.sh")
}

fn backend(url: &str) -> PostgresBackend {
    let p = ParsedUrl::parse(url).expect("test URL parses");
    PostgresBackend::new(&p, &p.connect).expect("backend builds")
}

fn unique(prefix: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}_{}_{}", std::process::id(), n % 1_000_000_000)
}

fn text(r: &peepool::ResultSet, row: usize, col: usize) -> String {
    String::from_utf8(r.text(row, col).unwrap().to_vec()).unwrap()
}

/// Runs `f(thread)` on THREADS threads at once; any panic fails the test.
fn on_threads(f: impl Fn(usize) + Send + Sync + 'static) {
    let f = Arc::new(f);
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let f = Arc::clone(&f);
            std::thread::spawn(move || f(t))
        })
        .collect();
    for h in handles {
        h.join().expect("a worker thread failed");
    }
}

/// Eight threads through one peepool pool of eight connections, sharing the
/// bouncer's two server connections: parameterised queries and statements,
/// and explicit transactions, all with the right answers.
#[test]
fn parameterised_queries_from_8_threads_over_2_server_connections() {
    let Some(b) = Bouncer::start() else { return };
    let table = unique("pp_bounce");
    let mut setup = b.conn();
    setup
        .execute(
            &format!("CREATE TABLE {table} (id bigint, t text, b bytea)"),
            &[],
        )
        .unwrap();
    let p = ParsedUrl::parse(&b.url("&max_connections=8&timeout=30")).unwrap();
    let pool = Pool::new(
        PostgresBackend::new(&p, &p.connect).unwrap(),
        p.pool.clone(),
    );
    let (pool2, table2) = (pool.clone(), table.clone());
    on_threads(move |t| {
        for i in 0..60i64 {
            let id = pool2.connect().unwrap();
            let n = t as i64 * 1000 + i;
            let r = pool2
                .query(
                    id,
                    "SELECT $1::int8 * 2, $2::text || '!', length($3::bytea), $4::numeric + 0.5",
                    &[
                        Value::Int(n),
                        Value::Text(&format!("t{n}")),
                        Value::Blob(&[1, 2, 3, (n % 256) as u8]),
                        Value::Text("1.25"),
                    ],
                )
                .unwrap_or_else(|e| panic!("query: {}", e.message));
            assert_eq!(r.int64(0, 0).unwrap(), n * 2);
            assert_eq!(text(&r, 0, 1), format!("t{n}!"));
            assert_eq!(r.int64(0, 2).unwrap(), 4);
            assert_eq!(text(&r, 0, 3), "1.75");
            assert_eq!(
                pool2
                    .execute(
                        id,
                        &format!("INSERT INTO {table2} VALUES ($1, $2, $3)"),
                        &[
                            Value::Int(n),
                            Value::Text("auto"),
                            Value::Blob(&[0, 255, n as u8])
                        ],
                    )
                    .unwrap(),
                1
            );
            if i % 5 == 0 {
                // A transaction keeps one server connection from BEGIN to
                // COMMIT: what it wrote is visible to itself before COMMIT.
                pool2.begin(id).unwrap();
                pool2
                    .execute(
                        id,
                        &format!("INSERT INTO {table2} VALUES ($1, 'tx', NULL)"),
                        &[Value::Int(-n - 1)],
                    )
                    .unwrap();
                let r = pool2
                    .query(
                        id,
                        &format!("SELECT count(*) FROM {table2} WHERE id = $1"),
                        &[Value::Int(-n - 1)],
                    )
                    .unwrap();
                assert_eq!(r.int64(0, 0).unwrap(), 1);
                pool2.commit(id).unwrap();
            }
            pool2.release(id).unwrap();
        }
    });
    let r = setup
        .query(
            &format!(
                "SELECT count(*), count(*) FILTER (WHERE t = 'tx'), sum(length(b)) FROM {table}"
            ),
            &[],
        )
        .unwrap();
    assert_eq!(r.int64(0, 0).unwrap(), THREADS as i64 * 72);
    assert_eq!(r.int64(0, 1).unwrap(), THREADS as i64 * 12);
    assert_eq!(r.int64(0, 2).unwrap(), THREADS as i64 * 60 * 3);
    setup.execute(&format!("DROP TABLE {table}"), &[]).unwrap();
    assert_eq!(pool.stats().in_use, 0);
}

/// Creates an enum, a domain and a composite type (names unique to this run)
/// and returns their names; `drop_types` drops them.
fn create_types(c: &mut PostgresConn) -> [String; 3] {
    let names = [unique("pp_mood"), unique("pp_posint"), unique("pp_pair")];
    let [mood, dom, pair] = &names;
    // One statement per round trip: the extended protocol takes one at a time.
    for sql in [
        format!("CREATE TYPE {mood} AS ENUM ('sad', 'ok', 'happy')"),
        format!("CREATE DOMAIN {dom} AS int CHECK (VALUE > 0)"),
        format!("CREATE TYPE {pair} AS (a int, b text)"),
    ] {
        c.execute(&sql, &[]).unwrap();
    }
    names
}

fn drop_types(c: &mut PostgresConn, [mood, dom, pair]: &[String; 3]) {
    for sql in [
        format!("DROP TYPE {pair}"),
        format!("DROP DOMAIN {dom}"),
        format!("DROP TYPE {mood}"),
    ] {
        c.execute(&sql, &[]).unwrap();
    }
}

/// Whether `e` is the documented error of a type lookup that a
/// transaction-mode pooler split across server connections.
fn is_type_lookup_error(e: &peepool::Error) -> bool {
    e.status == peepool::Status::POOL_ERR_DATABASE
        && matches!(e.sqlstate.as_deref(), Some("26000" | "42P05"))
        && e.message.contains("not built in")
        && e.message.contains("::text")
        && e.message.contains("max_prepared_statements")
}

/// Types that are not built in (enum, composite, arrays of them), cast to
/// text in the query as the README says, and a domain, which needs no cast
/// (a result column names its base type): from 8
/// threads on fresh connections, with parameters and a result of a few
/// thousand rows, through the two server connections. The casts leave the
/// driver nothing to look up.
#[test]
fn user_defined_types_cast_to_text_from_8_threads() {
    let Some(b) = Bouncer::start() else { return };
    let mut setup = b.conn();
    let types = create_types(&mut setup);
    let [mood, dom, pair] = types.clone();
    let sql = format!(
        "SELECT $1::{mood}::text, ARRAY['sad', $1]::{mood}[]::text, $2::{dom}, \
         ROW($2, $1)::{pair}::text, ARRAY[ROW(1, 'x')::{pair}]::text"
    );
    let many = format!("SELECT g, 'ok'::{mood}::text FROM generate_series(1, 3000) g");
    let url = b.url("");
    on_threads(move |t| {
        for i in 0..12i64 {
            let mut c = backend(&url)
                .connect()
                .unwrap_or_else(|e| panic!("connect through pgbouncer: {}", e.message));
            let n = t as i64 * 100 + i + 1;
            let r = c
                .query(&sql, &[Value::Text("happy"), Value::Int(n)])
                .unwrap_or_else(|e| panic!("thread {t}: {}", e.message));
            assert_eq!(text(&r, 0, 0), "happy");
            assert_eq!(text(&r, 0, 1), "{sad,happy}");
            assert_eq!(r.int64(0, 2).unwrap(), n);
            assert_eq!(text(&r, 0, 3), format!("({n},happy)"));
            assert_eq!(text(&r, 0, 4), "{\"(1,x)\"}");
            if i == 0 {
                let r = c
                    .query(&many, &[])
                    .unwrap_or_else(|e| panic!("thread {t}: {}", e.message));
                assert_eq!(r.rows(), 3000);
                assert_eq!(
                    (r.int64(2999, 0).unwrap(), text(&r, 2999, 1)),
                    (3000, "ok".into())
                );
            }
            c.close();
        }
    });
    drop_types(&mut setup, &types);
}

/// Without the cast, the driver's lookup of the type (named statements, one
/// round trip to prepare, the next to run) is split across the two server
/// connections when each round trip goes to the other one
/// (server_round_robin=1 with both idle): the query fails with the README's
/// error and SQLSTATE, and the statement itself has run. Should the driver
/// learn to look types up in one round trip, this test fails and the README's
/// limit goes.
#[test]
fn uncast_user_defined_type_is_a_clear_error() {
    let Some(b) = Bouncer::start_with(&["server_round_robin=1"]) else {
        return;
    };
    let mut setup = b.conn();
    let types = create_types(&mut setup);
    let [mood, dom, pair] = &types;
    let table = unique("pp_moods");
    setup
        .execute(&format!("CREATE TABLE {table} (m {mood})"), &[])
        .unwrap();
    // Both server connections open and idle: two transactions at once.
    let (mut w1, mut w2) = (b.conn(), b.conn());
    for w in [&mut w1, &mut w2] {
        w.begin().unwrap();
        w.query("SELECT 1", &[]).unwrap();
    }
    for w in [&mut w1, &mut w2] {
        w.commit().unwrap();
    }
    let cases = [
        format!("SELECT 'happy'::{mood}"),
        format!("SELECT ARRAY[3::{dom}]"),
        format!("SELECT ROW(1, 'x')::{pair}"),
        format!("SELECT ARRAY['ok']::{mood}[]"),
        format!("INSERT INTO {table} VALUES ('sad') RETURNING m"),
    ];
    for sql in &cases {
        // A fresh connection: its driver has looked nothing up yet.
        let mut c = b.conn();
        let e = c.query(sql, &[]).expect_err(sql);
        assert!(
            is_type_lookup_error(&e),
            "{sql}: {:?}: {}",
            e.sqlstate,
            e.message
        );
        // The connection stays usable, a cast gets the value, and a domain
        // needs none: a result column names the domain's base type.
        let r = c
            .query(&format!("SELECT 'happy'::{mood}::text, 3::{dom}"), &[])
            .unwrap();
        assert_eq!(
            (text(&r, 0, 0), r.int64(0, 1).unwrap()),
            ("happy".into(), 3)
        );
        c.close();
    }
    // The INSERT ran although its result was lost, as the message says.
    let r = setup
        .query(
            &format!("SELECT count(*) FROM {table} WHERE m = 'sad'"),
            &[],
        )
        .unwrap();
    assert_eq!(r.int64(0, 0).unwrap(), 1);
    setup.execute(&format!("DROP TABLE {table}"), &[]).unwrap();
    drop_types(&mut setup, &types);
}

/// Uncast, from 8 threads on fresh connections (the default LIFO reuse of
/// server connections): each lookup may or may not be split, and every query
/// either gives the right value or the README's error, never another value
/// and never a hang.
#[test]
fn uncast_user_defined_type_is_right_or_a_clear_error_from_8_threads() {
    let Some(b) = Bouncer::start() else { return };
    let mut setup = b.conn();
    let types = create_types(&mut setup);
    let [mood, dom, _] = types.clone();
    let sql = format!("SELECT $1::{mood}, $2::{dom}");
    let url = b.url("");
    let outcomes = Arc::new(Mutex::new((0usize, 0usize)));
    let seen = Arc::clone(&outcomes);
    on_threads(move |t| {
        for i in 0..8i64 {
            let mut c = backend(&url)
                .connect()
                .unwrap_or_else(|e| panic!("connect through pgbouncer: {}", e.message));
            let n = t as i64 * 100 + i + 1;
            match c.query(&sql, &[Value::Text("ok"), Value::Int(n)]) {
                Ok(r) => {
                    assert_eq!((text(&r, 0, 0), r.int64(0, 1).unwrap()), ("ok".into(), n));
                    seen.lock().unwrap().0 += 1;
                }
                Err(e) => {
                    assert!(is_type_lookup_error(&e), "{:?}: {}", e.sqlstate, e.message);
                    seen.lock().unwrap().1 += 1;
                }
            }
            c.close();
        }
    });
    let (right, errors) = *outcomes.lock().unwrap();
    assert_eq!(right + errors, THREADS * 8);
    eprintln!("uncast through the bouncer: {right} right, {errors} clear errors");
    drop_types(&mut setup, &types);
}

/// With statement_cache=0 a query that returns no row has no columns (the
/// driver keeps an unnamed statement's columns only with its rows): 0
/// columns and column 0 out of range, through the bouncer and directly
/// alike, while a named statement (the default cache) keeps them. The
/// statement still runs exactly once.
#[test]
fn zero_rows_have_no_columns_with_statement_cache_0() {
    let Some(b) = Bouncer::start() else { return };
    let table = unique("pp_zero");
    let mut c = b.conn();
    c.execute(&format!("CREATE TABLE {table} (id int, name text)"), &[])
        .unwrap();
    let sql = format!("SELECT id, name AS label, $1::int8 AS k FROM {table} WHERE id = $2");
    let no_columns = |r: &peepool::ResultSet| {
        assert_eq!((r.rows(), r.columns()), (0, 0));
        let e = r.column_name(0).expect_err("no column 0");
        assert_eq!(e.status, peepool::Status::POOL_ERR_INVALID_ARGUMENT);
    };
    no_columns(&c.query(&sql, &[Value::Int(7), Value::Int(1)]).unwrap());
    c.begin().unwrap();
    no_columns(&c.query(&sql, &[Value::Int(7), Value::Int(1)]).unwrap());
    no_columns(
        &c.query(
            &format!("UPDATE {table} SET name = $1 WHERE id = 42 RETURNING id, name"),
            &[Value::Text("b")],
        )
        .unwrap(),
    );
    c.execute(&format!("INSERT INTO {table} VALUES (1, 'a')"), &[])
        .unwrap();
    c.commit().unwrap();
    // One row: the columns come with it.
    let r = c.query(&sql, &[Value::Int(7), Value::Int(1)]).unwrap();
    assert_eq!((r.rows(), r.columns()), (1, 3));
    assert_eq!(r.column_name(1).unwrap(), "label");

    let mut direct = backend(&format!("{DIRECT}?statement_cache=0"))
        .connect()
        .unwrap();
    no_columns(&direct.query(&sql, &[Value::Int(7), Value::Int(2)]).unwrap());
    let mut cached = backend(DIRECT).connect().unwrap();
    let r = cached.query(&sql, &[Value::Int(7), Value::Int(2)]).unwrap();
    assert_eq!((r.rows(), r.columns()), (0, 3));
    assert_eq!(r.column_name(2).unwrap(), "k");

    let seq = unique("pp_seq");
    c.execute(&format!("CREATE SEQUENCE {seq}"), &[]).unwrap();
    no_columns(
        &c.query(
            &format!("SELECT nextval('{seq}') AS n FROM {table} WHERE id = 99"),
            &[],
        )
        .unwrap(),
    );
    let r = c.query(&format!("SELECT nextval('{seq}')"), &[]).unwrap();
    assert_eq!(r.int64(0, 0).unwrap(), 1);
    c.execute(&format!("DROP SEQUENCE {seq}"), &[]).unwrap();
    c.execute(&format!("DROP TABLE {table}"), &[]).unwrap();
}

/// When PgBouncer drops the client's connection (admin KILL), the next call
/// fails with SQLSTATE class 08 and the connection reports itself closed, so
/// the pool evicts it; a new connection works once the database is resumed.
#[test]
fn connection_dropped_by_the_bouncer_is_lost() {
    let Some(b) = Bouncer::start() else { return };
    let mut c = b.conn();
    c.query("SELECT 1", &[]).unwrap();
    b.admin("KILL test");
    b.admin("RESUME test");
    let e = c.query("SELECT 1", &[]).expect_err("the link was dropped");
    assert!(
        e.sqlstate.as_deref().is_some_and(|s| s.starts_with("08")),
        "sqlstate {:?}: {}",
        e.sqlstate,
        e.message
    );
    assert!(c.is_closed());
    let mut d = b.conn();
    assert_eq!(
        d.query("SELECT 41 + 1", &[]).unwrap().int64(0, 0).unwrap(),
        42
    );
}
