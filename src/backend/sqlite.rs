//! The SQLite backend, over rusqlite with the bundled SQLite (no system
//! library needed).
//!
//! # URLs
//!
//! | URL | database |
//! |---|---|
//! | `sqlite:relative/path.db` | a file, relative to the process's working directory |
//! | `sqlite:/abs/path.db` | an absolute path |
//! | `sqlite:///abs/path.db` | an absolute path (empty host, three slashes) |
//! | `sqlite:////abs/path.db` | also an absolute path (extra leading slashes collapse) |
//! | `sqlite::memory:` | one in-memory database shared by the pool's connections |
//!
//! `sqlite://name...` (a non-empty host part) is refused with
//! `POOL_ERR_CONFIG`: SQLite has no hosts, and guessing whether `name` was
//! meant as a relative path or as the first component of an absolute one
//! would silently open the wrong file. Write `sqlite:name` (relative) or
//! `sqlite:///name` (absolute). `sqlite:` with no path is refused too. The
//! path may carry `%XX` escapes (for `?`, `#` or `%` in a file name); `+` is
//! a plus sign, not a space.
//!
//! # Options
//!
//! After the pool options are removed, these parameters remain valid:
//!
//! - SQLite's own URI parameters, passed through unchanged: `mode`
//!   (`ro`, `rw`, `rwc`, `memory`), `cache` (`shared`, `private`), `vfs`,
//!   `psow`, `nolock`, `immutable`, `modeof`. The database is opened with
//!   `SQLITE_OPEN_URI` through a `file:` URI built from the path and these
//!   parameters, %-escaped. `sqlite:missing.db?mode=ro` therefore fails to
//!   connect instead of creating the file.
//! - `busy_timeout`: seconds (fractions allowed, default 5) that a statement
//!   waits on a locked database before failing with `SQLITE_BUSY`; applied
//!   with `sqlite3_busy_timeout` on every connection. 0 = fail at once.
//!
//! Any other parameter is `POOL_ERR_CONFIG` naming it. `connect_timeout` has
//! no meaning for SQLite and is ignored. `statement_cache=N` keeps the N most
//! recently used prepared statements per connection (peepool's own cache
//! over SQLite's C API; statements that fail to prepare, hold nothing or
//! hold several go through rusqlite and are not cached); 0 prepares every
//! statement afresh. A cached read-only statement whose program ends right
//! after its row (a primary-key lookup, an aggregate without `GROUP BY`,
//! `SELECT 1`; read with `EXPLAIN` on its first reuse, again after SQLite
//! re-prepares it) is reset after that row instead of stepped to its end.
//!
//! # `sqlite::memory:`
//!
//! The pool's connections share one database held by SQLite's `memdb` VFS,
//! under a name unique to the backend (`file:/peepool-<pid>-<n>?vfs=memdb`;
//! a name starting with `/` is shared within the process). The backend keeps
//! one extra "keeper" connection open that never runs a statement, so the
//! database survives `pool_close_idle` and lives exactly as long as the pool.
//! Writers from several connections take SQLite's usual database locks, so
//! a second writer waits up to `busy_timeout` instead of failing. In a child
//! process after `fork()` the backend switches to a fresh, empty database
//! (the parent's keeper is left alone, never closed in the child). `mode`,
//! `vfs`, `modeof` and `immutable` cannot be combined with `:memory:`.
//!
//! # Values and errors
//!
//! Parameters bind positionally (`?`, `?N`, `$N`, `:name` are numbered by
//! SQLite; the number of values must equal `sqlite3_bind_parameter_count`).
//! Result cells keep SQLite's storage class: NULL, INTEGER (text form: the
//! decimal number), REAL, TEXT and BLOB (text form: the bytes themselves).
//! The text form of a REAL is exactly what `sqlite3_column_text` gives: it
//! is rendered by SQLite's own printf with the format SQLite itself uses
//! (`%!.17g` with SQLite's shortest-round-trip reduction in SQLite 3.54, so
//! `0.1` -> `0.1`, `1.0` -> `1.0`, `1e300` -> `1.0e+300`, infinity -> `Inf`).
//!
//! Every error of a statement is `POOL_ERR_DATABASE` whose SQLSTATE
//! (`pool_last_sqlstate()`) is SQLite's *extended result code* in decimal,
//! e.g. `"2067"` for `SQLITE_CONSTRAINT_UNIQUE`, `"5"` for `SQLITE_BUSY`,
//! `"1"` for a syntax error, `"25"` (`SQLITE_RANGE`) for a wrong number of
//! parameters. `SQLITE_MISUSE` marks the connection broken, so the pool
//! discards it. A failing `init_sql` is `POOL_ERR_CONNECT` with SQLite's
//! message. `execute` also accepts a statement that returns rows (such as
//! `PRAGMA journal_mode=WAL`), discarding them, and several statements
//! separated by `;` when no parameters are given (then the count is every
//! row they changed, triggers included).

use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{ffi, Connection as RawConnection, ErrorCode, OpenFlags, Statement};

use crate::backend::{Backend, Connection};
use crate::config::{ConnectOptions, ParsedUrl};
use crate::error::{Error, Result};
use crate::value::{Header, ResultBuilder, ResultSet, Value};

/// SQLite's URI parameters passed through to `sqlite3_open_v2`.
const URI_PARAMS: &[&str] = &[
    "mode",
    "cache",
    "vfs",
    "psow",
    "nolock",
    "immutable",
    "modeof",
];
/// Every driver parameter the SQLite backend accepts.
const KNOWN_PARAMS: &[&str] = &[
    "mode",
    "cache",
    "vfs",
    "psow",
    "nolock",
    "immutable",
    "modeof",
    "busy_timeout",
];
/// URI parameters that make no sense with the pool's shared memory database.
const NOT_WITH_MEMORY: &[&str] = &["mode", "vfs", "modeof", "immutable"];

const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// `sqlite3_busy_timeout` takes milliseconds in a C int.
const MAX_BUSY_TIMEOUT_SECS: f64 = (i32::MAX / 1000) as f64;

/// The lookaside of every connection: 16 x 1200 = 19,200 bytes, which
/// SQLite splits into 12 slots of 1200 bytes and 37 of 128 (its default,
/// `1200,40`, is 48,000 bytes: 30 + 93 slots). Statements of the statement
/// cache are prepared with `SQLITE_PREPARE_PERSISTENT`, which bypasses
/// lookaside, and the ones measured ran with at most 7 slots in use; what
/// still fills it is parsing the schema and statements prepared afresh
/// (`BEGIN`, `COMMIT`, `init_sql`, several statements, `statement_cache=0`).
/// Callgrind (bench/analysis.md, "SQLite idle memory"): cached statements
/// unchanged, an uncached INSERT + SELECT transaction +0.1 % (12 x 1200:
/// +7 %, 8 x 1200: +13 %); about 25 KiB less resident per idle connection.
const LOOKASIDE_SLOT_SIZE: c_int = 1200;
const LOOKASIDE_SLOTS: c_int = 16;

