//! The C ABI called directly from Rust: argument checks, status codes, the
//! thread's last error, value helpers, result getters and the panic
//! boundary. Pool behaviour against real databases is tested by the C
//! harness (tests/c/).

use std::ffi::{c_char, c_void, CStr};
use std::ptr;

use peepool::error::pool_status_t as S;
use peepool::ffi::*;
use peepool::value::{ResultBuilder, ResultSet};

fn last_error() -> String {
    // SAFETY: pool_last_error never returns NULL and gives a NUL-terminated string.
    unsafe { CStr::from_ptr(pool_last_error()) }
        .to_str()
        .expect("last error is UTF-8")
        .to_string()
}

fn cstr(p: *const c_char) -> &'static str {
    assert!(!p.is_null());
    // SAFETY: static or library-owned NUL-terminated strings in these tests.
    unsafe { CStr::from_ptr(p) }.to_str().expect("UTF-8")
}

#[track_caller]
fn assert_fails(status: S, expected: S, message_contains: &str) {
    assert_eq!(status, expected, "last error: {}", last_error());
    let msg = last_error();
    assert!(
        msg.contains(message_contains),
        "message {msg:?} does not contain {message_contains:?}"
    );
}

fn dangling<T>() -> *mut T {
    ptr::NonNull::dangling().as_ptr()
}

const FORGED: pool_conn_t = pool_conn_t {
    id: (0xABC_u64 << 52) | (5 << 32) | 77,
};

fn sample_result() -> *mut pool_result_t {
    let mut b = ResultBuilder::new(vec!["n".into(), "x".into(), "t".into(), "b".into()]);
    b.push_int(42);
    b.push_double(1.5, "1.5");
    b.push_text(b"hello");
    b.push_blob(b"\x00\x01\x02", None);
    b.end_row();
    b.push_null();
    b.push_numeric("12.000");
    b.push_text(b"a\0b");
    b.push_null();
    b.end_row();
    let rs: Box<ResultSet> = b.finish();
    // pool_result_t is documented as a Box<ResultSet>.
    Box::into_raw(rs) as *mut pool_result_t
}

#[test]
fn pool_new_null_arguments_are_named() {
    let mut out: *mut pool_t = dangling();
    assert_fails(
        pool_new(ptr::null(), &mut out),
        S::POOL_ERR_INVALID_ARGUMENT,
        "argument 'url' is NULL",
    );
    assert!(out.is_null(), "out is set to NULL on failure");
    assert_fails(
        pool_new(c"sqlite::memory:".as_ptr(), ptr::null_mut()),
        S::POOL_ERR_INVALID_ARGUMENT,
        "argument 'out' is NULL",
    );
}

#[test]
fn pool_new_invalid_utf8_url() {
    let mut out: *mut pool_t = dangling();
    let bad = b"sqlite:\xff\xfe.db\0";
    assert_fails(
        pool_new(bad.as_ptr() as *const c_char, &mut out),
        S::POOL_ERR_INVALID_ARGUMENT,
        "argument 'url' is not valid UTF-8",
    );
    assert!(out.is_null());
}

#[test]
fn pool_new_config_errors() {
    let mut out: *mut pool_t = dangling();
    assert_fails(
        pool_new(c"no scheme here".as_ptr(), &mut out),
        S::POOL_ERR_CONFIG,
        "malformed URL",
    );
    assert!(out.is_null());
    assert_fails(
        pool_new(c"oracle://x/y".as_ptr(), &mut out),
        S::POOL_ERR_CONFIG,
        "unsupported URL scheme",
    );
    assert_fails(
        pool_new(c"sqlite:x.db?max_connections=abc".as_ptr(), &mut out),
        S::POOL_ERR_CONFIG,
        "max_connections",
    );
    assert_fails(
        pool_new(c"sqlite:x.db?stale_jitter=2".as_ptr(), &mut out),
        S::POOL_ERR_CONFIG,
        "stale_jitter",
    );
    assert!(out.is_null());

    // An unknown option is refused by the backend, naming it (the scaffold
    // backends refuse everything, so only the status is certain there).
    let st = pool_new(c"sqlite::memory:?bogus_option=1".as_ptr(), &mut out);
    assert_eq!(st, S::POOL_ERR_CONFIG);
    let msg = last_error();
    assert!(
        msg.contains("bogus_option") || msg.contains("not built yet"),
        "{msg}"
    );
    assert!(out.is_null());

    // No password in the message.
    let st = pool_new(
        c"postgres://u:s3cretpw@127.0.0.1:1/db?timeout=-1".as_ptr(),
        &mut out,
    );
    assert_eq!(st, S::POOL_ERR_CONFIG);
    assert!(last_error().contains("timeout"));
    assert!(!last_error().contains("s3cretpw"), "{}", last_error());
}

#[test]
fn pool_functions_name_a_null_pool() {
    let mut conn = pool_conn_t { id: 99 };
    assert_fails(
        pool_connect(ptr::null_mut(), &mut conn),
        S::POOL_ERR_INVALID_ARGUMENT,
        "argument 'pool' is NULL",
    );
    assert_eq!(
        conn,
        pool_conn_t { id: 0 },
        "out is the null handle on failure"
    );
    conn.id = 99;
    assert_fails(
        pool_thread_connect(ptr::null_mut(), &mut conn),
        S::POOL_ERR_INVALID_ARGUMENT,
        "argument 'pool' is NULL",
    );
    assert_eq!(conn.id, 0);
    assert_fails(
        pool_release(ptr::null_mut(), FORGED),
        S::POOL_ERR_INVALID_ARGUMENT,
        "argument 'pool' is NULL",
    );
    assert_fails(
        pool_manual_close(ptr::null_mut(), FORGED),
        S::POOL_ERR_INVALID_ARGUMENT,
        "argument 'pool' is NULL",
    );
    let mut closed: usize = 7;
    assert_fails(
        pool_close_idle(ptr::null_mut(), &mut closed),
        S::POOL_ERR_INVALID_ARGUMENT,
        "argument 'pool' is NULL",
    );
    assert_eq!(closed, 0);
    closed = 7;
    assert_fails(
        pool_close_stale(ptr::null_mut(), 1.0, &mut closed),
        S::POOL_ERR_INVALID_ARGUMENT,
        "argument 'pool' is NULL",
    );
    assert_eq!(closed, 0);
    assert_fails(
        pool_close_idle(ptr::null_mut(), ptr::null_mut()),
        S::POOL_ERR_INVALID_ARGUMENT,
        "argument 'pool' is NULL",
    );
    assert_fails(
        pool_close_all(ptr::null_mut()),
        S::POOL_ERR_INVALID_ARGUMENT,
        "argument 'pool' is NULL",
    );
    assert_fails(
        pool_thread_release(ptr::null_mut()),
        S::POOL_ERR_INVALID_ARGUMENT,
        "argument 'pool' is NULL",
    );
    let mut stats = pool_stats_t {
        open: 5,
        leaks: 9,
        ..Default::default()
    };
    assert_fails(
        pool_stats(ptr::null_mut(), &mut stats),
        S::POOL_ERR_INVALID_ARGUMENT,
        "argument 'pool' is NULL",
    );
    assert_eq!(stats, pool_stats_t::default(), "stats zeroed on failure");
    assert_fails(
        pool_set_logger(ptr::null_mut(), None, ptr::null_mut()),
        S::POOL_ERR_INVALID_ARGUMENT,
        "argument 'pool' is NULL",
    );
}

