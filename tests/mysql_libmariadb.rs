//! MariaDB text forms compared with the client library itself: the
//! `mariadb` command-line client (libmariadb, `mysql_fetch_row`) reads the
//! same row, and its raw batch output is the reference, for the text
//! protocol (no parameters) and the binary one (with a parameter). Without a
//! server these tests fail under CI or `PEEPOOL_REQUIRE_SERVERS=1` and are
//! skipped, saying so, elsewhere. (tests/mysql_backend.rs has the rest.)

mod common;
use common::servers_required;

use std::process::Command;

use peepool::backend::mysql::MysqlBackend;
use peepool::{Backend, Connection, ParsedUrl, Value};

const URL: &str = "mysql://root@127.0.0.1:3306/test";

/// Column type and the literal stored in it.
const CORPUS: &[(&str, &str)] = &[
    ("TINYINT", "-128"),
    ("TINYINT UNSIGNED", "255"),
    ("SMALLINT", "-32768"),
    ("MEDIUMINT", "8388607"),
    ("INT", "-2147483648"),
    ("INT UNSIGNED", "4294967295"),
    ("BIGINT", "-9223372036854775808"),
    ("BIGINT UNSIGNED", "18446744073709551615"),
    ("INT(5) ZEROFILL", "42"),
    ("DECIMAL(10,2)", "-12.5"),
    ("DECIMAL(30,10)", "12345678901234567890.0123456789"),
    ("DECIMAL(5,0)", "0"),
    ("FLOAT", "1.1"),
    ("FLOAT", "-3.4e38"),
    ("FLOAT", "0.000001"),
    ("FLOAT", "123456789"),
    ("DOUBLE", "0.1"),
    ("DOUBLE", "1e300"),
    ("DOUBLE", "-2.5e-300"),
    ("DOUBLE", "123456789012345678"),
    ("DOUBLE", "3.141592653589793"),
    ("DOUBLE(10,3)", "2.5"),
    ("DATE", "'2024-02-29'"),
    ("DATE", "'0000-00-00'"),
    ("DATETIME", "'2024-01-02 03:04:05'"),
    ("DATETIME(6)", "'2024-01-02 03:04:05.123456'"),
    ("DATETIME(3)", "'1999-12-31 23:59:59.5'"),
    ("TIMESTAMP", "'2024-01-02 03:04:05'"),
    ("TIME", "'-838:59:59'"),
    ("TIME(2)", "'12:34:56.78'"),
    ("TIME", "'00:00:00'"),
    ("YEAR", "2024"),
    ("YEAR", "0"),
    ("BIT(8)", "b'01000001'"),
    ("CHAR(5)", "'ab'"),
    ("VARCHAR(20)", "'héllo wörld'"),
    ("TEXT", "'it''s'"),
    ("TEXT", "''"),
    ("ENUM('a','b c')", "'b c'"),
    ("SET('x','y','z')", "'x,z'"),
    ("BINARY(4)", "'ab'"),
    ("VARBINARY(10)", "'raw'"),
    ("BLOB", "'blob bytes'"),
    ("JSON", "'{\"k\": [1, 2.5, null]}'"),
    ("INT", "NULL"),
    ("VARCHAR(3)", "NULL"),
    ("TINYINT(1)", "1"),
    ("SMALLINT UNSIGNED", "65535"),
    ("MEDIUMINT UNSIGNED", "16777215"),
    ("DECIMAL(4,4)", "-0.0001"),
];

/// What libmariadb gives for each column of `SELECT * FROM table` (NULL as
/// `NULL`), through the `mariadb` client in raw batch mode.
fn libmariadb_row(table: &str) -> Vec<String> {
    let out = Command::new("mariadb")
        .args(["-h", "127.0.0.1", "-P", "3306", "-u", "root", "-D", "test"])
        .args(["--batch", "--raw", "--skip-column-names", "-e"])
        .arg(format!("SELECT * FROM {table}"))
        .output()
        .expect("the mariadb client (libmariadb) is needed: apt-get install mariadb-client");
    assert!(
        out.status.success(),
        "mariadb: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8 output");
    text.trim_end_matches('\n')
        .split('\t')
        .map(str::to_string)
        .collect()
}

#[test]
fn text_forms_equal_libmariadb() {
    let parsed = ParsedUrl::parse(URL).unwrap();
    let backend = MysqlBackend::new(&parsed, &parsed.connect).unwrap();
    let mut c = match backend.connect() {
        Ok(c) => c,
        Err(e) => {
            assert!(
                !servers_required(),
                "MariaDB is required but unreachable: {e}"
            );
            eprintln!("SKIP: MariaDB unreachable: {e}");
            return;
        }
    };
    let table = format!("peepool_libmariadb_{}", std::process::id());
    let columns: Vec<String> = CORPUS
        .iter()
        .enumerate()
        .map(|(i, (ty, _))| format!("c{i} {ty}"))
        .collect();
    let values: Vec<&str> = CORPUS.iter().map(|(_, v)| *v).collect();
    c.execute(&format!("DROP TABLE IF EXISTS {table}"), &[])
        .unwrap();
    c.execute(
        &format!("CREATE TABLE {table} ({})", columns.join(", ")),
        &[],
    )
    .unwrap();
    c.execute(
        &format!("INSERT INTO {table} VALUES ({})", values.join(", ")),
        &[],
    )
    .unwrap();
    let expected = libmariadb_row(&table);
    assert_eq!(expected.len(), CORPUS.len());
    let text_protocol = c.query(&format!("SELECT * FROM {table}"), &[]).unwrap();
    let binary_protocol = c
        .query(
            &format!("SELECT * FROM {table} WHERE ? = 1"),
            &[Value::Int(1)],
        )
        .unwrap();
    for (name, r) in [("text", &text_protocol), ("binary", &binary_protocol)] {
        for (i, want) in expected.iter().enumerate() {
            let got = if r.is_null(0, i).unwrap() {
                "NULL".to_string()
            } else {
                String::from_utf8_lossy(r.text(0, i).unwrap()).into_owned()
            };
            assert_eq!(
                &got, want,
                "{} {} ({name} protocol)",
                CORPUS[i].0, CORPUS[i].1
            );
        }
    }
    c.execute(&format!("DROP TABLE {table}"), &[]).unwrap();
}