/// SQLITE_RANGE: a parameter index out of range.
const SQLSTATE_RANGE: &str = "25";
/// SQLITE_MISUSE.
const SQLSTATE_MISUSE: &str = "21";

/// Makes every in-memory database name of this process unique.
static MEMORY_COUNTER: AtomicU64 = AtomicU64::new(1);

/// Opens connections to one SQLite database.
pub struct SqliteBackend {
    /// What to open: a file URI, or the shared memory database.
    target: Target,
    busy_timeout: Duration,
    init_sql: Option<String>,
    statement_cache: usize,
}

enum Target {
    File {
        /// The `file:` URI given to `sqlite3_open_v2`.
        uri: String,
        /// The path as the user wrote it, for messages.
        shown: String,
    },
    Memory(Mutex<MemoryDb>),
}

/// The pool's private in-memory database.
struct MemoryDb {
    /// The process that opened `keeper`; another pid means we are in a
    /// forked child.
    pid: u32,
    uri: String,
    /// Never runs a statement; keeps the database alive while the backend is.
    keeper: Option<RawConnection>,
    /// URI parameters given by the user (cache, psow, nolock).
    extra: Vec<(String, String)>,
    /// `true` with the memdb VFS, `false` with the shared-cache fallback.
    memdb: bool,
}

impl MemoryDb {
    /// Open a fresh database under a new name, with its keeper.
    fn create(extra: Vec<(String, String)>) -> Result<MemoryDb> {
        let pid = std::process::id();
        let n = MEMORY_COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut params = vec![("vfs".to_string(), "memdb".to_string())];
        params.extend(extra.iter().cloned());
        let uri = build_uri(&format!("/peepool-{pid}-{n}"), &params);
        match open_raw(&uri) {
            Ok(keeper) => Ok(MemoryDb {
                pid,
                uri,
                keeper: Some(keeper),
                extra,
                memdb: true,
            }),
            Err(memdb_err) => {
                // Without the memdb VFS: a shared-cache memory database
                // (table-level locks, SQLITE_LOCKED instead of waiting).
                let mut params = vec![
                    ("mode".to_string(), "memory".to_string()),
                    ("cache".to_string(), "shared".to_string()),
                ];
                params.extend(extra.iter().filter(|(k, _)| k != "cache").cloned());
                let uri = build_uri(&format!("peepool-mem-{pid}-{n}"), &params);
                let keeper = open_raw(&uri).map_err(|e| {
                    Error::connect(format!(
                        "cannot open SQLite in-memory database: memdb: {}; shared cache: {}",
                        describe(&memdb_err),
                        describe(&e)
                    ))
                })?;
                Ok(MemoryDb {
                    pid,
                    uri,
                    keeper: Some(keeper),
                    extra,
                    memdb: false,
                })
            }
        }
    }
}

impl SqliteBackend {
    /// Check the URL and its options; opens nothing for a file database (the
    /// keeper connection of `sqlite::memory:` is opened here).
    pub fn new(url: &ParsedUrl, connect: &ConnectOptions) -> Result<SqliteBackend> {
        url.check_params("sqlite", KNOWN_PARAMS)?;
        let mut seen: Vec<&str> = Vec::new();
        for (k, _) in &url.params {
            if seen.contains(&k.as_str()) {
                return Err(Error::config(format!("option '{k}' is given twice")));
            }
            seen.push(k);
        }
        let busy_timeout = match url.param("busy_timeout") {
            None => DEFAULT_BUSY_TIMEOUT,
            Some(v) => parse_busy_timeout(v)?,
        };
        let uri_params: Vec<(String, String)> = url
            .params
            .iter()
            .filter(|(k, _)| URI_PARAMS.contains(&k.as_str()))
            .cloned()
            .collect();

        let target = if url.rest == ":memory:" {
            if let Some((k, _)) = uri_params
                .iter()
                .find(|(k, _)| NOT_WITH_MEMORY.contains(&k.as_str()))
            {
                return Err(Error::config(format!(
                    "option '{k}' cannot be used with sqlite::memory: (the pool's shared memory database)"
                )));
            }
            Target::Memory(Mutex::new(MemoryDb::create(uri_params)?))
        } else {
            let path = parse_path(&url.rest)?;
            Target::File {
                uri: build_uri(&path, &uri_params),
                shown: path,
            }
        };
        Ok(SqliteBackend {
            target,
            busy_timeout,
            init_sql: connect.init_sql.clone(),
            statement_cache: connect.statement_cache,
        })
    }

    /// Whether `sqlite::memory:` uses the memdb VFS (`false`: the
    /// shared-cache fallback; `None`: a file database).
    pub fn memory_uses_memdb(&self) -> Option<bool> {
        match &self.target {
            Target::File { .. } => None,
            Target::Memory(m) => Some(m.lock().memdb),
        }
    }

    /// The URI given to `sqlite3_open_v2` for new connections.
    pub fn uri(&self) -> String {
        match &self.target {
            Target::File { uri, .. } => uri.clone(),
            Target::Memory(m) => m.lock().uri.clone(),
        }
    }

    /// The URI to open now, and the name to show in messages.
    fn current_uri(&self) -> Result<(String, String)> {
        match &self.target {
            Target::File { uri, shown } => Ok((uri.clone(), format!("'{shown}'"))),
            Target::Memory(m) => {
                let mut db = m.lock();
                if db.pid != std::process::id() {
                    // A forked child: the parent's database is not ours. Leak
                    // the copied keeper rather than close it here (its memory
                    // and locks belong to the parent's image).
                    let fresh = MemoryDb::create(db.extra.clone())?;
                    let old = std::mem::replace(&mut *db, fresh);
                    std::mem::forget(old);
                }
                Ok((db.uri.clone(), "sqlite::memory:".to_string()))
            }
        }
    }
}

impl Drop for SqliteBackend {
    fn drop(&mut self) {
        if let Target::Memory(m) = &self.target {
            let mut db = m.lock();
            if db.pid != std::process::id() {
                // Copied from the parent by fork(): not ours to close.
                if let Some(k) = db.keeper.take() {
                    std::mem::forget(k);
                }
            }
        }
    }
}

impl Backend for SqliteBackend {
    type Conn = SqliteConn;

    fn connect(&self) -> Result<SqliteConn> {
        let (uri, shown) = self.current_uri()?;
        let conn = open_raw(&uri).map_err(|e| {
            Error::connect(format!(
                "cannot open SQLite database {shown}: {}",
                describe(&e)
            ))
        })?;
        conn.busy_timeout(self.busy_timeout).map_err(|e| {
            Error::connect(format!(
                "cannot set busy_timeout on SQLite database {shown}: {}",
                describe(&e)
            ))
        })?;
        conn.set_prepared_statement_cache_capacity(self.statement_cache);
        if let Some(sql) = &self.init_sql {
            if let Err(e) = conn.execute_batch(sql) {
                let _ = conn.close();
                return Err(Error::connect(format!(
                    "init_sql failed on SQLite database {shown}: {}",
                    describe(&e)
                )));
            }
        }
        Ok(SqliteConn {
            stmts: StmtCache::new(self.statement_cache),
            conn,
            cached: self.statement_cache > 0,
            broken: false,
            // init_sql ran: check the transaction state at the first release.
            stmt_ran: true,
        })
    }

