//! Fuzz target for the URL and option parser (issue 6).
//!
//! Input: raw bytes taken as the URL, or, after a first byte 0x01, bytes
//! that choose the pieces of a plausible URL (scheme, user, password,
//! host, port, database, options from the known names and tricky values),
//! which then go through the same checks.
//!
//! Each URL goes through `ParsedUrl::parse`, `redact`, the backend's own
//! parsing (`AnyBackend::from_url`) and the C entry point `pool_new` /
//! `pool_free`. Nothing connects: `pool_new` opens nothing itself, and
//! URLs asking for `min_connections` (which would open connections in the
//! background) or `sslrootcert` (a file to read) are kept from the backend
//! and `pool_new`. The process runs in a fresh temporary directory, so a
//! relative SQLite path could only ever land there.
//!
//! Invariants: nothing panics; bad input is `POOL_ERR_CONFIG` (invalid
//! UTF-8 is `POOL_ERR_INVALID_ARGUMENT`), never `POOL_ERR_INTERNAL`;
//! `pool_new` agrees with the Rust parse and gives its message; on a
//! `scheme://` URL `redact` is idempotent and, when the URL parses, the
//! redacted URL parses back to the same pool and connect options; a password (the userinfo's,
//! or the value of a `password`-like option, raw or percent-decoded, at
//! least 4 characters) never reaches an error message or the redacted URL:
//! a message that contains it must contain it just as well when the
//! password is replaced by other characters (so it came from elsewhere).
//! `scrub` removes the secret it is given.

#![no_main]

use std::ffi::{CStr, CString};
use std::ops::Range;
use std::sync::Once;

use libfuzzer_sys::arbitrary::{self, Unstructured};
use libfuzzer_sys::fuzz_target;
use peepool::config::{is_secret_key, percent_decode, redact, scrub, ParsedUrl};
use peepool::ffi::{pool_free, pool_last_error, pool_new, pool_stats, pool_stats_t, pool_t};
use peepool::{AnyBackend, Status};

const STRUCTURED: u8 = 0x01;

fuzz_target!(|data: &[u8]| {
    setup();
    match data.split_first() {
        Some((&STRUCTURED, rest)) => {
            let mut u = Unstructured::new(rest);
            if let Ok(url) = build(&mut u) {
                check_bytes(url.as_bytes());
            }
        }
        _ => check_bytes(data),
    }
});

fn setup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let dir = std::env::temp_dir().join(format!("peepool-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        std::env::set_current_dir(&dir).expect("chdir to the temporary directory");
    });
}

fn check_bytes(data: &[u8]) {
    // The C entry point sees the bytes up to the first NUL.
    let c_part = &data[..data.iter().position(|&b| b == 0).unwrap_or(data.len())];
    match std::str::from_utf8(c_part) {
        Ok(url) => {
            check_url(url);
            for r in secret_ranges(url) {
                check_secret(url, r);
            }
        }
        Err(_) => {
            let (status, _) = c_pool_new(c_part).expect("no NUL inside");
            assert_eq!(status, Status::POOL_ERR_INVALID_ARGUMENT, "non-UTF-8 URL");
        }
    }
    // The Rust API takes any string, NULs included.
    if c_part.len() < data.len() {
        if let Ok(url) = std::str::from_utf8(data) {
            let _ = outcome(url);
        }
    }
}

/// What every layer says about a URL.
struct Outcome {
    parsed: Result<ParsedUrl, peepool::Error>,
    /// `AnyBackend::from_url`, when the URL parsed and is safe to hand over.
    backend: Option<Result<(), peepool::Error>>,
    /// `pool_new`'s status and `pool_last_error()`, when safe to call.
    c: Option<(Status, String)>,
    redacted: String,
}

impl Outcome {
    /// Every text a user could see: error messages and the redacted URL.
    fn texts(&self) -> [String; 4] {
        [
            self.parsed
                .as_ref()
                .err()
                .map(|e| e.message.clone())
                .unwrap_or_default(),
            match &self.backend {
                Some(Err(e)) => e.message.clone(),
                _ => String::new(),
            },
            self.c.as_ref().map(|c| c.1.clone()).unwrap_or_default(),
            self.redacted.clone(),
        ]
    }
}

fn outcome(url: &str) -> Outcome {
    let parsed = ParsedUrl::parse(url);
    let safe = match &parsed {
        // Would open connections in the background, or read a file.
        Ok(p) => p.pool.min_connections == 0 && p.param("sslrootcert").is_none(),
        Err(_) => true,
    };
    let backend = match &parsed {
        Ok(p) if safe => Some(AnyBackend::from_url(p).map(drop)),
        _ => None,
    };
    let c = if safe && !url.contains('\0') {
        c_pool_new(url.as_bytes())
    } else {
        None
    };
    Outcome {
        parsed,
        backend,
        c,
        redacted: redact(url),
    }
}

