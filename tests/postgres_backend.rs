//! The PostgreSQL backend against the real server (postgres@127.0.0.1:5432/test).
//! Without a server the tests print a notice and pass, unless CI=true or
//! PEEPOOL_REQUIRE_SERVERS=1, where they fail.

mod common;
use common::servers_required;

use peepool::backend::postgres::{PostgresBackend, PostgresConn};
use peepool::backend::{Backend, Connection};
use peepool::config::ParsedUrl;
use peepool::value::{Kind, Value};
use peepool::Status;

const URL: &str = "postgres://postgres@127.0.0.1:5432/test";

fn backend(url: &str) -> peepool::Result<PostgresBackend> {
    let p = ParsedUrl::parse(url)?;
    PostgresBackend::new(&p, &p.connect)
}

/// A connection, or None (after a notice) when the server is absent and not required.
fn conn_with(url: &str) -> Option<PostgresConn> {
    match backend(url).and_then(|b| b.connect()) {
        Ok(c) => Some(c),
        Err(e) if !servers_required() => {
            eprintln!("SKIP: PostgreSQL not reachable at {URL}: {}", e.message);
            None
        }
        Err(e) => panic!("PostgreSQL required but not reachable: {}", e.message),
    }
}

fn conn() -> Option<PostgresConn> {
    conn_with(URL)
}

fn unique(prefix: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}_{}_{}", std::process::id(), n % 1_000_000_000)
}