    fn name(&self) -> &'static str {
        "sqlite"
    }
}

/// One SQLite connection.
pub struct SqliteConn {
    /// Declared before `conn`: its statements are finalized before the
    /// handle closes.
    stmts: StmtCache,
    conn: RawConnection,
    /// Cache prepared statements (`statement_cache` > 0).
    cached: bool,
    /// A fatal error (SQLITE_MISUSE) was seen: never reuse.
    broken: bool,
    /// A statement ran since `in_transaction` last found no transaction
    /// open: only a statement can open one, so until one runs the answer
    /// stays "no" without a call into SQLite (a checkout + release with no
    /// statement is the pool's hottest path).
    stmt_ran: bool,
}

impl SqliteConn {
    fn check_usable(&self) -> Result<()> {
        if self.broken {
            Err(Error::database(
                "the SQLite connection is unusable after an earlier SQLITE_MISUSE error",
            )
            .with_sqlstate(SQLSTATE_MISUSE))
        } else {
            Ok(())
        }
    }

    /// Turn a rusqlite error into ours, marking the connection broken when
    /// the handle can no longer be trusted.
    fn fail(&mut self, e: rusqlite::Error) -> Error {
        let err = db_error(&e);
        if err
            .sqlstate
            .as_deref()
            .and_then(|s| s.parse::<c_int>().ok())
            .map(|c| c & 0xff)
            == Some(ffi::SQLITE_MISUSE)
        {
            self.broken = true;
        }
        err
    }

    /// Prepare `sql` (through the cache when enabled), bind `params` and
    /// hand the statement to `f`.
    fn with_statement<R>(
        &mut self,
        sql: &str,
        params: &[Value<'_>],
        f: impl FnOnce(&mut Statement<'_>) -> rusqlite::Result<R>,
    ) -> std::result::Result<R, StatementError> {
        let run = |stmt: &mut Statement<'_>| -> std::result::Result<R, StatementError> {
            bind(stmt, params)?;
            f(stmt).map_err(StatementError::Sqlite)
        };
        if self.cached {
            let mut stmt = self
                .conn
                .prepare_cached(sql)
                .map_err(StatementError::Sqlite)?;
            run(&mut stmt)
        } else {
            let mut stmt = self.conn.prepare(sql).map_err(StatementError::Sqlite)?;
            run(&mut stmt)
        }
    }

    /// Rows changed by the statement that just ran: `sqlite3_changes` when
    /// the statement changed anything (total changes moved), else 0 — so a
    /// SELECT or PRAGMA does not report the previous DML's count.
    fn changes_since(&self, total_before: u64) -> u64 {
        if self.conn.total_changes() != total_before {
            self.conn.changes()
        } else {
            0
        }
    }

    fn simple(&mut self, sql: &str) -> Result<()> {
        self.check_usable()?;
        self.stmt_ran = true;
        match self.conn.execute_batch(sql) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.fail(e)),
        }
    }
}

/// A prepared statement owned by the connection's [`StmtCache`].
struct CachedStmt {
    sql: Box<str>,
    stmt: std::ptr::NonNull<ffi::sqlite3_stmt>,
    /// Its column names as a result header, with the statement's re-prepare
    /// count when they were read: SQLite re-prepares a statement after a
    /// schema change, and then a `SELECT *` may name other columns.
    names: Option<(Header, c_int)>,
    /// Whether a row can follow a row (see [`RowBound`]).
    rows: RowBound,
    /// SQLite's re-prepare count during the current run, once read
    /// ([`CachedStmt::reprepares`]); cleared when a run starts.
    run_reprepares: Option<c_int>,
}

impl CachedStmt {
    /// The statement's re-prepare count in this run (a re-prepare happens
    /// inside the run's first step), read from SQLite once per run for the
    /// header check and the row bound both.
    fn reprepares(&mut self) -> c_int {
        let stmt = self.stmt.as_ptr();
        *self.run_reprepares.get_or_insert_with(|| {
            // SAFETY: a live statement owned by the cache, used by the
            // connection's one thread.
            unsafe { ffi::sqlite3_stmt_status(stmt, ffi::SQLITE_STMTSTATUS_REPREPARE, 0) }
        })
    }
}

/// What a cached statement's program says about its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowBound {
    /// Not read yet: a statement's program is read on its first reuse, so
    /// a statement run once costs no `EXPLAIN`.
    Unknown,
    /// Read-only, and every `ResultRow` of the program is followed by
    /// `Halt`: after a row, the next step would only end the statement,
    /// so the run resets it instead (one `sqlite3_step` fewer). Holds
    /// while the statement's re-prepare count is this one: after a schema
    /// change SQLite may compile the same text to another program.
    One(c_int),
    /// Anything else (or the program could not be read): step to the end.
    Many,
}

/// The connection's prepared statements, keyed by their SQL text, most
/// recently used last. A linear scan that compares lengths first and starts
/// at the most recent one beats hashing the text: a pool user repeats a few
/// statements, and the hit is nearly always the last entry or close to it.
/// (rusqlite's own cache hashes the text and moves the statement out of and
/// back into an LRU list on every use.) Statements that prepare with an
/// error, to nothing, or to several statements are never cached: those take
/// the rusqlite path, which reports them.
struct StmtCache {
    entries: Vec<CachedStmt>,
    capacity: usize,
}

// SAFETY: the statements belong to the connection they were prepared on and
// move with it between threads; the pool lets one thread at a time use it
// (SQLITE_OPEN_NO_MUTEX is safe under that rule, as it is for rusqlite's
// own `Connection: Send`).
unsafe impl Send for StmtCache {}

impl StmtCache {
    fn new(capacity: usize) -> StmtCache {
        StmtCache {
            entries: Vec::new(),
            capacity,
        }
    }

    /// The cached statement for `sql`, made most recently used.
    fn get(&mut self, sql: &str) -> Option<*mut ffi::sqlite3_stmt> {
        let i = self
            .entries
            .iter()
            .rposition(|e| e.sql.len() == sql.len() && *e.sql == *sql)?;
        let last = self.entries.len() - 1;
        if i != last {
            self.entries[i..].rotate_left(1);
        }
        Some(self.entries[last].stmt.as_ptr())
    }

    /// The most recently used entry: the one `get` or `insert` just gave.
    fn last(&mut self) -> &mut CachedStmt {
        let i = self.entries.len() - 1;
        &mut self.entries[i]
    }

    fn insert(&mut self, sql: &str, stmt: std::ptr::NonNull<ffi::sqlite3_stmt>) {
        if self.entries.len() >= self.capacity {
            let old = self.entries.remove(0);
            // SAFETY: a statement this cache prepared and still owns.
            unsafe { ffi::sqlite3_finalize(old.stmt.as_ptr()) };
        }
        self.entries.push(CachedStmt {
            sql: sql.into(),
            stmt,
            names: None,
            rows: RowBound::Unknown,
            run_reprepares: None,
        });
    }
}