/// `pool_new` then `pool_free`; the status and the thread's last error.
fn c_pool_new(url: &[u8]) -> Option<(Status, String)> {
    let url = CString::new(url).ok()?;
    let mut pool: *mut pool_t = std::ptr::null_mut();
    let status = pool_new(url.as_ptr(), &mut pool);
    // SAFETY: pool_last_error never returns NULL and its text is valid until
    // this thread's next call into the library.
    let message = unsafe { CStr::from_ptr(pool_last_error()) }
        .to_string_lossy()
        .into_owned();
    if status == Status::POOL_OK {
        assert!(!pool.is_null());
        let mut stats = pool_stats_t::default();
        assert_eq!(pool_stats(pool, &mut stats), Status::POOL_OK);
        assert_eq!(stats.open, 0, "pool_new opened a connection");
        pool_free(pool);
    } else {
        assert!(pool.is_null(), "out is NULL on failure");
    }
    Some((status, message))
}

fn check_url(url: &str) {
    let o = outcome(url);
    if let Err(e) = &o.parsed {
        assert_eq!(e.status, Status::POOL_ERR_CONFIG, "parse: {}", e.message);
    }
    if let Some(Err(e)) = &o.backend {
        assert_eq!(e.status, Status::POOL_ERR_CONFIG, "from_url: {}", e.message);
    }
    if let Some((status, message)) = &o.c {
        let want = match (&o.parsed, &o.backend) {
            (Err(e), _) | (_, Some(Err(e))) => Some(e),
            _ => None,
        };
        match want {
            Some(e) => {
                assert_eq!(*status, e.status, "pool_new and the Rust parse disagree");
                // A C string cannot hold a NUL: the library spells it \0.
                assert_eq!(
                    message,
                    &e.message.replace('\0', "\\0"),
                    "pool_new's message"
                );
            }
            None => assert_eq!(*status, Status::POOL_OK, "pool_new: {message}"),
        }
    }
    // On `scheme://...` URLs; elsewhere redact takes the first "://" it
    // sees (in a query value, say) for the authority, which is harmless.
    let authority = url.find(':').is_some_and(|i| {
        i > 0
            && url[..i]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
            && url[i + 1..].starts_with("//")
    });
    if authority {
        assert_eq!(redact(&o.redacted), o.redacted, "redact is idempotent");
    }
    if let Ok(p) = &o.parsed {
        if authority {
            let back = ParsedUrl::parse(&o.redacted).unwrap_or_else(|e| {
                panic!(
                    "redacted URL {:?} does not parse: {}",
                    o.redacted, e.message
                )
            });
            assert_eq!(back.scheme, p.scheme, "redacted scheme");
            assert_eq!(back.pool, p.pool, "redacted pool options");
            assert_eq!(back.connect, p.connect, "redacted connect options");
        }
    }
}

/// Where the URL holds a password: the userinfo's (`scheme://user:PASS@`,
/// as every backend reads it), and each value of an option whose name,
/// percent-decoded, is a secret's.
fn secret_ranges(url: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let Some(colon) = url.find(':') else {
        return out;
    };
    // The first '?' anywhere: the parser's query whenever the scheme parses
    // (a '?' before the first ':' is a bad scheme), and redact's always.
    let q = url.find('?');
    let rest_end = q.unwrap_or(url.len());
    if url[colon + 1..].starts_with("//") && q.is_none_or(|q| q > colon) {
        let start = colon + 3;
        let end = url[start..rest_end]
            .find('/')
            .map_or(rest_end, |i| start + i);
        if let Some(at) = url[start..end].rfind('@') {
            if let Some(c) = url[start..start + at].find(':') {
                out.push(start + c + 1..start + at);
            }
        }
    }
    if let Some(q) = q {
        let mut pos = q + 1;
        for pair in url[q + 1..].split('&') {
            if let Some(eq) = pair.find('=') {
                let key = percent_decode(&pair[..eq]).unwrap_or_else(|_| pair[..eq].to_string());
                if is_secret_key(&key) {
                    out.push(pos + eq + 1..pos + pair.len());
                }
            }
            pos += pair.len() + 1;
        }
    }
    out
}

/// A password at `r` must not be in any text the layers produce, unless
/// the same text still contains it with the password replaced.
fn check_secret(url: &str, r: Range<usize>) {
    let raw = &url[r.clone()];
    let decoded = percent_decode(raw).ok();
    // Shorter ones match ordinary words; `scrub`'s own "****" would
    // make a secret of stars look present.
    let secrets: Vec<&str> = [Some(raw), decoded.as_deref()]
        .into_iter()
        .flatten()
        .filter(|s| s.chars().count() >= 4 && !s.contains('*'))
        .collect();
    if secrets.is_empty() {
        return;
    }
    for s in &secrets {
        let m = format!("driver said: bad password {s} for user");
        assert!(!scrub(&m, Some(s)).contains(s), "scrub left {s:?}");
    }
    let filler = ['Q', 'Z', 'X', 'K', 'J']
        .into_iter()
        .find(|c| !url.contains(*c))
        .unwrap_or('Q');
    let other = format!(
        "{}{}{}",
        &url[..r.start],
        filler.to_string().repeat(raw.chars().count()),
        &url[r.end..]
    );
    let with = outcome(url).texts();
    let without = outcome(&other).texts();
    for (a, b) in with.iter().zip(&without) {
        for s in &secrets {
            assert!(
                !a.contains(s) || b.contains(s),
                "password {s:?} of URL {url:?} leaked into {a:?}"
            );
        }
    }
}

