//! Puts the locked versions of `postgres` and `tokio-postgres` into the
//! program, so its output says which ones it measured.
use std::fs;

fn locked(lock: &str, name: &str) -> String {
    let key = format!("name = \"{name}\"\nversion = \"");
    lock.find(&key)
        .and_then(|i| lock[i + key.len()..].split('"').next())
        .unwrap_or("unknown")
        .to_string()
}

fn main() {
    println!("cargo:rerun-if-changed=Cargo.lock");
    let lock = fs::read_to_string("Cargo.lock").unwrap_or_default();
    println!(
        "cargo:rustc-env=PGFLOOR_POSTGRES={}",
        locked(&lock, "postgres")
    );
    println!(
        "cargo:rustc-env=PGFLOOR_TOKIO_POSTGRES={}",
        locked(&lock, "tokio-postgres")
    );
}