#[test]
fn free_null_is_a_no_op() {
    pool_free(ptr::null_mut());
    pool_result_free(ptr::null_mut());
    assert_eq!(last_error(), "");
}

#[test]
fn conn_functions_check_arguments_then_the_handle() {
    let mut affected: u64 = 5;
    assert_fails(
        pool_execute(FORGED, ptr::null(), ptr::null(), 0, &mut affected),
        S::POOL_ERR_INVALID_ARGUMENT,
        "argument 'sql' is NULL",
    );
    assert_eq!(affected, 0);
    let bad_sql = b"SELECT '\xc3\x28'\0";
    assert_fails(
        pool_execute(
            FORGED,
            bad_sql.as_ptr() as *const c_char,
            ptr::null(),
            0,
            ptr::null_mut(),
        ),
        S::POOL_ERR_INVALID_ARGUMENT,
        "argument 'sql' is not valid UTF-8",
    );
    assert_fails(
        pool_execute(
            FORGED,
            c"SELECT 1".as_ptr(),
            ptr::null(),
            2,
            ptr::null_mut(),
        ),
        S::POOL_ERR_INVALID_ARGUMENT,
        "argument 'params' is NULL",
    );
    assert_fails(
        pool_execute(
            pool_conn_t { id: 0 },
            c"SELECT 1".as_ptr(),
            ptr::null(),
            0,
            &mut affected,
        ),
        S::POOL_ERR_INVALID_HANDLE,
        "null handle",
    );
    assert_fails(
        pool_execute(FORGED, c"SELECT 1".as_ptr(), ptr::null(), 0, &mut affected),
        S::POOL_ERR_INVALID_HANDLE,
        "no live pool",
    );

    let mut res: *mut pool_result_t = dangling();
    assert_fails(
        pool_query(FORGED, ptr::null(), ptr::null(), 0, &mut res),
        S::POOL_ERR_INVALID_ARGUMENT,
        "argument 'sql' is NULL",
    );
    assert!(res.is_null(), "out is NULL on failure");
    assert_fails(
        pool_query(
            FORGED,
            c"SELECT 1".as_ptr(),
            ptr::null(),
            0,
            ptr::null_mut(),
        ),
        S::POOL_ERR_INVALID_ARGUMENT,
        "argument 'out' is NULL",
    );
    res = dangling();
    assert_fails(
        pool_query(FORGED, c"SELECT 1".as_ptr(), ptr::null(), 0, &mut res),
        S::POOL_ERR_INVALID_HANDLE,
        "",
    );
    assert!(res.is_null());

    for f in [pool_begin, pool_commit, pool_rollback] {
        assert_fails(
            f(pool_conn_t { id: 0 }),
            S::POOL_ERR_INVALID_HANDLE,
            "null handle",
        );
        assert_fails(f(FORGED), S::POOL_ERR_INVALID_HANDLE, "no live pool");
    }
}

#[test]
fn parameters_are_checked_and_named() {
    let sql = c"INSERT INTO t VALUES (?, ?)".as_ptr();
    let ok_then = |v: pool_value_t| [pool_int64(1), v];

    let mut bad_kind = pool_null();
    bad_kind.kind = 9;
    let p = ok_then(bad_kind);
    assert_fails(
        pool_execute(FORGED, sql, p.as_ptr(), 2, ptr::null_mut()),
        S::POOL_ERR_INVALID_ARGUMENT,
        "parameter 2 has unknown type 9",
    );

    let bad_utf8 = b"\xff\xfe";
    let p = ok_then(pool_text_n(bad_utf8.as_ptr() as *const c_char, 2));
    assert_fails(
        pool_execute(FORGED, sql, p.as_ptr(), 2, ptr::null_mut()),
        S::POOL_ERR_INVALID_ARGUMENT,
        "parameter 2 (text) is not valid UTF-8",
    );

    let p = ok_then(pool_blob(ptr::null(), 3));
    assert_fails(
        pool_execute(FORGED, sql, p.as_ptr(), 2, ptr::null_mut()),
        S::POOL_ERR_INVALID_ARGUMENT,
        "parameter 2 (blob) has data NULL",
    );

    let mut text_null_data = pool_text(c"x".as_ptr());
    text_null_data.data = ptr::null();
    let p = ok_then(text_null_data);
    assert_fails(
        pool_execute(FORGED, sql, p.as_ptr(), 2, ptr::null_mut()),
        S::POOL_ERR_INVALID_ARGUMENT,
        "parameter 2 (text) has data NULL",
    );

    // Valid parameters of every kind get as far as the handle check.
    let p = [
        pool_null(),
        pool_int64(-3),
        pool_double(2.5),
        pool_text(c"h\u{e9}llo".as_ptr()),
        pool_text_n(ptr::null(), 0),
        pool_blob(ptr::null(), 0),
        pool_blob(b"\x00\x01".as_ptr() as *const c_void, 2),
    ];
    assert_fails(
        pool_execute(FORGED, sql, p.as_ptr(), p.len(), ptr::null_mut()),
        S::POOL_ERR_INVALID_HANDLE,
        "",
    );
    let mut res: *mut pool_result_t = ptr::null_mut();
    assert_fails(
        pool_query(FORGED, sql, p.as_ptr(), p.len(), &mut res),
        S::POOL_ERR_INVALID_HANDLE,
        "",
    );
}

