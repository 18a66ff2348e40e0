//! Parameters going in and materialised results coming out, shared by every
//! backend. A [`ResultSet`] is built once by a backend through
//! [`ResultBuilder`] and then only read, like libpq's `PGresult`: every cell
//! keeps its text form (the bytes the database's own client library prints),
//! NUL-terminated, plus the native value where there is one.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// A statement parameter, borrowed from the caller for the call's duration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Null,
    Int(i64),
    Double(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

/// What a cell natively holds. `Numeric` is an exact decimal kept as text
/// (PostgreSQL numeric, MySQL decimal); `Other` is any type read as text only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Null = 0,
    Int = 1,
    Double = 2,
    Text = 3,
    Blob = 4,
    Numeric = 5,
    Other = 6,
}

#[derive(Debug, Clone, Copy)]
struct Cell {
    kind: Kind,
    /// i64 for Int, f64 bits for Double.
    num: u64,
    /// Text form: offset and length in `data` (a NUL follows).
    text: (usize, usize),
    /// Binary form (Blob only, when it differs from the text form).
    bin: Option<(usize, usize)>,
}

/// A materialised query result: column names and rows of cells.
///
/// Three allocations however many cells: `cells` (the column names first,
/// then every cell) and `data` (every name's and cell's bytes, each followed
/// by a NUL), plus the box the C side gets.
#[derive(Debug, Clone, Default)]
pub struct ResultSet {
    /// The first `ncols` entries are the column names (text: the name;
    /// bin: the name without NUL bytes, when it has some, for the C ABI).
    cells: Vec<Cell>,
    ncols: usize,
    nrows: usize,
    data: Vec<u8>,
    rows_affected: u64,
    /// The [`Header`] the names were copied from (`Header::id`, 0 for
    /// none) and the length of their bytes at the start of `data`: a
    /// recycled result keeps them, and the next result with that header
    /// reuses them instead of copying them again.
    header_id: u64,
    header_len: usize,
}

/// Results up to this size give their memory back for the thread's next
/// result (see `SPARE`); bigger ones are freed.
const SPARE_MAX_BYTES: usize = 4096;

thread_local! {
    /// The box and buffers of the last small result freed through
    /// [`ResultSet::recycle`] on this thread, reused by the next result
    /// built and boxed here: a C query loop then allocates nothing.
    static SPARE: std::cell::Cell<Option<Box<ResultSet>>> = const { std::cell::Cell::new(None) };
}

impl ResultSet {
    /// Free a boxed result, keeping a small one's memory (and its header's
    /// names) for the thread's next result.
    pub fn recycle(mut b: Box<ResultSet>) {
        let small = b.data.capacity() <= SPARE_MAX_BYTES
            && b.cells.capacity() * std::mem::size_of::<Cell>() <= SPARE_MAX_BYTES;
        if small {
            if b.header_id == 0 {
                b.cells.clear();
                b.data.clear();
            } else {
                b.cells.truncate(b.ncols);
                b.data.truncate(b.header_len);
            }
            let _ = SPARE.try_with(|s| s.set(Some(b)));
        }
    }

    /// The thread's spare result (its buffers' contents as `recycle` left
    /// them), or a new empty one.
    fn spare() -> Box<ResultSet> {
        SPARE
            .try_with(|s| s.take())
            .ok()
            .flatten()
            .unwrap_or_default()
    }
}

/// The column names of a statement laid out as a result's first cells and
/// bytes, kept by a backend with a prepared statement it runs again and
/// again, so that each result copies them instead of building them (or,
/// when the thread's spare result still holds them, not even that).
#[derive(Debug, Clone)]
pub struct Header {
    /// Unique in the process (never 0): equal ids, equal names.
    id: u64,
    cells: Vec<Cell>,
    data: Vec<u8>,
}

/// Builds a [`ResultSet`] row by row: call a `push_*` once per column, then
/// `end_row`.
pub struct ResultBuilder {
    set: Box<ResultSet>,
    in_row: usize,
}

impl ResultBuilder {
    pub fn new(columns: Vec<String>) -> ResultBuilder {
        Self::with_names(columns.iter().map(|c| c.as_str()))
    }

    /// A builder whose column names are `header`'s: two copies, however
    /// many columns, and none when the thread's spare result was the last
    /// one built with this header.
    pub fn with_header(header: &Header) -> ResultBuilder {
        let mut set = ResultSet::spare();
        if set.header_id == header.id {
            // `recycle` left exactly these names and nothing after them.
            debug_assert_eq!(
                (set.cells.len(), set.data.len()),
                (header.cells.len(), header.data.len())
            );
        } else {
            Self::start(&mut set, header.cells.len(), &header.cells, &header.data);
            set.header_id = header.id;
            set.header_len = header.data.len();
        }
        Self::on(set)
    }

