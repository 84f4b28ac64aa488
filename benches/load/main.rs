//! `scripts/bench`'s measurements, in one process and one run (issue 7):
//!
//! 1. the limit ([`raw`]): raw in-process PKCS#11 AES-256-GCM on a token key (SoftHSM2 by
//!    default, or kryoptic: the soft token `CKS_SIM_PKCS11_MODULE` names; one session and as
//!    many sessions as the pool uses), over as many session keys as the largest scale point
//!    against 10 of them (the token alone, for the scale target) and raw `C_GenerateKey` of a
//!    token AES key;
//! 2. a release `cks-sim serve` over HTTP on loopback ([`workloads`]), driven by this load
//!    generator with keep-alive connections: Encrypt, Decrypt, GenerateDataKey on a
//!    CloudHSM-store key and on an AWS_KMS key; Encrypt on a second server whose token threads
//!    keep the process's priority (`[hsm] thread_nice = 0`) and on one that verifies
//!    signatures, each interleaved with the default server; and, last on the restarted server,
//!    Sign with RSA_2048 and ECC_NIST_P256 keys against the raw token ([`key_specs`]);
//! 3. the same workload against `moto_server` ([`moto`]; ordinary keys only: moto has no
//!    CloudHSM key stores);
//! 4. scale ([`scale`]): the CreateKey rate in a store, Encrypt over 10 / 1,000 / 10,000 keys
//!    on the token, start-up with 10,000 keys, full ListKeys pagination;
//! 5. ratios ([`rows`]), and the targets in one table ([`targets`]).
//!
//! Each phase returns a struct of its figures ([`Figures`] holds them); the table is made
//! from those at the end, with whatever the phases that finished measured.
//!
//! A shared VM drifts by ±25% over minutes, so figures that are compared are measured side by
//! side: cks-sim's Encrypt is interleaved in short slices with the raw single-session encrypt
//! it is judged against, and each scale point's Encrypt with Encrypt on a second token of 10
//! keys (a seeded cluster in the same server), and that 10-key workload once with itself, to
//! show the pairing's own noise; raw key generation alternates with the first CreateKey batch
//! (over the same key counts). Every load figure also gives the CPU time per request (and the
//! part of it on the token's PKCS#11 threads, with their nice value) and the hypervisor's
//! steal time. A target whose run was too noisy to tell (see [`NOISE_LIMIT`]) is "not judged".
//!
//! It prints one table on stdout (progress goes to stderr). A plain `main` (`harness = false`):
//! `cargo bench --bench load` passes `--bench`, which is ignored.
//!
//! Environment: `CKS_SIM_BIN` (required: the release binary), `MOTO_SERVER_BIN` (optional),
//! `CKS_SIM_PKCS11_MODULE` (optional: SoftHSM2 when unset), the soft token's configuration
//! variable (required for the raw figures: `SOFTHSM2_CONF` or `KRYOPTIC_CONF`; a missing file
//! is written with the servers' settings, which write their own), `BENCH_SECS` (measured
//! seconds per workload, default 3),
//! `BENCH_RUNS` (default 3: each timed figure is the best of that many runs; an interleaved
//! pair gets that many times `BENCH_SECS` per side, in slices),
//! `BENCH_CONNS` (default 16), `BENCH_SCALE` (key counts, default `10,1000,10000`),
//! `BENCH_DIR` (scratch directory, default the system temp dir), `BENCH_KEEP=1` (keep it),
//! `BENCH_RAW_ONLY=1` (only the raw token figures).
//!
//! Every request loop is bounded in count and in time, and all traffic goes to 127.0.0.1.

mod cpu;
mod http;
mod key_specs;
mod moto;
mod procs;
mod raw;
mod report;
mod rows;
mod scale;
mod targets;
mod workload;
mod workloads;

// Every module sees every other's items through `use crate::*`.
pub(crate) use cpu::*;
pub(crate) use http::*;
pub(crate) use key_specs::SignFigure;
pub(crate) use procs::*;
pub(crate) use raw::*;
pub(crate) use report::*;
pub(crate) use rows::*;
pub(crate) use scale::{ScaleFigures, ScalePoint};
pub(crate) use targets::*;
pub(crate) use workload::*;
pub(crate) use workloads::{HttpFigures, Running, small_bodies};

