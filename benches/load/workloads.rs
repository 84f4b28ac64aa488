//! Phase 2, cks-sim over HTTP: a release `cks-sim serve` on loopback, Encrypt, Decrypt and
//! GenerateDataKey on a CloudHSM-store key (Encrypt interleaved with the raw token's
//! single-session figure) and on an AWS_KMS key, Encrypt of 4 KiB, the HTTP floor
//! (ListAliases), and Encrypt on second servers with `[hsm] thread_nice = 0` and with
//! `[auth] mode = "sigv4"`.

use crate::*;

/// The server the HTTP phases share: started here, restarted by the scale phase.
pub(crate) struct Running {
    pub(crate) sim: Sim,
    pub(crate) srv: Server,
    pub(crate) api: Api,
    /// A connected key store on the default cluster, and that cluster.
    pub(crate) store: String,
    pub(crate) cluster: String,
    /// A key in the store, and an AWS_KMS key.
    pub(crate) hsm_key: String,
    pub(crate) kms_key: String,
    /// Spawn until the port file appeared, on a fresh data directory.
    pub(crate) first_start: Duration,
}

/// Phase 2's figures.
pub(crate) struct HttpFigures {
    /// On the CloudHSM key (with the raw single-session rate interleaved with Encrypt).
    pub(crate) hsm: Trio,
    pub(crate) enc4k: LoadResult,
    /// On the AWS_KMS key.
    pub(crate) kms: Trio,
    /// ListAliases (Limit 1): no HSM call.
    pub(crate) floor: LoadResult,
    /// The default server (A) against one with `thread_nice = 0` (B).
    pub(crate) plain: Paired,
    /// The default server (A) against one that verifies signatures (B).
    pub(crate) signed: Paired,
}

impl HttpFigures {
    /// The raw single-session encryption rate measured beside cks-sim's Encrypt, and the
    /// spread of their ratio.
    pub(crate) fn raw_enc32_1(&self) -> (f64, &str) {
        self.hsm
            .raw_enc32_1
            .as_ref()
            .map_or((0.0, ""), |(r, s)| (*r, s.as_str()))
    }
}

/// Start `cks-sim serve` on a fresh data directory (seeded with the second, 10-key token),
/// with a connected key store, a key in it and an AWS_KMS key.
pub(crate) async fn start(set: &Settings) -> Res<Running> {
    let data = set.dir.join("data");
    progress("cks-sim: starting (fresh data dir)");
    let seed = set.dir.join("seed.toml");
    std::fs::write(&seed, small_token_seed())?;
    let (sim, first_start) = start_sim(set, &data, "first", Some(&seed), None)?;
    let srv = Server {
        addr: sim.addr,
        pid: sim.proc.pid(),
    };
    let mut api = Api::new(srv.addr).await?;
    let store = connected_store(&sim, &mut api).await?;
    let cluster = read_data(&sim.data, "default-cluster-id")?;
    let hsm_key = create_key(&mut api, Some(&store)).await?;
    let kms_key = create_key(&mut api, None).await?;
    Ok(Running {
        sim,
        srv,
        api,
        store,
        cluster,
        hsm_key,
        kms_key,
        first_start,
    })
}

/// The request bodies of Encrypt over the second token's 10 keys.
pub(crate) fn small_bodies() -> Arc<Vec<Bytes>> {
    Arc::new(
        (0..SMALL_KEYS)
            .map(|i| encrypt_body(&small_key_id(i), &[0x42u8; 32]))
            .collect(),
    )
}