fn text(c: &mut PostgresConn, sql: &str) -> Option<String> {
    let r = c
        .query(sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {}", e.message));
    if r.is_null(0, 0).unwrap() {
        None
    } else {
        Some(String::from_utf8(r.text(0, 0).unwrap().to_vec()).unwrap())
    }
}

#[test]
fn connect_options_and_errors() {
    let Some(mut c) = conn() else { return };
    c.ping().unwrap();
    assert!(!c.is_closed());
    let e = backend("postgres://postgres@127.0.0.1:5432/test?bogus_option=1")
        .err()
        .unwrap();
    assert_eq!(e.status, Status::POOL_ERR_CONFIG);
    assert!(e.message.contains("bogus_option"), "{}", e.message);
    assert!(backend(
        "postgres://postgres@127.0.0.1/test?application_name=peepool&sslmode=disable&keepalives=1"
    )
    .is_ok());
    // A wrong host: the message has the driver's reason but never the password.
    let e = backend("postgres://postgres:Sup3rS3cret@127.0.0.1:1/test?connect_timeout=2")
        .unwrap()
        .connect()
        .err()
        .unwrap();
    assert_eq!(e.status, Status::POOL_ERR_CONNECT);
    assert!(!e.message.contains("Sup3rS3cret"), "{}", e.message);
    // A wrong user/password (trust may accept any password; a missing role fails).
    let e =
        backend("postgres://no_such_role_xyz:Sup3rS3cret@127.0.0.1:5432/test?password=Sup3rS3cret")
            .and_then(|b| b.connect())
            .err();
    if let Some(e) = e {
        assert_eq!(e.status, Status::POOL_ERR_CONNECT);
        assert!(!e.message.contains("Sup3rS3cret"), "{}", e.message);
    }
}

#[test]
fn init_sql_runs_and_failure_is_connect_error() {
    let Some(mut c) = conn_with(&format!(
        "{URL}?init_sql=SET%20application_name%3D'peepool_init'%3B%20SET%20TimeZone%3D'UTC'"
    )) else {
        return;
    };
    assert_eq!(
        text(&mut c, "SHOW application_name").as_deref(),
        Some("peepool_init")
    );
    let e = backend(&format!("{URL}?init_sql=SELEC%201"))
        .unwrap()
        .connect()
        .err()
        .unwrap();
    assert_eq!(e.status, Status::POOL_ERR_CONNECT);
    assert!(e.message.contains("syntax error"), "{}", e.message);
}

/// Every value's text equals the server's own text output (what libpq's
/// PQgetvalue gives), obtained through the simple query protocol.
#[test]
fn text_forms_match_the_server() {
    let Some(mut c) = conn() else { return };
    let mut raw = postgres::Client::connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=test",
        postgres::NoTls,
    )
    .unwrap();
    let ty = unique("mood");
    raw.batch_execute(&format!("CREATE TYPE {ty} AS ENUM ('happy', 'sad face'); CREATE DOMAIN {ty}_d AS int4 CHECK (VALUE > 0); CREATE TYPE {ty}_c AS (a int4, b text)")).unwrap();
    let exprs: Vec<String> = [
        "1::int2",
        "'-32768'::int2",
        "2147483647::int4",
        "'-9223372036854775808'::int8",
        "42::oid",
        "4294967295::oid",
        "0.1::float8",
        "1e20::float8",
        "1.5e-7::float8",
        "'-0'::float8",
        "'NaN'::float8",
        "'Infinity'::float8",
        "'-Infinity'::float8",
        "1e15::float8",
        "1e14::float8",
        "123456.789::float8",
        "2.2250738585072014e-308::float8",
        "1.7976931348623157e308::float8",
        "0.1::float4",
        "1e6::float4",
        "100000::float4",
        "3.4028235e38::float4",
        "1.17549435e-38::float4",
        "'NaN'::float4",
        "0::numeric",
        "1.5::numeric",
        "'-1.50'::numeric",
        "123456789012345678901234567890.123456789::numeric",
        "0.0000001::numeric",
        "'NaN'::numeric",
        "'Infinity'::numeric",
        "'-Infinity'::numeric",
        "10000::numeric",
        "0.00010000::numeric",
        "1e-20::numeric",
        "12345678::numeric(20,4)",
        "true",
        "false",
        "'hello'::text",
        "'a b'::varchar(10)",
        "'x'::char(3)",
        "'pg_class'::name",
        "'A'::\"char\"",
        "''::text",
        "'Ünïcödé ✓'::text",
        "'\\x0001ff'::bytea",
        "''::bytea",
        "'{\"a\": [1, 2.50, null]}'::json",
        "'{\"b\": 1, \"a\": [1, 2.50, null]}'::jsonb",
        "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid",
        "'2024-02-29'::date",
        "'infinity'::date",
        "'-infinity'::date",
        "'0044-03-15 BC'::date",
        "'4713-01-01 BC'::date",
        "'294276-12-31'::date",
        "'13:45:06.789'::time",
        "'00:00:00'::time",
        "'24:00:00'::time",
        "'13:45:06+05:30'::timetz",
        "'13:45:06.5-08'::timetz",
        "'01:02:03+01:02:03'::timetz",
        "'2024-02-29 13:45:06.123456'::timestamp",
        "'infinity'::timestamp",
        "'0001-01-01 00:00:00 BC'::timestamp",
        "'1999-12-31 23:59:59.5'::timestamp",
        "'2024-02-29 13:45:06.1+02'::timestamptz",
        "'-infinity'::timestamptz",
        "'1900-01-01 00:00:00+00'::timestamptz",
        "'1 year 2 mons 3 days 04:05:06.789'::interval",
        "'0'::interval",
        "'-1 day'::interval",
        "'1 day -01:00:00'::interval",
        "'-1 year -2 mons +3 days'::interval",
        "'100 hours'::interval",
        "'-00:00:00.000001'::interval",
        "'14 mons'::interval",
        "'192.168.0.1'::inet",
        "'192.168.0.0/24'::inet",
        "'10.0.0.0/8'::cidr",
        "'::1'::inet",
        "'2001:db8::1/64'::inet",
        "'::ffff:1.2.3.4'::inet",
        "'::1.2.3.4'::inet",
        "'2001:db8::/32'::cidr",
        "'::'::inet",
        "'::2'::inet",
        "'fe80::1:0:0:1'::inet",
        "'08:00:2b:01:02:03'::macaddr",
        "'08:00:2b:01:02:03:04:05'::macaddr8",
        "B'10101'::bit(5)",
        "B'1'::varbit",
        "12.34::money",
        "ARRAY[1,2,NULL]",
        "ARRAY['a b','c\"d','NULL','',NULL,'x\\y']",
        "ARRAY[[1,2],[3,4]]",
        "'{}'::int[]",
        "'[0:1]={5,6}'::int[]",
        "ARRAY[1.5::float8, 'NaN']",
        "ARRAY['\\x01'::bytea]",
        "ARRAY['2024-01-01'::date]",
        "ARRAY[ARRAY['a'],ARRAY['{b}']]",
        "ROW(1, 'a b', NULL, '')",
        "ROW(1, 'x\"y')",
        "'(1,2)'::point",
        "'[1,5)'::int4range",
        "'a fat cat'::tsvector",
        "'<a>x</a>'::xml",
        "'1 2'::int2vector",
        "'$.a'::jsonpath",
        "'(0,1)'::tid",
        "ARRAY['(1,2)'::point]",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        format!("'happy'::{ty}"),
        format!("'sad face'::{ty}"),
        format!("ARRAY['happy'::{ty}, 'sad face'::{ty}]"),
        format!("5::{ty}_d"),
        format!("ROW(7, 'q r')::{ty}_c"),
        format!("ARRAY[ROW(7, 'q')::{ty}_c]"),
    ])
    .collect();
    assert!(exprs.len() >= 60);
    let mut failures = Vec::new();
    for e in &exprs {
        let ours = text(&mut c, &format!("SELECT {e}"));
        let server = raw
            .simple_query(&format!("SELECT {e}"))
            .unwrap()
            .into_iter()
            .find_map(|m| match m {
                postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).map(|s| s.to_string())),
                _ => None,
            })
            .unwrap();
        if ours != server {
            failures.push(format!("{e}: ours {ours:?} server {server:?}"));
        }
    }
    raw.batch_execute(&format!(
        "DROP TYPE {ty}_c; DROP DOMAIN {ty}_d; DROP TYPE {ty}"
    ))
    .unwrap();
    assert!(
        failures.is_empty(),
        "text forms differ:\n{}",
        failures.join("\n")
    );
}

