//! Phase 4, scale: the store grown to each of `BENCH_SCALE`'s key counts with CreateKey (the
//! first batch in parts alternating with raw `C_GenerateKey`), Encrypt round-robin over each
//! count interleaved with Encrypt on the second, 10-key token, full ListKeys pagination, and
//! a restart with every key.

use crate::*;

/// One key count's Encrypt.
pub(crate) struct ScalePoint {
    pub(crate) keys: usize,
    /// Encrypt over these keys (A), interleaved with Encrypt over the second token's 10 keys
    /// (B).
    pub(crate) pair: Paired,
    pub(crate) hot10: Option<LoadResult>,
    /// The token's session copies of keys after the measured runs (D7's fast path).
    pub(crate) copies: Option<u64>,
}

/// A CreateKey batch: the key counts before and after, and its figure.
pub(crate) struct CreateBatch {
    pub(crate) from: usize,
    pub(crate) to: usize,
    pub(crate) result: LoadResult,
}

/// A full ListKeys pagination.
pub(crate) struct ListPass {
    pub(crate) limit: u32,
    pub(crate) keys: usize,
    pub(crate) took: Duration,
    pub(crate) pages: u32,
}

/// The restart with every key on the token.
pub(crate) struct Restart {
    /// Spawn until the port file appeared.
    pub(crate) startup: Duration,
    /// The hypervisor's steal meanwhile (%).
    pub(crate) steal: Option<f64>,
    /// How long the stop before it took.
    pub(crate) stop_took: Duration,
    /// From the port file until a first Encrypt succeeded (`None`: not within 60 s).
    pub(crate) first_encrypt: Option<Duration>,
    /// Encrypt over the same 10 keys as [`ScalePoint::hot10`], on the fresh process.
    pub(crate) hot10: Option<LoadResult>,
}

/// Phase 4's figures.
pub(crate) struct ScaleFigures {
    pub(crate) batches: Vec<CreateBatch>,
    /// Raw generation, in parts alternating with the first batch's.
    pub(crate) raw_gen: Option<RawGen>,
    pub(crate) points: Vec<ScalePoint>,
    /// The 10-key workload interleaved with itself: the pairing's own noise.
    pub(crate) self_pair: Paired,
    pub(crate) lists: Vec<ListPass>,
    /// The key count at the end (the largest scale point).
    pub(crate) top: usize,
    pub(crate) first_start: Duration,
    pub(crate) restart: Restart,
}

impl ScaleFigures {
    /// The full pagination at ListKeys' default limit (100).
    pub(crate) fn list_default(&self) -> Option<Duration> {
        self.lists.iter().find(|l| l.limit == 100).map(|l| l.took)
    }
}

pub(crate) async fn measure(
    set: &Settings,
    raw: &RawToken,
    run: &mut Running,
) -> Res<ScaleFigures> {
    let small_bodies = small_bodies();
    let (batches, raw_gen) = (Vec::new(), None);
    let mut grown = Grown {
        have: 1, // the CloudHSM key of phase 2
        batches,
        raw_gen,
    };
    let mut points: Vec<ScalePoint> = Vec::new();
    // Ten keys of the largest count, measured again after the restart.
    let mut last_hot: Vec<Bytes> = Vec::new();
    for &target in &set.scale {
        grow(set, raw, run, &mut grown, target).await?;
        let (point, hot) = point(set, run, grown.have, &small_bodies).await?;
        last_hot = hot;
        points.push(point);
    }
    // The pairing's own noise: the same workload on both sides of an interleaved pair.
    progress("cks-sim: Encrypt on the 10-key token interleaved with itself");
    let same = || Workload::encrypt(set, run.srv, Arc::clone(&small_bodies));
    let self_pair = interleave(Side::Http(same()), Side::Http(same()), set.secs).await?;
    let mut lists = Vec::new();
    for limit in [100u32, 1000] {
        let (ids, took, pages) = list_all(&mut run.api, limit).await?;
        lists.push(ListPass {
            limit,
            keys: ids.len(),
            took,
            pages,
        });
    }
    let top = grown.have;
    let restart = restart(set, run, top, last_hot).await?;
    Ok(ScaleFigures {
        batches: grown.batches,
        raw_gen: grown.raw_gen,
        points,
        self_pair,
        lists,
        top,
        first_start: run.first_start,
        restart,
    })
}

/// The store's growth so far.
struct Grown {
    have: usize,
    batches: Vec<CreateBatch>,
    raw_gen: Option<RawGen>,
}

/// Create keys in the store until it holds `target`.
async fn grow(
    set: &Settings,
    raw: &RawToken,
    run: &mut Running,
    g: &mut Grown,
    target: usize,
) -> Res<()> {
    let (have, conns) = (g.have, set.conns);
    if target <= have {
        return Ok(());
    }
    let n = target - have;
    if n <= 20 {
        for _ in 0..n {
            create_key(&mut run.api, Some(&run.store)).await?;
        }
    } else {
        // The first batch is compared with raw generation: it is cut in `runs` parts, each
        // right after the raw token generated as many keys, so both grow their token over the
        // same object counts and see the same disk weather.
        let parts = if g.raw_gen.is_none() {
            runs().max(1)
        } else {
            1
        };
        progress(&format!(
            "cks-sim: CreateKey ×{n} ({have} → {target} keys) at {conns} conns{}",
            if parts > 1 {
                format!(", in {parts} parts after as many raw C_GenerateKey")
            } else {
                String::new()
            }
        ));
        let mut done = Vec::new();
        let mut left = n;
        for i in 0..parts {
            let chunk = left / (parts - i);
            left -= chunk;
            if parts > 1 || g.raw_gen.is_none() {
                let gen_part = RawGen::run(&raw.anchor, chunk as u64, SETUP_DEADLINE)?;
                g.raw_gen.get_or_insert_default().add(gen_part);
            }
            done.push(
                load(
                    run.srv,
                    "CreateKey",
                    Arc::new(vec![create_key_body(&run.store)]),
                    conns,
                    Bound::Count(chunk as u64),
                )
                .await?,
            );
        }
        let r = LoadResult::merge(done);
        if r.errors > 0 {
            return Err(format!("CreateKey failed: {}", r.first_error.unwrap_or_default()).into());
        }
        g.batches.push(CreateBatch {
            from: have,
            to: target,
            result: r,
        });
    }
    g.have = target;
    // Creating keys leaves the token's new files dirty in the page cache; flush them first,
    // so the kernel's writeback does not share the CPU with the next figure.
    settle_disk();
    Ok(())
}

