//! MariaDB over TLS (rustls). The shared test server runs without TLS, so
//! this test starts a throw-away MariaDB of its own on 127.0.0.1:3307 with a
//! throw-away self-signed certificate (openssl, mariadb-install-db), and
//! stops it at the end. Skipped, saying so, when those tools are missing,
//! unless CI=true or PEEPOOL_REQUIRE_SERVERS=1.

mod common;
use common::servers_required;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use peepool::backend::mysql::MysqlBackend;
use peepool::{Backend, Connection, ParsedUrl, Status};

const PORT: u16 = 3307;

struct TlsServer {
    dir: PathBuf,
    child: Child,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn start() -> Option<TlsServer> {
    let dir = std::env::temp_dir().join(format!("peepool-mysql-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).ok()?;
    let p = |f: &str| dir.join(f).to_string_lossy().into_owned();
    let made_cert = run(Command::new("openssl").args([
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost",
        "-addext",
        "basicConstraints=critical,CA:FALSE",
        "-keyout",
        &p("key.pem"),
        "-out",
        &p("cert.pem"),
    ]));
    let installed = made_cert
        && run(Command::new("mariadb-install-db").args([
            "--no-defaults",
            &format!("--datadir={}", p("data")),
            "--user=root",
            "--auth-root-authentication-method=normal",
        ]));
    let mariadbd = Path::new("/usr/sbin/mariadbd");
    if !installed || !mariadbd.exists() {
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            !servers_required(),
            "openssl, mariadb-install-db and mariadbd are needed for the TLS test"
        );
        eprintln!("SKIP: cannot set up a throw-away MariaDB with TLS");
        return None;
    }
    let child = Command::new(mariadbd)
        .args([
            "--no-defaults".to_string(),
            format!("--datadir={}", p("data")),
            "--user=root".into(),
            format!("--port={PORT}"),
            "--bind-address=127.0.0.1".into(),
            format!("--socket={}", p("sock")),
            format!("--pid-file={}", p("pid")),
            format!("--ssl-cert={}", p("cert.pem")),
            format!("--ssl-key={}", p("key.pem")),
            "--skip-log-bin".into(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let server = TlsServer { dir, child };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if backend(&format!("mysql://root@127.0.0.1:{PORT}/mysql"))
            .connect()
            .is_ok()
        {
            return Some(server);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the throw-away MariaDB on port {PORT} did not start");
}

fn backend(url: &str) -> MysqlBackend {
    let parsed = ParsedUrl::parse(url).expect("URL parses");
    MysqlBackend::new(&parsed, &parsed.connect).expect("backend builds")
}

fn cipher(url: &str) -> peepool::Result<String> {
    let mut c = backend(url).connect()?;
    let r = c.query("SHOW SESSION STATUS LIKE 'Ssl_cipher'", &[])?;
    Ok(String::from_utf8_lossy(r.text(0, 1)?).into_owned())
}

#[test]
fn ssl_modes_against_a_tls_server() {
    let Some(server) = start() else { return };
    let cert = server.dir.join("cert.pem").to_string_lossy().into_owned();
    let base = format!("mysql://root@127.0.0.1:{PORT}/mysql");
    let local = format!("mysql://root@localhost:{PORT}/mysql");

    assert_eq!(cipher(&base).unwrap(), "", "no TLS unless asked for");
    assert_ne!(cipher(&format!("{base}?ssl-mode=required")).unwrap(), "");
    assert_ne!(
        cipher(&format!("{base}?ssl-mode=verify_ca&ssl-ca={cert}")).unwrap(),
        ""
    );
    assert_ne!(
        cipher(&format!("{local}?ssl-mode=verify_identity&ssl-ca={cert}")).unwrap(),
        ""
    );
    // The certificate names localhost, not 127.0.0.1.
    let e = cipher(&format!("{base}?ssl-mode=verify_identity&ssl-ca={cert}")).unwrap_err();
    assert_eq!(e.status, Status::POOL_ERR_CONNECT);
    // A root that did not sign it.
    let other = "/etc/ssl/certs/ca-certificates.crt";
    if Path::new(other).exists() {
        let e = cipher(&format!("{base}?ssl-mode=verify_ca&ssl-ca={other}")).unwrap_err();
        assert_eq!(e.status, Status::POOL_ERR_CONNECT);
    }
}
