//! Client-side text forms of PostgreSQL's binary wire formats, byte for byte
//! what the server's output functions print (and so what libpq's
//! `PQgetvalue` gives) under the session settings in [`Settings`]. A value
//! this module cannot format exactly yields [`Cell::Server`], and the caller
//! asks the server for its text.

use std::borrow::Cow;

use postgres::types::{Kind, Type};

/// The session settings that change output functions.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The session's TimeZone is UTC (or an alias): timestamptz formats here.
    pub utc: bool,
    /// DateStyle is ISO (the default `ISO, MDY`).
    pub iso_dates: bool,
    /// IntervalStyle is `postgres`.
    pub postgres_intervals: bool,
    /// extra_float_digits > 0 (PostgreSQL 12+ shortest exact output).
    pub shortest_floats: bool,
    /// bytea_output is `hex`.
    pub hex_bytea: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            utc: true,
            iso_dates: true,
            postgres_intervals: true,
            shortest_floats: true,
            hex_bytea: true,
        }
    }
}

impl Settings {
    pub fn from_values(
        timezone: &str,
        datestyle: &str,
        intervalstyle: &str,
        extra_float_digits: &str,
        bytea_output: &str,
    ) -> Settings {
        const UTC: &[&str] = &[
            "utc",
            "etc/utc",
            "gmt",
            "etc/gmt",
            "universal",
            "etc/universal",
            "zulu",
            "etc/zulu",
            "uct",
            "etc/uct",
            "greenwich",
            "etc/greenwich",
            "etc/gmt+0",
            "etc/gmt-0",
            "etc/gmt0",
            "gmt0",
            "gmt+0",
            "gmt-0",
        ];
        Settings {
            utc: UTC.contains(&timezone.trim().to_ascii_lowercase().as_str()),
            iso_dates: datestyle.trim().to_ascii_uppercase().starts_with("ISO"),
            postgres_intervals: intervalstyle.trim().eq_ignore_ascii_case("postgres"),
            shortest_floats: extra_float_digits
                .trim()
                .parse::<i32>()
                .map(|d| d > 0)
                .unwrap_or(false),
            hex_bytea: bytea_output.trim().eq_ignore_ascii_case("hex"),
        }
    }
}

/// A decoded cell. Text that is the wire bytes themselves (text, json, enum
/// labels) is borrowed from the row, not copied.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    Int(i64),
    Double(f64, String),
    Numeric(String),
    Text(Cow<'a, [u8]>),
    /// Raw bytes and their `\x` text.
    Blob(&'a [u8], String),
    Other(Cow<'a, [u8]>),
    /// Only the server can print this value exactly.
    Server,
}

pub(crate) mod oid {
    pub(crate) const BOOL: u32 = 16;
    pub(crate) const BYTEA: u32 = 17;
    pub(crate) const CHAR: u32 = 18;
    pub(crate) const NAME: u32 = 19;
    pub(crate) const INT8: u32 = 20;
    pub(crate) const INT2: u32 = 21;
    pub(crate) const INT2VECTOR: u32 = 22;
    pub(crate) const INT4: u32 = 23;
    pub(crate) const TEXT: u32 = 25;
    pub(crate) const OID: u32 = 26;
    pub(crate) const OIDVECTOR: u32 = 30;
    pub(crate) const JSON: u32 = 114;
    pub(crate) const CIDR: u32 = 650;
    pub(crate) const FLOAT4: u32 = 700;
    pub(crate) const FLOAT8: u32 = 701;
    pub(crate) const UNKNOWN: u32 = 705;
    pub(crate) const MACADDR8: u32 = 774;
    pub(crate) const MACADDR: u32 = 829;
    pub(crate) const INET: u32 = 869;
    pub(crate) const BPCHAR: u32 = 1042;
    pub(crate) const VARCHAR: u32 = 1043;
    pub(crate) const DATE: u32 = 1082;
    pub(crate) const TIME: u32 = 1083;
    pub(crate) const TIMESTAMP: u32 = 1114;
    pub(crate) const TIMESTAMPTZ: u32 = 1184;
    pub(crate) const INTERVAL: u32 = 1186;
    pub(crate) const TIMETZ: u32 = 1266;
    pub(crate) const BIT: u32 = 1560;
    pub(crate) const VARBIT: u32 = 1562;
    pub(crate) const NUMERIC: u32 = 1700;
    pub(crate) const RECORD: u32 = 2249;
    pub(crate) const UUID: u32 = 2950;
    pub(crate) const JSONB: u32 = 3802;
    pub(crate) const VOID: u32 = 2278;
}

/// Decode one non-NULL value of type `ty`.
pub fn decode<'a>(ty: &Type, raw: &'a [u8], s: &Settings) -> Cell<'a> {
    match ty.kind() {
        Kind::Enum(_) => return Cell::Other(Cow::Borrowed(raw)),
        Kind::Domain(base) => return decode(base, raw, s),
        Kind::Array(elem) if ty.oid() != oid::INT2VECTOR && ty.oid() != oid::OIDVECTOR => {
            return match array_text(elem, raw, s) {
                Some(t) => Cell::Other(Cow::Owned(t.into_bytes())),
                None => Cell::Server,
            }
        }
        Kind::Composite(_) => {
            return match record_text(Some(ty), raw, s) {
                Some(t) => Cell::Other(Cow::Owned(t.into_bytes())),
                None => Cell::Server,
            }
        }
        _ => {}
    }
    decode_oid(ty.oid(), raw, s).unwrap_or(Cell::Server)
}

