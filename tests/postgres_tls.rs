//! PostgreSQL over TLS (rustls), against the local server with the
//! certificate it was set up with (Debian makes a throw-away self-signed
//! `snakeoil` one for `localhost` at install). Skipped, saying so, when the
//! server is unreachable or has TLS off, unless CI=true or
//! PEEPOOL_REQUIRE_SERVERS=1.

mod common;
use common::servers_required;

use peepool::backend::postgres::PostgresBackend;
use peepool::{Backend, Connection, ParsedUrl, Status};

const URL: &str = "postgres://postgres@127.0.0.1:5432/test";

fn backend(url: &str) -> peepool::Result<PostgresBackend> {
    let parsed = ParsedUrl::parse(url)?;
    PostgresBackend::new(&parsed, &parsed.connect)
}

/// The server's certificate file, when TLS is on and the file is readable.
fn server_cert() -> Option<String> {
    let mut c = match backend(&format!("{URL}?sslmode=disable")).and_then(|b| b.connect()) {
        Ok(c) => c,
        Err(e) => {
            assert!(
                !servers_required(),
                "PostgreSQL is required but unreachable: {e}"
            );
            eprintln!("SKIP: PostgreSQL unreachable: {e}");
            return None;
        }
    };
    let r = c
        .query(
            "SELECT current_setting('ssl'), current_setting('ssl_cert_file')",
            &[],
        )
        .unwrap();
    let on = r.text(0, 0).unwrap() == b"on";
    let path = String::from_utf8(r.text(0, 1).unwrap().to_vec()).unwrap();
    if !on || std::fs::metadata(&path).is_err() {
        assert!(
            !servers_required(),
            "the test server has TLS off (ssl={on}) or {path} is unreadable"
        );
        eprintln!("SKIP: server TLS off or certificate unreadable");
        return None;
    }
    Some(path)
}

fn uses_tls(url: &str) -> peepool::Result<bool> {
    let mut c = backend(url)?.connect()?;
    let r = c.query(
        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        &[],
    )?;
    Ok(r.text(0, 0)? == b"t")
}

#[test]
fn sslmode_disable_prefer_and_require() {
    let Some(_) = server_cert() else { return };
    assert!(!uses_tls(&format!("{URL}?sslmode=disable")).unwrap());
    assert!(
        uses_tls(&format!("{URL}?sslmode=prefer")).unwrap(),
        "prefer uses TLS when offered"
    );
    assert!(uses_tls(URL).unwrap(), "prefer is the default, as in libpq");
    assert!(uses_tls(&format!("{URL}?sslmode=require")).unwrap());
}

#[test]
fn verify_ca_and_verify_full_check_the_certificate() {
    let Some(cert) = server_cert() else { return };
    // The chain leads to the trusted certificate; the name is not compared.
    assert!(uses_tls(&format!("{URL}?sslmode=verify-ca&sslrootcert={cert}")).unwrap());
    // verify-full compares the name: the certificate is for localhost.
    let local = "postgres://postgres@localhost:5432/test";
    assert!(uses_tls(&format!("{local}?sslmode=verify-full&sslrootcert={cert}")).unwrap());
    let e = uses_tls(&format!("{URL}?sslmode=verify-full&sslrootcert={cert}")).unwrap_err();
    assert_eq!(e.status, Status::POOL_ERR_CONNECT);
    assert!(
        e.message.to_lowercase().contains("certificate"),
        "{}",
        e.message
    );
    // require with a root certificate checks the chain, as libpq does.
    assert!(uses_tls(&format!("{URL}?sslmode=require&sslrootcert={cert}")).unwrap());
}

#[test]
fn an_untrusted_certificate_is_refused() {
    let Some(_) = server_cert() else { return };
    // Roots that did not sign the server's self-signed certificate: the
    // system's public CA bundle.
    let bundle = "/etc/ssl/certs/ca-certificates.crt";
    if std::fs::metadata(bundle).is_err() {
        return;
    }
    let e = uses_tls(&format!("{URL}?sslmode=verify-ca&sslrootcert={bundle}")).unwrap_err();
    assert_eq!(e.status, Status::POOL_ERR_CONNECT);
}

#[test]
fn tls_options_are_checked_when_the_pool_is_made() {
    for (url, word) in [
        (format!("{URL}?sslmode=sometimes"), "sslmode"),
        (format!("{URL}?sslmode=verify-full"), "sslrootcert"),
        (
            format!("{URL}?sslmode=verify-ca&sslrootcert=/no/such/file.pem"),
            "/no/such/file.pem",
        ),
    ] {
        let e = backend(&url).err().expect("refused");
        assert_eq!(e.status, Status::POOL_ERR_CONFIG, "{url}");
        assert!(e.message.contains(word), "{url}: {}", e.message);
    }
}