/// Encrypt round-robin over the store's `have` keys, interleaved with the 10-key token; at
/// the largest count also over 10 of them. Returns the point and those 10 keys' bodies.
async fn point(
    set: &Settings,
    run: &mut Running,
    have: usize,
    small_bodies: &Arc<Vec<Bytes>>,
) -> Res<(ScalePoint, Vec<Bytes>)> {
    let (srv, conns) = (run.srv, set.conns);
    let small_ids: Vec<String> = (0..SMALL_KEYS).map(small_key_id).collect();
    let (ids, _, _) = list_all(&mut run.api, 1000).await?;
    let keys: Vec<&String> = ids
        .iter()
        .filter(|k| **k != run.kms_key && !small_ids.contains(*k))
        .collect();
    if keys.len() != have {
        return Err(format!(
            "expected {have} CloudHSM keys, ListKeys shows {}",
            keys.len()
        )
        .into());
    }
    progress(&format!("cks-sim: Encrypt round-robin over {have} keys"));
    let bodies: Vec<Bytes> = keys
        .iter()
        .map(|k| encrypt_body(k, &[0x42u8; 32]))
        .collect();
    let hot: Vec<Bytes> = bodies.iter().take(10).cloned().collect();
    let bodies = Arc::new(bodies);
    // One unmeasured Encrypt per key first: the first use of a key makes its session copy
    // (C_CopyObject, once per key and login), and the figure is the steady state.
    warm_up(
        srv,
        "Encrypt",
        Arc::clone(&bodies),
        conns,
        Bound::Count(bodies.len() as u64),
    )
    .await?;
    // A key first used inside a measured slice would charge it a copy (on kryoptic, a scan of
    // the whole token).
    if let Some(warm) = session_copies(&mut run.api, &run.cluster).await?
        && warm < have as u64
    {
        return Err(format!(
            "the warm-up left {} of the {have} keys without a session copy",
            have as u64 - warm
        )
        .into());
    }
    let pair = interleave(
        Side::Http(Workload::encrypt(set, srv, bodies)),
        Side::Http(Workload::encrypt(set, srv, Arc::clone(small_bodies))),
        set.secs,
    )
    .await?;
    // At the largest count, also 10 hot keys among them: the token's object count alone.
    let hot10 = if Some(&have) == set.scale.last() && have > 10 {
        progress(&format!("cks-sim: Encrypt over 10 of the {have} keys"));
        let hot = Arc::new(hot.clone());
        Some(load(srv, "Encrypt", hot, conns, Bound::Timed(set.secs)).await?)
    } else {
        None
    };
    let copies = session_copies(&mut run.api, &run.cluster).await?;
    let point = ScalePoint {
        keys: have,
        pair,
        hot10,
        copies,
    };
    Ok((point, hot))
}

/// Stop the server and start it again on the same data directory with `top` keys; a first
/// Encrypt, then the same 10 hot keys as before the restart.
async fn restart(
    set: &Settings,
    run: &mut Running,
    top: usize,
    last_hot: Vec<Bytes>,
) -> Res<Restart> {
    progress(&format!("cks-sim: restart with {top} keys"));
    let stop_took = run.sim.proc.stop();
    let steal0 = steal_ticks();
    let data = run.sim.data.clone();
    let (sim, startup) = start_sim(set, &data, "restart", None, None)?;
    let steal = steal_between(steal0, steal_ticks());
    run.sim = sim;
    run.srv = Server {
        addr: run.sim.addr,
        pid: run.sim.proc.pid(),
    };
    run.api = Api::new(run.sim.addr).await?;
    let t_first = Instant::now();
    let first_encrypt = loop {
        match run
            .api
            .call(
                "Encrypt",
                json!({"KeyId": run.hsm_key, "Plaintext": b64(b"x")}),
            )
            .await
        {
            Ok(_) => break Some(t_first.elapsed()),
            Err(_) if t_first.elapsed() < Duration::from_secs(60) => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(_) => break None,
        }
    };
    // The same ten hot keys on the restarted server: with the grown server's figure, this
    // tells the cost of the token's object count from that of a heap that grew with it.
    let mut hot10 = None;
    if top > 10 && first_encrypt.is_some() {
        progress(&format!(
            "cks-sim: Encrypt over 10 of the {top} keys after the restart"
        ));
        let warm = Arc::new(last_hot);
        let (srv, conns) = (run.srv, set.conns);
        load(srv, "Encrypt", Arc::clone(&warm), conns, Bound::Count(10)).await?;
        hot10 = Some(load(srv, "Encrypt", warm, conns, Bound::Timed(set.secs)).await?);
    }
    Ok(Restart {
        startup,
        steal,
        stop_took,
        first_encrypt,
        hot10,
    })
}