#[test]
fn value_helpers() {
    let v = pool_null();
    assert_eq!((v.kind, v.len), (POOL_TYPE_NULL, 0));
    assert!(v.data.is_null());
    let v = pool_int64(i64::MIN);
    assert_eq!((v.kind, v.i64), (POOL_TYPE_INT64, i64::MIN));
    let v = pool_double(-0.25);
    assert_eq!((v.kind, v.f64), (POOL_TYPE_DOUBLE, -0.25));
    let s = c"abc";
    let v = pool_text(s.as_ptr());
    assert_eq!(
        (v.kind, v.len, v.data),
        (POOL_TYPE_TEXT, 3, s.as_ptr() as *const c_void)
    );
    assert_eq!(pool_text(ptr::null()).kind, POOL_TYPE_NULL);
    let v = pool_text_n(b"a\0b".as_ptr() as *const c_char, 3);
    assert_eq!((v.kind, v.len), (POOL_TYPE_TEXT, 3));
    assert_eq!(pool_text_n(ptr::null(), 5).kind, POOL_TYPE_NULL);
    let bytes = [1u8, 2, 3];
    let v = pool_blob(bytes.as_ptr() as *const c_void, 3);
    assert_eq!(
        (v.kind, v.len, v.data),
        (POOL_TYPE_BLOB, 3, bytes.as_ptr() as *const c_void)
    );
    assert_eq!(
        [
            POOL_TYPE_NULL,
            POOL_TYPE_INT64,
            POOL_TYPE_DOUBLE,
            POOL_TYPE_TEXT,
            POOL_TYPE_BLOB,
            POOL_TYPE_NUMERIC,
            POOL_TYPE_OTHER
        ],
        [0, 1, 2, 3, 4, 5, 6]
    );
    assert_eq!(
        [POOL_LOG_ERROR, POOL_LOG_WARN, POOL_LOG_INFO, POOL_LOG_DEBUG],
        [1, 2, 3, 4]
    );
}

#[test]
fn status_str_names_every_code() {
    for s in S::ALL {
        let text = cstr(pool_status_str(s as i32));
        assert!(text.starts_with(&format!("{s:?}: ")), "{s:?} -> {text}");
        assert!(text.ends_with(s.describe()), "{text}");
    }
    assert_eq!(
        cstr(pool_status_str(4)),
        "POOL_ERR_EXHAUSTED: pool exhausted"
    );
    for code in [-1, 11, 1000, i32::MIN, i32::MAX] {
        assert_eq!(cstr(pool_status_str(code)), "unknown status");
    }
}

#[test]
fn version_matches_cargo() {
    assert_eq!(cstr(pool_version()), env!("CARGO_PKG_VERSION"));
    let header = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/peepool.h"))
        .expect("header");
    assert!(header.contains(&format!(
        "#define PEEPOOL_VERSION_STRING \"{}\"",
        env!("CARGO_PKG_VERSION")
    )));
    assert!(header.contains(&format!(
        "#define PEEPOOL_VERSION_MAJOR {}",
        env!("CARGO_PKG_VERSION_MAJOR")
    )));
    assert!(header.contains(&format!(
        "#define PEEPOOL_VERSION_MINOR {}",
        env!("CARGO_PKG_VERSION_MINOR")
    )));
    assert!(header.contains(&format!(
        "#define PEEPOOL_VERSION_PATCH {}",
        env!("CARGO_PKG_VERSION_PATCH")
    )));
}

#[test]
fn last_error_lifecycle() {
    assert_eq!(last_error(), "");
    assert_eq!(cstr(pool_last_sqlstate()), "");
    assert_eq!(
        pool_connect(ptr::null_mut(), ptr::null_mut()),
        S::POOL_ERR_INVALID_ARGUMENT
    );
    let p1 = pool_last_error();
    // Accessors and value helpers leave the last error alone.
    let _ = pool_version();
    let _ = pool_status_str(1);
    let _ = pool_last_sqlstate();
    let _ = pool_null();
    let _ = pool_text(c"x".as_ptr());
    let _ = pool_result_rows(ptr::null());
    assert_eq!(pool_last_error(), p1, "pointer stays valid and unchanged");
    assert_eq!(cstr(p1), "argument 'pool' is NULL");
    assert_eq!(
        cstr(pool_last_sqlstate()),
        "",
        "no SQLSTATE for a non-database error"
    );

    // Another thread has its own.
    let other = std::thread::spawn(last_error).join().expect("thread");
    assert_eq!(other, "");

    // The next successful call clears it.
    let res = sample_result();
    let mut n = 0i64;
    assert_eq!(pool_result_int64(res, 0, 0, &mut n), S::POOL_OK);
    assert_eq!((n, last_error().as_str()), (42, ""));
    assert_eq!(pool_result_int64(res, 1, 0, &mut n), S::POOL_ERR_CONVERSION);
    assert_ne!(last_error(), "");
    pool_result_free(res);
    assert_eq!(last_error(), "", "a void call clears it too");
}