#[test]
fn kinds_and_typed_getters() {
    let Some(mut c) = conn() else { return };
    let r = c.query("SELECT 7::int4, 1.5::float8, 2.50::numeric, 'x'::text, '\\x0102'::bytea, true, NULL::int4", &[]).unwrap();
    assert_eq!(r.kind(0, 0).unwrap(), Kind::Int);
    assert_eq!(r.int64(0, 0).unwrap(), 7);
    assert_eq!(r.kind(0, 1).unwrap(), Kind::Double);
    assert_eq!(r.double(0, 1).unwrap(), 1.5);
    assert_eq!(r.kind(0, 2).unwrap(), Kind::Numeric);
    assert_eq!(r.text(0, 2).unwrap(), b"2.50");
    assert_eq!(r.kind(0, 3).unwrap(), Kind::Text);
    assert_eq!(r.kind(0, 4).unwrap(), Kind::Blob);
    assert_eq!(r.blob(0, 4).unwrap(), b"\x01\x02");
    assert_eq!(r.text(0, 4).unwrap(), b"\\x0102");
    assert_eq!(r.text(0, 5).unwrap(), b"t");
    assert!(r.is_null(0, 6).unwrap());
}

fn param_binding_with(url: &str) {
    let Some(mut c) = conn_with(url) else { return };
    let t = unique("pp_bind");
    c.execute(
        &format!(
            "CREATE TABLE {t} (i int4, u uuid, j jsonb, d date, n numeric, b bytea, f float4)"
        ),
        &[],
    )
    .unwrap();
    let n = c
        .execute(
            &format!("INSERT INTO {t} VALUES ($1, $2, $3, $4, $5, $6, $7)"),
            &[
                Value::Int(42),
                Value::Text("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
                Value::Text("{\"k\": 1}"),
                Value::Text("2024-02-29"),
                Value::Int(12345678901),
                Value::Blob(&[0, 1, 255]),
                Value::Double(0.25),
            ],
        )
        .unwrap();
    assert_eq!(n, 1);
    c.execute(
        &format!("INSERT INTO {t} (i, u) VALUES ($1, $2)"),
        &[Value::Null, Value::Null],
    )
    .unwrap();
    let r = c
        .query(
            &format!("SELECT i, u, j, d, n, b, f FROM {t} WHERE i = $1"),
            &[Value::Int(42)],
        )
        .unwrap();
    assert_eq!(r.rows(), 1);
    assert_eq!(r.int64(0, 0).unwrap(), 42);
    assert_eq!(
        r.text(0, 1).unwrap(),
        b"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    );
    assert_eq!(r.text(0, 2).unwrap(), b"{\"k\": 1}");
    assert_eq!(r.text(0, 3).unwrap(), b"2024-02-29");
    assert_eq!(r.text(0, 4).unwrap(), b"12345678901");
    assert_eq!(r.blob(0, 5).unwrap(), &[0, 1, 255]);
    assert_eq!(r.double(0, 6).unwrap(), 0.25);
    let r = c
        .query(
            &format!("SELECT count(*) FROM {t} WHERE i IS NULL AND u IS NULL"),
            &[],
        )
        .unwrap();
    assert_eq!(r.int64(0, 0).unwrap(), 1);
    let e = c
        .query(&format!("SELECT * FROM {t} WHERE i = $1"), &[])
        .err()
        .unwrap();
    assert!(
        matches!(
            e.status,
            Status::POOL_ERR_INVALID_ARGUMENT | Status::POOL_ERR_DATABASE
        ),
        "{e:?}"
    );
    assert!(!e.is_connection_lost(), "{e:?}");
    assert!(!c.is_closed());
    c.execute(&format!("DROP TABLE {t}"), &[]).unwrap();
}

#[test]
fn params_bind_to_server_inferred_types() {
    param_binding_with(URL);
}

#[test]
fn params_bind_without_statement_cache() {
    param_binding_with(&format!("{URL}?statement_cache=0"));
}

fn prepared_count(c: &mut PostgresConn) -> i64 {
    c.query("SELECT count(*) FROM pg_prepared_statements", &[])
        .unwrap()
        .int64(0, 0)
        .unwrap()
}

#[test]
fn statement_cache_keeps_at_most_n() {
    let Some(mut c) = conn_with(&format!("{URL}?statement_cache=3")) else {
        return;
    };
    for i in 0..10 {
        c.query(&format!("SELECT {i} + $1"), &[Value::Int(i)])
            .unwrap();
        c.query(&format!("SELECT {i} + $1"), &[Value::Int(i)])
            .unwrap();
    }
    let n = prepared_count(&mut c);
    // The count query itself is a cached statement too.
    assert!(n <= 3, "{n} prepared statements");
    assert!(n >= 1);
}

#[test]
fn statement_cache_zero_creates_no_named_statement() {
    let Some(mut c) = conn_with(&format!("{URL}?statement_cache=0")) else {
        return;
    };
    for i in 0..5 {
        c.query(&format!("SELECT {i} + $1"), &[Value::Int(i)])
            .unwrap();
        c.execute("SELECT $1::text", &[Value::Text("x")]).unwrap();
    }
    assert_eq!(prepared_count(&mut c), 0);
}

#[test]
fn unique_violation_sqlstate() {
    let Some(mut c) = conn() else { return };
    let t = unique("pp_uniq");
    c.execute(&format!("CREATE TABLE {t} (id int PRIMARY KEY)"), &[])
        .unwrap();
    c.execute(&format!("INSERT INTO {t} VALUES (1)"), &[])
        .unwrap();
    let e = c
        .execute(&format!("INSERT INTO {t} VALUES ($1)"), &[Value::Int(1)])
        .err()
        .unwrap();
    assert_eq!(e.status, Status::POOL_ERR_DATABASE);
    assert_eq!(e.sqlstate.as_deref(), Some("23505"));
    assert!(!c.is_closed());
    c.execute(&format!("DROP TABLE {t}"), &[]).unwrap();
}

#[test]
fn killed_connection_reports_class_08_and_is_closed() {
    let Some(mut c) = conn() else { return };
    let Some(mut killer) = conn() else { return };
    let pid = c
        .query("SELECT pg_backend_pid()", &[])
        .unwrap()
        .int64(0, 0)
        .unwrap();
    killer
        .query("SELECT pg_terminate_backend($1)", &[Value::Int(pid)])
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let e = c.query("SELECT 1", &[]).err().unwrap();
    assert_eq!(e.status, Status::POOL_ERR_DATABASE);
    assert!(e.is_connection_lost(), "{e:?}");
    assert!(c.is_closed());
    assert!(c.ping().is_err());
}

#[test]
fn transaction_tracking_and_rollback() {
    let Some(mut c) = conn() else { return };
    let t = unique("pp_tx");
    c.execute(&format!("CREATE TABLE {t} (id int)"), &[])
        .unwrap();
    assert!(!c.in_transaction());
    c.begin().unwrap();
    assert!(c.in_transaction());
    c.execute(&format!("INSERT INTO {t} VALUES (1)"), &[])
        .unwrap();
    c.rollback().unwrap();
    assert!(!c.in_transaction());
    assert_eq!(
        c.query(&format!("SELECT count(*) FROM {t}"), &[])
            .unwrap()
            .int64(0, 0)
            .unwrap(),
        0
    );
    // SQL-level transaction statements are tracked too.
    c.execute("  /* c */ BEGIN", &[]).unwrap();
    assert!(c.in_transaction());
    assert!(c.execute("SELECT 1/0", &[]).is_err());
    assert!(c.in_transaction(), "a failed transaction is still open");
    c.execute("ROLLBACK", &[]).unwrap();
    assert!(!c.in_transaction());
    c.execute("START TRANSACTION", &[]).unwrap();
    c.execute("SAVEPOINT a", &[]).unwrap();
    c.execute("ROLLBACK TO SAVEPOINT a", &[]).unwrap();
    assert!(c.in_transaction());
    c.execute(&format!("INSERT INTO {t} VALUES (2)"), &[])
        .unwrap();
    c.commit().unwrap();
    assert!(!c.in_transaction());
    assert_eq!(
        c.query(&format!("SELECT count(*) FROM {t}"), &[])
            .unwrap()
            .int64(0, 0)
            .unwrap(),
        1
    );
    c.execute(&format!("DROP TABLE {t}"), &[]).unwrap();
}

#[test]
fn session_time_zone_is_followed() {
    let Some(mut c) = conn() else { return };
    c.execute("SET TimeZone = 'America/New_York'", &[]).unwrap();
    assert_eq!(
        text(&mut c, "SELECT '2024-07-01 12:00:00+00'::timestamptz").as_deref(),
        Some("2024-07-01 08:00:00-04")
    );
    c.execute("SET TimeZone = 'UTC'", &[]).unwrap();
    assert_eq!(
        text(&mut c, "SELECT '2024-07-01 12:00:00+00'::timestamptz").as_deref(),
        Some("2024-07-01 12:00:00+00")
    );
    c.execute("SET IntervalStyle = 'iso_8601'", &[]).unwrap();
    assert_eq!(
        text(&mut c, "SELECT '1 day'::interval").as_deref(),
        Some("P1D")
    );
}

/// Values only the server can print (money, point) in the middle of rows
/// of values printed on the client, and more of them than one conversion
/// round trip takes (500): every cell lands where it belongs, with the text
/// the server gives when it prints the whole row itself.
fn server_printed_cells_among_client_ones_with(url: &str) {
    let Some(mut c) = conn_with(url) else { return };
    let cols = [
        "i",
        "(i * 1.5)::money",
        "'r' || i",
        "NULL::int4",
        "point(i, -i)",
        "i::float8 / 4",
    ];
    let from = "FROM generate_series(1, 600) AS i";
    let r = c
        .query(&format!("SELECT {} {from}", cols.join(", ")), &[])
        .unwrap();
    let as_text = cols
        .iter()
        .map(|e| format!("({e})::text"))
        .collect::<Vec<_>>()
        .join(", ");
    let want = c.query(&format!("SELECT {as_text} {from}"), &[]).unwrap();
    assert_eq!((r.rows(), r.columns()), (600, 6));
    assert_eq!(r.column_name(1).unwrap(), "money");
    for row in 0..600 {
        for col in 0..6 {
            if want.is_null(row, col).unwrap() {
                assert!(r.is_null(row, col).unwrap(), "({row}, {col}) is NULL");
                continue;
            }
            assert_eq!(
                r.text(row, col).unwrap(),
                want.text(row, col).unwrap(),
                "text of ({row}, {col})"
            );
        }
        assert_eq!(r.int64(row, 0).unwrap(), row as i64 + 1);
        assert_eq!(r.kind(row, 1).unwrap(), Kind::Other);
        assert_eq!(r.kind(row, 5).unwrap(), Kind::Double);
    }
}

#[test]
fn server_printed_cells_among_client_ones() {
    server_printed_cells_among_client_ones_with(URL);
}

#[test]
fn server_printed_cells_among_client_ones_without_statement_cache() {
    server_printed_cells_among_client_ones_with(&format!("{URL}?statement_cache=0"));
}
