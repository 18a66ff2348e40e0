//! The SQLite backend through the `Backend` / `Connection` traits.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

use peepool::backend::sqlite::{real_text, SqliteBackend, SqliteConn};
use peepool::{Backend, Connection, Kind, ParsedUrl, Status, Value};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "peepool-sqlite-{tag}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
    fn path(&self, name: &str) -> String {
        self.0
            .join(name)
            .to_str()
            .expect("utf-8 temp path")
            .to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn backend(url: &str) -> peepool::Result<SqliteBackend> {
    let parsed = ParsedUrl::parse(url)?;
    SqliteBackend::new(&parsed, &parsed.connect)
}

fn open(url: &str) -> (SqliteBackend, SqliteConn) {
    let b = backend(url).unwrap_or_else(|e| panic!("{url}: {}", e.message));
    let c = b
        .connect()
        .unwrap_or_else(|e| panic!("{url}: {}", e.message));
    (b, c)
}

fn scalar_int(c: &mut SqliteConn, sql: &str) -> i64 {
    let rs = c
        .query(sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {}", e.message));
    rs.int64(0, 0).unwrap()
}

#[test]
fn relative_path_url() {
    let dir = TempDir::new("rel");
    // A relative path is relative to the working directory: express the temp
    // dir relative to it.
    let cwd = std::env::current_dir().unwrap();
    let depth = cwd.components().count() - 1;
    let rel = format!(
        "{}{}",
        "../".repeat(depth),
        dir.path("rel.db").trim_start_matches('/')
    );
    let (_b, mut c) = open(&format!("sqlite:{rel}"));
    c.execute("CREATE TABLE t(x)", &[]).unwrap();
    assert!(std::path::Path::new(&dir.path("rel.db")).exists());
}

#[test]
fn absolute_path_urls() {
    let dir = TempDir::new("abs");
    let one = dir.path("one.db");
    let (_b, mut c) = open(&format!("sqlite:{one}"));
    c.execute("CREATE TABLE t(x)", &[]).unwrap();
    assert!(std::path::Path::new(&one).exists());

    let two = dir.path("two.db");
    let (_b2, mut c2) = open(&format!("sqlite://{two}"));
    c2.execute("CREATE TABLE t(x)", &[]).unwrap();
    assert!(
        std::path::Path::new(&two).exists(),
        "sqlite:///abs must be absolute"
    );

    // sqlite3: scheme works too, and a file name with escapes.
    let three = dir.path("a b?c.db");
    let escaped = three.replace(' ', "%20").replace('?', "%3F");
    let (_b3, mut c3) = open(&format!("sqlite3:{escaped}"));
    c3.execute("CREATE TABLE t(x)", &[]).unwrap();
    assert!(std::path::Path::new(&three).exists());
}

#[test]
fn host_part_and_empty_path_are_refused() {
    for url in [
        "sqlite://host/x.db",
        "sqlite://relative.db",
        "sqlite:",
        "sqlite://",
    ] {
        let e = backend(url)
            .err()
            .unwrap_or_else(|| panic!("{url} accepted"));
        assert_eq!(e.status, Status::POOL_ERR_CONFIG, "{url}");
    }
}

#[test]
fn unknown_option_is_refused_by_name() {
    let e = backend("sqlite::memory:?journal=wal").err().unwrap();
    assert_eq!(e.status, Status::POOL_ERR_CONFIG);
    assert!(e.message.contains("'journal'"), "{}", e.message);
    let e = backend("sqlite:x.db?busy_timeout=-1").err().unwrap();
    assert_eq!(e.status, Status::POOL_ERR_CONFIG);
    assert!(e.message.contains("busy_timeout"), "{}", e.message);
    let e = backend("sqlite::memory:?vfs=unix").err().unwrap();
    assert_eq!(e.status, Status::POOL_ERR_CONFIG);
    let e = backend("sqlite:x.db?mode=ro&mode=rw").err().unwrap();
    assert_eq!(e.status, Status::POOL_ERR_CONFIG);
}

#[test]
fn uri_options_pass_through() {
    let dir = TempDir::new("uri");
    let missing = dir.path("missing.db");
    let b = backend(&format!("sqlite:{missing}?mode=ro")).unwrap();
    let e = b
        .connect()
        .err()
        .expect("mode=ro on a missing file must fail");
    assert_eq!(e.status, Status::POOL_ERR_CONNECT);
    assert!(e.message.contains(&missing), "{}", e.message);
    assert!(!std::path::Path::new(&missing).exists());

    // mode=ro on an existing file opens read-only.
    let db = dir.path("ro.db");
    let (_w, mut wc) = open(&format!("sqlite:{db}"));
    wc.execute("CREATE TABLE t(x)", &[]).unwrap();
    let (_r, mut rc) = open(&format!("sqlite:{db}?mode=ro&cache=private&psow=1"));
    assert_eq!(scalar_int(&mut rc, "SELECT count(*) FROM t"), 0);
    let e = rc.execute("INSERT INTO t VALUES (1)", &[]).unwrap_err();
    assert_eq!(e.status, Status::POOL_ERR_DATABASE);
    assert_eq!(
        e.sqlstate
            .as_deref()
            .map(|s| s.parse::<i32>().unwrap() & 0xff),
        Some(8),
        "SQLITE_READONLY"
    );

    // vfs passes through: a VFS that does not exist fails to connect.
    let b = backend(&format!("sqlite:{db}?vfs=no-such-vfs")).unwrap();
    assert_eq!(b.connect().err().unwrap().status, Status::POOL_ERR_CONNECT);
}

#[test]
fn memory_database_is_shared_and_outlives_its_connections() {
    let b = backend("sqlite::memory:").unwrap();
    assert_eq!(
        b.memory_uses_memdb(),
        Some(true),
        "memdb VFS expected with bundled SQLite"
    );
    let mut c1 = b.connect().unwrap();
    let mut c2 = b.connect().unwrap();
    c1.execute("CREATE TABLE t(x)", &[]).unwrap();
    c1.execute("INSERT INTO t VALUES (42)", &[]).unwrap();
    assert_eq!(scalar_int(&mut c2, "SELECT x FROM t"), 42);
    c1.close();
    c2.close();
    let mut c3 = b.connect().unwrap();
    assert_eq!(
        scalar_int(&mut c3, "SELECT x FROM t"),
        42,
        "database lost after all connections closed"
    );

    // Another backend has its own database.
    let other = backend("sqlite::memory:").unwrap();
    let mut o = other.connect().unwrap();
    assert_eq!(scalar_int(&mut o, "SELECT count(*) FROM sqlite_master"), 0);
    c3.close();
    drop(b);
}

#[test]
fn init_sql_runs_several_statements() {
    let dir = TempDir::new("init");
    let db = dir.path("wal.db");
    let url =
        format!("sqlite:{db}?init_sql=PRAGMA%20journal_mode%3DWAL%3B%20PRAGMA%20foreign_keys%3DON");
    let (_b, mut c) = open(&url);
    let rs = c.query("PRAGMA journal_mode", &[]).unwrap();
    assert_eq!(rs.text(0, 0).unwrap(), b"wal");
    assert_eq!(scalar_int(&mut c, "PRAGMA foreign_keys"), 1);
}

#[test]
fn failing_init_sql_is_a_connect_error() {
    let b =
        backend("sqlite::memory:?init_sql=CREATE%20TABLE%20a(x)%3B%20SELEC%20nonsense").unwrap();
    let e = b.connect().err().unwrap();
    assert_eq!(e.status, Status::POOL_ERR_CONNECT);
    assert!(e.message.contains("init_sql"), "{}", e.message);
    assert!(e.message.contains("syntax error"), "{}", e.message);
}

#[test]
fn values_round_trip() {
    let (_b, mut c) = open("sqlite::memory:");
    c.execute("CREATE TABLE v(n, i INTEGER, d REAL, t TEXT, b BLOB)", &[])
        .unwrap();
    let blob: &[u8] = &[0, 1, 2, 255, 0];
    let n = c
        .execute(
            "INSERT INTO v VALUES (?, ?2, $3, :t, ?5)",
            &[
                Value::Null,
                Value::Int(i64::MIN),
                Value::Double(2.5),
                Value::Text("héllo\u{0}x"),
                Value::Blob(blob),
            ],
        )
        .unwrap();
    assert_eq!(n, 1);
    let rs = c.query("SELECT n, i, d, t, b FROM v", &[]).unwrap();
    assert_eq!(rs.columns(), 5);
    assert_eq!(rs.rows(), 1);
    assert_eq!(rs.column_name(3).unwrap(), "t");
    assert_eq!(rs.kind(0, 0).unwrap(), Kind::Null);
    assert!(rs.is_null(0, 0).unwrap());
    assert_eq!(
        rs.int64(0, 0).unwrap_err().status,
        Status::POOL_ERR_CONVERSION
    );
    assert_eq!(rs.kind(0, 1).unwrap(), Kind::Int);
    assert_eq!(rs.int64(0, 1).unwrap(), i64::MIN);
    assert_eq!(rs.text(0, 1).unwrap(), i64::MIN.to_string().as_bytes());
    assert_eq!(rs.kind(0, 2).unwrap(), Kind::Double);
    assert_eq!(rs.double(0, 2).unwrap(), 2.5);
    assert_eq!(rs.text(0, 2).unwrap(), b"2.5");
    assert_eq!(rs.kind(0, 3).unwrap(), Kind::Text);
    assert_eq!(rs.text(0, 3).unwrap(), "héllo\u{0}x".as_bytes());
    assert_eq!(rs.kind(0, 4).unwrap(), Kind::Blob);
    assert_eq!(rs.blob(0, 4).unwrap(), blob);
    assert_eq!(rs.text(0, 4).unwrap(), blob);

    // Integers in a REAL column come back as REAL; "1.0" as SQLite prints it.
    c.execute("DELETE FROM v", &[]).unwrap();
    c.execute("INSERT INTO v(d) VALUES (?)", &[Value::Int(1)])
        .unwrap();
    let rs = c.query("SELECT d, CAST(d AS TEXT) FROM v", &[]).unwrap();
    assert_eq!(rs.kind(0, 0).unwrap(), Kind::Double);
    assert_eq!(rs.text(0, 0).unwrap(), rs.text(0, 1).unwrap());
    assert_eq!(rs.text(0, 0).unwrap(), b"1.0");

    // NaN is stored as NULL by SQLite; infinities print as SQLite does.
    let rs = c
        .query(
            "SELECT ?, ?, ?",
            &[
                Value::Double(f64::NAN),
                Value::Double(f64::INFINITY),
                Value::Double(-0.0),
            ],
        )
        .unwrap();
    assert!(rs.is_null(0, 0).unwrap());
    assert_eq!(rs.text(0, 1).unwrap(), b"Inf");
    assert_eq!(rs.double(0, 1).unwrap(), f64::INFINITY);
    assert_eq!(rs.double(0, 2).unwrap(), 0.0);

    // A query with no rows still has its columns.
    let rs = c.query("SELECT i AS first, t FROM v WHERE 0", &[]).unwrap();
    assert_eq!((rs.rows(), rs.columns()), (0, 2));
    assert_eq!(rs.column_name(0).unwrap(), "first");
}

#[test]
#[allow(clippy::approx_constant)]
fn real_text_form_equals_sqlite_cast() {
    let (_b, mut c) = open("sqlite::memory:?statement_cache=4");
    let mut values = vec![
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.1,
        0.2,
        0.3,
        1.0 / 3.0,
        2.0 / 3.0,
        3.14159,
        49.47,
        1e15,
        1e16,
        1e17,
        123456789012345678.0,
        1.5e-7,
        1e-5,
        1e-4,
        0.0001234,
        1e300,
        -1e300,
        1e-300,
        5e-324,
        f64::MAX,
        f64::MIN_POSITIVE,
        9007199254740993.0,
        140737488355327.0,
        123456789012345.0,
        1234567890123456.0,
        0.1 + 0.2,
        100.0,
        1e21,
        1e22,
        99.99999999999999,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ];
    // Deterministic pseudo-random doubles across the whole range.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..3000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let d = f64::from_bits(x);
        if d.is_finite() {
            values.push(d);
        }
        values.push((x % 1_000_000) as f64 / 1000.0);
    }
    for v in values {
        let rs = c
            .query("SELECT ?1, CAST(?1 AS TEXT)", &[Value::Double(v)])
            .unwrap();
        let ours = rs.text(0, 0).unwrap();
        let sqlite = rs.text(0, 1).unwrap();
        assert_eq!(
            ours,
            sqlite,
            "{v:e}: ours {:?} SQLite {:?}",
            String::from_utf8_lossy(ours),
            String::from_utf8_lossy(sqlite)
        );
        assert_eq!(real_text(v).as_bytes(), sqlite);
    }
    assert_eq!(real_text(1e300), "1.0e+300");
    assert_eq!(real_text(0.1), "0.1");
}

#[test]
fn constraint_violation_reports_extended_code() {
    let (_b, mut c) = open("sqlite::memory:");
    c.execute("CREATE TABLE u(x UNIQUE)", &[]).unwrap();
    c.execute("INSERT INTO u VALUES (1)", &[]).unwrap();
    let e = c
        .execute("INSERT INTO u VALUES (?)", &[Value::Int(1)])
        .unwrap_err();
    assert_eq!(e.status, Status::POOL_ERR_DATABASE);
    assert_eq!(e.sqlstate.as_deref(), Some("2067"));
    assert!(e.message.contains("UNIQUE"), "{}", e.message);
    assert!(!e.is_connection_lost());
    assert!(!c.is_closed());

    let e = c.query("SELEC 1", &[]).unwrap_err();
    assert_eq!(e.status, Status::POOL_ERR_DATABASE);
    assert_eq!(e.sqlstate.as_deref(), Some("1"));

    let e = c.query("SELECT ?, ?", &[Value::Int(1)]).unwrap_err();
    assert_eq!(e.status, Status::POOL_ERR_INVALID_ARGUMENT);
    assert_eq!(e.sqlstate.as_deref(), Some("25"));
    assert!(e.message.contains("2 parameters"), "{}", e.message);
    assert!(!c.is_closed());
    c.ping().unwrap();
}

#[test]
fn execute_discards_rows_and_counts_changes() {
    let dir = TempDir::new("exec");
    let (_b, mut c) = open(&format!("sqlite:{}", dir.path("e.db")));
    c.execute("CREATE TABLE t(x)", &[]).unwrap();
    assert_eq!(
        c.execute("INSERT INTO t VALUES (1), (2), (3)", &[])
            .unwrap(),
        3
    );
    // A PRAGMA that returns a row, and a SELECT: no changes (not the last DML's 3).
    assert_eq!(c.execute("PRAGMA journal_mode=WAL", &[]).unwrap(), 0);
    assert_eq!(c.execute("SELECT * FROM t", &[]).unwrap(), 0);
    assert_eq!(
        c.execute("UPDATE t SET x = x + 1 WHERE x > ?", &[Value::Int(1)])
            .unwrap(),
        2
    );
    assert_eq!(c.execute("", &[]).unwrap(), 0);
    // Several statements without parameters.
    assert_eq!(
        c.execute(
            "INSERT INTO t VALUES (10); INSERT INTO t VALUES (11), (12);",
            &[]
        )
        .unwrap(),
        3
    );
    // Later statements that need the earlier ones to have run.
    assert_eq!(
        c.execute(
            "CREATE TABLE u(y); INSERT INTO u VALUES (1), (2); DROP TABLE u; \
             CREATE TABLE u(z); INSERT INTO u VALUES (3)",
            &[]
        )
        .unwrap(),
        3
    );
    assert_eq!(scalar_int(&mut c, "SELECT z FROM u"), 3);
    assert_eq!(
        c.execute("DELETE FROM t WHERE x = ?; SELECT 1", &[Value::Int(1)])
            .unwrap_err()
            .status,
        Status::POOL_ERR_DATABASE
    );
    // RETURNING through query: rows and rows_affected.
    let rs = c
        .query("DELETE FROM t WHERE x >= 10 RETURNING x", &[])
        .unwrap();
    assert_eq!(rs.rows(), 3);
    assert_eq!(rs.rows_affected(), 3);
    let rs = c.query("SELECT count(*) FROM t", &[]).unwrap();
    assert_eq!(rs.rows_affected(), 0);
    assert_eq!(rs.int64(0, 0).unwrap(), 3);
}

#[test]
fn transactions() {
    let (_b, mut c) = open("sqlite::memory:");
    c.execute("CREATE TABLE t(x)", &[]).unwrap();
    assert!(!c.in_transaction());
    c.begin().unwrap();
    assert!(c.in_transaction());
    c.execute("INSERT INTO t VALUES (1)", &[]).unwrap();
    c.rollback().unwrap();
    assert!(!c.in_transaction());
    assert_eq!(scalar_int(&mut c, "SELECT count(*) FROM t"), 0);
    c.begin().unwrap();
    c.execute("INSERT INTO t VALUES (1)", &[]).unwrap();
    c.commit().unwrap();
    assert!(!c.in_transaction());
    assert_eq!(scalar_int(&mut c, "SELECT count(*) FROM t"), 1);
    // A transaction opened by SQL is seen too.
    c.execute("BEGIN IMMEDIATE", &[]).unwrap();
    assert!(c.in_transaction());
    let e = c.begin().unwrap_err();
    assert_eq!(e.status, Status::POOL_ERR_DATABASE);
    c.rollback().unwrap();
    assert_eq!(c.commit().unwrap_err().status, Status::POOL_ERR_DATABASE);
    assert!(!c.is_closed());
}

#[test]
fn statement_cache_on_and_off() {
    for cache in [0, 1, 64] {
        let (_b, mut c) = open(&format!("sqlite::memory:?statement_cache={cache}"));
        c.execute("CREATE TABLE t(a, b)", &[]).unwrap();
        for i in 0..20 {
            c.execute(
                "INSERT INTO t VALUES (?, ?)",
                &[Value::Int(i), Value::Text("x")],
            )
            .unwrap();
            c.execute("INSERT INTO t VALUES (?, NULL)", &[Value::Int(i)])
                .unwrap();
        }
        assert_eq!(scalar_int(&mut c, "SELECT count(*) FROM t"), 40);
        // A cached SELECT * sees a schema change.
        let rs = c.query("SELECT * FROM t LIMIT 1", &[]).unwrap();
        assert_eq!(rs.columns(), 2);
        c.execute("ALTER TABLE t ADD COLUMN c", &[]).unwrap();
        let rs = c.query("SELECT * FROM t LIMIT 1", &[]).unwrap();
        assert_eq!(rs.columns(), 3, "cache={cache}");
        assert_eq!(rs.column_name(2).unwrap(), "c", "cache={cache}");
        let rs = c.query("SELECT * FROM t WHERE 0", &[]).unwrap();
        assert_eq!(rs.columns(), 3, "cache={cache}");
        // A renamed column: same count, new name (the cached statement's
        // names are read again after SQLite re-prepares it).
        c.execute("ALTER TABLE t RENAME COLUMN a TO z", &[])
            .unwrap();
        for sql in ["SELECT * FROM t LIMIT 1", "SELECT * FROM t WHERE 0"] {
            let rs = c.query(sql, &[]).unwrap();
            assert_eq!(rs.column_name(0).unwrap(), "z", "{sql} cache={cache}");
        }
        c.ping().unwrap();
        c.close();
    }
}

/// Every cell's text (`NULL` for a null), row by row.
fn all_text(c: &mut SqliteConn, sql: &str, params: &[Value<'_>]) -> Vec<Vec<String>> {
    let rs = c
        .query(sql, params)
        .unwrap_or_else(|e| panic!("{sql}: {}", e.message));
    (0..rs.rows())
        .map(|r| {
            (0..rs.columns())
                .map(|col| match rs.text(r, col) {
                    Ok(t) => String::from_utf8_lossy(t).into_owned(),
                    Err(_) => "NULL".to_string(),
                })
                .collect()
        })
        .collect()
}

/// A cached statement whose program ends after its row is reset after
/// that row instead of stepped once more; every other statement steps to
/// the end. Either way the rows equal the uncached path's, run after run
/// (the program is read on the first reuse).
#[test]
fn single_row_programs_end_early_and_give_the_same_rows() {
    let statements: &[(&str, &[Value<'_>])] = &[
        ("SELECT 1", &[]),
        ("SELECT ?", &[Value::Int(5)]),
        ("SELECT x FROM t WHERE id = ?", &[Value::Int(2)]),
        ("SELECT x FROM t WHERE id = ?", &[Value::Int(99)]),
        (
            "SELECT x FROM t WHERE id = ? AND y = ?",
            &[Value::Int(2), Value::Int(0)],
        ),
        ("SELECT count(*) FROM t", &[]),
        ("SELECT max(x) FROM t", &[]),
        ("SELECT max(x) FROM t WHERE id > 100", &[]),
        ("SELECT (SELECT x FROM t ORDER BY id)", &[]),
        ("SELECT x FROM t ORDER BY id LIMIT 1", &[]),
        ("SELECT x FROM t WHERE y = ? ORDER BY id", &[Value::Int(1)]),
        ("SELECT 1 UNION ALL SELECT 2", &[]),
        ("VALUES (1), (2), (3)", &[]),
        ("SELECT y, count(*) FROM t GROUP BY y", &[]),
        ("SELECT x FROM t ORDER BY id", &[]),
    ];
    let (_b0, mut plain) = open("sqlite::memory:?statement_cache=0");
    let (_b1, mut cached) = open("sqlite::memory:");
    for c in [&mut plain, &mut cached] {
        c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, x, y)", &[])
            .unwrap();
        c.execute("CREATE INDEX t_y ON t(y)", &[]).unwrap();
        for i in 1..=5 {
            c.execute(
                "INSERT INTO t VALUES (?, ?, ?)",
                &[Value::Int(i), Value::Int(i * 10), Value::Int(i % 2)],
            )
            .unwrap();
        }
    }
    for round in 0..3 {
        for (sql, params) in statements {
            let want = all_text(&mut plain, sql, params);
            assert_eq!(
                all_text(&mut cached, sql, params),
                want,
                "{sql} round {round}"
            );
        }
    }
}

/// The bound read from a program holds only for that program: a table
/// remade without its primary key (by this connection or another) makes
/// SQLite re-prepare the cached lookup into a scan, and every row comes
/// back.
#[test]
fn a_statement_reprepared_for_a_new_schema_gives_all_its_rows() {
    let b = backend("sqlite::memory:").unwrap();
    let mut c = b.connect().unwrap();
    let mut other = b.connect().unwrap();
    let lookup = "SELECT x FROM t WHERE id = 1 ORDER BY x";
    let remake = |c: &mut SqliteConn, key: &str, values: &str| {
        c.execute("DROP TABLE IF EXISTS t", &[]).unwrap();
        c.execute(&format!("CREATE TABLE t(id {key}, x)"), &[])
            .unwrap();
        c.execute(&format!("INSERT INTO t VALUES {values}"), &[])
            .unwrap();
    };
    remake(&mut c, "INTEGER PRIMARY KEY", "(1, 'a')");
    for _ in 0..3 {
        assert_eq!(all_text(&mut c, lookup, &[]), [["a"]]);
    }
    remake(&mut c, "INT", "(1, 'a'), (1, 'b')");
    for _ in 0..3 {
        assert_eq!(all_text(&mut c, lookup, &[]), [["a"], ["b"]]);
    }
    remake(&mut other, "INTEGER PRIMARY KEY", "(1, 'c')");
    for _ in 0..3 {
        assert_eq!(all_text(&mut c, lookup, &[]), [["c"]]);
    }
    remake(&mut other, "INT", "(1, 'd'), (1, 'e')");
    for _ in 0..3 {
        assert_eq!(all_text(&mut c, lookup, &[]), [["d"], ["e"]]);
    }
}

#[test]
fn concurrent_writers_on_memory_database_wait_for_the_lock() {
    let b = Arc::new(backend("sqlite::memory:?busy_timeout=10").unwrap());
    {
        let mut c = b.connect().unwrap();
        c.execute("CREATE TABLE t(worker, n)", &[]).unwrap();
    }
    let threads: Vec<_> = (0..4)
        .map(|w| {
            let b = Arc::clone(&b);
            thread::spawn(move || {
                let mut c = b.connect().unwrap();
                for n in 0..50 {
                    c.begin().unwrap();
                    c.execute(
                        "INSERT INTO t VALUES (?, ?)",
                        &[Value::Int(w), Value::Int(n)],
                    )
                    .unwrap_or_else(|e| panic!("writer {w}: {} ({:?})", e.message, e.sqlstate));
                    c.commit().unwrap_or_else(|e| {
                        panic!("writer {w} commit: {} ({:?})", e.message, e.sqlstate)
                    });
                }
                c.close();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut c = b.connect().unwrap();
    assert_eq!(scalar_int(&mut c, "SELECT count(*) FROM t"), 200);
}

#[test]
fn busy_timeout_zero_fails_at_once_on_a_locked_database() {
    let b = backend("sqlite::memory:?busy_timeout=0").unwrap();
    let mut c1 = b.connect().unwrap();
    let mut c2 = b.connect().unwrap();
    c1.execute("CREATE TABLE t(x)", &[]).unwrap();
    c1.execute("BEGIN IMMEDIATE", &[]).unwrap();
    let e = c2.execute("INSERT INTO t VALUES (1)", &[]).unwrap_err();
    assert_eq!(e.status, Status::POOL_ERR_DATABASE);
    assert_eq!(
        e.sqlstate
            .as_deref()
            .map(|s| s.parse::<i32>().unwrap() & 0xff),
        Some(5),
        "SQLITE_BUSY: {}",
        e.message
    );
    c1.rollback().unwrap();
    assert_eq!(c2.execute("INSERT INTO t VALUES (1)", &[]).unwrap(), 1);
}

#[test]
fn any_backend_builds_sqlite() {
    let parsed = ParsedUrl::parse("sqlite::memory:").unwrap();
    let b = peepool::AnyBackend::from_url(&parsed).unwrap();
    assert_eq!(b.name(), "sqlite");
    let mut c = b.connect().unwrap();
    assert_eq!(c.execute("CREATE TABLE t(x)", &[]).unwrap(), 0);
    assert!(!c.is_closed());
    c.close();
}

#[test]
fn ping_succeeds_while_another_connection_holds_the_write_lock() {
    let b = backend("sqlite::memory:?busy_timeout=0").unwrap();
    let mut c1 = b.connect().unwrap();
    let mut c2 = b.connect().unwrap();
    c1.execute("CREATE TABLE t(x)", &[]).unwrap();
    c1.execute("BEGIN IMMEDIATE", &[]).unwrap();
    c1.execute("INSERT INTO t VALUES (1)", &[]).unwrap();
    // c2 has not read the schema since the table was made: a ping that
    // prepares a statement must load it, and the writer blocks readers.
    let r = c2.ping();
    c1.rollback().unwrap();
    r.unwrap_or_else(|e| panic!("ping failed on a busy database: {}", e.message));
}