#[test]
fn result_getters() {
    let res = sample_result();
    assert_eq!((pool_result_rows(res), pool_result_columns(res)), (2, 4));
    assert_eq!(
        (
            pool_result_rows(ptr::null()),
            pool_result_columns(ptr::null())
        ),
        (0, 0)
    );

    let mut name: *const c_char = ptr::null();
    assert_eq!(pool_result_column_name(res, 2, &mut name), S::POOL_OK);
    assert_eq!(cstr(name), "t");

    let mut kind = 99u32;
    let kinds: Vec<u32> = (0..4)
        .map(|c| {
            assert_eq!(pool_result_type(res, 0, c, &mut kind), S::POOL_OK);
            kind
        })
        .collect();
    assert_eq!(
        kinds,
        [
            POOL_TYPE_INT64,
            POOL_TYPE_DOUBLE,
            POOL_TYPE_TEXT,
            POOL_TYPE_BLOB
        ]
    );
    assert_eq!(pool_result_type(res, 1, 1, &mut kind), S::POOL_OK);
    assert_eq!(kind, POOL_TYPE_NUMERIC);

    let mut is_null = true;
    assert_eq!(pool_result_is_null(res, 0, 0, &mut is_null), S::POOL_OK);
    assert!(!is_null);
    assert_eq!(pool_result_is_null(res, 1, 0, &mut is_null), S::POOL_OK);
    assert!(is_null);

    let mut i = 0i64;
    assert_eq!(pool_result_int64(res, 1, 1, &mut i), S::POOL_OK);
    assert_eq!(i, 12);
    i = 5;
    assert_fails(
        pool_result_int64(res, 0, 1, &mut i),
        S::POOL_ERR_CONVERSION,
        "cell (0, 1)",
    );
    assert_eq!(i, 0);
    let mut d = 0.0f64;
    assert_eq!(pool_result_double(res, 0, 1, &mut d), S::POOL_OK);
    assert_eq!(d, 1.5);
    assert_eq!(pool_result_double(res, 0, 0, &mut d), S::POOL_OK);
    assert_eq!(d, 42.0);
    d = 3.0;
    assert_fails(
        pool_result_double(res, 1, 0, &mut d),
        S::POOL_ERR_CONVERSION,
        "NULL",
    );
    assert_eq!(d, 0.0);

    let (mut text, mut len): (*const c_char, usize) = (ptr::null(), 0);
    assert_eq!(pool_result_text(res, 0, 2, &mut text, &mut len), S::POOL_OK);
    assert_eq!((cstr(text), len), ("hello", 5));
    assert_eq!(pool_result_text(res, 1, 2, &mut text, &mut len), S::POOL_OK);
    // SAFETY: text points at len bytes plus a NUL, owned by res.
    assert_eq!(
        unsafe { std::slice::from_raw_parts(text as *const u8, len + 1) },
        b"a\0b\0"
    );
    assert_eq!(
        pool_result_text(res, 0, 0, &mut text, ptr::null_mut()),
        S::POOL_OK,
        "len may be NULL"
    );
    assert_eq!(cstr(text), "42");
    assert_fails(
        pool_result_text(res, 1, 0, &mut text, &mut len),
        S::POOL_ERR_CONVERSION,
        "NULL",
    );
    assert!(text.is_null());
    assert_eq!(len, 0);

    let (mut data, mut blen): (*const c_void, usize) = (ptr::null(), 0);
    assert_eq!(
        pool_result_blob(res, 0, 3, &mut data, &mut blen),
        S::POOL_OK
    );
    // SAFETY: data points at blen bytes owned by res.
    assert_eq!(
        unsafe { std::slice::from_raw_parts(data as *const u8, blen) },
        b"\x00\x01\x02"
    );
    assert_fails(
        pool_result_blob(res, 0, 3, &mut data, ptr::null_mut()),
        S::POOL_ERR_INVALID_ARGUMENT,
        "argument 'len' is NULL",
    );
    assert!(data.is_null());
    assert_fails(
        pool_result_blob(res, 1, 3, &mut data, &mut blen),
        S::POOL_ERR_CONVERSION,
        "NULL",
    );

    pool_result_free(res);
}

#[test]
fn result_getters_out_of_range_and_null() {
    let res = sample_result();
    let mut name: *const c_char = dangling();
    assert_fails(
        pool_result_column_name(res, 4, &mut name),
        S::POOL_ERR_INVALID_ARGUMENT,
        "column 4 out of range",
    );
    assert!(name.is_null());
    let mut kind = 9u32;
    assert_fails(
        pool_result_type(res, 2, 0, &mut kind),
        S::POOL_ERR_INVALID_ARGUMENT,
        "out of range",
    );
    assert_eq!(kind, 0);
    let mut b = true;
    assert_fails(
        pool_result_is_null(res, 0, 4, &mut b),
        S::POOL_ERR_INVALID_ARGUMENT,
        "out of range",
    );
    assert!(!b);
    let mut i = 1i64;
    assert_fails(
        pool_result_int64(res, usize::MAX, 0, &mut i),
        S::POOL_ERR_INVALID_ARGUMENT,
        "out of range",
    );
    assert_eq!(i, 0);
    let mut d = 1.0;
    assert_fails(
        pool_result_double(res, 0, usize::MAX, &mut d),
        S::POOL_ERR_INVALID_ARGUMENT,
        "out of range",
    );
    let (mut t, mut len): (*const c_char, usize) = (dangling(), 9);
    assert_fails(
        pool_result_text(res, 5, 5, &mut t, &mut len),
        S::POOL_ERR_INVALID_ARGUMENT,
        "out of range",
    );
    assert!(t.is_null());
    assert_eq!(len, 0);
    let (mut p, mut blen): (*const c_void, usize) = (dangling(), 9);
    assert_fails(
        pool_result_blob(res, 2, 0, &mut p, &mut blen),
        S::POOL_ERR_INVALID_ARGUMENT,
        "out of range",
    );
    assert!(p.is_null());
    assert_eq!(blen, 0);

    // NULL result and NULL outputs are named.
    assert_fails(
        pool_result_column_name(ptr::null(), 0, &mut name),
        S::POOL_ERR_INVALID_ARGUMENT,
        "argument 'res' is NULL",
    );
    assert_fails(
        pool_result_column_name(res, 0, ptr::null_mut()),
        S::POOL_ERR_INVALID_ARGUMENT,
        "argument 'out' is NULL",
    );
    assert_fails(
        pool_result_type(ptr::null(), 0, 0, &mut kind),
        S::POOL_ERR_INVALID_ARGUMENT,
        "argument 'res' is NULL",
    );
    assert_fails(
        pool_result_type(res, 0, 0, ptr::null_mut()),
        S::POOL_ERR_INVALID_ARGUMENT,
        "argument 'out' is NULL",
    );
    assert_fails(
        pool_result_is_null(ptr::null(), 0, 0, &mut b),
        S::POOL_ERR_INVALID_ARGUMENT,
        "argument 'res' is NULL",
    );
    assert_fails(
        pool_result_is_null(res, 0, 0, ptr::null_mut()),
        S::POOL_ERR_INVALID_ARGUMENT,
        "argument 'out' is NULL",
    );
    assert_fails(
        pool_result_int64(ptr::null(), 0, 0, &mut i),
        S::POOL_ERR_INVALID_ARGUMENT,
        "argument 'res' is NULL",
    );
    assert_fails(
        pool_result_int64(res, 0, 0, ptr::null_mut()),
        S::POOL_ERR_INVALID_ARGUMENT,
        "argument 'out' is NULL",
    );
    assert_fails(
        pool_result_double(ptr::null(), 0, 0, &mut d),
        S::POOL_ERR_INVALID_ARGUMENT,
        "argument 'res' is NULL",
    );
    assert_fails(
        pool_result_double(res, 0, 0, ptr::null_mut()),
        S::POOL_ERR_INVALID_ARGUMENT,
        "argument 'out' is NULL",
    );
    assert_fails(
        pool_result_text(ptr::null(), 0, 0, &mut t, &mut len),
        S::POOL_ERR_INVALID_ARGUMENT,
        "argument 'res' is NULL",
    );
    assert_fails(
        pool_result_text(res, 0, 0, ptr::null_mut(), &mut len),
        S::POOL_ERR_INVALID_ARGUMENT,
        "argument 'out' is NULL",
    );
    assert_fails(
        pool_result_blob(ptr::null(), 0, 0, &mut p, &mut blen),
        S::POOL_ERR_INVALID_ARGUMENT,
        "argument 'res' is NULL",
    );
    assert_fails(
        pool_result_blob(res, 0, 0, ptr::null_mut(), &mut blen),
        S::POOL_ERR_INVALID_ARGUMENT,
        "argument 'out' is NULL",
    );
    pool_result_free(res);
}