    /// A builder for `ncols` columns on the thread's spare result, holding
    /// `cells` and `data` already (no header).
    fn starting_with(ncols: usize, cells: &[Cell], data: &[u8]) -> ResultBuilder {
        let mut set = ResultSet::spare();
        Self::start(&mut set, ncols, cells, data);
        set.header_id = 0;
        set.header_len = 0;
        Self::on(set)
    }

    /// A builder on `set`, whose names are in place: no rows yet.
    fn on(mut set: Box<ResultSet>) -> ResultBuilder {
        set.nrows = 0;
        set.rows_affected = 0;
        ResultBuilder { set, in_row: 0 }
    }

    /// Empty `set`'s buffers and put `cells` and `data` in them, with room
    /// for the rest of the names and a row.
    fn start(set: &mut ResultSet, ncols: usize, cells: &[Cell], data: &[u8]) {
        set.cells.clear();
        set.cells.reserve(ncols * 2);
        set.cells.extend_from_slice(cells);
        set.data.clear();
        set.data.reserve(data.len() + ncols * 8 + 32);
        set.data.extend_from_slice(data);
        set.ncols = ncols;
    }

    /// The column names of a builder that has no row yet, for
    /// [`ResultBuilder::with_header`].
    pub fn header(&self) -> Header {
        debug_assert_eq!(self.set.cells.len(), self.set.ncols, "rows already pushed");
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Header {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            cells: self.set.cells[..self.set.ncols].to_vec(),
            data: self.set.data.clone(),
        }
    }

    /// Without an owned `Vec<String>` of names: each is copied once, into
    /// the result's byte arena.
    pub fn with_names<'a>(names: impl ExactSizeIterator<Item = &'a str>) -> ResultBuilder {
        let mut b = Self::starting_with(names.len(), &[], &[]);
        for name in names {
            let text = b.store(name.as_bytes());
            let bin = if name.as_bytes().contains(&0) {
                let clean: Vec<u8> = name.bytes().filter(|&c| c != 0).collect();
                Some(b.store(&clean))
            } else {
                None
            };
            b.set.cells.push(Cell {
                kind: Kind::Text,
                num: 0,
                text,
                bin,
            });
        }
        b
    }

    fn store(&mut self, bytes: &[u8]) -> (usize, usize) {
        let off = self.set.data.len();
        self.set.data.extend_from_slice(bytes);
        self.set.data.push(0);
        (off, bytes.len())
    }

    fn push(&mut self, kind: Kind, num: u64, text: &[u8], bin: Option<&[u8]>) {
        let text = self.store(text);
        let bin = bin.map(|b| self.store(b));
        self.set.cells.push(Cell {
            kind,
            num,
            text,
            bin,
        });
        self.in_row += 1;
    }

    pub fn push_null(&mut self) {
        self.push(Kind::Null, 0, b"", None);
    }

    /// An integer; its text form is the decimal number.
    pub fn push_int(&mut self, v: i64) {
        // Formatted on the stack: no String per cell.
        self.push(
            Kind::Int,
            v as u64,
            crate::backend::int_text(v, &mut [0; 20]),
            None,
        );
    }

    /// A floating value with the text form the database's client prints.
    pub fn push_double(&mut self, v: f64, text: &str) {
        self.push(Kind::Double, v.to_bits(), text.as_bytes(), None);
    }

    pub fn push_text(&mut self, text: &[u8]) {
        self.push(Kind::Text, 0, text, None);
    }

    /// An exact decimal in text form (numeric, decimal, unsigned > i64::MAX).
    pub fn push_numeric(&mut self, text: &str) {
        self.push(Kind::Numeric, 0, text.as_bytes(), None);
    }

    /// Binary data: `bytes` is what the blob getter gives, `text` what the
    /// text getter gives (PostgreSQL bytea prints as `\x...`; SQLite and
    /// MariaDB print the bytes themselves, so pass `None`).
    pub fn push_blob(&mut self, bytes: &[u8], text: Option<&[u8]>) {
        match text {
            None => self.push(Kind::Blob, 0, bytes, None),
            Some(t) => self.push(Kind::Blob, 0, t, Some(bytes)),
        }
    }

    /// Any other type, known only by its text form.
    pub fn push_other(&mut self, text: &[u8]) {
        self.push(Kind::Other, 0, text, None);
    }

    pub fn end_row(&mut self) {
        debug_assert_eq!(
            self.in_row, self.set.ncols,
            "row has the wrong number of cells"
        );
        self.in_row = 0;
        self.set.nrows += 1;
    }

    pub fn set_rows_affected(&mut self, n: u64) {
        self.set.rows_affected = n;
    }

    pub fn finish(self) -> Box<ResultSet> {
        self.set
    }
}