impl Drop for StmtCache {
    fn drop(&mut self) {
        for e in self.entries.drain(..) {
            // SAFETY: owned by this cache; the connection is still open
            // (the cache is dropped or cleared before the handle closes).
            unsafe { ffi::sqlite3_finalize(e.stmt.as_ptr()) };
        }
    }
}

/// What the fast path did.
enum Fast<T> {
    Done(Result<T>),
    /// Not a single cacheable statement: take the rusqlite path.
    Fallback,
}

impl SqliteConn {
    /// The cached statement for `sql`, prepared now on a miss; `None` when
    /// `sql` does not prepare to exactly one statement (an error, nothing,
    /// or several: the rusqlite path reports each of those its own way).
    fn cached_stmt(&mut self, sql: &str) -> Option<*mut ffi::sqlite3_stmt> {
        if let Some(stmt) = self.stmts.get(sql) {
            let entry = self.stmts.last();
            if entry.rows == RowBound::Unknown {
                // SAFETY: a live handle and one of its statements, not
                // running (every run resets it).
                entry.rows = unsafe { row_bound(self.conn.handle(), sql, stmt) };
            }
            return Some(stmt);
        }
        let len = c_int::try_from(sql.len()).ok()?;
        let mut stmt: *mut ffi::sqlite3_stmt = std::ptr::null_mut();
        let mut tail: *const c_char = std::ptr::null();
        // SAFETY: a live handle; `sql` is valid for `len` bytes; out-pointers
        // are valid locals.
        let rc = unsafe {
            ffi::sqlite3_prepare_v3(
                self.conn.handle(),
                sql.as_ptr() as *const c_char,
                len,
                ffi::SQLITE_PREPARE_PERSISTENT as _,
                &mut stmt,
                &mut tail,
            )
        };
        let stmt = std::ptr::NonNull::new(stmt);
        if rc != ffi::SQLITE_OK {
            return None;
        }
        let stmt = stmt?;
        if more_after(sql, tail) {
            // SAFETY: prepared just above, owned here.
            unsafe { ffi::sqlite3_finalize(stmt.as_ptr()) };
            return None;
        }
        self.stmts.insert(sql, stmt);
        Some(stmt.as_ptr())
    }

