//! The pool's URL: scheme, driver part, and the pool options carried in the
//! query string (as pgxpool does). Pool options are removed before the rest
//! reaches the driver; every value is checked here, naming the option.

use std::time::Duration;

use crate::error::{Error, Result};

/// How long `connect` waits for a free connection when the pool is full.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WaitTimeout {
    /// Fail at once with `POOL_ERR_EXHAUSTED` (the seed's behaviour; `timeout` absent or 0).
    Immediate,
    /// Wait up to this long.
    Wait(Duration),
    /// Wait for ever (`timeout=inf`).
    Forever,
}

/// Options of the pool core.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolOptions {
    /// Most connections open at once (idle, in use or condemned); 0 = unlimited.
    pub max_connections: usize,
    /// Fewest connections open, kept by the maintenance thread.
    pub min_connections: usize,
    /// Maximum lifetime of a connection since it was opened.
    pub stale_timeout: Option<Duration>,
    /// Fraction in [0, 1): lifetime is `stale_timeout * (1 - U(0, jitter))`.
    pub stale_jitter: f64,
    /// Close a connection idle for longer than this (down to `min_connections`).
    pub idle_timeout: Option<Duration>,
    pub timeout: WaitTimeout,
    /// Check a connection's liveness when it is checked out.
    pub check_on_checkout: bool,
    /// Probe with a round trip only when idle longer than this.
    pub check_idle: Duration,
    /// Log a connection held longer than this, once.
    pub leak_threshold: Option<Duration>,
}

impl Default for PoolOptions {
    fn default() -> PoolOptions {
        PoolOptions {
            max_connections: 20,
            min_connections: 0,
            stale_timeout: None,
            stale_jitter: 0.0,
            idle_timeout: None,
            timeout: WaitTimeout::Immediate,
            check_on_checkout: true,
            check_idle: Duration::from_secs(1),
            leak_threshold: None,
        }
    }
}

impl PoolOptions {
    /// Whether any option needs the maintenance thread.
    pub fn needs_maintenance(&self) -> bool {
        self.min_connections > 0
            || self.stale_timeout.is_some()
            || self.idle_timeout.is_some()
            || self.leak_threshold.is_some()
    }
}

/// Options every backend applies when it opens a connection.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectOptions {
    /// Bounds the whole connect: TCP, TLS and authentication.
    pub connect_timeout: Option<Duration>,
    /// Statements run on every new connection; a failure discards it.
    pub init_sql: Option<String>,
    /// Prepared statements kept per connection; 0 = none (no named statement).
    pub statement_cache: usize,
}

impl Default for ConnectOptions {
    fn default() -> ConnectOptions {
        ConnectOptions {
            connect_timeout: None,
            init_sql: None,
            statement_cache: 64,
        }
    }
}

/// A URL split into what the core and the backend each need.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedUrl {
    /// Lower-cased scheme without the colon: `sqlite`, `postgres`, `mysql`, ...
    pub scheme: String,
    /// Everything after `scheme:` and before `?`, as written.
    pub rest: String,
    /// The driver's query parameters (pool options removed), percent-decoded, in order.
    pub params: Vec<(String, String)>,
    pub pool: PoolOptions,
    pub connect: ConnectOptions,
}

/// The option names the pool itself takes out of the query string.
pub const POOL_OPTION_NAMES: &[&str] = &[
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
];