#[test]
fn a_panic_becomes_internal() {
    let mut out = 5u64;
    assert_fails(
        __boundary_panics_status(&mut out),
        S::POOL_ERR_INTERNAL,
        "deliberate panic in a test body",
    );
    assert_eq!(out, 0, "an output written before the panic is reset");
    assert!(last_error().contains("internal error"));
    assert_eq!(
        __boundary_panics_value(),
        0,
        "the value variant returns its fallback"
    );
    assert!(last_error().contains("deliberate panic in a value body"));
}

/// Every `#[no_mangle]` function in src/ffi/ is `pub extern "C"`, takes no
/// reference, runs its body through `ffi_boundary!`, and is in the header.
#[test]
fn every_export_goes_through_the_boundary() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/ffi");
    let header = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/peepool.h"))
        .expect("header");
    let mut count = 0;
    for entry in std::fs::read_dir(dir).expect("src/ffi") {
        let path = entry.expect("entry").path();
        let src = std::fs::read_to_string(&path).expect("source");
        let mut rest = src.as_str();
        while let Some(i) = rest.find("\n#[no_mangle]\n") {
            rest = &rest[i + "\n#[no_mangle]\n".len()..];
            let sig_end = rest.find('{').expect("body");
            let sig = rest[..sig_end].trim();
            assert!(
                sig.starts_with("pub extern \"C\" fn pool_"),
                "{}: {sig}",
                path.display()
            );
            assert!(
                !sig.contains('&'),
                "{}: a reference in an extern signature: {sig}",
                path.display()
            );
            let name = sig["pub extern \"C\" fn ".len()..]
                .split('(')
                .next()
                .expect("name");
            let body = rest[sig_end + 1..].trim_start();
            assert!(
                body.starts_with("ffi_boundary!("),
                "{name} does not start with ffi_boundary!"
            );
            assert!(
                header.contains(&format!(" {name}(")) || header.contains(&format!("*{name}(")),
                "{name} missing from the header"
            );
            count += 1;
        }
    }
    assert_eq!(count, 37, "number of exports");
}

// ---------------------------------------------------------------------------
// Pool behaviour through the C ABI, on `sqlite::memory:`. These run once the
// real SQLite backend is in the tree; while src/backend/sqlite.rs is still the
// scaffold (which refuses every URL) they return early, saying so.

struct TestPool(*mut pool_t);

impl Drop for TestPool {
    fn drop(&mut self) {
        pool_free(self.0);
    }
}

fn memory_pool(options: &str) -> Option<TestPool> {
    let url = std::ffi::CString::new(format!("sqlite::memory:{options}")).expect("no NUL");
    let mut p: *mut pool_t = ptr::null_mut();
    match pool_new(url.as_ptr(), &mut p) {
        S::POOL_OK => {
            assert!(!p.is_null());
            Some(TestPool(p))
        }
        _ if last_error().contains("not built yet") => {
            eprintln!("skipped: the sqlite backend is still the scaffold");
            assert!(p.is_null());
            None
        }
        st => panic!("pool_new: {st:?}: {}", last_error()),
    }
}

fn connect(p: &TestPool) -> pool_conn_t {
    let mut c = pool_conn_t { id: 0 };
    assert_eq!(pool_connect(p.0, &mut c), S::POOL_OK, "{}", last_error());
    assert_ne!(c.id, 0);
    c
}

fn exec(c: pool_conn_t, sql: &std::ffi::CStr, params: &[pool_value_t]) -> u64 {
    let mut n = 99;
    let st = pool_execute(c, sql.as_ptr(), params.as_ptr(), params.len(), &mut n);
    assert_eq!(st, S::POOL_OK, "{sql:?}: {}", last_error());
    n
}

fn query(c: pool_conn_t, sql: &std::ffi::CStr) -> *mut pool_result_t {
    let mut res = ptr::null_mut();
    assert_eq!(
        pool_query(c, sql.as_ptr(), ptr::null(), 0, &mut res),
        S::POOL_OK,
        "{sql:?}: {}",
        last_error()
    );
    assert!(!res.is_null());
    res
}

fn count(c: pool_conn_t, table: &str) -> i64 {
    let sql = std::ffi::CString::new(format!("SELECT count(*) FROM {table}")).expect("sql");
    let res = query(c, &sql);
    let mut n = -1;
    assert_eq!(pool_result_int64(res, 0, 0, &mut n), S::POOL_OK);
    pool_result_free(res);
    n
}

fn stats(p: &TestPool) -> pool_stats_t {
    let mut s = pool_stats_t::default();
    assert_eq!(pool_stats(p.0, &mut s), S::POOL_OK);
    s
}

