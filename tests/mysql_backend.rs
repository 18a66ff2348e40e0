//! The MySQL/MariaDB backend against the real server
//! (mysql://root@127.0.0.1:3306/test). Skips with a notice when the server
//! cannot be reached, unless CI=true or PEEPOOL_REQUIRE_SERVERS=1.

mod common;
use common::servers_required;

use mysql::prelude::Queryable;
use peepool::backend::mysql::{MysqlBackend, MysqlConn};
use peepool::{Backend, Connection, Kind, ParsedUrl, Status, Value};

const URL: &str = "mysql://root@127.0.0.1:3306/test";

fn backend(url: &str) -> peepool::Result<MysqlBackend> {
    let u = ParsedUrl::parse(url)?;
    MysqlBackend::new(&u, &u.connect)
}

/// A connection, or None (after a notice) when the server is unreachable.
fn server() -> Option<MysqlConn> {
    match backend(URL).and_then(|b| b.connect()) {
        Ok(c) => Some(c),
        Err(e) => {
            if servers_required() {
                panic!(
                    "MariaDB at {URL} is required (CI) but unreachable: {}",
                    e.message
                );
            }
            eprintln!("SKIP: MariaDB at {URL} unreachable: {}", e.message);
            None
        }
    }
}

fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn one_text(c: &mut MysqlConn, sql: &str) -> String {
    let r = c.query(sql, &[]).unwrap();
    String::from_utf8(r.text(0, 0).unwrap().to_vec()).unwrap()
}

#[test]
fn connects_over_tcp_not_the_socket() {
    let Some(mut c) = server() else { return };
    let host = one_text(
        &mut c,
        "SELECT host FROM information_schema.processlist WHERE id = CONNECTION_ID()",
    );
    assert!(host.starts_with("127.0.0.1:"), "host is {host}");
    c.ping().unwrap();
    assert!(!c.is_closed());
    c.close();
}

#[test]
fn unknown_option_is_refused() {
    let e = backend("mysql://root@127.0.0.1:3306/test?frobnicate=1")
        .err()
        .unwrap();
    assert_eq!(e.status, Status::POOL_ERR_CONFIG);
    assert!(e.message.contains("frobnicate"), "{}", e.message);
    let e = backend("mysql://root@127.0.0.1:3306/test?ssl-mode=preferred")
        .err()
        .unwrap();
    assert_eq!(e.status, Status::POOL_ERR_CONFIG);
    assert!(backend(
        "mariadb://root@127.0.0.1/test?ssl-mode=disabled&compress=fast&prefer_socket=false"
    )
    .is_ok());
}