impl ParsedUrl {
    pub fn parse(url: &str) -> Result<ParsedUrl> {
        let colon = url.find(':').ok_or_else(|| {
            Error::config(format!(
                "malformed URL '{}': no scheme (expected sqlite:, postgres:// or mysql://)",
                redact(url)
            ))
        })?;
        let scheme = url[..colon].to_ascii_lowercase();
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.')
        {
            return Err(Error::config(format!(
                "malformed URL '{}': bad scheme",
                redact(url)
            )));
        }
        let after = &url[colon + 1..];
        let (rest, query) = match after.find('?') {
            Some(q) => (&after[..q], Some(&after[q + 1..])),
            None => (after, None),
        };
        let mut parsed = ParsedUrl {
            scheme,
            rest: rest.to_string(),
            params: Vec::new(),
            pool: PoolOptions::default(),
            connect: ConnectOptions::default(),
        };
        let mut seen: Vec<String> = Vec::new();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let key = percent_decode(k)
                .map_err(|e| Error::config(format!("malformed URL: option name '{k}': {e}")))?;
            let value = percent_decode(v).map_err(|e| {
                Error::config(format!("malformed URL: value of option '{key}': {e}"))
            })?;
            if POOL_OPTION_NAMES.contains(&key.as_str()) {
                if seen.contains(&key) {
                    return Err(Error::config(format!("option '{key}' is given twice")));
                }
                seen.push(key.clone());
                parsed.apply(&key, &value)?;
            } else {
                parsed.params.push((key, value));
            }
        }
        if parsed.pool.max_connections != 0
            && parsed.pool.min_connections > parsed.pool.max_connections
        {
            return Err(Error::config(format!(
                "option 'min_connections' ({}) exceeds 'max_connections' ({})",
                parsed.pool.min_connections, parsed.pool.max_connections
            )));
        }
        Ok(parsed)
    }

    fn apply(&mut self, key: &str, value: &str) -> Result<()> {
        let p = &mut self.pool;
        let c = &mut self.connect;
        match key {
            "max_connections" => p.max_connections = parse_count(key, value)?,
            "min_connections" => p.min_connections = parse_count(key, value)?,
            "stale_timeout" => p.stale_timeout = parse_optional_seconds(key, value)?,
            "idle_timeout" => p.idle_timeout = parse_optional_seconds(key, value)?,
            "leak_threshold" => p.leak_threshold = parse_optional_seconds(key, value)?,
            "connect_timeout" => c.connect_timeout = parse_optional_seconds(key, value)?,
            "check_idle" => p.check_idle = parse_seconds(key, value)?,
            "stale_jitter" => {
                let j = parse_number(key, value)?;
                if !(0.0..1.0).contains(&j) {
                    return Err(Error::config(format!(
                        "option 'stale_jitter' must be in [0, 1), got '{value}'"
                    )));
                }
                p.stale_jitter = j;
            }
            "timeout" => {
                p.timeout =
                    if value.eq_ignore_ascii_case("inf") || value.eq_ignore_ascii_case("infinity") {
                        WaitTimeout::Forever
                    } else {
                        match parse_optional_seconds(key, value)? {
                            None => WaitTimeout::Immediate,
                            Some(d) => WaitTimeout::Wait(d),
                        }
                    }
            }
            "check_on_checkout" => p.check_on_checkout = parse_bool(key, value)?,
            "init_sql" => {
                c.init_sql = if value.trim().is_empty() {
                    None
                } else {
                    Some(value.to_string())
                }
            }
            "statement_cache" => c.statement_cache = parse_count(key, value)?,
            _ => unreachable!("POOL_OPTION_NAMES and apply disagree on '{key}'"),
        }
        Ok(())
    }

    /// The driver parameter with this name, if given.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Refuse any driver parameter not in `known`, naming it.
    pub fn check_params(&self, backend: &str, known: &[&str]) -> Result<()> {
        for (k, _) in &self.params {
            if !known.contains(&k.as_str()) {
                return Err(Error::config(format!(
                    "unknown option '{k}' for {backend} (pool options: {}; {backend} options: {})",
                    POOL_OPTION_NAMES.join(", "),
                    known.join(", ")
                )));
            }
        }
        Ok(())
    }
}

fn parse_number(key: &str, value: &str) -> Result<f64> {
    let v: f64 = value
        .trim()
        .parse()
        .map_err(|_| Error::config(format!("option '{key}' must be a number, got '{value}'")))?;
    if !v.is_finite() || v < 0.0 {
        return Err(Error::config(format!(
            "option '{key}' must be a finite number >= 0, got '{value}'"
        )));
    }
    Ok(v)
}

fn parse_count(key: &str, value: &str) -> Result<usize> {
    let v = value.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::config(format!(
            "option '{key}' must be a whole number >= 0, got '{value}'"
        )));
    }
    let n: u64 = v
        .parse()
        .map_err(|_| Error::config(format!("option '{key}' is out of range: '{value}'")))?;
    if n > 1_000_000 {
        return Err(Error::config(format!(
            "option '{key}' is out of range (at most 1000000): '{value}'"
        )));
    }
    Ok(n as usize)
}

/// Seconds, possibly fractional, at most about 31 years.
fn parse_seconds(key: &str, value: &str) -> Result<Duration> {
    let v = parse_number(key, value)?;
    if v > 1e9 {
        return Err(Error::config(format!(
            "option '{key}' is out of range (at most 1e9 seconds): '{value}'"
        )));
    }
    Ok(Duration::from_secs_f64(v))
}

/// Seconds, possibly fractional; 0 means "not set".
pub fn parse_optional_seconds(key: &str, value: &str) -> Result<Option<Duration>> {
    let d = parse_seconds(key, value)?;
    Ok(if d.is_zero() { None } else { Some(d) })
}

/// A boolean option: true/false/1/0/on/off/yes/no, any case.
pub fn parse_bool(key: &str, value: &str) -> Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "on" | "yes" => Ok(true),
        "false" | "0" | "off" | "no" => Ok(false),
        _ => Err(Error::config(format!(
            "option '{key}' must be true/false/1/0/on/off/yes/no, got '{value}'"
        ))),
    }
}

/// Decode `%XX` escapes and `+` (as a space, the form encoding) into UTF-8.
pub fn percent_decode(s: &str) -> std::result::Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).ok_or("truncated %-escape")?;
                let hex = std::str::from_utf8(hex).map_err(|_| "bad %-escape")?;
                let b =
                    u8::from_str_radix(hex, 16).map_err(|_| format!("bad %-escape '%{hex}'"))?;
                out.push(b);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| "%-escapes do not decode to UTF-8".to_string())
}