#[test]
fn checkout_statements_and_release() {
    let Some(p) = memory_pool("?max_connections=2") else {
        return;
    };
    let c1 = connect(&p);
    exec(
        c1,
        c"CREATE TABLE t (i INTEGER, s TEXT, d REAL, n TEXT, b BLOB)",
        &[],
    );
    let blob = b"\x00bin\xff";
    let params = [
        pool_int64(i64::MAX),
        pool_text(c"h\u{e9}llo".as_ptr()),
        pool_double(0.5),
        pool_null(),
        pool_blob(blob.as_ptr() as *const c_void, blob.len()),
    ];
    assert_eq!(
        exec(c1, c"INSERT INTO t VALUES (?, ?, ?, ?, ?)", &params),
        1
    );

    // The in-memory database is shared by the pool's connections.
    let c2 = connect(&p);
    assert_ne!(c1, c2);
    let res = query(c2, c"SELECT i, s, d, n, b FROM t");
    assert_eq!((pool_result_rows(res), pool_result_columns(res)), (1, 5));
    let mut name = ptr::null();
    assert_eq!(pool_result_column_name(res, 1, &mut name), S::POOL_OK);
    assert_eq!(cstr(name), "s");
    let mut i = 0;
    assert_eq!(pool_result_int64(res, 0, 0, &mut i), S::POOL_OK);
    assert_eq!(i, i64::MAX);
    let (mut t, mut len) = (ptr::null(), 0);
    assert_eq!(pool_result_text(res, 0, 1, &mut t, &mut len), S::POOL_OK);
    assert_eq!((cstr(t), len), ("h\u{e9}llo", 6));
    let mut d = 0.0;
    assert_eq!(pool_result_double(res, 0, 2, &mut d), S::POOL_OK);
    assert_eq!(d, 0.5);
    let mut is_null = false;
    assert_eq!(pool_result_is_null(res, 0, 3, &mut is_null), S::POOL_OK);
    assert!(is_null);
    let (mut data, mut blen) = (ptr::null(), 0);
    assert_eq!(
        pool_result_blob(res, 0, 4, &mut data, &mut blen),
        S::POOL_OK
    );
    // SAFETY: data points at blen bytes owned by res.
    assert_eq!(
        unsafe { std::slice::from_raw_parts(data as *const u8, blen) },
        blob
    );
    pool_result_free(res);

    // Full: the third checkout fails at once (timeout absent), out is {0}.
    let mut c3 = pool_conn_t { id: 5 };
    assert_eq!(pool_connect(p.0, &mut c3), S::POOL_ERR_EXHAUSTED);
    assert_eq!(c3.id, 0);
    assert!(!last_error().is_empty());

    let s = stats(&p);
    assert_eq!((s.max_connections, s.in_use), (2, 2));
    assert!(
        s.checkouts >= 2 && s.opened_total >= 2 && s.open >= 2,
        "{s:?}"
    );

    // Release; the handle is dead afterwards.
    assert_eq!(pool_release(p.0, c1), S::POOL_OK, "{}", last_error());
    assert_eq!(pool_release(p.0, c1), S::POOL_ERR_INVALID_HANDLE);
    assert_eq!(
        pool_execute(c1, c"SELECT 1".as_ptr(), ptr::null(), 0, ptr::null_mut()),
        S::POOL_ERR_INVALID_HANDLE
    );
    assert_eq!(pool_begin(c1), S::POOL_ERR_INVALID_HANDLE);

    // A new checkout gets a new id.
    let c4 = connect(&p);
    assert_ne!(c4, c1);
    assert_eq!(pool_manual_close(p.0, c4), S::POOL_OK, "{}", last_error());
    assert_eq!(pool_manual_close(p.0, c4), S::POOL_ERR_INVALID_HANDLE);
    assert_eq!(stats(&p).closed_manual, 1);
    assert_eq!(pool_release(p.0, c2), S::POOL_OK);

    let idle = stats(&p).idle as usize;
    let mut closed = 99;
    assert_eq!(pool_close_idle(p.0, &mut closed), S::POOL_OK);
    assert_eq!(closed, idle);
    assert_eq!(stats(&p).idle, 0);
}

#[test]
fn database_errors_and_transactions() {
    let Some(p) = memory_pool("") else { return };
    let c = connect(&p);
    let mut n = 7;
    assert_eq!(
        pool_execute(c, c"SELEC nonsense".as_ptr(), ptr::null(), 0, &mut n),
        S::POOL_ERR_DATABASE
    );
    assert_eq!(n, 0);
    assert!(!last_error().is_empty());
    assert_ne!(
        cstr(pool_last_sqlstate()),
        "",
        "SQLite gives its extended result code"
    );
    let mut res = dangling();
    assert_eq!(
        pool_query(
            c,
            c"SELECT * FROM missing".as_ptr(),
            ptr::null(),
            0,
            &mut res
        ),
        S::POOL_ERR_DATABASE
    );
    assert!(res.is_null());

    exec(c, c"CREATE TABLE t (x INTEGER)", &[]);
    // Several statements, each needing the one before it to have run.
    assert_eq!(
        exec(
            c,
            c"CREATE TABLE a (y); INSERT INTO a VALUES (1), (2); DROP TABLE a",
            &[]
        ),
        2
    );
    assert_eq!(pool_begin(c), S::POOL_OK, "{}", last_error());
    exec(c, c"INSERT INTO t VALUES (1)", &[]);
    assert_eq!(pool_rollback(c), S::POOL_OK, "{}", last_error());
    assert_eq!(count(c, "t"), 0);
    assert_eq!(pool_begin(c), S::POOL_OK);
    exec(c, c"INSERT INTO t VALUES (?)", &[pool_int64(2)]);
    assert_eq!(pool_commit(c), S::POOL_OK, "{}", last_error());
    assert_eq!(count(c, "t"), 1);
    assert_eq!(last_error(), "");
    assert_eq!(cstr(pool_last_sqlstate()), "");
    assert_eq!(pool_release(p.0, c), S::POOL_OK);
}

/// A writer holding the memory database's lock makes a reader's schema
/// load fail with SQLITE_BUSY. The liveness check on checkout must not take
/// that for a dead connection (it used to evict and reopen it).
#[test]
fn liveness_check_on_a_locked_database_keeps_the_connection() {
    let Some(p) = memory_pool("?max_connections=2&check_idle=0&busy_timeout=0") else {
        return;
    };
    let writer = connect(&p);
    let reader = connect(&p);
    assert_eq!(pool_release(p.0, reader), S::POOL_OK, "{}", last_error());
    exec(writer, c"CREATE TABLE t (x INTEGER)", &[]);
    assert_eq!(pool_begin(writer), S::POOL_OK, "{}", last_error());
    exec(writer, c"INSERT INTO t VALUES (1)", &[]);
    // check_idle=0: the checkout pings the idle connection, which has not
    // read the new schema yet.
    let again = connect(&p);
    let s = stats(&p);
    assert_eq!((s.closed_dead, s.opened_total), (0, 2), "{s:?}");
    assert_eq!(pool_release(p.0, again), S::POOL_OK);
    assert_eq!(pool_release(p.0, writer), S::POOL_OK);
}