pub(crate) use base64::Engine;
pub(crate) use bytes::Bytes;
pub(crate) use cks_sim::hsm::{Module, Provisioner, SoftToken};
pub(crate) use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
pub(crate) use cryptoki::mechanism::Mechanism;
pub(crate) use cryptoki::mechanism::aead::GcmParams;
pub(crate) use cryptoki::object::Attribute;
pub(crate) use cryptoki::object::ObjectHandle;
pub(crate) use cryptoki::session::{Session, UserType};
pub(crate) use cryptoki::slot::Slot;
pub(crate) use cryptoki::types::AuthPin;
pub(crate) use serde_json::{Value, json};
pub(crate) use std::collections::BTreeMap;
pub(crate) use std::net::SocketAddr;
pub(crate) use std::path::{Path, PathBuf};
pub(crate) use std::process::{Child, Command, Stdio};
pub(crate) use std::sync::Arc;
pub(crate) use std::sync::atomic::{AtomicU64, Ordering};
pub(crate) use std::time::{Duration, Instant};

pub(crate) type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Most requests one workload may send, whatever its duration.
pub(crate) const MAX_REQUESTS: u64 = 2_000_000;
/// Most raw PKCS#11 operations one raw loop may run.
pub(crate) const MAX_RAW_OPS: u64 = 5_000_000;
/// Most keys the raw generation loop creates.
pub(crate) const MAX_RAW_KEYS: u64 = 2_000;
/// Longest a count-bounded phase (key creation) may run.
pub(crate) const SETUP_DEADLINE: Duration = Duration::from_secs(600);
/// Warm-up before a timed workload's measured window.
pub(crate) const WARMUP: Duration = Duration::from_millis(500);
/// Warm-up before each slice of an interleaved pair (connections are open by then; this only
/// lets the server's queues fill).
pub(crate) const SLICE_WARMUP: Duration = Duration::from_millis(100);
/// Target length of one measured slice of an interleaved pair.
pub(crate) const SLICE: Duration = Duration::from_millis(750);
pub(crate) const USER_PIN: &str = "bench-user-pin";
pub(crate) const AMZ_JSON: &str = "application/x-amz-json-1.1";
/// The `[auth]` section of every measured server's configuration but the one that measures
/// signature verification (the requests are signed either way).
pub(crate) const AUTH_NONE: &str = "[auth]\nmode = \"none\"\n";

/// How many times each timed figure is measured; the best run is kept (`BENCH_RUNS`). A shared
/// VM's neighbours only ever slow a run down, so the best of a few is the steadiest estimate
/// of what the software can do, and ratios between figures stop depending on which one a
/// noisy moment happened to hit.
pub(crate) static RUNS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();

pub(crate) fn runs() -> usize {
    RUNS.get().copied().unwrap_or(1)
}

fn main() {
    if std::env::var_os("CKS_SIM_BIN").is_none() {
        // Plain `cargo bench` runs every bench target: this one needs scripts/bench's set-up.
        eprintln!("bench load: skipped (run scripts/bench, which sets CKS_SIM_BIN and the rest)");
        return;
    }
    if let Err(e) = run() {
        eprintln!("bench load: {e}");
        std::process::exit(1);
    }
}

pub(crate) struct Settings {
    pub(crate) secs: Duration,
    pub(crate) runs: usize,
    pub(crate) conns: usize,
    pub(crate) scale: Vec<usize>,
    pub(crate) dir: PathBuf,
    pub(crate) keep: bool,
    pub(crate) sim_bin: PathBuf,
    pub(crate) moto_bin: Option<PathBuf>,
}