impl ResultSet {
    pub fn rows(&self) -> usize {
        // Without columns a row has no cell to read: no rows.
        if self.ncols == 0 {
            0
        } else {
            self.nrows
        }
    }

    pub fn columns(&self) -> usize {
        self.ncols
    }

    pub fn rows_affected(&self) -> u64 {
        self.rows_affected
    }

    fn name_cell(&self, col: usize) -> Result<&Cell> {
        if col >= self.ncols {
            return Err(Error::invalid_argument(format!(
                "column {col} out of range (result has {} columns)",
                self.ncols
            )));
        }
        Ok(&self.cells[col])
    }

    pub fn column_name(&self, col: usize) -> Result<&str> {
        let c = self.name_cell(col)?;
        // Stored from a &str by `with_names`.
        Ok(std::str::from_utf8(self.slice(c.text)).unwrap_or(""))
    }

    /// The column name as a NUL-terminated string (NUL bytes inside the
    /// name dropped), for the C ABI.
    pub fn column_name_cstr(&self, col: usize) -> Result<&std::ffi::CStr> {
        let c = self.name_cell(col)?;
        let (off, len) = c.bin.unwrap_or(c.text);
        Ok(std::ffi::CStr::from_bytes_with_nul(&self.data[off..off + len + 1]).unwrap_or_default())
    }

    fn cell(&self, row: usize, col: usize) -> Result<&Cell> {
        let (rows, cols) = (self.rows(), self.columns());
        if row >= rows || col >= cols {
            return Err(Error::invalid_argument(format!(
                "cell ({row}, {col}) out of range (result has {rows} rows and {cols} columns)"
            )));
        }
        Ok(&self.cells[(row + 1) * cols + col])
    }

    pub fn kind(&self, row: usize, col: usize) -> Result<Kind> {
        Ok(self.cell(row, col)?.kind)
    }

    pub fn is_null(&self, row: usize, col: usize) -> Result<bool> {
        Ok(self.cell(row, col)?.kind == Kind::Null)
    }

    fn slice(&self, (off, len): (usize, usize)) -> &[u8] {
        &self.data[off..off + len]
    }

    fn null_error(&self, row: usize, col: usize, what: &str) -> Error {
        Error::conversion(format!(
            "cell ({row}, {col}) is NULL, which has no {what} value"
        ))
    }

    /// The text form: the bytes the database's client library prints, with
    /// a NUL after them (`text_with_nul`).
    pub fn text(&self, row: usize, col: usize) -> Result<&[u8]> {
        let c = self.cell(row, col)?;
        if c.kind == Kind::Null {
            return Err(self.null_error(row, col, "text"));
        }
        Ok(self.slice(c.text))
    }

    /// The text form followed by its NUL terminator.
    pub fn text_with_nul(&self, row: usize, col: usize) -> Result<&[u8]> {
        let c = self.cell(row, col)?;
        if c.kind == Kind::Null {
            return Err(self.null_error(row, col, "text"));
        }
        Ok(&self.data[c.text.0..c.text.0 + c.text.1 + 1])
    }

    /// The raw bytes of a binary value; for any other kind, its text form.
    pub fn blob(&self, row: usize, col: usize) -> Result<&[u8]> {
        let c = self.cell(row, col)?;
        match (c.kind, c.bin) {
            (Kind::Null, _) => Err(self.null_error(row, col, "blob")),
            (_, Some(bin)) => Ok(self.slice(bin)),
            (_, None) => Ok(self.slice(c.text)),
        }
    }

    /// Integers of any width, and numeric or text that hold an exact integer
    /// in range.
    pub fn int64(&self, row: usize, col: usize) -> Result<i64> {
        let c = self.cell(row, col)?;
        match c.kind {
            Kind::Null => Err(self.null_error(row, col, "integer")),
            Kind::Int => Ok(c.num as i64),
            Kind::Double | Kind::Blob => Err(self.conversion_error(row, col, c, "an integer")),
            Kind::Text | Kind::Numeric | Kind::Other => {
                let s = std::str::from_utf8(self.slice(c.text))
                    .map_err(|_| self.conversion_error(row, col, c, "an integer"))?;
                parse_exact_int(s).ok_or_else(|| self.conversion_error(row, col, c, "an integer"))
            }
        }
    }

    /// Floating values, integers, and numeric or text that hold a number.
    pub fn double(&self, row: usize, col: usize) -> Result<f64> {
        let c = self.cell(row, col)?;
        match c.kind {
            Kind::Null => Err(self.null_error(row, col, "floating")),
            Kind::Double => Ok(f64::from_bits(c.num)),
            Kind::Int => Ok(c.num as i64 as f64),
            Kind::Blob => Err(self.conversion_error(row, col, c, "a floating value")),
            Kind::Text | Kind::Numeric | Kind::Other => {
                let s = std::str::from_utf8(self.slice(c.text))
                    .map_err(|_| self.conversion_error(row, col, c, "a floating value"))?;
                parse_double(s)
                    .ok_or_else(|| self.conversion_error(row, col, c, "a floating value"))
            }
        }
    }

