//! Generates include/peepool.h with cbindgen (version macros from
//! Cargo.toml), and gives libpeepool.so its SONAME and a version script that
//! exports only the `pool_*` symbols.

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    let crate_dir =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));

    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    // cbindgen reads the whole crate, so any source file can change the
    // header (a stray `pub const` would land in it).
    println!("cargo:rerun-if-changed=src");

    // Shared library: SONAME and exported symbols (GNU ld / lld on ELF).
    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if matches!(
        target_os.as_str(),
        "linux" | "android" | "freebsd" | "netbsd" | "openbsd" | "dragonfly"
    ) {
        let map = out_dir.join("peepool.map");
        fs::write(&map, "{\n  global:\n    pool_*;\n  local:\n    *;\n};\n")
            .expect("write the linker version script");
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libpeepool.so.0");
        println!(
            "cargo:rustc-cdylib-link-arg=-Wl,--version-script={}",
            map.display()
        );
    }

    generate_header(&crate_dir);
}

/// The conventions every function follows, at the top of the header.
const OVERVIEW: &str = "
/*
 * peepool: a database connection pool (SQLite, PostgreSQL, MySQL/MariaDB).
 *
 * Conventions:
 * - Every function that can fail returns pool_status_t (POOL_OK = 0) and
 *   writes its result through its last, out-pointer arguments. On failure
 *   every non-NULL out-pointer holds its null value (NULL, the null handle
 *   {0}, 0), so cleanup code is always safe.
 * - pool_last_error() gives the calling thread's last message (\"\" after a
 *   success; never NULL), pool_last_sqlstate() the SQLSTATE of the last
 *   database error. Messages name the bad argument and never contain a
 *   password.
 * - Strings are NUL-terminated UTF-8. Pointers returned by the library are
 *   owned by it: see each function for how long they stay valid.
 * - pool_free(NULL) and pool_result_free(NULL) do nothing.
 * - No panic crosses the boundary: a bug inside is POOL_ERR_INTERNAL.
 *
 * Threads: a pool_t * may be shared by any number of threads (pool_free
 * excepted). A connection is used by one thread at a time; a second
 * thread calling on it meanwhile gets POOL_ERR_BUSY. A pool_result_t * may
 * be read by several threads at once. The last error is per thread.
 */
";

fn generate_header(crate_dir: &PathBuf) {
    let version =
        |part: &str| env::var(format!("CARGO_PKG_VERSION_{part}")).expect("cargo sets the version");
    let (major, minor, patch) = (version("MAJOR"), version("MINOR"), version("PATCH"));
    let full = env::var("CARGO_PKG_VERSION").expect("cargo sets CARGO_PKG_VERSION");

    let mut config = match cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")) {
        Ok(c) => c,
        Err(e) => panic!("cbindgen.toml: {e}"),
    };
    config.after_includes = Some(format!(
        "{OVERVIEW}\n/* The version of this header; pool_version() gives the library's. */\n\
         #define PEEPOOL_VERSION_MAJOR {major}\n\
         #define PEEPOOL_VERSION_MINOR {minor}\n\
         #define PEEPOOL_VERSION_PATCH {patch}\n\
         #define PEEPOOL_VERSION_STRING \"{full}\"\n"
    ));

    let bindings = match cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
    {
        Ok(b) => b,
        Err(e) => {
            // Let rustc report the source error rather than hiding it here.
            println!("cargo:warning=cbindgen could not generate include/peepool.h: {e}");
            return;
        }
    };
    let mut text = Vec::new();
    bindings.write(&mut text);
    let path = crate_dir.join("include").join("peepool.h");
    // Only write when the content changed, so the file's mtime (and any
    // build depending on it) moves only with a real change.
    if fs::read(&path).ok().as_deref() != Some(text.as_slice()) {
        let written =
            fs::create_dir_all(crate_dir.join("include")).and_then(|()| fs::write(&path, &text));
        if let Err(e) = written {
            // A read-only source tree (a packaged crate): keep the committed header.
            println!("cargo:warning=could not write {}: {e}", path.display());
        }
    }
}