/// A cached single-row lookup ends after its row (its program says no
/// second row can follow); remade into a scan by another connection, the
/// same text returns every row again.
#[test]
fn cached_single_row_lookup_follows_a_schema_change() {
    let Some(p) = memory_pool("?max_connections=2") else {
        return;
    };
    let c = connect(&p);
    let other = connect(&p);
    exec(
        other,
        c"CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT)",
        &[],
    );
    exec(other, c"INSERT INTO t VALUES (1, 'a')", &[]);
    let lookup = c"SELECT x FROM t WHERE id = 1";
    for _ in 0..3 {
        let res = query(c, lookup);
        assert_eq!(pool_result_rows(res), 1);
        pool_result_free(res);
    }
    exec(other, c"DROP TABLE t", &[]);
    exec(other, c"CREATE TABLE t (id INT, x TEXT)", &[]);
    exec(other, c"INSERT INTO t VALUES (1, 'a'), (1, 'b')", &[]);
    for _ in 0..3 {
        let res = query(c, lookup);
        assert_eq!(pool_result_rows(res), 2);
        pool_result_free(res);
    }
    assert_eq!(pool_release(p.0, other), S::POOL_OK);
    assert_eq!(pool_release(p.0, c), S::POOL_OK);
}

#[test]
fn close_stale_checks_its_age() {
    let Some(p) = memory_pool("") else { return };
    let mut closed = 9;
    assert_eq!(
        pool_close_stale(p.0, -1.0, &mut closed),
        S::POOL_ERR_INVALID_ARGUMENT
    );
    assert!(last_error().contains("age_seconds"), "{}", last_error());
    assert_eq!(closed, 0);
    assert_eq!(
        pool_close_stale(p.0, f64::NAN, ptr::null_mut()),
        S::POOL_ERR_INVALID_ARGUMENT
    );
    let c = connect(&p);
    closed = 9;
    assert_eq!(
        pool_close_stale(p.0, f64::INFINITY, &mut closed),
        S::POOL_OK
    );
    assert_eq!(closed, 0);
    assert_eq!(pool_close_stale(p.0, 1e6, &mut closed), S::POOL_OK);
    assert_eq!(closed, 0);
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(pool_close_stale(p.0, 0.001, &mut closed), S::POOL_OK);
    assert_eq!(closed, 1);
    assert_eq!(
        pool_execute(c, c"SELECT 1".as_ptr(), ptr::null(), 0, ptr::null_mut()),
        S::POOL_ERR_INVALID_HANDLE
    );
    assert_eq!(stats(&p).closed_reclaimed, 1);
}

#[test]
fn close_all_condemns_without_breaking_checked_out_connections() {
    let Some(p) = memory_pool("") else { return };
    let c = connect(&p);
    let idle = connect(&p);
    assert_eq!(pool_release(p.0, idle), S::POOL_OK);
    assert_eq!(pool_close_all(p.0), S::POOL_OK);
    pool_result_free(query(c, c"SELECT 1"));
    assert_eq!(pool_release(p.0, c), S::POOL_OK);
    let s = stats(&p);
    assert_eq!((s.open, s.idle, s.in_use), (0, 0, 0), "{s:?}");
}

#[test]
fn thread_connections() {
    let Some(p) = memory_pool("") else { return };
    let mut a = pool_conn_t { id: 0 };
    let mut b = pool_conn_t { id: 0 };
    assert_eq!(
        pool_thread_connect(p.0, &mut a),
        S::POOL_OK,
        "{}",
        last_error()
    );
    assert_eq!(pool_thread_connect(p.0, &mut b), S::POOL_OK);
    assert_eq!(a, b, "the same connection on every call from a thread");
    let pool_addr = p.0 as usize;
    let other = std::thread::spawn(move || {
        let mut c = pool_conn_t { id: 0 };
        assert_eq!(
            pool_thread_connect(pool_addr as *mut pool_t, &mut c),
            S::POOL_OK
        );
        c
    })
    .join()
    .expect("thread");
    assert_ne!(other, a);
    assert_eq!(pool_thread_release(p.0), S::POOL_OK);
    assert_eq!(
        pool_thread_release(p.0),
        S::POOL_OK,
        "OK also when the thread holds none"
    );
    assert_eq!(
        pool_execute(a, c"SELECT 1".as_ptr(), ptr::null(), 0, ptr::null_mut()),
        S::POOL_ERR_INVALID_HANDLE
    );
}

#[test]
fn handles_do_not_cross_pools_and_die_with_their_pool() {
    let (Some(p1), Some(p2)) = (memory_pool(""), memory_pool("")) else {
        return;
    };
    let c = connect(&p1);
    assert_eq!(pool_release(p2.0, c), S::POOL_ERR_INVALID_HANDLE);
    assert_eq!(pool_manual_close(p2.0, c), S::POOL_ERR_INVALID_HANDLE);
    pool_result_free(query(c, c"SELECT 1"));
    drop(p1); // pool_free with c still out: revoked
    assert_eq!(
        pool_execute(c, c"SELECT 1".as_ptr(), ptr::null(), 0, ptr::null_mut()),
        S::POOL_ERR_INVALID_HANDLE
    );
    assert_eq!(pool_commit(c), S::POOL_ERR_INVALID_HANDLE);
    let c2 = connect(&p2);
    assert_eq!(pool_release(p2.0, c2), S::POOL_OK);
}

unsafe extern "C" fn collect(
    user_data: *mut c_void,
    level: std::ffi::c_int,
    message: *const c_char,
) {
    // SAFETY: user_data is the Mutex<Vec<..>> the test passed; message is a
    // NUL-terminated string valid for this call.
    let seen = unsafe { &*(user_data as *const std::sync::Mutex<Vec<(i32, String)>>) };
    let text = unsafe { CStr::from_ptr(message) }
        .to_string_lossy()
        .into_owned();
    seen.lock().expect("lock").push((level, text));
}

#[test]
fn logger_can_be_set_and_removed() {
    let Some(p) = memory_pool("") else { return };
    let seen: &'static std::sync::Mutex<Vec<(i32, String)>> = Box::leak(Box::default());
    let ud = seen as *const _ as *mut c_void;
    assert_eq!(pool_set_logger(p.0, Some(collect), ud), S::POOL_OK);
    let c = connect(&p);
    assert_eq!(pool_release(p.0, c), S::POOL_OK);
    for (level, text) in seen.lock().expect("lock").iter() {
        assert!(
            (POOL_LOG_ERROR..=POOL_LOG_DEBUG).contains(level),
            "{level} {text}"
        );
    }
    assert_eq!(pool_set_logger(p.0, None, ptr::null_mut()), S::POOL_OK);
}

// ---------------------------------------------------------------------------
// The shipped artefacts: the header compiles cleanly as C and C++ (included
// twice), and the shared library exports only pool_* symbols.