pub(crate) fn settings() -> Res<Settings> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let secs: f64 = env("BENCH_SECS").map_or(Ok(3.0), |s| s.parse())?;
    if !(0.2..=120.0).contains(&secs) {
        return Err("BENCH_SECS must be between 0.2 and 120".into());
    }
    let runs: usize = env("BENCH_RUNS").map_or(Ok(3), |s| s.parse())?;
    if !(1..=20).contains(&runs) {
        return Err("BENCH_RUNS must be between 1 and 20".into());
    }
    let _ = RUNS.set(runs);
    let conns: usize = env("BENCH_CONNS").map_or(Ok(16), |s| s.parse())?;
    if !(1..=256).contains(&conns) {
        return Err("BENCH_CONNS must be between 1 and 256".into());
    }
    let mut scale = env("BENCH_SCALE")
        .unwrap_or_else(|| "10,1000,10000".into())
        .split(',')
        .map(|s| s.trim().parse::<usize>())
        .collect::<Result<Vec<_>, _>>()?;
    scale.sort_unstable();
    scale.dedup();
    if scale.first().is_none_or(|&n| n < 1) || scale.last().is_some_and(|&n| n > 50_000) {
        return Err("BENCH_SCALE must be key counts between 1 and 50000".into());
    }
    let sim_bin =
        PathBuf::from(env("CKS_SIM_BIN").ok_or("set CKS_SIM_BIN to target/release/cks-sim")?);
    let base = env("BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let dir = base.join(format!("cks-sim-bench-{}", short_id()));
    std::fs::create_dir_all(&dir)?;
    Ok(Settings {
        secs: Duration::from_secs_f64(secs),
        runs,
        conns,
        scale,
        dir,
        keep: env("BENCH_KEEP").is_some_and(|v| v == "1"),
        sim_bin,
        moto_bin: env("MOTO_SERVER_BIN").map(PathBuf::from),
    })
}

pub(crate) fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

pub(crate) fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

pub(crate) fn progress(msg: &str) {
    eprintln!("bench: {msg}");
}

pub(crate) fn run() -> Res<()> {
    let set = settings()?;
    progress(&format!(
        "{} s per workload, {} connections, scale {:?}, scratch {}",
        set.secs.as_secs_f64(),
        set.conns,
        set.scale,
        set.dir.display()
    ));
    let (kind, module) = bench_module()?;
    let mut figures = Figures::default();
    let (raw, raw_figures) = measure_raw(&set, kind, &module)?;
    figures.raw = Some(raw_figures);
    let out = if std::env::var("BENCH_RAW_ONLY").is_ok_and(|v| v == "1") {
        measure_raw_only(&set, &raw).map(|o| figures.raw_only = Some(o))
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(http_phases(&set, &raw, &mut figures))
    };
    if !set.keep {
        let _ = std::fs::remove_dir_all(&set.dir);
    } else {
        progress(&format!("kept {}", set.dir.display()));
    }
    // What was measured is printed even when a later phase failed.
    println!(
        "cks-sim benchmarks on {} ({}): {} cores, {} connections, {} s measured per workload \
         after {} ms warm-up, best of {} runs (p50/p99 and CPU from that run; interleaved pairs: \
         totals over all their slices); every figure from this one run of the bench",
        kind.name(),
        module.display(),
        std::thread::available_parallelism().map_or(0, usize::from),
        set.conns,
        set.secs.as_secs_f64(),
        WARMUP.as_millis(),
        set.runs
    );
    println!();
    table(&figures, set.conns).print();
    out
}

/// Phases 2 to 4 (and the key specs, last on the restarted server), each one's figures kept
/// as soon as it is done.
async fn http_phases(set: &Settings, raw: &RawToken, figures: &mut Figures) -> Res<()> {
    let mut running = workloads::start(set).await?;
    figures.http = Some(workloads::measure(set, raw, &mut running).await?);
    figures.scale = Some(scale::measure(set, raw, &mut running).await?);
    // Last on this server: the scale phase counts every key in ListKeys.
    figures.sign = Some(key_specs::measure(set, raw, &mut running).await?);
    running.sim.proc.stop();
    drop(running);
    figures.moto = Some(moto::measure(set).await?);
    Ok(())
}
