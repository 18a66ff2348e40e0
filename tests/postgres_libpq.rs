//! PostgreSQL text forms compared with libpq itself: `psql -XAt` (a libpq
//! client) runs the same expression and its output is the reference, for the
//! default statement cache and for `statement_cache=0`. Without a server
//! these tests fail under CI or `PEEPOOL_REQUIRE_SERVERS=1` and are skipped,
//! saying so, elsewhere. (tests/postgres_backend.rs has the rest.)

mod common;
use common::servers_required;

use std::process::Command;

use peepool::backend::postgres::{PostgresBackend, PostgresConn};
use peepool::{Backend, Connection, ParsedUrl, Status, Value};

const URL: &str = "postgres://postgres@127.0.0.1:5432/test";

fn backend(url: &str) -> Option<PostgresBackend> {
    let parsed = ParsedUrl::parse(url).expect("test URL parses");
    let backend = PostgresBackend::new(&parsed, &parsed.connect).expect("backend builds");
    match backend.connect() {
        Ok(c) => {
            c.close();
            Some(backend)
        }
        Err(e) => {
            assert!(
                !servers_required(),
                "PostgreSQL is required but unreachable: {e}"
            );
            eprintln!("SKIP: PostgreSQL unreachable at {URL}: {e}");
            None
        }
    }
}

fn conn() -> Option<PostgresConn> {
    conn_at(URL)
}

fn conn_at(url: &str) -> Option<PostgresConn> {
    backend(url).map(|b| b.connect().expect("connect"))
}

/// What libpq prints for `SELECT <expr>` (NULL as `NULL`).
fn libpq_text(expr: &str) -> Option<String> {
    let out = Command::new("psql")
        .args([
            "-X",
            "-A",
            "-t",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-P",
            "null=NULL",
        ])
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-c"])
        .arg(format!("SELECT {expr}"))
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "psql failed on {expr}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut s = String::from_utf8(out.stdout).expect("psql prints UTF-8");
    if s.ends_with('\n') {
        s.pop();
    }
    Some(s)
}

#[test]
fn text_forms_equal_libpq() {
    if conn().is_none() {
        return;
    }
    if Command::new("psql").arg("--version").output().is_err() {
        panic!("psql (libpq's client) is needed for this comparison: apt-get install postgresql-client");
    }
    let corpus = [
        "1::int2",
        "(-32768)::int2",
        "2147483647::int4",
        "(-9223372036854775808)::int8",
        "42::oid",
        "1.5::float4",
        "0.1::float8",
        "1e300::float8",
        "'NaN'::float8",
        "'Infinity'::float8",
        "'-Infinity'::float4",
        "'-0'::float8",
        "1.0e-7::float8",
        "123456789.123456789::float8",
        "0::numeric",
        "(-1.50)::numeric",
        "123456789012345678901234567890.000000001::numeric",
        "'NaN'::numeric",
        "1e-20::numeric",
        "true",
        "false",
        "'t'::bool",
        "'hello'::text",
        "'a b'::varchar(10)",
        "'x'::char(3)",
        "'nm'::name",
        "''::text",
        "'\\x00ff10'::bytea",
        "''::bytea",
        "'{\"a\": [1, 2.5, null]}'::json",
        "'{\"b\":1,  \"a\":[true]}'::jsonb",
        "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid",
        "'2024-02-29'::date",
        "'infinity'::date",
        "'0044-03-15 BC'::date",
        "'04:05:06.789'::time",
        "'04:05:06+02'::timetz",
        "'2024-01-02 03:04:05.678901'::timestamp",
        "'2024-01-02 03:04:05+00'::timestamptz",
        "'-infinity'::timestamp",
        "'1 year 2 mons 3 days 04:05:06.789'::interval",
        "'-1 day'::interval",
        "'0'::interval",
        "'192.168.0.1/24'::inet",
        "'10.0.0.0/8'::cidr",
        "'::1'::inet",
        "'08:00:2b:01:02:03'::macaddr",
        "12.34::money",
        "ARRAY[1,2,NULL]",
        "ARRAY['a b','c\"d','']",
        "ARRAY[[1,2],[3,4]]",
        "'{}'::int[]",
        "ARRAY[true,false]",
        "ARRAY['2024-01-01'::date]",
        "ROW(1,'a',NULL)",
        "'(1,2)'::point",
        "int4range(1,10)",
        "'a & b'::tsquery",
        "NULL::int",
        "pg_sleep(0)",
        "NULL::text",
        "'<a>x</a>'::xml",
        "B'1010'::bit(4)",
        "B'101'::varbit",
        "'1 2'::int2vector",
        "'ab'::\"char\"",
        "1::regclass::text",
    ];
    assert!(corpus.len() >= 60);
    let expected: Vec<String> = corpus
        .iter()
        .map(|e| libpq_text(e).expect("psql runs"))
        .collect();
    for url in [URL.to_string(), format!("{URL}?statement_cache=0")] {
        let mut c = conn_at(&url).expect("connect");
        for (expr, expected) in corpus.iter().zip(&expected) {
            let r = c
                .query(&format!("SELECT {expr}"), &[])
                .unwrap_or_else(|e| panic!("{expr}: {e}"));
            let got = if r.is_null(0, 0).unwrap() {
                "NULL".to_string()
            } else {
                String::from_utf8(r.text(0, 0).unwrap().to_vec()).unwrap()
            };
            assert_eq!(&got, expected, "text form of {expr} ({url})");
        }
    }
}

#[test]
fn parameters_bind_to_the_inferred_type() {
    let Some(mut c) = conn() else { return };
    let t = format!("peepool_pg_params_{}", std::process::id());
    c.execute(
        &format!("CREATE TABLE {t} (i int4, n numeric, u uuid, j jsonb, d date, b bytea, s text)"),
        &[],
    )
    .unwrap();
    let n = c
        .execute(
            &format!("INSERT INTO {t} VALUES ($1, $2, $3, $4, $5, $6, $7)"),
            &[
                Value::Int(7),
                Value::Int(-12),
                Value::Text("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
                Value::Text("{\"k\": \"it's\"}"),
                Value::Text("2024-02-29"),
                Value::Blob(&[0, 1, 255]),
                Value::Text("back\\slash 'quote' $1"),
            ],
        )
        .unwrap();
    assert_eq!(n, 1);
    c.execute(&format!("INSERT INTO {t} (i) VALUES ($1)"), &[Value::Null])
        .unwrap();
    let r = c
        .query(
            &format!("SELECT i, n, u, j, d, b, s FROM {t} ORDER BY i NULLS LAST"),
            &[],
        )
        .unwrap();
    assert_eq!(r.int64(0, 0).unwrap(), 7);
    assert_eq!(r.int64(0, 1).unwrap(), -12);
    assert_eq!(
        r.text(0, 2).unwrap(),
        b"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    );
    assert_eq!(r.text(0, 3).unwrap(), b"{\"k\": \"it's\"}");
    assert_eq!(r.text(0, 4).unwrap(), b"2024-02-29");
    assert_eq!(r.text(0, 5).unwrap(), b"\\x0001ff");
    assert_eq!(r.text(0, 6).unwrap(), b"back\\slash 'quote' $1");
    assert!(r.is_null(1, 0).unwrap());
    let e = c
        .query("SELECT $1::int4", &[Value::Int(i64::MAX)])
        .unwrap_err();
    assert_eq!(e.status, Status::POOL_ERR_DATABASE);
    assert_eq!(
        e.sqlstate.as_deref(),
        Some("22003"),
        "out of range for int4"
    );
    c.execute(&format!("DROP TABLE {t}"), &[]).unwrap();
}