fn tool_available(name: &str) -> bool {
    std::process::Command::new(name)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn header_compiles_as_c99_and_cxx17_included_twice() {
    let dir = std::env::temp_dir().join(format!("peepool-header-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let src = "#include \"peepool.h\"\n#include \"peepool.h\"\n\
               int use_it(void);\nint use_it(void) {\n\
               pool_conn_t c = {0}; pool_value_t v; pool_stats_t s; pool_t *p = NULL; pool_result_t *r = NULL;\n\
               (void)c; (void)v; (void)s; (void)p; (void)r;\n\
               return (int)POOL_OK + POOL_TYPE_TEXT + POOL_LOG_DEBUG + PEEPOOL_VERSION_MAJOR;\n}\n";
    let include = concat!(env!("CARGO_MANIFEST_DIR"), "/include");
    let mut ran = false;
    for (compiler, file, flags) in [
        (
            "gcc",
            "h.c",
            &["-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror"][..],
        ),
        (
            "g++",
            "h.cpp",
            &["-std=c++17", "-Wall", "-Wextra", "-Wpedantic", "-Werror"][..],
        ),
    ] {
        if !tool_available(compiler) {
            eprintln!("skipped: no {compiler}");
            continue;
        }
        let path = dir.join(file);
        std::fs::write(&path, src).expect("write");
        let out = std::process::Command::new(compiler)
            .args(flags)
            .arg("-I")
            .arg(include)
            .arg("-c")
            .arg(&path)
            .arg("-o")
            .arg(dir.join(format!("{file}.o")))
            .output()
            .expect("run compiler");
        assert!(
            out.status.success(),
            "{compiler}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        ran = true;
    }
    let _ = std::fs::remove_dir_all(&dir);
    if !ran {
        eprintln!("skipped: no C compiler");
    }
}

#[test]
fn shared_library_exports_only_pool_symbols() {
    // The test binary is target/<profile>/deps/ffi_abi-*; the library is in target/<profile>/.
    let exe = std::env::current_exe().expect("test binary path");
    let Some(lib) = exe
        .parent()
        .and_then(|d| d.parent())
        .map(|d| d.join("libpeepool.so"))
    else {
        return;
    };
    if !lib.exists() || !tool_available("nm") {
        eprintln!("skipped: no {} or no nm", lib.display());
        return;
    }
    let out = std::process::Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(&lib)
        .output()
        .expect("nm");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    let stray: Vec<&&str> = names.iter().filter(|n| !n.starts_with("pool_")).collect();
    assert!(stray.is_empty(), "symbols other than pool_*: {stray:?}");
    assert_eq!(names.len(), 37, "{names:?}");

    let out = std::process::Command::new("readelf")
        .arg("-d")
        .arg(&lib)
        .output();
    if let Ok(out) = out {
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("[libpeepool.so.0]"),
            "SONAME is libpeepool.so.0"
        );
    }
}

/// More pools alive at once than there are 12-bit tags: pools share a tag,
/// and a connection-only call still finds the pool that owns the handle.
#[test]
fn more_pools_than_tags_still_route_each_handle() {
    let db = std::env::temp_dir().join(format!("peepool-tags-{}.db", std::process::id()));
    let url = std::ffi::CString::new(format!("sqlite:{}", db.display())).unwrap();
    let mut pools = Vec::new();
    for _ in 0..4200 {
        let mut p: *mut pool_t = ptr::null_mut();
        assert_eq!(
            pool_new(url.as_ptr(), &mut p),
            S::POOL_OK,
            "{}",
            last_error()
        );
        pools.push(p);
    }
    // Check out from pools far apart, so some share a tag, and use each handle
    // through the calls that take only the handle.
    let picks = [0usize, 1, 4094, 4095, 4096, 4199];
    let mut conns = Vec::new();
    for &i in &picks {
        let mut c = pool_conn_t { id: 0 };
        assert_eq!(
            pool_connect(pools[i], &mut c),
            S::POOL_OK,
            "{}",
            last_error()
        );
        conns.push(c);
    }
    for (&i, &c) in picks.iter().zip(&conns) {
        assert_eq!(pool_begin(c), S::POOL_OK, "pool {i}: {}", last_error());
        assert_eq!(
            pool_execute(c, c"SELECT 1".as_ptr(), ptr::null(), 0, ptr::null_mut()),
            S::POOL_OK
        );
        assert_eq!(pool_rollback(c), S::POOL_OK);
        // Released to its own pool only.
        let other = pools[(i + 4095) % pools.len()];
        assert_eq!(pool_release(other, c), S::POOL_ERR_INVALID_HANDLE);
        assert_eq!(pool_release(pools[i], c), S::POOL_OK);
        assert_eq!(
            pool_execute(c, c"SELECT 1".as_ptr(), ptr::null(), 0, ptr::null_mut()),
            S::POOL_ERR_INVALID_HANDLE
        );
    }
    for p in pools {
        pool_free(p);
    }
    let _ = std::fs::remove_file(&db);
}

/// A connection given back clean is parked and the same thread's next
/// `pool_connect` takes it back without the pool's lock; one given back in
/// a transaction (opened by `BEGIN` text as well as by `pool_begin`) is
/// still rolled back, and a double or stale release is still refused.
#[test]
fn parked_connections_come_back_clean() {
    let Some(p) = memory_pool("?max_connections=1") else {
        return;
    };
    let c = connect(&p);
    exec(c, c"CREATE TABLE parked (i INTEGER)", &[]);
    assert_eq!(pool_release(p.0, c), S::POOL_OK);
    assert_eq!(
        pool_release(p.0, c),
        S::POOL_ERR_INVALID_HANDLE,
        "double release"
    );
    let s = stats(&p);
    assert_eq!((s.open, s.idle, s.in_use), (1, 1, 0), "{s:?}");

    for begin in [true, false] {
        let c = connect(&p);
        if begin {
            assert_eq!(pool_begin(c), S::POOL_OK, "{}", last_error());
        } else {
            exec(c, c"BEGIN", &[]);
        }
        exec(c, c"INSERT INTO parked VALUES (1)", &[]);
        assert_eq!(pool_release(p.0, c), S::POOL_OK);
        assert_eq!(
            pool_execute(c, c"SELECT 1".as_ptr(), ptr::null(), 0, ptr::null_mut()),
            S::POOL_ERR_INVALID_HANDLE,
            "a released handle"
        );
        let c = connect(&p);
        assert_eq!(count(c, "parked"), 0, "rolled back on release");
        assert_eq!(pool_release(p.0, c), S::POOL_OK);
    }
    let s = stats(&p);
    assert_eq!(
        (s.opened_total, s.checkouts, s.closed_total),
        (1, 5, 0),
        "{s:?}"
    );
}