    /// Bind, step every row through `row`, reset: the cached-statement path
    /// over SQLite's C API, with the same results and errors as the rusqlite
    /// path. `row` and `done` also get the statement's cache entry.
    fn run_fast<T>(
        &mut self,
        sql: &str,
        params: &[Value<'_>],
        mut row: impl FnMut(*mut ffi::sqlite3_stmt, &mut CachedStmt),
        done: impl FnOnce(*mut ffi::sqlite3_stmt, u64, &mut CachedStmt) -> T,
    ) -> Fast<T> {
        if !self.cached {
            return Fast::Fallback;
        }
        let Some(stmt) = self.cached_stmt(sql) else {
            return Fast::Fallback;
        };
        // SAFETY (this block): `stmt` is a live statement of this open
        // connection, used by this thread only; borrowed parameter buffers
        // outlive every step (bound SQLITE_STATIC, cleared before return).
        unsafe {
            let expected = ffi::sqlite3_bind_parameter_count(stmt) as usize;
            if expected != params.len() {
                return Fast::Done(Err(param_count_error(expected, params.len())));
            }
            let mut borrowed = false;
            for (i, p) in params.iter().enumerate() {
                let n = (i + 1) as c_int;
                let rc = match *p {
                    Value::Null => ffi::sqlite3_bind_null(stmt, n),
                    Value::Int(v) => ffi::sqlite3_bind_int64(stmt, n, v),
                    Value::Double(v) => ffi::sqlite3_bind_double(stmt, n, v),
                    Value::Text(t) => {
                        borrowed = true;
                        ffi::sqlite3_bind_text64(
                            stmt,
                            n,
                            t.as_ptr() as *const c_char,
                            t.len() as u64,
                            ffi::SQLITE_STATIC(),
                            ffi::SQLITE_UTF8 as u8,
                        )
                    }
                    Value::Blob(b) => {
                        borrowed = true;
                        ffi::sqlite3_bind_blob64(
                            stmt,
                            n,
                            b.as_ptr() as *const std::ffi::c_void,
                            b.len() as u64,
                            ffi::SQLITE_STATIC(),
                        )
                    }
                };
                if rc != ffi::SQLITE_OK {
                    let e = self.handle_error(rc);
                    ffi::sqlite3_clear_bindings(stmt);
                    let mut err = db_error(&e);
                    if err.status == crate::Status::POOL_ERR_DATABASE {
                        err.message = format!("parameter {}: {}", i + 1, err.message);
                    }
                    return Fast::Done(Err(err));
                }
            }
            // A read-only statement changes no row: skip the change counters.
            let before = (ffi::sqlite3_stmt_readonly(stmt) == 0).then(|| self.conn.total_changes());
            self.stmts.last().run_reprepares = None;
            let r = loop {
                match ffi::sqlite3_step(stmt) {
                    ffi::SQLITE_ROW => {
                        row(stmt, self.stmts.last());
                        let entry = self.stmts.last();
                        if let RowBound::One(prepared) = entry.rows {
                            if entry.reprepares() == prepared {
                                // The next step would run `Halt` and give
                                // SQLITE_DONE; the reset below halts it.
                                break Ok(done(stmt, 0, entry));
                            }
                            // Re-prepared during this step: read the new
                            // program on the next reuse; step this run out.
                            entry.rows = RowBound::Unknown;
                        }
                    }
                    ffi::SQLITE_DONE => {
                        let changed = before.map_or(0, |b| self.changes_since(b));
                        break Ok(done(stmt, changed, self.stmts.last()));
                    }
                    rc => {
                        let e = self.handle_error(rc);
                        break Err(self.fail(e));
                    }
                }
            };
            ffi::sqlite3_reset(stmt);
            if borrowed {
                ffi::sqlite3_clear_bindings(stmt);
            }
            Fast::Done(r)
        }
    }

    /// Whether `sql` holds more than one statement: its first prepares
    /// and leaves more than whitespace and `;` after it. Nothing runs, and
    /// a text with no `;` before its end is not prepared at all.
    fn several_statements(&self, sql: &str) -> bool {
        if !sql
            .trim_end_matches(|c: char| c.is_ascii_whitespace() || c == ';')
            .contains(';')
        {
            return false;
        }
        let Ok(len) = c_int::try_from(sql.len()) else {
            return false;
        };
        let mut stmt: *mut ffi::sqlite3_stmt = std::ptr::null_mut();
        let mut tail: *const c_char = std::ptr::null();
        // SAFETY: a live handle; `sql` is valid for `len` bytes; the
        // statement prepared here is finalized before return.
        let rc = unsafe {
            let rc = ffi::sqlite3_prepare_v2(
                self.conn.handle(),
                sql.as_ptr() as *const c_char,
                len,
                &mut stmt,
                &mut tail,
            );
            ffi::sqlite3_finalize(stmt);
            rc
        };
        rc == ffi::SQLITE_OK && more_after(sql, tail)
    }

    /// The connection's error after a call returned `rc`, as rusqlite
    /// reports it (`error_from_handle`).
    fn handle_error(&self, rc: c_int) -> rusqlite::Error {
        // SAFETY: a live handle; sqlite3_errmsg returns a NUL-terminated
        // string owned by SQLite, copied at once.
        let msg = unsafe {
            let p = ffi::sqlite3_errmsg(self.conn.handle());
            (!p.is_null()).then(|| std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned())
        };
        rusqlite::Error::SqliteFailure(ffi::Error::new(rc), msg)
    }
}

/// Whether more than whitespace and `;` follows the first statement of
/// `sql`, which ends at `tail` (from `sqlite3_prepare`; NULL: at the end).
fn more_after(sql: &str, tail: *const c_char) -> bool {
    let used = if tail.is_null() {
        sql.len()
    } else {
        (tail as usize).saturating_sub(sql.as_ptr() as usize)
    };
    let rest = sql.as_bytes().get(used..).unwrap_or_default();
    !rest.iter().all(|b| b.is_ascii_whitespace() || *b == b';')
}

/// Whether `stmt` (the statement prepared from `sql` on `db`) returns at
/// most one row, read from its program: `EXPLAIN sql` prepared against the
/// same schema compiles to the same program. Only read-only statements
/// qualify (they change no row, so nothing is counted at the end), and
/// only when every `ResultRow` is followed by `Halt` with no error code.
/// Any failure reads as [`RowBound::Many`].
///
/// # Safety
/// `db` is a live handle and `stmt` one of its statements, not running,
/// used by this thread only.
unsafe fn row_bound(db: *mut ffi::sqlite3, sql: &str, stmt: *mut ffi::sqlite3_stmt) -> RowBound {
    if ffi::sqlite3_stmt_readonly(stmt) == 0 {
        return RowBound::Many;
    }
    let prepared = ffi::sqlite3_stmt_status(stmt, ffi::SQLITE_STMTSTATUS_REPREPARE, 0);
    let text = format!("EXPLAIN {sql}");
    let Ok(len) = c_int::try_from(text.len()) else {
        return RowBound::Many;
    };
    let mut explain: *mut ffi::sqlite3_stmt = std::ptr::null_mut();
    let rc = ffi::sqlite3_prepare_v2(
        db,
        text.as_ptr() as *const c_char,
        len,
        &mut explain,
        std::ptr::null_mut(),
    );
    if rc != ffi::SQLITE_OK || explain.is_null() {
        ffi::sqlite3_finalize(explain);
        return RowBound::Many;
    }
    // Columns of EXPLAIN: addr, opcode, p1, p2, p3, p4, p5, comment.
    let (mut rows, mut after_row, mut one) = (0, false, true);
    loop {
        match ffi::sqlite3_step(explain) {
            ffi::SQLITE_ROW => {
                let op = ffi::sqlite3_column_text(explain, 1);
                let op = raw_bytes(op, ffi::sqlite3_column_bytes(explain, 1) as usize);
                if after_row && (op != b"Halt" || ffi::sqlite3_column_int64(explain, 2) != 0) {
                    one = false;
                    break;
                }
                after_row = op == b"ResultRow";
                rows += usize::from(after_row);
            }
            ffi::SQLITE_DONE => break,
            _ => {
                one = false;
                break;
            }
        }
    }
    ffi::sqlite3_finalize(explain);
    if one && rows > 0 && !after_row {
        RowBound::One(prepared)
    } else {
        RowBound::Many
    }
}

/// Cells of the current row of `stmt`, as `push_cell` stores them.
///
/// # Safety
/// `stmt` is a live statement positioned on a row (`sqlite3_step` gave
/// `SQLITE_ROW`), used by this thread only.
unsafe fn push_row(b: &mut ResultBuilder, stmt: *mut ffi::sqlite3_stmt, ncols: c_int) {
    for i in 0..ncols {
        match ffi::sqlite3_column_type(stmt, i) {
            ffi::SQLITE_INTEGER => b.push_int(ffi::sqlite3_column_int64(stmt, i)),
            ffi::SQLITE_FLOAT => {
                let d = ffi::sqlite3_column_double(stmt, i);
                b.push_double(d, &real_text(d));
            }
            ffi::SQLITE_TEXT => {
                let p = ffi::sqlite3_column_text(stmt, i);
                let n = ffi::sqlite3_column_bytes(stmt, i) as usize;
                b.push_text(raw_bytes(p, n));
            }
            ffi::SQLITE_BLOB => {
                let p = ffi::sqlite3_column_blob(stmt, i) as *const u8;
                let n = ffi::sqlite3_column_bytes(stmt, i) as usize;
                b.push_blob(raw_bytes(p, n), None);
            }
            _ => b.push_null(),
        }
    }
}

/// # Safety
/// `p` is NULL (then `n` is 0) or valid for `n` bytes until the next call
/// on its statement.
unsafe fn raw_bytes<'a>(p: *const u8, n: usize) -> &'a [u8] {
    if p.is_null() || n == 0 {
        &[]
    } else {
        std::slice::from_raw_parts(p, n)
    }
}

/// A result builder with the names of `entry`'s statement `stmt`: copied from
/// the entry while SQLite has not re-prepared the statement since they were
/// read, else read again (and kept).
///
/// # Safety
/// As for [`builder_for`].
unsafe fn cached_builder(stmt: *mut ffi::sqlite3_stmt, entry: &mut CachedStmt) -> ResultBuilder {
    let prepared = entry.reprepares();
    match &entry.names {
        Some((header, n)) if *n == prepared => ResultBuilder::with_header(header),
        _ => {
            let b = builder_for(stmt);
            entry.names = Some((b.header(), prepared));
            b
        }
    }
}

/// A result builder with `stmt`'s column names (`column{N}` for a name
/// SQLite cannot give, as rusqlite's path does).
///
/// # Safety
/// `stmt` is a live statement used by this thread only.
unsafe fn builder_for(stmt: *mut ffi::sqlite3_stmt) -> ResultBuilder {
    let n = ffi::sqlite3_column_count(stmt).max(0);
    let mut missing = false;
    let b = ResultBuilder::with_names((0..n).map(|i| {
        let p = ffi::sqlite3_column_name(stmt, i);
        let name = if p.is_null() {
            None
        } else {
            let bytes = std::ffi::CStr::from_ptr(p).to_bytes();
            if bytes.is_ascii() {
                // ASCII is UTF-8; the full validator costs more on short names.
                Some(std::str::from_utf8_unchecked(bytes))
            } else {
                std::str::from_utf8(bytes).ok()
            }
        };
        missing |= name.is_none();
        name.unwrap_or_default()
    }));
    if !missing {
        return b;
    }
    // Rare: a name SQLite cannot give: `column{N}`, as rusqlite's path does.
    ResultBuilder::new(
        (0..n)
            .map(|i| {
                let p = ffi::sqlite3_column_name(stmt, i);
                (!p.is_null())
                    .then(|| std::ffi::CStr::from_ptr(p).to_str().ok())
                    .flatten()
                    .map_or_else(|| format!("column{}", i + 1), str::to_string)
            })
            .collect(),
    )
}

/// A caller's mistake seen before the statement runs: the same status as
/// the other backends give when they can tell before sending.
fn param_count_error(expected: usize, given: usize) -> Error {
    Error::invalid_argument(format!(
        "the statement has {expected} parameter{} but {} value{} given",
        if expected == 1 { "" } else { "s" },
        given,
        if given == 1 { " was" } else { "s were" }
    ))
    .with_sqlstate(SQLSTATE_RANGE)
}

/// An error from preparing, binding or running a statement.
enum StatementError {
    Sqlite(rusqlite::Error),
    /// Already ours (a parameter count mismatch).
    Ours(Error),
}

fn bind(stmt: &mut Statement<'_>, params: &[Value<'_>]) -> std::result::Result<(), StatementError> {
    let expected = stmt.parameter_count();
    if expected != params.len() {
        return Err(StatementError::Ours(param_count_error(
            expected,
            params.len(),
        )));
    }
    for (i, p) in params.iter().enumerate() {
        let v = match *p {
            Value::Null => ValueRef::Null,
            Value::Int(n) => ValueRef::Integer(n),
            Value::Double(d) => ValueRef::Real(d),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        };
        stmt.raw_bind_parameter(i + 1, ToSqlOutput::Borrowed(v))
            .map_err(|e| match db_error(&e) {
                mut err if err.status == crate::Status::POOL_ERR_DATABASE => {
                    err.message = format!("parameter {}: {}", i + 1, err.message);
                    StatementError::Ours(err)
                }
                err => StatementError::Ours(err),
            })?;
    }
    Ok(())
}