fn be_i16(b: &[u8], at: usize) -> Option<i16> {
    Some(i16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn be_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn be_i32(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn be_i64(b: &[u8], at: usize) -> Option<i64> {
    Some(i64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Decode by type OID alone (built-in types); `None` when unknown or malformed.
fn decode_oid<'a>(type_oid: u32, raw: &'a [u8], s: &Settings) -> Option<Cell<'a>> {
    let exact = |len: usize| if raw.len() == len { Some(()) } else { None };
    Some(match type_oid {
        // A function returning void (pg_sleep): libpq prints an empty string.
        oid::VOID => Cell::Other(Cow::Borrowed(b"")),
        oid::BOOL => {
            exact(1)?;
            Cell::Other(Cow::Borrowed(if raw[0] != 0 { b"t" } else { b"f" }))
        }
        oid::INT2 => {
            exact(2)?;
            Cell::Int(be_i16(raw, 0)? as i64)
        }
        oid::INT4 => {
            exact(4)?;
            Cell::Int(be_i32(raw, 0)? as i64)
        }
        oid::INT8 => {
            exact(8)?;
            Cell::Int(be_i64(raw, 0)?)
        }
        oid::OID => {
            exact(4)?;
            Cell::Int(be_u32(raw, 0)? as i64)
        }
        oid::FLOAT4 if s.shortest_floats => {
            exact(4)?;
            let v = f32::from_bits(be_u32(raw, 0)?);
            Cell::Double(v as f64, float4_text(v))
        }
        oid::FLOAT8 if s.shortest_floats => {
            exact(8)?;
            let v = f64::from_bits(be_i64(raw, 0)? as u64);
            Cell::Double(v, float8_text(v))
        }
        oid::NUMERIC => Cell::Numeric(numeric_text(raw)?),
        oid::TEXT | oid::VARCHAR | oid::BPCHAR | oid::NAME | oid::UNKNOWN => {
            Cell::Text(Cow::Borrowed(raw))
        }
        oid::CHAR => {
            exact(1)?;
            Cell::Text(Cow::Owned(char_text(raw[0]).into_bytes()))
        }
        oid::BYTEA if s.hex_bytea => Cell::Blob(raw, bytea_text(raw)),
        oid::JSON => Cell::Other(Cow::Borrowed(raw)),
        oid::JSONB => {
            if raw.first() != Some(&1) {
                return None;
            }
            Cell::Other(Cow::Borrowed(&raw[1..]))
        }
        oid::UUID => {
            exact(16)?;
            Cell::Other(Cow::Owned(uuid_text(raw).into_bytes()))
        }
        oid::DATE if s.iso_dates => {
            exact(4)?;
            Cell::Other(Cow::Owned(date_text(be_i32(raw, 0)?).into_bytes()))
        }
        oid::TIME => {
            exact(8)?;
            Cell::Other(Cow::Owned(time_text(be_i64(raw, 0)?).into_bytes()))
        }
        oid::TIMETZ => {
            exact(12)?;
            let mut t = time_text(be_i64(raw, 0)?);
            t.push_str(&tz_text(be_i32(raw, 8)?));
            Cell::Other(Cow::Owned(t.into_bytes()))
        }
        oid::TIMESTAMP if s.iso_dates => {
            exact(8)?;
            Cell::Other(Cow::Owned(
                timestamp_text(be_i64(raw, 0)?, None).into_bytes(),
            ))
        }
        oid::TIMESTAMPTZ if s.iso_dates && s.utc => {
            exact(8)?;
            Cell::Other(Cow::Owned(
                timestamp_text(be_i64(raw, 0)?, Some(0)).into_bytes(),
            ))
        }
        oid::INTERVAL if s.postgres_intervals => {
            exact(16)?;
            Cell::Other(Cow::Owned(
                interval_text(be_i64(raw, 0)?, be_i32(raw, 8)?, be_i32(raw, 12)?).into_bytes(),
            ))
        }
        oid::INET | oid::CIDR => Cell::Other(Cow::Owned(inet_text(raw)?.into_bytes())),
        oid::MACADDR => {
            exact(6)?;
            Cell::Other(Cow::Owned(mac_text(raw).into_bytes()))
        }
        oid::MACADDR8 => {
            exact(8)?;
            Cell::Other(Cow::Owned(mac_text(raw).into_bytes()))
        }
        oid::BIT | oid::VARBIT => Cell::Other(Cow::Owned(bit_text(raw)?.into_bytes())),
        oid::RECORD => Cell::Other(Cow::Owned(record_text(None, raw, s)?.into_bytes())),
        _ => return None,
    })
}

/// The text of a value as an element of an array or record; `None` when
/// only the server can print it.
fn element_text(ty: &Type, raw: &[u8], s: &Settings) -> Option<Vec<u8>> {
    match decode(ty, raw, s) {
        Cell::Int(i) => Some(i.to_string().into_bytes()),
        Cell::Double(_, t) | Cell::Numeric(t) | Cell::Blob(_, t) => Some(t.into_bytes()),
        Cell::Text(b) | Cell::Other(b) => Some(b.into_owned()),
        Cell::Server => None,
    }
}

/// float8out with extra_float_digits > 0: the shortest exact digits, fixed
/// notation for decimal exponents in [-4, 15), else `d.ddde+XX`.
pub fn float8_text(v: f64) -> String {
    float_text(v.is_nan(), v.is_infinite(), v < 0.0, format!("{v:e}"), 15)
}

/// float4out likewise, with fixed notation for exponents in [-4, 6).
pub fn float4_text(v: f32) -> String {
    float_text(v.is_nan(), v.is_infinite(), v < 0.0, format!("{v:e}"), 6)
}

fn float_text(nan: bool, inf: bool, negative: bool, sci: String, limit: i32) -> String {
    if nan {
        return "NaN".into();
    }
    if inf {
        return if negative {
            "-Infinity".into()
        } else {
            "Infinity".into()
        };
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "-1.5e-7", "1e20", "-0e0".
    let (sign, body) = match sci.strip_prefix('-') {
        Some(b) => ("-", b),
        None => ("", sci.as_str()),
    };
    let (mant, exp) = body.split_once('e').unwrap_or((body, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let mut out = String::from(sign);
    if (-4..limit).contains(&exp) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', int_len - digits.len()));
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
            out.push_str(&digits);
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push_str(&format!(
            "e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        ));
    }
    out
}

/// numeric_out from the binary form: base-10000 digits, weight, sign, dscale.
pub fn numeric_text(raw: &[u8]) -> Option<String> {
    let ndigits = be_i16(raw, 0)?;
    let weight = be_i16(raw, 2)? as i32;
    let sign = be_u16(raw, 4)?;
    let dscale = be_u16(raw, 6)? as i32;
    match sign {
        0xC000 => return Some("NaN".into()),
        0xD000 => return Some("Infinity".into()),
        0xF000 => return Some("-Infinity".into()),
        0x0000 | 0x4000 => {}
        _ => return None,
    }
    if ndigits < 0 || raw.len() != 8 + 2 * ndigits as usize {
        return None;
    }
    let mut digits = Vec::with_capacity(ndigits as usize);
    for i in 0..ndigits as usize {
        let d = be_i16(raw, 8 + 2 * i)?;
        if !(0..10000).contains(&d) {
            return None;
        }
        digits.push(d as i32);
    }
    let digit = |i: i32| {
        if i >= 0 && (i as usize) < digits.len() {
            digits[i as usize]
        } else {
            0
        }
    };
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        for i in 0..=weight {
            if i == 0 {
                out.push_str(&digit(i).to_string());
            } else {
                out.push_str(&format!("{:04}", digit(i)));
            }
        }
    }
    if dscale > 0 {
        out.push('.');
        let mut frac = String::new();
        let mut i = weight + 1;
        while (frac.len() as i32) < dscale {
            frac.push_str(&format!("{:04}", digit(i)));
            i += 1;
        }
        frac.truncate(dscale as usize);
        out.push_str(&frac);
    }
    Some(out)
}

fn char_text(c: u8) -> String {
    match c {
        0 => String::new(),
        c if c >= 0x80 => format!("\\{c:03o}"),
        c => (c as char).to_string(),
    }
}

pub fn bytea_text(raw: &[u8]) -> String {
    let mut s = String::with_capacity(2 + raw.len() * 2);
    s.push_str("\\x");
    for b in raw {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn uuid_text(raw: &[u8]) -> String {
    let mut s = String::with_capacity(36);
    for (i, b) in raw.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

const POSTGRES_EPOCH_JDATE: i64 = 2451545;
const USECS_PER_DAY: i64 = 86_400_000_000;

/// PostgreSQL's j2date: Julian day to (year, month, day).
fn j2date(jd: i64) -> (i32, u32, u32) {
    let mut julian = jd as u32;
    julian = julian.wrapping_add(32044);
    let mut quad = julian / 146097;
    let extra = (julian - quad * 146097) * 4 + 3;
    julian += 60 + quad * 3 + extra / 146097;
    quad = julian / 1461;
    julian -= quad * 1461;
    let mut y = (julian * 4 / 1461) as i32;
    julian = if y != 0 {
        (julian + 305) % 365
    } else {
        (julian + 306) % 366
    } + 123;
    y += (quad * 4) as i32;
    let year = y - 4800;
    let quad = julian * 2141 / 65536;
    let day = julian - 7834 * quad / 256;
    let month = (quad + 10) % 12 + 1;
    (year, month, day)
}

/// "YYYY-MM-DD" and whether the year is BC.
fn ymd_text(jd: i64) -> (String, bool) {
    let (y, m, d) = j2date(jd);
    let (year, bc) = if y > 0 { (y, false) } else { (-(y - 1), true) };
    (format!("{year:04}-{m:02}-{d:02}"), bc)
}

pub fn date_text(days: i32) -> String {
    match days {
        i32::MIN => "-infinity".into(),
        i32::MAX => "infinity".into(),
        d => {
            let (s, bc) = ymd_text(d as i64 + POSTGRES_EPOCH_JDATE);
            if bc {
                format!("{s} BC")
            } else {
                s
            }
        }
    }
}

/// "SS" or "SS.ffffff" without trailing zeros.
fn seconds_text(sec: i64, usec: i64) -> String {
    if usec == 0 {
        format!("{:02}", sec.abs())
    } else {
        let f = format!("{:06}", usec.abs());
        format!("{:02}.{}", sec.abs(), f.trim_end_matches('0'))
    }
}

fn hms_text(t: i64) -> String {
    let hour = t / 3_600_000_000;
    let rem = t - hour * 3_600_000_000;
    let min = rem / 60_000_000;
    let rem = rem - min * 60_000_000;
    let sec = rem / 1_000_000;
    let usec = rem - sec * 1_000_000;
    format!("{:02}:{:02}:{}", hour, min, seconds_text(sec, usec))
}

pub fn time_text(usec: i64) -> String {
    hms_text(usec)
}

/// A zone offset given in seconds west of Greenwich, as EncodeTimezone prints it.
pub fn tz_text(west: i32) -> String {
    let sign = if west <= 0 { '+' } else { '-' };
    let s = west.unsigned_abs();
    let (h, m, sec) = (s / 3600, (s / 60) % 60, s % 60);
    let mut out = format!("{sign}{h:02}");
    if m != 0 || sec != 0 {
        out.push_str(&format!(":{m:02}"));
    }
    if sec != 0 {
        out.push_str(&format!(":{sec:02}"));
    }
    out
}

/// timestamp_out / timestamptz_out (ISO), `zone` seconds west when with time zone.
pub fn timestamp_text(usec: i64, zone: Option<i32>) -> String {
    match usec {
        i64::MIN => return "-infinity".into(),
        i64::MAX => return "infinity".into(),
        _ => {}
    }
    let local = usec - zone.unwrap_or(0) as i64 * 1_000_000;
    let mut date = local / USECS_PER_DAY;
    let mut time = local - date * USECS_PER_DAY;
    if time < 0 {
        time += USECS_PER_DAY;
        date -= 1;
    }
    let (d, bc) = ymd_text(date + POSTGRES_EPOCH_JDATE);
    let mut out = format!("{d} {}", hms_text(time));
    if let Some(z) = zone {
        out.push_str(&tz_text(z));
    }
    if bc {
        out.push_str(" BC");
    }
    out
}

/// interval_out with IntervalStyle postgres.
pub fn interval_text(time: i64, days: i32, months: i32) -> String {
    let mut out = String::new();
    let mut is_zero = true;
    let mut is_before = false;
    let mut part = |out: &mut String, value: i64, unit: &str| {
        if value == 0 {
            return;
        }
        let plus = if is_before && value > 0 { "+" } else { "" };
        let space = if is_zero { "" } else { " " };
        let s = if value != 1 { "s" } else { "" };
        out.push_str(&format!("{space}{plus}{value} {unit}{s}"));
        is_before = value < 0;
        is_zero = false;
    };
    part(&mut out, (months / 12) as i64, "year");
    part(&mut out, (months % 12) as i64, "mon");
    part(&mut out, days as i64, "day");
    let hour = time / 3_600_000_000;
    let rem = time - hour * 3_600_000_000;
    let min = rem / 60_000_000;
    let rem = rem - min * 60_000_000;
    let sec = rem / 1_000_000;
    let usec = rem - sec * 1_000_000;
    if is_zero || time != 0 {
        let minus = hour < 0 || min < 0 || sec < 0 || usec < 0;
        out.push_str(&format!(
            "{}{}{:02}:{:02}:{}",
            if is_zero { "" } else { " " },
            if minus {
                "-"
            } else if is_before {
                "+"
            } else {
                ""
            },
            hour.unsigned_abs(),
            min.unsigned_abs(),
            seconds_text(sec, usec)
        ));
    }
    out
}

/// inet_out / cidr_out from the binary form (family, bits, is_cidr, nb, address).
pub fn inet_text(raw: &[u8]) -> Option<String> {
    let (family, bits, is_cidr, nb) = (
        *raw.first()?,
        *raw.get(1)? as u32,
        *raw.get(2)? != 0,
        *raw.get(3)? as usize,
    );
    let addr = raw.get(4..)?;
    if addr.len() != nb {
        return None;
    }
    let (mut s, max) = match (family, nb) {
        (2, 4) => (
            format!("{}.{}.{}.{}", addr[0], addr[1], addr[2], addr[3]),
            32,
        ),
        (3, 16) => (ipv6_text(addr), 128),
        _ => return None,
    };
    if bits != max || is_cidr {
        s.push_str(&format!("/{bits}"));
    }
    Some(s)
}

/// PostgreSQL's inet_net_ntop_ipv6 (BIND's algorithm, with embedded IPv4).
fn ipv6_text(a: &[u8]) -> String {
    let words: Vec<u16> = (0..8)
        .map(|i| u16::from_be_bytes([a[2 * i], a[2 * i + 1]]))
        .collect();
    let (mut best, mut cur): ((i32, i32), (i32, i32)) = ((-1, 0), (-1, 0));
    for (i, w) in words.iter().enumerate() {
        if *w == 0 {
            if cur.0 == -1 {
                cur = (i as i32, 1);
            } else {
                cur.1 += 1;
            }
        } else if cur.0 != -1 {
            if best.0 == -1 || cur.1 > best.1 {
                best = cur;
            }
            cur.0 = -1;
        }
    }
    if cur.0 != -1 && (best.0 == -1 || cur.1 > best.1) {
        best = cur;
    }
    if best.0 != -1 && best.1 < 2 {
        best.0 = -1;
    }
    let mut out = String::new();
    let mut i = 0i32;
    while i < 8 {
        if best.0 != -1 && i >= best.0 && i < best.0 + best.1 {
            if i == best.0 {
                out.push(':');
            }
            i += 1;
            continue;
        }
        if i != 0 {
            out.push(':');
        }
        if i == 6
            && best.0 == 0
            && (best.1 == 6
                || (best.1 == 7 && words[7] != 1)
                || (best.1 == 5 && words[5] == 0xffff))
        {
            out.push_str(&format!("{}.{}.{}.{}", a[12], a[13], a[14], a[15]));
            break;
        }
        out.push_str(&format!("{:x}", words[i as usize]));
        i += 1;
    }
    if best.0 != -1 && best.0 + best.1 == 8 {
        out.push(':');
    }
    out
}

fn mac_text(raw: &[u8]) -> String {
    raw.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn bit_text(raw: &[u8]) -> Option<String> {
    let len = be_i32(raw, 0)?;
    if len < 0 {
        return None;
    }
    let bytes = raw.get(4..)?;
    if bytes.len() != (len as usize).div_ceil(8) {
        return None;
    }
    Some(
        (0..len as usize)
            .map(|i| {
                if bytes[i / 8] & (0x80 >> (i % 8)) != 0 {
                    '1'
                } else {
                    '0'
                }
            })
            .collect(),
    )
}

/// array_out from array_send's form; element text by the element type.
fn array_text(elem: &Type, raw: &[u8], s: &Settings) -> Option<String> {
    let ndim = be_i32(raw, 0)?;
    if ndim == 0 {
        return Some("{}".into());
    }
    if !(1..=6).contains(&ndim) {
        return None;
    }
    let mut pos = 12;
    let mut dims = Vec::new();
    for _ in 0..ndim {
        let len = be_i32(raw, pos)?;
        let lb = be_i32(raw, pos + 4)?;
        if len < 0 {
            return None;
        }
        dims.push((len as usize, lb));
        pos += 8;
    }
    let delim = if elem.oid() == 603 { ';' } else { ',' };
    let mut out = String::new();
    if dims.iter().any(|&(_, lb)| lb != 1) {
        for &(len, lb) in &dims {
            out.push_str(&format!("[{}:{}]", lb, lb as i64 + len as i64 - 1));
        }
        out.push('=');
    }
    let total: usize = dims.iter().map(|d| d.0).product();
    let mut items = Vec::with_capacity(total);
    for _ in 0..total {
        let len = be_i32(raw, pos)?;
        pos += 4;
        if len < 0 {
            items.push(None);
        } else {
            let v = raw.get(pos..pos + len as usize)?;
            pos += len as usize;
            items.push(Some(element_text(elem, v, s)?));
        }
    }
    if pos != raw.len() {
        return None;
    }
    // Walk the elements in row-major order, opening and closing braces.
    let mut idx = vec![0usize; dims.len()];
    for _ in 0..dims.len() {
        out.push('{');
    }
    for (k, item) in items.iter().enumerate() {
        if k > 0 {
            // Close the dimensions that wrapped, then reopen them.
            let mut d = dims.len() - 1;
            idx[d] += 1;
            let mut closed = 0;
            while idx[d] == dims[d].0 && d > 0 {
                idx[d] = 0;
                d -= 1;
                idx[d] += 1;
                closed += 1;
            }
            for _ in 0..closed {
                out.push('}');
            }
            out.push(delim);
            for _ in 0..closed {
                out.push('{');
            }
        }
        match item {
            None => out.push_str("NULL"),
            Some(bytes) => {
                let text = String::from_utf8_lossy(bytes);
                let needs_quote = text.is_empty()
                    || text.eq_ignore_ascii_case("NULL")
                    || text.chars().any(|c| {
                        matches!(
                            c,
                            '"' | '\\' | '{' | '}' | ' ' | '\t' | '\n' | '\r' | '\x0c'
                        ) || c == delim
                    });
                if needs_quote {
                    out.push('"');
                    for c in text.chars() {
                        if c == '"' || c == '\\' {
                            out.push('\\');
                        }
                        out.push(c);
                    }
                    out.push('"');
                } else {
                    out.push_str(&text);
                }
            }
        }
    }
    for _ in 0..dims.len() {
        out.push('}');
    }
    Some(out)
}

/// record_out from record_send's form (column count, then oid, length, bytes).
fn record_text(ty: Option<&Type>, raw: &[u8], s: &Settings) -> Option<String> {
    let fields = match ty.map(|t| t.kind()) {
        Some(Kind::Composite(f)) => Some(f),
        _ => None,
    };
    let n = be_i32(raw, 0)?;
    if n < 0 {
        return None;
    }
    let mut pos = 4;
    let mut out = String::from("(");
    for i in 0..n as usize {
        let field_oid = be_u32(raw, pos)?;
        let len = be_i32(raw, pos + 4)?;
        pos += 8;
        if i > 0 {
            out.push(',');
        }
        if len < 0 {
            continue;
        }
        let v = raw.get(pos..pos + len as usize)?;
        pos += len as usize;
        let field_ty = match fields.and_then(|f| f.get(i)).map(|f| f.type_()) {
            Some(t) if t.oid() == field_oid => t.clone(),
            _ => Type::from_oid(field_oid)?,
        };
        let text = String::from_utf8(element_text(&field_ty, v, s)?).ok()?;
        let needs_quote = text.is_empty()
            || text.chars().any(|c| {
                matches!(
                    c,
                    '"' | '\\' | '(' | ')' | ',' | ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c'
                )
            });
        if needs_quote {
            out.push('"');
            for c in text.chars() {
                if c == '"' || c == '\\' {
                    out.push(c);
                }
                out.push(c);
            }
            out.push('"');
        } else {
            out.push_str(&text);
        }
    }
    if pos != raw.len() {
        return None;
    }
    out.push(')');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_like_postgres() {
        assert_eq!(float8_text(0.1), "0.1");
        assert_eq!(float8_text(1e20), "1e+20");
        assert_eq!(float8_text(1.5e-7), "1.5e-07");
        assert_eq!(float8_text(-0.0), "-0");
        assert_eq!(float8_text(1e15), "1e+15");
        assert_eq!(float8_text(1e14), "100000000000000");
        assert_eq!(float8_text(123.456), "123.456");
        assert_eq!(float8_text(0.0001), "0.0001");
        assert_eq!(float4_text(1e6), "1e+06");
        assert_eq!(float4_text(100000.0), "100000");
        assert_eq!(float8_text(f64::NEG_INFINITY), "-Infinity");
    }

    #[test]
    fn dates_and_intervals() {
        assert_eq!(date_text(0), "2000-01-01");
        assert_eq!(date_text(-730120), "0001-12-31 BC");
        assert_eq!(interval_text(0, 0, 0), "00:00:00");
        assert_eq!(
            interval_text(14_706_789_000, 3, 14),
            "1 year 2 mons 3 days 04:05:06.789"
        );
        assert_eq!(interval_text(-3_600_000_000, 1, 0), "1 day -01:00:00");
    }
}