    fn conversion_error(&self, row: usize, col: usize, c: &Cell, what: &str) -> Error {
        let text = String::from_utf8_lossy(self.slice(c.text));
        let shown: String = text.chars().take(40).collect();
        let ellipsis = if text.chars().count() > 40 { "..." } else { "" };
        Error::conversion(format!(
            "cell ({row}, {col}) of kind {:?} holding '{shown}{ellipsis}' cannot be read as {what}",
            c.kind
        ))
    }
}

/// An exact integer: optional sign, digits, optionally a fraction of zeros
/// (`12.000` from a numeric column) and nothing else.
fn parse_exact_int(s: &str) -> Option<i64> {
    let (int_part, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    if let Some(f) = frac {
        if !f.bytes().all(|b| b == b'0') {
            return None;
        }
    }
    let digits = int_part.strip_prefix(['-', '+']).unwrap_or(int_part);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    int_part.parse::<i64>().ok()
}

fn parse_double(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "Infinity" | "inf" => Some(f64::INFINITY),
        "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
        _ => {
            let ok = !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'));
            if ok {
                s.parse::<f64>().ok()
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Box<ResultSet> {
        let mut b = ResultBuilder::new(vec!["a".into(), "b".into()]);
        b.push_int(-42);
        b.push_text(b"12.000");
        b.end_row();
        b.push_null();
        b.push_blob(b"\x00\x01", Some(b"\\x0001"));
        b.end_row();
        b.finish()
    }

    #[test]
    fn getters_convert_and_refuse() {
        let r = sample();
        assert_eq!((r.rows(), r.columns()), (2, 2));
        assert_eq!(r.int64(0, 0).unwrap(), -42);
        assert_eq!(r.text(0, 0).unwrap(), b"-42");
        assert_eq!(r.text_with_nul(0, 0).unwrap(), b"-42\0");
        assert_eq!(r.int64(0, 1).unwrap(), 12);
        assert_eq!(r.double(0, 1).unwrap(), 12.0);
        assert_eq!(
            r.int64(1, 0).unwrap_err().status,
            crate::Status::POOL_ERR_CONVERSION
        );
        assert!(r.is_null(1, 0).unwrap());
        assert_eq!(r.blob(1, 1).unwrap(), b"\x00\x01");
        assert_eq!(r.text(1, 1).unwrap(), b"\\x0001");
        assert_eq!(
            r.text(2, 0).unwrap_err().status,
            crate::Status::POOL_ERR_INVALID_ARGUMENT
        );
        assert_eq!(r.column_name(1).unwrap(), "b");
        assert!(r.column_name(2).is_err());
    }

    fn names(r: &ResultSet) -> Vec<&str> {
        (0..r.columns())
            .map(|c| r.column_name(c).unwrap())
            .collect()
    }

    /// A recycled result keeps its header's names for the next result with
    /// that header; any other builder on the spare starts afresh.
    #[test]
    fn recycled_header_names_are_reused_only_for_their_header() {
        let ha = ResultBuilder::new(vec!["a".into(), "bb".into()]).header();
        let hb = ResultBuilder::new(vec!["ccc".into()]).header();
        let build = |h: &Header, v: i64| {
            let mut b = ResultBuilder::with_header(h);
            for _ in 0..h.cells.len() {
                b.push_int(v);
            }
            b.end_row();
            b.finish()
        };
        for round in 0..3 {
            let r = build(&ha, round);
            assert_eq!(names(&r), ["a", "bb"]);
            assert_eq!((r.rows(), r.int64(0, 1).unwrap()), (1, round));
            ResultSet::recycle(r);
            let r = build(&ha, 7);
            assert_eq!(
                (names(&r), r.text(0, 0).unwrap()),
                (vec!["a", "bb"], &b"7"[..])
            );
            ResultSet::recycle(r);
            let r = build(&hb, 8);
            assert_eq!((names(&r), r.rows(), r.columns()), (vec!["ccc"], 1, 1));
            ResultSet::recycle(r);
            let r = ResultBuilder::new(vec!["x".into()]).finish();
            assert_eq!((names(&r), r.rows()), (vec!["x"], 0));
            ResultSet::recycle(r);
        }
    }

    #[test]
    fn exact_int_parsing() {
        assert_eq!(parse_exact_int("9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_exact_int("9223372036854775808"), None);
        assert_eq!(parse_exact_int("1.5"), None);
        assert_eq!(parse_exact_int(" 1"), None);
        assert_eq!(parse_exact_int("-"), None);
    }
}