fn column_names(stmt: &Statement<'_>) -> Vec<String> {
    (0..stmt.column_count())
        .map(|i| {
            stmt.column_name(i)
                .map(str::to_string)
                .unwrap_or_else(|_| format!("column{}", i + 1))
        })
        .collect()
}

fn push_cell(b: &mut ResultBuilder, v: ValueRef<'_>) {
    match v {
        ValueRef::Null => b.push_null(),
        ValueRef::Integer(n) => b.push_int(n),
        ValueRef::Real(d) => b.push_double(d, &real_text(d)),
        ValueRef::Text(t) => b.push_text(t),
        ValueRef::Blob(bytes) => b.push_blob(bytes, None),
    }
}

impl Connection for SqliteConn {
    fn is_closed(&mut self) -> bool {
        // An open handle owned by the pool cannot close by itself: only a
        // fatal error (SQLITE_MISUSE, recorded in `broken`) makes it
        // unusable. Reading that flag is the whole check (no call into
        // SQLite, no I/O).
        self.broken
    }

    fn ping(&mut self) -> Result<()> {
        self.check_usable()?;
        let r = self
            .conn
            .prepare("SELECT 1")
            .and_then(|mut s| s.query_row([], |row| row.get::<_, i64>(0)));
        match r {
            Ok(_) => Ok(()),
            // Preparing may have to read the schema, and a writer on the
            // database can lock readers out (always so on the memdb VFS of
            // `sqlite::memory:`): the handle answered, the database is
            // busy. Evicting the connection for that would gain nothing.
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(e.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) =>
            {
                Ok(())
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    fn in_transaction(&mut self) -> bool {
        if !self.stmt_ran {
            return false;
        }
        let open = !self.conn.is_autocommit();
        // Out of any transaction, nothing but a statement can start one.
        self.stmt_ran = open;
        open
    }

    fn checks_are_local(&self) -> bool {
        // sqlite3_get_autocommit reads a field of the handle; `broken` is ours.
        true
    }

    fn execute(&mut self, sql: &str, params: &[Value<'_>]) -> Result<u64> {
        self.check_usable()?;
        self.stmt_ran = true;
        if let Fast::Done(r) = self.run_fast(sql, params, |_, _| {}, |_, changed, _| changed) {
            return r;
        }
        let before = self.conn.total_changes();
        if params.is_empty() && self.several_statements(sql) {
            // Straight to the batch: rusqlite's `prepare` would prepare the
            // second statement before the first has run, and fail where it
            // depends on it ("CREATE TABLE a(x); INSERT INTO a ...").
            return match self.conn.execute_batch(sql) {
                Ok(()) => Ok(self.conn.total_changes().saturating_sub(before)),
                Err(e) => Err(self.fail(e)),
            };
        }
        let r = self.with_statement(sql, params, |stmt| {
            let mut rows = stmt.raw_query();
            while rows.next()?.is_some() {}
            Ok(())
        });
        match r {
            Ok(()) => Ok(self.changes_since(before)),
            Err(StatementError::Sqlite(rusqlite::Error::Empty)) => Ok(0),
            Err(StatementError::Sqlite(rusqlite::Error::MultipleStatement)) if params.is_empty() => {
                match self.conn.execute_batch(sql) {
                    Ok(()) => Ok(self.conn.total_changes().saturating_sub(before)),
                    Err(e) => Err(self.fail(e)),
                }
            }
            Err(StatementError::Sqlite(rusqlite::Error::MultipleStatement)) => Err(Error::database(
                "several statements with parameters: execute takes one statement when parameters are given",
            )
            .with_sqlstate(ffi::SQLITE_ERROR.to_string())),
            Err(StatementError::Sqlite(e)) => Err(self.fail(e)),
            Err(StatementError::Ours(e)) => Err(e),
        }
    }

    fn query(&mut self, sql: &str, params: &[Value<'_>]) -> Result<Box<ResultSet>> {
        self.check_usable()?;
        self.stmt_ran = true;
        let mut builder: Option<ResultBuilder> = None;
        let had_rows = std::cell::Cell::new(false);
        let fast = self.run_fast(
            sql,
            params,
            |stmt, entry| {
                // SAFETY: `run_fast` calls this with a live statement on a row.
                unsafe {
                    // Names from the running statement, as below.
                    had_rows.set(true);
                    let b = builder.get_or_insert_with(|| cached_builder(stmt, entry));
                    push_row(b, stmt, ffi::sqlite3_column_count(stmt));
                    b.end_row();
                }
            },
            |stmt, changed, entry| {
                // No row: the names only. SAFETY: the statement is live
                // (cached), merely reset.
                let names_only = (!had_rows.get()).then(|| unsafe { cached_builder(stmt, entry) });
                (changed, names_only)
            },
        );
        if let Fast::Done(r) = fast {
            let (changed, names_only) = r?;
            let Some(mut b) = builder.or(names_only) else {
                return Err(Error::internal("a result without a builder"));
            };
            b.set_rows_affected(changed);
            return Ok(b.finish());
        }
        let before = self.conn.total_changes();
        let r = self.with_statement(sql, params, |stmt| {
            // Column names are taken from the running statement: a cached
            // `SELECT *` may be re-prepared by SQLite after a schema change.
            let mut builder: Option<ResultBuilder> = None;
            {
                let mut rows = stmt.raw_query();
                while let Some(row) = rows.next()? {
                    let s: &Statement<'_> = row.as_ref();
                    let b = builder.get_or_insert_with(|| ResultBuilder::new(column_names(s)));
                    for i in 0..s.column_count() {
                        push_cell(b, row.get_ref(i)?);
                    }
                    b.end_row();
                }
            }
            Ok(builder.unwrap_or_else(|| ResultBuilder::new(column_names(stmt))))
        });
        match r {
            Ok(mut b) => {
                b.set_rows_affected(self.changes_since(before));
                Ok(b.finish())
            }
            Err(StatementError::Sqlite(rusqlite::Error::Empty)) => {
                Ok(ResultBuilder::new(Vec::new()).finish())
            }
            Err(StatementError::Sqlite(rusqlite::Error::MultipleStatement)) => Err(
                Error::database("several statements given: query takes exactly one")
                    .with_sqlstate(ffi::SQLITE_ERROR.to_string()),
            ),
            Err(StatementError::Sqlite(e)) => Err(self.fail(e)),
            Err(StatementError::Ours(e)) => Err(e),
        }
    }

    fn begin(&mut self) -> Result<()> {
        self.simple("BEGIN")
    }

    fn commit(&mut self) -> Result<()> {
        self.simple("COMMIT")
    }

    fn rollback(&mut self) -> Result<()> {
        self.simple("ROLLBACK")
    }

    fn close(self) {
        let SqliteConn { stmts, conn, .. } = self;
        // Finalize first: sqlite3_close refuses a handle with live statements.
        drop(stmts);
        let _ = conn.close();
    }
}

/// Open a connection on a `file:` URI, with peepool's lookaside size.
fn open_raw(uri: &str) -> rusqlite::Result<RawConnection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = RawConnection::open_with_flags(uri, flags)?;
    shrink_lookaside(&conn);
    Ok(conn)
}

/// Replace SQLite's default lookaside (`1200,40`: 48,000 bytes per
/// connection, every slot written when it is set up, so all of it resident
/// while the connection sits idle) with [`LOOKASIDE_SLOTS`] slots of
/// [`LOOKASIDE_SLOT_SIZE`] bytes. A failure leaves the default in place,
/// which costs memory only.
///
/// The other large idle cost is left alone: the page cache's initial bulk
/// of 20 pages (87,360 bytes with 4 KiB pages), allocated at the first page
/// read, which in SQLite 3.54 even `SELECT 1` does (it reads the schema to
/// fix the text encoding). Only `sqlite3_config` before SQLite initialises
/// can turn it off, for the whole process: not thread-safe, and in the rlib
/// or staticlib the bundled SQLite may be the program's own as well.
fn shrink_lookaside(conn: &RawConnection) {
    // SAFETY: a live handle, opened just now and used by this thread only;
    // SQLITE_DBCONFIG_LOOKASIDE takes (void *, int, int), and with a NULL
    // buffer SQLite allocates the slots itself and frees them at close. (With
    // slots in use it would refuse with SQLITE_BUSY: none are, so soon after
    // the open.)
    let _ = unsafe {
        ffi::sqlite3_db_config(
            conn.handle(),
            ffi::SQLITE_DBCONFIG_LOOKASIDE,
            std::ptr::null_mut::<c_void>(),
            LOOKASIDE_SLOT_SIZE,
            LOOKASIDE_SLOTS,
        )
    };
}

/// The database path of a URL's `rest`: see the module documentation.
fn parse_path(rest: &str) -> Result<String> {
    let path = match rest.strip_prefix("//") {
        Some(after) if after.starts_with('/') => after,
        Some("") => return Err(Error::config("malformed URL 'sqlite://': no database path (write sqlite:///abs/path.db or sqlite:rel/path.db)")),
        Some(after) => {
            // What looks like a host may hold `user:password@`.
            let shown = crate::config::redact(&format!("sqlite://{after}"));
            let after = &shown["sqlite://".len()..];
            return Err(Error::config(format!(
                "malformed URL 'sqlite://{after}': SQLite URLs have no host; write 'sqlite:{after}' for a relative path or 'sqlite:///{after}' for an absolute one"
            )))
        }
        None => rest,
    };
    if path.is_empty() {
        return Err(Error::config("malformed URL 'sqlite:': no database path (write sqlite:path.db, sqlite:///abs/path.db or sqlite::memory:)"));
    }
    let decoded = decode_path(path)?;
    if decoded.contains('\0') {
        return Err(Error::config(
            "malformed URL: the SQLite path contains a NUL byte",
        ));
    }
    // `//x` would become a URI authority: collapse leading slashes.
    let trimmed = decoded.trim_start_matches('/');
    Ok(if trimmed.len() < decoded.len() {
        format!("/{trimmed}")
    } else {
        decoded
    })
}

/// `%XX` escapes only (`+` stays a plus sign in a file name).
fn decode_path(s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    Error::config(format!(
                        "malformed URL: bad %-escape in the SQLite path '{s}'"
                    ))
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| {
        Error::config(format!(
            "malformed URL: the SQLite path '{s}' does not decode to UTF-8"
        ))
    })
}

/// `%XX` for every byte a SQLite URI might read specially.
fn escape_uri(s: &str, out: &mut String) {
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// `file:<path>?k=v&...`, every part %-escaped.
fn build_uri(path: &str, params: &[(String, String)]) -> String {
    let mut uri = String::from("file:");
    escape_uri(path, &mut uri);
    for (i, (k, v)) in params.iter().enumerate() {
        uri.push(if i == 0 { '?' } else { '&' });
        escape_uri(k, &mut uri);
        uri.push('=');
        escape_uri(v, &mut uri);
    }
    uri
}

fn parse_busy_timeout(v: &str) -> Result<Duration> {
    let secs: f64 = v.trim().parse().map_err(|_| {
        Error::config(format!(
            "option 'busy_timeout' must be a number of seconds, got '{v}'"
        ))
    })?;
    if !secs.is_finite() || !(0.0..=MAX_BUSY_TIMEOUT_SECS).contains(&secs) {
        return Err(Error::config(format!(
            "option 'busy_timeout' must be a number of seconds in [0, {MAX_BUSY_TIMEOUT_SECS}], got '{v}'"
        )));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// SQLite's message for an error, with its extended code when it has one.
fn describe(e: &rusqlite::Error) -> String {
    let mut err = db_error(e);
    match err.sqlstate.take() {
        Some(code) => format!("{} (SQLite code {code})", err.message),
        None => std::mem::take(&mut err.message),
    }
}

/// A rusqlite error as `POOL_ERR_DATABASE` with SQLite's extended result
/// code as the SQLSTATE.
fn db_error(e: &rusqlite::Error) -> Error {
    use rusqlite::Error as E;
    match e {
        E::SqliteFailure(code, msg) => {
            let message = match msg {
                Some(m) => m.clone(),
                None => errstr(code.extended_code),
            };
            Error::database(message).with_sqlstate(code.extended_code.to_string())
        }
        E::SqlInputError {
            error, msg, offset, ..
        } => {
            let message = if *offset >= 0 {
                format!("{msg} (at offset {offset})")
            } else {
                msg.clone()
            };
            Error::database(message).with_sqlstate(error.extended_code.to_string())
        }
        E::InvalidParameterCount(given, expected) => Error::invalid_argument(format!(
            "the statement has {expected} parameters but {given} values were given"
        ))
        .with_sqlstate(SQLSTATE_RANGE),
        E::Empty => Error::database("the SQL text holds no statement")
            .with_sqlstate(ffi::SQLITE_MISUSE.to_string()),
        E::MultipleStatement => Error::database("several statements given where one was expected")
            .with_sqlstate(ffi::SQLITE_ERROR.to_string()),
        E::NulError(_) => Error::invalid_argument("the SQL text contains a NUL byte"),
        E::Utf8Error(..) => Error::conversion(e.to_string()),
        other => Error::database(other.to_string()),
    }
}

/// `sqlite3_errstr` for a result code.
fn errstr(code: c_int) -> String {
    // SAFETY: sqlite3_errstr returns a static NUL-terminated string for any code.
    let p = unsafe { ffi::sqlite3_errstr(code) };
    if p.is_null() {
        return format!("SQLite error {code}");
    }
    // SAFETY: non-NULL, static, NUL-terminated.
    unsafe { std::ffi::CStr::from_ptr(p) }
        .to_string_lossy()
        .into_owned()
}

/// The text `sqlite3_column_text` gives for a REAL: SQLite renders it with
/// `"%!.*g"` and the connection's FP_DIGITS (17 unless changed with
/// `SQLITE_DBCONFIG_FP_DIGITS`, which peepool never does). SQLite's own
/// printf is used, so the digits are exactly SQLite's.
pub fn real_text(v: f64) -> String {
    let mut buf = [0u8; 64];
    // SAFETY: sqlite3_snprintf writes at most buf.len() bytes including the
    // terminating NUL; the format takes exactly one double argument.
    unsafe {
        ffi::sqlite3_snprintf(
            buf.len() as c_int,
            buf.as_mut_ptr() as *mut c_char,
            c"%!.17g".as_ptr(),
            v,
        );
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_transaction_follows_statements() {
        let url = ParsedUrl::parse("sqlite::memory:").unwrap();
        let backend = SqliteBackend::new(&url, &url.connect).unwrap();
        let mut c = backend.connect().unwrap();
        assert!(!c.in_transaction());
        c.execute("BEGIN", &[]).unwrap();
        // Asked twice with no statement between: still open both times.
        assert!(c.in_transaction());
        assert!(c.in_transaction());
        c.query("SELECT 1", &[]).unwrap();
        assert!(c.in_transaction());
        c.rollback().unwrap();
        assert!(!c.in_transaction());
        assert!(!c.in_transaction());
        c.begin().unwrap();
        assert!(c.in_transaction());
        c.commit().unwrap();
        assert!(!c.in_transaction());
        c.close();
    }

    /// Lookaside slots in use at most, and allocations that found every
    /// slot taken, since the connection opened.
    fn lookaside_peak_and_misses(c: &SqliteConn) -> (c_int, c_int) {
        let (mut cur, mut used, mut full) = (0, 0, 0);
        // SAFETY: a live handle; the out-pointers are valid locals.
        unsafe {
            let h = c.conn.handle();
            ffi::sqlite3_db_status(
                h,
                ffi::SQLITE_DBSTATUS_LOOKASIDE_USED,
                &mut cur,
                &mut used,
                0,
            );
            ffi::sqlite3_db_status(
                h,
                ffi::SQLITE_DBSTATUS_LOOKASIDE_MISS_FULL,
                &mut cur,
                &mut full,
                0,
            );
        }
        (used, full)
    }

    /// Idle memory: every connection has peepool's lookaside (49 slots),
    /// not SQLite's default (123 slots, 48,000 bytes).
    #[test]
    fn connections_get_the_smaller_lookaside() {
        // 16 x 1200 bytes, split by SQLite into 12 slots of 1200 and 37 of 128.
        const SLOTS: c_int = 49;
        let file =
            std::env::temp_dir().join(format!("peepool-lookaside-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&file);
        for url in [
            format!("sqlite:{}", file.display()),
            "sqlite::memory:".to_string(),
        ] {
            let url = ParsedUrl::parse(&url).unwrap();
            let backend = SqliteBackend::new(&url, &url.connect).unwrap();
            let mut c = backend.connect().unwrap();
            // Adding a wide table to the schema parses its CREATE TABLE with
            // lookaside: more than SLOTS allocations alive at once (61 with
            // SQLite's default lookaside).
            let columns: Vec<String> = (0..40)
                .map(|i| format!("c{i} TEXT NOT NULL DEFAULT 'x'"))
                .collect();
            c.execute(&format!("CREATE TABLE wide({})", columns.join(", ")), &[])
                .unwrap();
            let (peak, misses) = lookaside_peak_and_misses(&c);
            assert!(peak <= SLOTS, "{peak} lookaside slots in use at once");
            assert!(misses > 0, "the statement never found the lookaside full");
            c.close();
        }
        let _ = std::fs::remove_file(&file);
    }

    #[test]
    fn paths() {
        assert_eq!(parse_path("rel/a.db").unwrap(), "rel/a.db");
        assert_eq!(parse_path("/abs/a.db").unwrap(), "/abs/a.db");
        assert_eq!(parse_path("///abs/a.db").unwrap(), "/abs/a.db");
        assert_eq!(parse_path("////abs/a.db").unwrap(), "/abs/a.db");
        assert_eq!(parse_path("a%3Fb%25c+d.db").unwrap(), "a?b%c+d.db");
        assert!(parse_path("//host/a.db").is_err());
        assert!(parse_path("//").is_err());
        assert!(parse_path("").is_err());
        assert!(parse_path("a%2").is_err());
    }

    #[test]
    fn uris_are_escaped() {
        assert_eq!(build_uri("a?b#c d.db", &[]), "file:a%3Fb%23c%20d.db");
        assert_eq!(
            build_uri(
                "/x.db",
                &[
                    ("mode".into(), "ro".into()),
                    ("vfs".into(), "unix-dotfile".into())
                ]
            ),
            "file:/x.db?mode=ro&vfs=unix-dotfile"
        );
    }

    #[test]
    #[allow(clippy::approx_constant)]
    fn real_text_matches_known_forms() {
        assert_eq!(real_text(1.0), "1.0");
        assert_eq!(real_text(0.1), "0.1");
        assert_eq!(real_text(1e300), "1.0e+300");
        assert_eq!(real_text(3.14159), "3.14159");
        assert_eq!(real_text(f64::INFINITY), "Inf");
        assert_eq!(real_text(f64::NEG_INFINITY), "-Inf");
    }
}