pub(crate) async fn measure(set: &Settings, raw: &RawToken, run: &mut Running) -> Res<HttpFigures> {
    let (conns, srv) = (set.conns, run.srv);
    let (hsm_key, kms_key) = (run.hsm_key.clone(), run.kms_key.clone());
    progress(&format!(
        "cks-sim: pid {} on {}; warming up (2 s of Encrypt and GenerateDataKey, not measured)",
        srv.pid, srv.addr
    ));
    for (op, body) in [
        ("Encrypt", encrypt_body(&hsm_key, &[0x42u8; 32])),
        ("GenerateDataKey", gdk_body(&kms_key)),
    ] {
        warm_up(srv, op, Arc::new(vec![body]), conns, Bound::Timed(WARMUP)).await?;
    }
    progress("cks-sim: Encrypt/Decrypt/GenerateDataKey on a CloudHSM key");
    let hsm = trio(srv, &mut run.api, &hsm_key, set, Some(raw)).await?;
    let enc4k = load(
        srv,
        "Encrypt",
        Arc::new(vec![encrypt_body(&hsm_key, &[0x42u8; 4096])]),
        conns,
        Bound::Timed(set.secs),
    )
    .await?;
    progress("cks-sim: the same on an AWS_KMS key");
    let kms = trio(srv, &mut run.api, &kms_key, set, None).await?;
    // What a KMS request costs without any HSM work: routing, the JSON in and out, loopback
    // TCP. Encrypt's server CPU beyond it is what the token's work and its hand-off cost.
    progress("cks-sim: ListAliases (no HSM call), the HTTP floor");
    let floor = load(
        srv,
        "ListAliases",
        Arc::new(vec![Bytes::from_static(br#"{"Limit":1}"#)]),
        conns,
        Bound::Timed(set.secs),
    )
    .await?;
    // The seeded second token's keys, warmed once (their session copies made).
    wait_connected(&mut run.api, SMALL_STORE).await?;
    let small_bodies = small_bodies();
    warm_up(
        srv,
        "Encrypt",
        Arc::clone(&small_bodies),
        conns,
        Bound::Count(SMALL_KEYS as u64),
    )
    .await?;
    // The same 10-key workload on a second server whose token threads keep the process's
    // priority (`[hsm] thread_nice = 0`, what a server without CAP_SYS_NICE gets), interleaved
    // with this one.
    progress(
        "cks-sim: Encrypt with the token's threads at the process's priority (thread_nice = 0)",
    );
    let plain = plain_priority(set, srv, &small_bodies).await?;
    progress("cks-sim: Encrypt with every signature verified ([auth] mode = \"sigv4\")");
    let signed = sigv4_priced(set, srv, &small_bodies).await?;
    Ok(HttpFigures {
        hsm,
        enc4k,
        kms,
        floor,
        plain,
        signed,
    })
}

/// Encrypt over the seeded 10-key token on `srv` (A) interleaved with the same on a fresh
/// server configured with `[hsm] thread_nice = 0` (B).
pub(crate) async fn plain_priority(
    set: &Settings,
    srv: Server,
    bodies: &Arc<Vec<Bytes>>,
) -> Res<Paired> {
    let config = set.dir.join("thread-nice-0.toml");
    std::fs::write(&config, format!("[hsm]\nthread_nice = 0\n{AUTH_NONE}"))?;
    let seed = set.dir.join("seed-nice-0.toml");
    std::fs::write(&seed, small_token_seed())?;
    let data = set.dir.join("data-nice-0");
    let (sim, _) = start_sim(set, &data, "nice-0", Some(&seed), Some(&config))?;
    let other = Server {
        addr: sim.addr,
        pid: sim.proc.pid(),
    };
    let mut api = Api::new(other.addr).await?;
    wait_connected(&mut api, SMALL_STORE).await?;
    let work = |srv| Workload::encrypt(set, srv, Arc::clone(bodies));
    warm_up(
        other,
        "Encrypt",
        Arc::clone(bodies),
        set.conns,
        Bound::Timed(WARMUP),
    )
    .await?;
    let pair = interleave(Side::Http(work(srv)), Side::Http(work(other)), set.secs).await?;
    drop(sim);
    Ok(pair)
}

/// Encrypt over the seeded 10-key token on `srv` (A, `[auth] mode = "none"`) interleaved with
/// the same on a fresh server that verifies every request's signature (B, `mode = "sigv4"`).
pub(crate) async fn sigv4_priced(
    set: &Settings,
    srv: Server,
    bodies: &Arc<Vec<Bytes>>,
) -> Res<Paired> {
    let config = set.dir.join("auth-sigv4.toml");
    std::fs::write(&config, "[auth]\nmode = \"sigv4\"\n")?;
    let seed = set.dir.join("seed-sigv4.toml");
    std::fs::write(&seed, small_token_seed())?;
    let data = set.dir.join("data-sigv4");
    let (sim, _) = start_sim(set, &data, "sigv4", Some(&seed), Some(&config))?;
    let other = Server {
        addr: sim.addr,
        pid: sim.proc.pid(),
    };
    let mut api = Api::new(other.addr).await?;
    wait_connected(&mut api, SMALL_STORE).await?;
    let work = |srv| Workload::encrypt(set, srv, Arc::clone(bodies));
    warm_up(
        other,
        "Encrypt",
        Arc::clone(bodies),
        set.conns,
        Bound::Timed(WARMUP),
    )
    .await?;
    let pair = interleave(Side::Http(work(srv)), Side::Http(work(other)), set.secs).await?;
    drop(sim);
    Ok(pair)
}