// ---- structured inputs: plausible URLs from the fuzzer's choices ----

const SCHEMES: &[&str] = &[
    "sqlite",
    "sqlite3",
    "postgres",
    "postgresql",
    "mysql",
    "mariadb",
    "PostgreSQL",
    "MySQL",
    "http",
    "",
    "sq lite",
];

const KEYS: &[&str] = &[
    "max_connections",
    "min_connections",
    "stale_timeout",
    "stale_jitter",
    "idle_timeout",
    "timeout",
    "connect_timeout",
    "check_on_checkout",
    "check_idle",
    "init_sql",
    "statement_cache",
    "leak_threshold",
    "password",
    "PASSWORD",
    "pass",
    "pwd",
    "sslpassword",
    "pass%77ord",
    "password%00",
    "sslmode",
    "application_name",
    "host",
    "hostaddr",
    "port",
    "user",
    "dbname",
    "database",
    "options",
    "target_session_attrs",
    "keepalives",
    "busy_timeout",
    "mode",
    "cache",
    "vfs",
    "immutable",
    "socket",
    "prefer_socket",
    "ssl-mode",
    "compress",
    "tcp_nodelay",
    "read_timeout",
    "unknown_option",
    "",
];

const VALUES: &[&str] = &[
    "0",
    "1",
    "-1",
    "0.5",
    "0.999999",
    "1e9",
    "1e10",
    "1000000",
    "1000001",
    "18446744073709551616",
    "inf",
    "Infinity",
    "-inf",
    "nan",
    "NaN",
    "true",
    "false",
    "on",
    "yes",
    "maybe",
    "",
    "%zz",
    "%ff",
    "%",
    "+",
    "%2B",
    "memory",
    "ro",
    "disable",
    "prefer",
    "require",
    "verify-full",
    "SELECT 1; SELECT 2",
    "s3cr3t-P%40ss",
];

const HOSTS: &[&str] = &[
    "localhost",
    "127.0.0.1",
    "[::1]",
    "[fe80::1%25eth0]",
    "[::1",
    "::1",
    "%2Fvar%2Frun%2Fpostgresql",
    "/var/run/mysqld",
    "h1,h2",
    "",
    "xn--bcher-kva.example",
];

/// A piece of text: one of `known`, or the fuzzer's own, percent-encoded
/// or as it is.
fn piece(u: &mut Unstructured<'_>, known: &[&str]) -> arbitrary::Result<String> {
    let s = if u.ratio(1, 2)? {
        (*u.choose(known)?).to_string()
    } else {
        let len = u.int_in_range(0..=24)?;
        let mut s = String::new();
        for _ in 0..len {
            s.push(u.arbitrary::<char>()?);
        }
        s
    };
    Ok(if u.ratio(1, 3)? { encode(&s) } else { s })
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn build(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    let scheme = *u.choose(SCHEMES)?;
    let mut url = format!("{scheme}:");
    if scheme.starts_with("sqlite") && u.ratio(3, 4)? {
        url += &piece(
            u,
            &[
                ":memory:",
                "rel/x.db",
                "/abs/x.db",
                "///abs/x.db",
                "x.db",
                "",
            ],
        )?;
    } else {
        url += "//";
        if u.arbitrary()? {
            url += &piece(u, &["postgres", "root", "app", "u:v", "@"])?;
            if u.arbitrary()? {
                url.push(':');
                url += &piece(u, &["s3cr3t-passw0rd", "p@ss:w/rd?x&y", "%zzpassword"])?;
            }
            url.push('@');
        }
        url += &piece(u, HOSTS)?;
        if u.arbitrary()? {
            url.push(':');
            url += &piece(u, &["5432", "3306", "0", "65535", "65536", "-1", "x"])?;
        }
        if u.arbitrary()? {
            url.push('/');
            url += &piece(u, &["test", "", "a/b", "db?x"])?;
        }
    }
    let n = u.int_in_range(0..=6)?;
    for i in 0..n {
        url.push(if i == 0 { '?' } else { '&' });
        url += &piece(u, KEYS)?;
        if u.ratio(9, 10)? {
            url.push('=');
            url += &piece(u, VALUES)?;
        }
    }
    Ok(url)
}