#[test]
fn bad_password_error_lacks_the_password() {
    let Some(_c) = server() else { return };
    let user = unique("pp_u");
    let mut admin = server().unwrap();
    admin
        .execute(
            &format!("CREATE USER '{user}'@'%' IDENTIFIED BY 'right-pass'"),
            &[],
        )
        .unwrap();
    let secret = "Sup3rSecretPw";
    let r = backend(&format!("mysql://{user}:{secret}@127.0.0.1:3306/test"))
        .unwrap()
        .connect();
    let e = r.err().unwrap();
    admin
        .execute(&format!("DROP USER '{user}'@'%'"), &[])
        .unwrap();
    assert_eq!(e.status, Status::POOL_ERR_CONNECT);
    assert!(!e.message.contains(secret), "{}", e.message);
    assert!(e.message.contains("Access denied"), "{}", e.message);
    // Unreachable port: connect error, bounded by connect_timeout.
    let t = std::time::Instant::now();
    let e = backend("mysql://root:pw@127.0.0.1:1/test?connect_timeout=2")
        .unwrap()
        .connect()
        .err()
        .unwrap();
    assert_eq!(e.status, Status::POOL_ERR_CONNECT);
    assert!(!e.message.contains(":pw"));
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn init_sql_runs_and_its_failure_is_a_connect_error() {
    let Some(_c) = server() else { return };
    let b = backend(&format!(
        "{URL}?init_sql=SET%20@a%3D41%3B%20SET%20@b%3D@a%2B1"
    ))
    .unwrap();
    let mut c = b.connect().unwrap();
    assert_eq!(one_text(&mut c, "SELECT @b"), "42");
    let b = backend(&format!("{URL}?init_sql=SELEC%20nonsense")).unwrap();
    let e = b.connect().err().unwrap();
    assert_eq!(e.status, Status::POOL_ERR_CONNECT);
    assert!(
        e.message.contains("init_sql") && e.message.contains("syntax"),
        "{}",
        e.message
    );
}

/// (column type, values as SQL literals)
const CORPUS: &[(&str, &[&str])] = &[
    ("TINYINT", &["0", "-128", "127", "NULL"]),
    ("TINYINT UNSIGNED", &["255", "0"]),
    ("SMALLINT", &["-32768", "32767"]),
    ("MEDIUMINT UNSIGNED", &["16777215"]),
    ("INT", &["-2147483648", "2147483647"]),
    ("INT(6) ZEROFILL", &["42", "0"]),
    ("BIGINT", &["-9223372036854775808", "9223372036854775807"]),
    (
        "BIGINT UNSIGNED",
        &["18446744073709551615", "9223372036854775808", "1"],
    ),
    (
        "DECIMAL(30,10)",
        &["0", "-12345678901234567890.0123456789", "1.5"],
    ),
    ("DECIMAL(5,0)", &["-99999"]),
    (
        "FLOAT",
        &[
            "1.1",
            "0.1",
            "-3.4e38",
            "1e30",
            "123456789",
            "16777217",
            "1e-10",
            "0.000015",
            "1234565",
            "3.14159265",
            "0",
            "100000",
        ],
    ),
    ("FLOAT(7,3)", &["1.1", "-1234.5675"]),
    (
        "DOUBLE",
        &[
            "0.1",
            "1e300",
            "-1.25e-300",
            "1e15",
            "1e14",
            "123456789012345678",
            "0.00001",
            "1e-15",
            "1e-14",
            "2.5e-16",
            "3.141592653589793",
            "-0.5",
            "1234567890123456.7",
            "0",
            "4.35",
            "2e-308",
        ],
    ),
    ("DOUBLE(10,4)", &["3.14159", "-2.00005"]),
    ("DATE", &["'2024-01-02'", "'0000-00-00'", "'9999-12-31'"]),
    (
        "TIME",
        &["'-838:59:59'", "'00:00:00'", "'12:34:56'", "'-00:00:01'"],
    ),
    ("TIME(3)", &["'-01:02:03.456'", "'100:00:00.5'"]),
    (
        "DATETIME",
        &["'2024-01-02 03:04:05'", "'0000-00-00 00:00:00'"],
    ),
    (
        "DATETIME(6)",
        &["'2024-01-02 03:04:05.123456'", "'2024-01-02 03:04:05'"],
    ),
    ("TIMESTAMP(2) NULL", &["'2024-01-02 03:04:05.5'"]),
    ("YEAR", &["2024", "0", "1901"]),
    ("BIT(12)", &["b'101010101010'", "0"]),
    ("ENUM('a','bé','c')", &["'bé'", "'c'"]),
    ("SET('x','y','z')", &["'x,z'", "''"]),
    ("VARCHAR(20)", &["'héllo'", "''"]),
    ("CHAR(5)", &["'ab'"]),
    ("TEXT", &["'some text'"]),
    ("BLOB", &["x'00ff10'", "''"]),
    ("VARBINARY(8)", &["x'000102'"]),
    ("BINARY(4)", &["x'61'"]),
    ("JSON", &["'{\"a\": [1, 2.5, null]}'"]),
];

/// The text protocol's cells, exactly what `mysql_fetch_row` gives.
fn text_protocol(url: &str, sql: &str) -> Vec<Option<Vec<u8>>> {
    let mut c = mysql::Conn::new(
        mysql::OptsBuilder::from_opts(mysql::Opts::from_url(url).unwrap()).prefer_socket(false),
    )
    .unwrap();
    let rows: Vec<mysql::Row> = c.query(sql).unwrap();
    rows.into_iter()
        .map(|r| match r.unwrap().into_iter().next() {
            Some(mysql::Value::NULL) | None => None,
            Some(mysql::Value::Bytes(b)) => Some(b),
            Some(other) => panic!("text protocol gave {other:?}"),
        })
        .collect()
}

#[test]
fn text_forms_equal_the_text_protocol() {
    let Some(mut c) = server() else { return };
    let mut compared = 0;
    for (ty, values) in CORPUS {
        let table = unique("pp_types");
        c.execute(
            &format!("CREATE TABLE {table} (id INT AUTO_INCREMENT PRIMARY KEY, v {ty})"),
            &[],
        )
        .unwrap();
        for v in *values {
            c.execute(&format!("INSERT INTO {table} (v) VALUES ({v})"), &[])
                .unwrap();
        }
        let sql = format!("SELECT v FROM {table} ORDER BY id");
        let expected = text_protocol(URL, &sql);
        // Without parameters: text protocol; with one: binary protocol.
        let text = c.query(&sql, &[]).unwrap();
        let bin = c
            .query(
                &format!("SELECT v FROM {table} WHERE id > ? ORDER BY id"),
                &[Value::Int(0)],
            )
            .unwrap();
        assert_eq!(text.rows(), expected.len());
        assert_eq!(bin.rows(), expected.len());
        for (i, want) in expected.iter().enumerate() {
            for (proto, r) in [("text", &text), ("binary", &bin)] {
                match want {
                    None => assert!(
                        r.is_null(i, 0).unwrap(),
                        "{ty} row {i} ({proto}) should be NULL"
                    ),
                    Some(w) => {
                        let got = r.text(i, 0).unwrap();
                        assert_eq!(
                            got,
                            &w[..],
                            "{ty} value {} ({proto}): got {:?}, text protocol {:?}",
                            values[i],
                            String::from_utf8_lossy(got),
                            String::from_utf8_lossy(w)
                        );
                        assert_eq!(
                            text.kind(i, 0).unwrap(),
                            r.kind(i, 0).unwrap(),
                            "{ty} kind differs"
                        );
                        compared += 1;
                    }
                }
            }
        }
        c.execute(&format!("DROP TABLE {table}"), &[]).unwrap();
    }
    assert!(compared >= 100, "compared {compared}");
    // Expressions too (computed DOUBLE and DECIMAL columns).
    for e in [
        "1e15",
        "1e-7",
        "0.1e0",
        "1/3",
        "PI()",
        "SQRT(2)",
        "1.5 * 3",
        "CAST(-1 AS UNSIGNED)",
        "NOW() = NOW()",
    ] {
        let sql = format!("SELECT {e}");
        let want = text_protocol(URL, &sql);
        let got = c
            .query(
                &format!("SELECT {e} FROM DUAL WHERE ? = 1"),
                &[Value::Int(1)],
            )
            .unwrap();
        assert_eq!(
            got.text(0, 0).unwrap(),
            &want[0].clone().unwrap()[..],
            "expression {e}"
        );
    }
}

#[test]
fn native_kinds() {
    let Some(mut c) = server() else { return };
    let r = c
        .query(
            "SELECT CAST(? AS SIGNED), CAST(18446744073709551615 AS UNSIGNED), 1.5e0, CAST(1.25 AS DECIMAL(5,2)), 'x', x'00', NULL, DATE'2024-01-02'",
            &[Value::Int(-7)],
        )
        .unwrap();
    let kinds: Vec<Kind> = (0..8).map(|i| r.kind(0, i).unwrap()).collect();
    assert_eq!(
        kinds,
        [
            Kind::Int,
            Kind::Numeric,
            Kind::Double,
            Kind::Numeric,
            Kind::Text,
            Kind::Blob,
            Kind::Null,
            Kind::Other
        ]
    );
    assert_eq!(r.int64(0, 0).unwrap(), -7);
    assert_eq!(r.double(0, 2).unwrap(), 1.5);
    assert_eq!(r.blob(0, 5).unwrap(), b"\0");
}

#[test]
fn parameters_bind_through_the_binary_protocol() {
    let Some(mut c) = server() else { return };
    let t = unique("pp_params");
    c.execute(
        &format!(
            "CREATE TABLE {t} (i BIGINT, d DOUBLE, s VARCHAR(50), b BLOB, n INT NULL, dt DATE)"
        ),
        &[],
    )
    .unwrap();
    let n = c
        .execute(
            &format!("INSERT INTO {t} VALUES (?, ?, ?, ?, ?, ?)"),
            &[
                Value::Int(i64::MIN),
                Value::Double(0.25),
                Value::Text("it's \"q\""),
                Value::Blob(b"\x00\x01\xff"),
                Value::Null,
                Value::Text("2024-02-29"),
            ],
        )
        .unwrap();
    assert_eq!(n, 1);
    let r = c
        .query(
            &format!("SELECT i, d, s, b, n, dt FROM {t} WHERE s = ?"),
            &[Value::Text("it's \"q\"")],
        )
        .unwrap();
    assert_eq!(r.rows(), 1);
    assert_eq!(r.int64(0, 0).unwrap(), i64::MIN);
    assert_eq!(r.double(0, 1).unwrap(), 0.25);
    assert_eq!(r.text(0, 2).unwrap(), b"it's \"q\"");
    assert_eq!(r.blob(0, 3).unwrap(), b"\x00\x01\xff");
    assert!(r.is_null(0, 4).unwrap());
    assert_eq!(r.text(0, 5).unwrap(), b"2024-02-29");
    assert_eq!(
        c.execute(
            &format!("UPDATE {t} SET n = ? WHERE i < ?"),
            &[Value::Int(5), Value::Int(0)]
        )
        .unwrap(),
        1
    );
    let e = c
        .execute(
            &format!("UPDATE {t} SET n = ?"),
            &[Value::Int(1), Value::Int(2)],
        )
        .unwrap_err();
    assert_eq!(e.status, Status::POOL_ERR_INVALID_ARGUMENT);
    c.execute(&format!("DROP TABLE {t}"), &[]).unwrap();
}

fn prepared_count(c: &mut MysqlConn) -> i64 {
    let r = c
        .query("SHOW SESSION STATUS LIKE 'Com_stmt_prepare'", &[])
        .unwrap();
    r.int64(0, 1).unwrap()
}

fn open_statements(c: &mut MysqlConn) -> i64 {
    let p = prepared_count(c);
    let r = c
        .query("SHOW SESSION STATUS LIKE 'Com_stmt_close'", &[])
        .unwrap();
    p - r.int64(0, 1).unwrap()
}

#[test]
fn statement_cache() {
    let Some(mut c) = server() else { return };
    let before = prepared_count(&mut c);
    for i in 0..5 {
        c.query("SELECT ? + 1", &[Value::Int(i)]).unwrap();
    }
    assert_eq!(prepared_count(&mut c) - before, 1, "cached: prepared once");
    assert_eq!(open_statements(&mut c), 1);

    let mut c0 = backend(&format!("{URL}?statement_cache=0"))
        .unwrap()
        .connect()
        .unwrap();
    let before = prepared_count(&mut c0);
    for i in 0..5 {
        let r = c0.query("SELECT ? + 1", &[Value::Int(i)]).unwrap();
        assert_eq!(r.int64(0, 0).unwrap(), i + 1);
    }
    assert_eq!(
        prepared_count(&mut c0) - before,
        5,
        "no cache: prepared every time"
    );
    assert_eq!(
        open_statements(&mut c0),
        0,
        "no cache: every statement closed"
    );
}

#[test]
fn duplicate_key_has_sqlstate_23000() {
    let Some(mut c) = server() else { return };
    let t = unique("pp_dup");
    c.execute(&format!("CREATE TABLE {t} (id INT PRIMARY KEY)"), &[])
        .unwrap();
    c.execute(&format!("INSERT INTO {t} VALUES (1)"), &[])
        .unwrap();
    for params in [vec![], vec![Value::Int(1)]] {
        let sql = if params.is_empty() {
            format!("INSERT INTO {t} VALUES (1)")
        } else {
            format!("INSERT INTO {t} VALUES (?)")
        };
        let e = c.execute(&sql, &params).unwrap_err();
        assert_eq!(e.status, Status::POOL_ERR_DATABASE);
        assert_eq!(e.sqlstate.as_deref(), Some("23000"), "{}", e.message);
        assert!(!e.is_connection_lost());
        assert!(!c.is_closed());
    }
    let e = c.query("SELEC 1", &[]).unwrap_err();
    assert_eq!(e.sqlstate.as_deref(), Some("42000"));
    c.execute(&format!("DROP TABLE {t}"), &[]).unwrap();
}

#[test]
fn killed_connection_reports_08s01_and_is_closed() {
    let Some(mut victim) = server() else { return };
    let mut killer = server().unwrap();
    let id = one_text(&mut victim, "SELECT CONNECTION_ID()");
    killer.execute(&format!("KILL {id}"), &[]).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(!victim.is_closed(), "no I/O yet: not known");
    let e = victim.query("SELECT 1", &[]).unwrap_err();
    assert_eq!(e.status, Status::POOL_ERR_DATABASE);
    assert_eq!(e.sqlstate.as_deref(), Some("08S01"), "{}", e.message);
    assert!(e.is_connection_lost());
    assert!(victim.is_closed());
    // No silent reconnect: later calls fail too.
    assert!(victim.ping().is_err());
    assert!(victim.query("SELECT 1", &[Value::Int(1)]).is_err());
    victim.close();

    // Killed while idle, found by ping.
    let mut idle = server().unwrap();
    let id = one_text(&mut idle, "SELECT CONNECTION_ID()");
    killer.execute(&format!("KILL {id}"), &[]).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    let e = idle.ping().unwrap_err();
    assert_eq!(e.sqlstate.as_deref(), Some("08S01"));
    assert!(idle.is_closed());
}

#[test]
fn transaction_tracking_and_rollback() {
    let Some(mut c) = server() else { return };
    let t = unique("pp_tx");
    c.execute(&format!("CREATE TABLE {t} (id INT) ENGINE=InnoDB"), &[])
        .unwrap();
    assert!(!c.in_transaction());
    c.begin().unwrap();
    assert!(c.in_transaction());
    c.execute(&format!("INSERT INTO {t} VALUES (1)"), &[])
        .unwrap();
    c.rollback().unwrap();
    assert!(!c.in_transaction());
    assert_eq!(one_text(&mut c, &format!("SELECT COUNT(*) FROM {t}")), "0");

    c.execute("START TRANSACTION", &[]).unwrap();
    assert!(c.in_transaction());
    c.execute(&format!("INSERT INTO {t} VALUES (?)"), &[Value::Int(2)])
        .unwrap();
    c.execute("COMMIT", &[]).unwrap();
    assert!(!c.in_transaction());
    c.execute("begin", &[]).unwrap();
    assert!(c.in_transaction());
    c.commit().unwrap();
    assert!(!c.in_transaction());
    assert_eq!(one_text(&mut c, &format!("SELECT COUNT(*) FROM {t}")), "1");

    // autocommit off: every statement may open one.
    c.execute("SET autocommit = 0", &[]).unwrap();
    assert!(c.in_transaction());
    c.execute(&format!("INSERT INTO {t} VALUES (3)"), &[])
        .unwrap();
    c.rollback().unwrap();
    c.execute(&format!("SELECT * FROM {t}"), &[]).unwrap();
    assert!(c.in_transaction());
    c.rollback().unwrap();
    assert_eq!(one_text(&mut c, &format!("SELECT COUNT(*) FROM {t}")), "1");
    c.execute("SET autocommit = 1", &[]).unwrap();

    // A multi-statement text is assumed to leave one open.
    let mut m = server().unwrap();
    m.execute("DO 1; DO 2", &[]).unwrap();
    assert!(m.in_transaction());
    m.rollback().unwrap();
    assert!(!m.in_transaction());
    c.execute(&format!("DROP TABLE {t}"), &[]).unwrap();
}

#[test]
fn multi_statement_query_returns_the_last_result_set() {
    let Some(mut c) = server() else { return };
    let r = c.query("SELECT 1; SELECT 'a', 2", &[]).unwrap();
    assert_eq!((r.rows(), r.columns()), (1, 2));
    assert_eq!(r.text(0, 0).unwrap(), b"a");
    let r = c.query("DO 1", &[]).unwrap();
    assert_eq!(r.columns(), 0);
}