/// The URL with any password replaced by `****`, for messages and logs:
/// `scheme://user:secret@host` and `password=`/`pass=` query values.
pub fn redact(url: &str) -> String {
    // The query is everything after the first '?', as the parser reads it;
    // the authority exists only when the scheme's own ':' (the first one)
    // is followed by "//" before that. Each part is redacted on its own, so
    // hiding one can never change how the other is read (a "://" inside an
    // option's value is not an authority).
    let (head, query) = match url.find('?') {
        Some(q) => (&url[..q], Some(&url[q + 1..])),
        None => (url, None),
    };
    let mut out = head.to_string();
    if let Some(colon) = head.find(':') {
        if head[colon + 1..].starts_with("//") {
            let auth_start = colon + 3;
            let auth_end = head[auth_start..]
                .find('/')
                .map_or(head.len(), |i| auth_start + i);
            if let Some(at) = head[auth_start..auth_end].rfind('@') {
                let userinfo = &head[auth_start..auth_start + at];
                if let Some(c) = userinfo.find(':') {
                    out.replace_range(auth_start + c + 1..auth_start + at, "****");
                }
            }
        }
    }
    if let Some(query) = query {
        let redacted: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                // The parser decodes names, so `pass%77ord` is `password`.
                Some((k, _))
                    if is_secret_key(k)
                        || is_secret_key(&percent_decode(k).unwrap_or_default()) =>
                {
                    format!("{k}=****")
                }
                _ => pair.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&redacted.join("&"));
    }
    out
}

/// Whether a driver parameter carries a secret that must never be printed.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.contains("password") || k == "pass" || k == "pwd" || k == "sslpassword"
}

/// Remove every occurrence of `secret` from `message` (drivers sometimes echo
/// what they were given).
pub fn scrub(message: &str, secret: Option<&str>) -> String {
    match secret {
        Some(s) if !s.is_empty() => message.replace(s, "****"),
        _ => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_options_are_taken_out_and_checked() {
        let p = ParsedUrl::parse("postgres://app@localhost/app?max_connections=32&stale_timeout=300&timeout=5&sslmode=disable").unwrap();
        assert_eq!(p.scheme, "postgres");
        assert_eq!(p.rest, "//app@localhost/app");
        assert_eq!(p.pool.max_connections, 32);
        assert_eq!(p.pool.stale_timeout, Some(Duration::from_secs(300)));
        assert_eq!(p.pool.timeout, WaitTimeout::Wait(Duration::from_secs(5)));
        assert_eq!(
            p.params,
            vec![("sslmode".to_string(), "disable".to_string())]
        );
    }

    #[test]
    fn timeout_forms() {
        let t = |v: &str| {
            ParsedUrl::parse(&format!("sqlite::memory:?timeout={v}")).map(|p| p.pool.timeout)
        };
        assert_eq!(t("0").unwrap(), WaitTimeout::Immediate);
        assert_eq!(t("inf").unwrap(), WaitTimeout::Forever);
        assert_eq!(
            t("0.25").unwrap(),
            WaitTimeout::Wait(Duration::from_millis(250))
        );
        assert!(t("-1").is_err());
        assert!(t("nan").is_err());
        assert!(t("abc").is_err());
    }

    #[test]
    fn bad_values_name_the_option() {
        for (url, name) in [
            ("sqlite:x.db?max_connections=-1", "max_connections"),
            ("sqlite:x.db?stale_jitter=1", "stale_jitter"),
            ("sqlite:x.db?check_on_checkout=maybe", "check_on_checkout"),
            (
                "sqlite:x.db?max_connections=2&min_connections=3",
                "min_connections",
            ),
            ("sqlite:x.db?timeout=1&timeout=2", "timeout"),
        ] {
            let e = ParsedUrl::parse(url).unwrap_err();
            assert_eq!(e.status, crate::Status::POOL_ERR_CONFIG);
            assert!(e.message.contains(name), "{url}: {}", e.message);
        }
    }

    #[test]
    fn redact_hides_passwords() {
        assert_eq!(
            redact("postgres://u:s3cret@h:5/db?x=1"),
            "postgres://u:****@h:5/db?x=1"
        );
        assert_eq!(
            redact("mysql://h/db?password=s3cret&a=b"),
            "mysql://h/db?password=****&a=b"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        // Found by the fuzz target: a percent-encoded name is still a password.
        assert_eq!(
            redact("localhost/db?pass%77ord=s3cret"),
            "localhost/db?pass%77ord=****"
        );
        assert_eq!(redact("postgres://u:p@ss@h/db"), "postgres://u:****@h/db");
        // Found by the fuzz target: a "://" inside the query is no
        // authority; hiding a "userinfo" there renamed the next option so
        // that its password value went out.
        assert_eq!(
            redact("x:/p?a=s://u&k:zpassword@h=SECRET"),
            "x:/p?a=s://u&k:zpassword@h=****"
        );
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b+c").unwrap(), "a b c");
        assert!(percent_decode("%zz").is_err());
        assert!(percent_decode("%ff").is_err());
    }
}
