//! pgfloor: SELECT 1 and SELECT $1::int8 over a held `postgres::Client`
//! with statements prepared once: the `postgres` crate's own floor for one
//! round trip, with no pool around it.
//!
//! Prints what the C benchmarks print (see bench/bench.h):
//! `name<TAB>median_ns_per_op<TAB>ops_per_run`, the median over BENCH_RUNS
//! runs (at least 5) after a warm-up of ops/10 + 1; `#` lines are comments.
//! Environment: BENCH_PG_URL (default
//! postgres://postgres@127.0.0.1:5432/test?sslmode=disable), BENCH_RUNS,
//! BENCH_SCALE. An unreachable server is reported on a `#` line, as the C
//! programs do.

use std::env;
use std::process::ExitCode;
use std::time::Instant;

use postgres::{Client, NoTls, Statement};

const PG_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable";

fn runs() -> usize {
    let n = env::var("BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(5);
    n.clamp(5, 64)
}

/// The C programs' bench_ops: a base count scaled by BENCH_SCALE.
fn ops(base: u64) -> u64 {
    let f = env::var("BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|f| *f > 0.0)
        .unwrap_or(1.0);
    ((base as f64 * f) as u64).max(1)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// One operation: the statement on the held connection, its one value read
/// back and checked, so nothing can be skipped.
fn once(client: &mut Client, stmt: &Statement, param: Option<i64>) -> Result<(), String> {
    let rows = match param {
        Some(p) => client.query(stmt, &[&p]),
        None => client.query(stmt, &[]),
    }
    .map_err(|e| e.to_string())?;
    let got: i64 = match param {
        Some(_) => rows.first().map(|r| r.get::<_, i64>(0)),
        None => rows.first().map(|r| i64::from(r.get::<_, i32>(0))),
    }
    .ok_or("no row")?;
    let want = param.unwrap_or(1);
    if got != want {
        return Err(format!("got {got}, expected {want}"));
    }
    Ok(())
}

fn bench(
    name: &str,
    client: &mut Client,
    stmt: &Statement,
    with_param: bool,
    n: u64,
) -> Result<(), String> {
    let batch = |client: &mut Client, count: u64| -> Result<(), String> {
        for i in 0..count {
            once(client, stmt, with_param.then_some(i as i64))?;
        }
        Ok(())
    };
    batch(client, n / 10 + 1)?;
    let mut ns = Vec::with_capacity(runs());
    for _ in 0..runs() {
        let t0 = Instant::now();
        batch(client, n)?;
        ns.push(t0.elapsed().as_nanos() as f64 / n as f64);
    }
    println!("{name}\t{:.1}\t{n}", median(ns));
    Ok(())
}

fn main() -> ExitCode {
    let url = env::var("BENCH_PG_URL")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| PG_DEFAULT.to_string());
    println!(
        "# postgres crate {} (tokio-postgres {}), held Client, prepared statements",
        env!("PGFLOOR_POSTGRES"),
        env!("PGFLOOR_TOKIO_POSTGRES")
    );
    let mut client = match Client::connect(&url, NoTls) {
        Ok(c) => c,
        Err(e) => {
            // The C programs skip an unreachable server the same way.
            println!("# pgfloor: {e} (skipped)");
            return ExitCode::SUCCESS;
        }
    };
    let n = ops(2000);
    let run = |client: &mut Client| -> Result<(), String> {
        let select1 = client.prepare("SELECT 1").map_err(|e| e.to_string())?;
        bench("pgcrate_postgres_select1", client, &select1, false, n)?;
        let param = client
            .prepare("SELECT $1::int8")
            .map_err(|e| e.to_string())?;
        bench("pgcrate_postgres_param", client, &param, true, n)
    };
    match run(&mut client) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pgfloor: {e}");
            ExitCode::FAILURE
        }
    }
}
