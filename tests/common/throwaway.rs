//! Throw-away PostgreSQL and MariaDB servers that a test owns and may stop,
//! kill and restart, on ports of their own (the shared servers on 5432 and
//! 3306 are never touched). Each lives in a fixed directory under the temp
//! dir named after its port, so a server left behind by a run that was
//! killed is found and stopped by the next run instead of blocking the port.
//! Dropping the handle stops the server and removes its files.
//!
//! `create` returns None (after saying why) when the tools are missing,
//! unless servers are required (CI), where it panics.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use peepool::backend::mysql::MysqlBackend;
use peepool::backend::postgres::PostgresBackend;
use peepool::backend::{Backend, Connection};
use peepool::config::ParsedUrl;

use super::servers_required;

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
const MARIADBD: &str = "/usr/sbin/mariadbd";
/// How long a start may take (crash recovery included) before the test fails.
const START_LIMIT: Duration = Duration::from_secs(60);

fn quiet(cmd: &mut Command) -> std::io::Result<std::process::Output> {
    cmd.stdin(Stdio::null()).output()
}

fn ok(cmd: &mut Command) -> Result<(), String> {
    let out = quiet(cmd).map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?}: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn skip_or_fail(what: &str) -> Option<std::convert::Infallible> {
    assert!(!servers_required(), "required for the fault tests: {what}");
    eprintln!("SKIP: {what}");
    None
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Stops whatever server a killed earlier run left in `dir` (its pid file).
fn kill_leftover(pid_file: &Path) {
    let Ok(text) = std::fs::read_to_string(pid_file) else {
        return;
    };
    if let Some(pid) = text
        .lines()
        .next()
        .and_then(|l| l.trim().parse::<i32>().ok())
    {
        if pid > 1 {
            // SAFETY: kill(2) with a pid read from the server's own pid file.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

/// A PostgreSQL 15 cluster on 127.0.0.1:`port`, trust authentication (any
/// password is accepted), database `test`, run as user postgres.
pub struct ThrowawayPg {
    pub port: u16,
    dir: PathBuf,
    running: bool,
    /// Starts so far; the first one creates database `test`.
    starts: u32,
}

impl ThrowawayPg {
    /// Runs initdb; the server is not started.
    pub fn create(port: u16) -> Option<ThrowawayPg> {
        let initdb = Path::new(PG_BIN).join("initdb");
        if !initdb.exists() || Command::new("runuser").arg("--help").output().is_err() {
            skip_or_fail(&format!("{} and runuser", initdb.display()))?;
        }
        let name = format!("peepool-throwaway-pg-{port}");
        let old = std::env::temp_dir().join(&name);
        if old.join("data/postmaster.pid").exists() {
            kill_leftover(&old.join("data/postmaster.pid"));
        }
        let dir = fresh_dir(&name);
        let owner = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status();
        if !matches!(owner, Ok(s) if s.success()) {
            skip_or_fail("chown to user postgres")?;
        }
        let data = dir.join("data");
        if let Err(e) = ok(Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(&initdb)
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&data))
        {
            skip_or_fail(&format!("initdb failed: {e}"))?;
        }
        Some(ThrowawayPg {
            port,
            dir,
            running: false,
            starts: 0,
        })
    }

    fn pg_ctl(&self) -> Command {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"])
            .arg(Path::new(PG_BIN).join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"));
        c
    }

    /// Starts the server and returns once it accepts connections: the
    /// instant it became ready.
    pub fn start(&mut self) -> Instant {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off \
             -c synchronous_commit=off -c max_connections=60 -c logging_collector=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log");
        ok(self
            .pg_ctl()
            .args(["start", "-w", "-t", "60", "-o", &opts, "-l"])
            .arg(&log))
        .unwrap_or_else(|e| {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            panic!(
                "throw-away PostgreSQL on port {} did not start: {e}\n{tail}",
                self.port
            )
        });
        self.running = true;
        let ready = self.wait_ready("postgres");
        self.starts += 1;
        if self.starts == 1 {
            let b = pg_backend(&self.url("postgres", None, "postgres"));
            let mut c = b.connect().expect("connect to the throw-away PostgreSQL");
            c.execute("CREATE DATABASE test", &[])
                .expect("CREATE DATABASE test");
        }
        ready
    }

    fn wait_ready(&self, db: &str) -> Instant {
        let b = pg_backend(&format!(
            "{}?connect_timeout=2",
            self.url("postgres", None, db)
        ));
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if b.connect().is_ok() {
                return Instant::now();
            }
            assert!(
                Instant::now() < deadline,
                "throw-away PostgreSQL on port {} not ready",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server with pg_ctl's `mode`: "fast" (sessions are
    /// terminated, a clean shutdown) or "immediate" (no shutdown checkpoint;
    /// the next start runs crash recovery).
    pub fn stop(&mut self, mode: &str) {
        ok(self.pg_ctl().args(["stop", "-w", "-t", "60", "-m", mode]))
            .unwrap_or_else(|e| panic!("pg_ctl stop -m {mode}: {e}"));
        self.running = false;
    }

    /// `postgres://user[:password]@127.0.0.1:port/db`.
    pub fn url(&self, user: &str, password: Option<&str>, db: &str) -> String {
        let auth = match password {
            Some(p) => format!("{user}:{p}"),
            None => user.to_string(),
        };
        format!("postgres://{auth}@127.0.0.1:{}/{db}", self.port)
    }

    /// Sends `signal` to the postmaster and every process it started (its
    /// backends answer the sessions, so all must stop to freeze the server);
    /// after SIGSTOP, returns once all are stopped.
    pub fn signal_all(&self, signal: i32) {
        let pid_file = self.dir.join("data/postmaster.pid");
        let text = std::fs::read_to_string(&pid_file).expect("postmaster.pid");
        let pm: i32 = text
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .parse()
            .expect("pid");
        let mut pids = vec![pm];
        for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            // pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
            let Some((head, rest)) = stat.rsplit_once(')') else {
                continue;
            };
            let ppid = rest
                .split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<i32>().ok());
            let pid = head
                .split_whitespace()
                .next()
                .and_then(|p| p.parse::<i32>().ok());
            if let (Some(pid), Some(ppid)) = (pid, ppid) {
                if ppid == pm {
                    pids.push(pid);
                }
            }
        }
        for &pid in &pids {
            // SAFETY: kill(2) on the throw-away cluster's own processes.
            unsafe { libc::kill(pid, signal) };
        }
        if signal == libc::SIGSTOP {
            for pid in pids {
                wait_stopped(pid);
            }
        }
    }
}

/// Returns once every thread of process `pid` is stopped (or gone).
/// `kill(SIGSTOP)` returns before that: one thread is woken to start the
/// group stop, and on a loaded machine another thread of the process may
/// still answer a request meanwhile (seen: a frozen mariadbd that answered
/// a ping).
fn wait_stopped(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return;
        };
        let running = tasks.flatten().any(|t| {
            let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
            // pid (comm) state ...: comm may hold spaces, so read after ')'.
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next());
            !matches!(state, None | Some("T" | "t" | "Z" | "X"))
        });
        if !running {
            return;
        }
        assert!(Instant::now() < deadline, "process {pid} did not stop");
        std::thread::sleep(Duration::from_millis(1));
    }
}

impl Drop for ThrowawayPg {
    fn drop(&mut self) {
        if self.running {
            let _ = quiet(self.pg_ctl().args(["stop", "-w", "-m", "immediate"]));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn pg_backend(url: &str) -> PostgresBackend {
    let p = ParsedUrl::parse(url).expect("URL parses");
    PostgresBackend::new(&p, &p.connect).expect("backend builds")
}

fn mysql_backend(url: &str) -> MysqlBackend {
    let p = ParsedUrl::parse(url).expect("URL parses");
    MysqlBackend::new(&p, &p.connect).expect("backend builds")
}

/// A MariaDB server on 127.0.0.1:`port` with database `test`, root without
/// a password, and user `app` with the password given to `create`.
pub struct ThrowawayMariadb {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
    password: String,
    starts: u32,
}

impl ThrowawayMariadb {
    /// Runs mariadb-install-db; the server is not started.
    pub fn create(port: u16, app_password: &str) -> Option<ThrowawayMariadb> {
        if !Path::new(MARIADBD).exists() {
            skip_or_fail(MARIADBD)?;
        }
        let name = format!("peepool-throwaway-mariadb-{port}");
        kill_leftover(&std::env::temp_dir().join(&name).join("pid"));
        let dir = fresh_dir(&name);
        if let Err(e) = ok(Command::new("mariadb-install-db").args([
            "--no-defaults",
            &format!("--datadir={}", dir.join("data").display()),
            "--user=root",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ])) {
            skip_or_fail(&format!("mariadb-install-db: {e}"))?;
        }
        Some(ThrowawayMariadb {
            port,
            dir,
            child: None,
            password: app_password.to_string(),
            starts: 0,
        })
    }

    /// Starts the server and returns once it accepts connections: the
    /// instant it became ready. Each start gets `server_id` = the number of
    /// starts so far, so a session's (`@@server_id`, `CONNECTION_ID()`)
    /// names it uniquely across restarts (connection ids restart from 1).
    pub fn start(&mut self) -> Instant {
        assert!(self.child.is_none(), "already running");
        self.starts += 1;
        let p = |f: &str| self.dir.join(f).display().to_string();
        let child = Command::new(MARIADBD)
            .args([
                "--no-defaults".to_string(),
                format!("--datadir={}", p("data")),
                "--user=root".into(),
                format!("--port={}", self.port),
                "--bind-address=127.0.0.1".into(),
                format!("--socket={}", p("sock")),
                format!("--pid-file={}", p("pid")),
                format!("--server-id={}", self.starts),
                "--skip-log-bin".into(),
                "--innodb-buffer-pool-size=32M".into(),
                "--innodb-flush-log-at-trx-commit=0".into(),
                "--max-connections=100".into(),
                format!("--log-error={}", p("error.log")),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mariadbd");
        self.child = Some(child);
        let root = mysql_backend(&format!(
            "mysql://root@127.0.0.1:{}/mysql?connect_timeout=2",
            self.port
        ));
        let deadline = Instant::now() + START_LIMIT;
        let (ready, mut c) = loop {
            if let Ok(c) = root.connect() {
                break (Instant::now(), c);
            }
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                let log = std::fs::read_to_string(p("error.log")).unwrap_or_default();
                panic!("mariadbd on port {} exited: {st}\n{log}", self.port);
            }
            assert!(
                Instant::now() < deadline,
                "throw-away MariaDB on port {} not ready",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        if self.starts == 1 {
            for sql in [
                "CREATE DATABASE test".to_string(),
                format!("CREATE USER 'app'@'%' IDENTIFIED BY '{}'", self.password),
                "GRANT ALL ON *.* TO 'app'@'%'".to_string(),
            ] {
                c.execute(&sql, &[])
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
            }
        }
        ready
    }

    /// Stops the server with `signal`: SIGTERM (a clean shutdown that ends
    /// the sessions) or SIGKILL (a crash; the next start runs recovery).
    /// Returns once the process is gone.
    pub fn stop(&mut self, signal: i32) {
        let mut child = self.child.take().expect("running");
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe { libc::kill(child.id() as i32, signal) };
        child.wait().expect("wait for mariadbd");
    }

    /// Sends `signal` to the server (SIGSTOP freezes it, SIGCONT thaws it);
    /// after SIGSTOP, returns once every thread of it is stopped.
    pub fn signal(&self, signal: i32) {
        let child = self.child.as_ref().expect("running");
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe { libc::kill(child.id() as i32, signal) };
        if signal == libc::SIGSTOP {
            wait_stopped(child.id() as i32);
        }
    }

    /// `mysql://user[:password]@127.0.0.1:port/db`.
    pub fn url(&self, user: &str, password: Option<&str>, db: &str) -> String {
        let auth = match password {
            Some(p) => format!("{user}:{p}"),
            None => user.to_string(),
        };
        format!("mysql://{auth}@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for ThrowawayMariadb {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
