//! Workloads: timed, counted and sliced runs of one operation, the best of several runs, and
//! two workloads interleaved in slices.

use crate::*;

#[derive(Default)]
pub(crate) struct LoadResult {
    pub(crate) n: u64,
    /// CPU time (user, system) per measured request, in µs: the server's and this load
    /// generator's.
    pub(crate) server_cpu_us: Option<(f64, f64)>,
    pub(crate) client_cpu_us: Option<(f64, f64)>,
    /// The part of the server's CPU per request spent on its PKCS#11 threads, in µs.
    pub(crate) token_cpu_us: Option<f64>,
    /// The PKCS#11 threads' nice values at the end of the run (sorted, each once).
    pub(crate) token_nice: Vec<i32>,
    /// Share of the machine's CPU time the hypervisor gave to other guests meanwhile, in %.
    pub(crate) steal_pct: Option<f64>,
    pub(crate) rps: f64,
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
    pub(crate) elapsed: Duration,
    pub(crate) errors: u64,
    pub(crate) reconnects: u64,
    pub(crate) first_error: Option<String>,
    /// Every measured latency, in µs, sorted.
    pub(crate) lat: Vec<u64>,
}

/// The `p` quantile of sorted latencies (µs).
pub(crate) fn percentile(lat: &[u64], p: f64) -> Duration {
    if lat.is_empty() {
        return Duration::ZERO;
    }
    let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
    Duration::from_micros(lat[i])
}

impl LoadResult {
    /// One result for consecutive counted runs: their requests, time, latencies, errors and
    /// CPU time together.
    pub(crate) fn merge(parts: Vec<LoadResult>) -> LoadResult {
        let mut m = LoadResult::default();
        let (mut sv, mut cl) = (Some((0.0, 0.0)), Some((0.0, 0.0)));
        let mut steal = Some(0.0);
        let mut token = Some(0.0);
        let weigh = |acc: &mut Option<(f64, f64)>, x: Option<(f64, f64)>, n: f64| {
            *acc = match (*acc, x) {
                (Some(a), Some(x)) => Some((a.0 + x.0 * n, a.1 + x.1 * n)),
                _ => None,
            };
        };
        for p in parts {
            let n = p.n as f64;
            weigh(&mut sv, p.server_cpu_us, n);
            weigh(&mut cl, p.client_cpu_us, n);
            token = token.zip(p.token_cpu_us).map(|(a, t)| a + t * n);
            if m.token_nice.is_empty() {
                m.token_nice = p.token_nice;
            }
            steal = steal
                .zip(p.steal_pct)
                .map(|(a, s)| a + s * p.elapsed.as_secs_f64());
            m.n += p.n;
            m.elapsed += p.elapsed;
            m.errors += p.errors;
            m.reconnects += p.reconnects;
            if m.first_error.is_none() {
                m.first_error = p.first_error;
            }
            m.lat.extend(p.lat);
        }
        m.lat.sort_unstable();
        let n = (m.n as f64).max(1.0);
        m.server_cpu_us = sv.map(|a| (a.0 / n, a.1 / n));
        m.client_cpu_us = cl.map(|a| (a.0 / n, a.1 / n));
        m.token_cpu_us = token.map(|t| t / n);
        m.steal_pct = steal.map(|s| s / m.elapsed.as_secs_f64().max(1e-9));
        m.rps = m.n as f64 / m.elapsed.as_secs_f64().max(1e-9);
        m.p50 = percentile(&m.lat, 0.50);
        m.p99 = percentile(&m.lat, 0.99);
        m
    }
}

/// How a workload ends.
#[derive(Clone, Copy)]
pub(crate) enum Bound {
    /// Warm up, then measure for this long (and never more than `MAX_REQUESTS`).
    Timed(Duration),
    /// One slice of an interleaved pair: a short warm-up, then measure for this long.
    Slice(Duration),
    /// Send exactly this many requests (within `SETUP_DEADLINE`), all measured.
    Count(u64),
}

pub(crate) struct Sample {
    pub(crate) start_us: u64,
    pub(crate) end_us: u64,
    pub(crate) ok: bool,
}

pub(crate) struct WorkerOut {
    pub(crate) samples: Vec<Sample>,
    pub(crate) reconnects: u64,
    pub(crate) first_error: Option<String>,
}

/// Drive `op` with `conns` keep-alive connections. In a timed workload connection `i` sends
/// `bodies[i]`, `bodies[i + conns]`, … round-robin; it is run [`runs`] times and the run with
/// the best rate kept (errors of every run count). A counted one (`Bound::Count(n)`) sends
/// request `k` of the run with `bodies[k % len]`, whichever connection is free: `n` =
/// `bodies.len()` sends every body exactly once (a warm-up that reaches every key; per
/// connection, the faster connections would take the slower ones' tickets and leave keys out).
pub(crate) async fn load(
    srv: Server,
    op: &str,
    bodies: Arc<Vec<Bytes>>,
    conns: usize,
    bound: Bound,
) -> Res<LoadResult> {
    let w = Workload {
        srv,
        op,
        bodies,
        conns,
        bound,
    };
    let n = match bound {
        Bound::Timed(_) => runs(),
        Bound::Slice(_) | Bound::Count(_) => 1,
    };
    let mut best = Best::default();
    for _ in 0..n {
        best.add(w.run_once().await?);
    }
    best.done()
}

/// An unmeasured run of `op` (session copies made, caches warm) that must not fail: the
/// figures after it would measure errors.
pub(crate) async fn warm_up(
    srv: Server,
    op: &str,
    bodies: Arc<Vec<Bytes>>,
    conns: usize,
    bound: Bound,
) -> Res<()> {
    let w = load(srv, op, bodies, conns, bound).await?;
    if w.errors > 0 {
        return Err(format!(
            "warm-up {op} on {} failed: {}",
            srv.addr,
            w.first_error.unwrap_or_default()
        )
        .into());
    }
    Ok(())
}

/// Two workloads measured in short interleaved slices, A B B A A B B A …: each gets [`runs`]
/// × `secs` of measured time in all, cut in slices of about [`SLICE`]. Both see the same spells
/// of a shared machine's weather, and a steady drift cancels out within each A B B A block.
/// Each side's figure is its total over all its slices (an unmeasured slice of B goes first).
pub(crate) async fn interleave(a: Side<'_>, b: Side<'_>, secs: Duration) -> Res<Paired> {
    let total = secs * runs() as u32;
    let blocks = ((total.as_secs_f64() / SLICE.as_secs_f64() / 2.0).round() as u32).max(1);
    let slice = total / (2 * blocks);
    let (sa, sb) = (a.sliced(slice), b.sliced(slice));
    let (mut ra, mut rb, mut blocks_ratio) = (Vec::new(), Vec::new(), Vec::new());
    // An unmeasured slice of B first, so that A's first slice follows B like its others do,
    // not whatever ran before the pair.
    let lead = sb.run_once().await?;
    for _ in 0..blocks {
        let a1 = sa.run_once().await?;
        let b1 = sb.run_once().await?;
        let b2 = sb.run_once().await?;
        let a2 = sa.run_once().await?;
        blocks_ratio.push(ratio(a1.rps + a2.rps, b1.rps + b2.rps));
        ra.extend([a1, a2]);
        rb.extend([b1, b2]);
    }
    blocks_ratio.sort_by(f64::total_cmp);
    let mut b = LoadResult::merge(rb);
    b.errors += lead.errors;
    if b.first_error.is_none() {
        b.first_error = lead.first_error;
    }
    Ok(Paired {
        a: LoadResult::merge(ra),
        b,
        blocks: blocks_ratio,
    })
}

/// One side of an [`interleave`]d pair: an HTTP workload, or the raw in-process encryption
/// loop (which has no latencies or server CPU to report, only its count and time).
pub(crate) enum Side<'a> {
    Http(Workload<'a>),
    Raw(&'a RawEnc<'a>, Duration),
    RawSign(&'a RawSign<'a>, Duration),
}

impl Side<'_> {
    pub(crate) fn sliced(&self, d: Duration) -> Self {
        match self {
            Side::Http(w) => Side::Http(w.sliced(d)),
            Side::Raw(r, _) => Side::Raw(r, d),
            Side::RawSign(r, _) => Side::RawSign(r, d),
        }
    }

    pub(crate) async fn run_once(&self) -> Res<LoadResult> {
        match self {
            Side::Http(w) => w.run_once().await,
            Side::Raw(r, d) => Ok(counted(r.measure(SLICE_WARMUP, *d)?)),
            Side::RawSign(r, d) => Ok(counted(r.measure(SLICE_WARMUP, *d)?)),
        }
    }
}

/// A raw loop's count and time as a result (no latencies or server CPU).
pub(crate) fn counted((n, elapsed): (u64, Duration)) -> LoadResult {
    LoadResult {
        n,
        elapsed,
        rps: n as f64 / elapsed.as_secs_f64().max(1e-9),
        ..LoadResult::default()
    }
}

/// The result of [`interleave`].
pub(crate) struct Paired {
    pub(crate) a: LoadResult,
    pub(crate) b: LoadResult,
    /// A's rate over B's in each A B B A block, sorted.
    pub(crate) blocks: Vec<f64>,
}

impl Paired {
    /// A's rate over B's, over all slices.
    pub(crate) fn ratio(&self) -> f64 {
        ratio(self.a.rps, self.b.rps)
    }

    /// "N blocks: lo–hi%", the spread of the per-block ratios.
    pub(crate) fn spread(&self) -> String {
        match (self.blocks.first(), self.blocks.last()) {
            (Some(lo), Some(hi)) => format!(
                "{} A B B A blocks: {:.0}–{:.0}%",
                self.blocks.len(),
                lo * 100.0,
                hi * 100.0
            ),
            _ => String::new(),
        }
    }
}

/// The fastest of several runs of one workload, with the errors of all of them.
#[derive(Default)]
pub(crate) struct Best {
    pub(crate) best: Option<LoadResult>,
    pub(crate) errors: u64,
    pub(crate) first_error: Option<String>,
}

impl Best {
    pub(crate) fn add(&mut self, r: LoadResult) {
        self.errors += r.errors;
        if self.first_error.is_none() {
            self.first_error.clone_from(&r.first_error);
        }
        if self.best.as_ref().is_none_or(|b| r.rps > b.rps) {
            self.best = Some(r);
        }
    }

    pub(crate) fn done(self) -> Res<LoadResult> {
        let mut best = self.best.ok_or("no run")?;
        best.errors = self.errors;
        best.first_error = self.first_error;
        Ok(best)
    }
}

/// One HTTP workload (see [`load`]).
pub(crate) struct Workload<'a> {
    pub(crate) srv: Server,
    pub(crate) op: &'a str,
    pub(crate) bodies: Arc<Vec<Bytes>>,
    pub(crate) conns: usize,
    pub(crate) bound: Bound,
}

impl Workload<'static> {
    /// Encrypt with `bodies` on `srv`, timed at the run's measured seconds and connections.
    pub(crate) fn encrypt(set: &Settings, srv: Server, bodies: Arc<Vec<Bytes>>) -> Self {
        Workload {
            srv,
            op: "Encrypt",
            bodies,
            conns: set.conns,
            bound: Bound::Timed(set.secs),
        }
    }
}

impl Workload<'_> {
    /// The same workload as one slice of an interleaved pair.
    pub(crate) fn sliced(&self, d: Duration) -> Self {
        Workload {
            srv: self.srv,
            op: self.op,
            bodies: Arc::clone(&self.bodies),
            conns: self.conns,
            bound: Bound::Slice(d),
        }
    }

    pub(crate) async fn run_once(&self) -> Res<LoadResult> {
        let (srv, op, conns, bound) = (self.srv, self.op, self.conns, self.bound);
        let bodies = Arc::clone(&self.bodies);
        if bodies.is_empty() {
            return Err("no request bodies".into());
        }
        let addr = srv.addr;
        let requests: Arc<Vec<Bytes>> =
            Arc::new(bodies.iter().map(|b| request(addr, op, b)).collect());
        let tickets = Arc::new(AtomicU64::new(0));
        let (max, warm, stop) = match bound {
            Bound::Timed(d) => (MAX_REQUESTS, WARMUP, WARMUP + d),
            Bound::Slice(d) => (MAX_REQUESTS, SLICE_WARMUP, SLICE_WARMUP + d),
            Bound::Count(n) => (n, Duration::ZERO, SETUP_DEADLINE),
        };
        // Connect everyone first, so the window measures requests, not handshakes.
        let mut conns_open = Vec::with_capacity(conns);
        for _ in 0..conns {
            conns_open.push(Conn::open(addr).await?);
        }
        let t0 = Instant::now();
        // CPU time over the measured window, sampled by a timer task (timed runs) or around the
        // whole run (counted runs).
        let cpu = tokio::spawn(async move {
            tokio::time::sleep_until((t0 + warm).into()).await;
            let a = cpu_pair(srv.pid);
            if matches!(bound, Bound::Count(_)) {
                // The end is sampled once every worker is done.
                (a, None)
            } else {
                tokio::time::sleep_until((t0 + stop).into()).await;
                (a, Some(cpu_pair(srv.pid)))
            }
        });
        let counted = matches!(bound, Bound::Count(_));
        let mut tasks = Vec::new();
        for (i, mut conn) in conns_open.into_iter().enumerate() {
            let (requests, tickets) = (Arc::clone(&requests), Arc::clone(&tickets));
            tasks.push(tokio::spawn(async move {
                let mut out = WorkerOut {
                    samples: Vec::with_capacity(4096),
                    reconnects: 0,
                    first_error: None,
                };
                let mut j = i;
                loop {
                    if t0.elapsed() >= stop {
                        break;
                    }
                    let ticket = tickets.fetch_add(1, Ordering::Relaxed);
                    if ticket >= max {
                        break;
                    }
                    let k = if counted { ticket as usize } else { j };
                    j += conns;
                    let req = &requests[k % requests.len()];
                    let start = t0.elapsed();
                    // A server without keep-alive (moto's Werkzeug answers `Connection: close`)
                    // costs a new connection per request, inside the measured latency.
                    if !conn.is_open() {
                        out.reconnects += 1;
                        if let Err(e) = conn.reconnect().await {
                            out.first_error.get_or_insert_with(|| e.to_string());
                            break;
                        }
                    }
                    let ok = match conn.exchange(req).await {
                        Ok((200, _)) => true,
                        Ok((status, range)) => {
                            if out.first_error.is_none() {
                                out.first_error = Some(format!(
                                    "HTTP {status} {}",
                                    String::from_utf8_lossy(conn.body(range))
                                ));
                            }
                            false
                        }
                        Err(e) => {
                            if out.first_error.is_none() {
                                out.first_error = Some(e.to_string());
                            }
                            false
                        }
                    };
                    let end = t0.elapsed();
                    out.samples.push(Sample {
                        start_us: start.as_micros() as u64,
                        end_us: end.as_micros() as u64,
                        ok,
                    });
                }
                out
            }));
        }
        let mut samples = Vec::new();
        let mut res = LoadResult::default();
        for t in tasks {
            let out = t.await?;
            samples.extend(out.samples);
            res.reconnects += out.reconnects;
            if res.first_error.is_none() {
                res.first_error = out.first_error;
            }
        }
        let cpu_end = cpu_pair(srv.pid);
        let cpu = match cpu.await? {
            (a, Some(b)) => (a, b),
            (a, None) => (a, cpu_end),
        };
        let (lo, hi) = match bound {
            Bound::Timed(_) | Bound::Slice(_) => (warm.as_micros() as u64, stop.as_micros() as u64),
            Bound::Count(_) => (0, samples.iter().map(|s| s.end_us).max().unwrap_or(0)),
        };
        let mut lat: Vec<u64> = Vec::with_capacity(samples.len());
        for s in samples
            .iter()
            .filter(|s| s.start_us >= lo && s.end_us <= hi)
        {
            if s.ok {
                lat.push(s.end_us - s.start_us);
            } else {
                res.errors += 1;
            }
        }
        lat.sort_unstable();
        res.n = lat.len() as u64;
        res.elapsed = Duration::from_micros(hi.saturating_sub(lo));
        res.rps = res.n as f64 / res.elapsed.as_secs_f64().max(1e-9);
        res.p50 = percentile(&lat, 0.50);
        res.p99 = percentile(&lat, 0.99);
        res.lat = lat;
        let per_req = |a: Option<(f64, f64)>, b: Option<(f64, f64)>| match (a, b) {
            (Some(a), Some(b)) if res.n > 0 => {
                let n = res.n as f64;
                Some(((b.0 - a.0) * 1e6 / n, (b.1 - a.1) * 1e6 / n))
            }
            _ => None,
        };
        res.server_cpu_us = per_req(cpu.0.0, cpu.1.0);
        res.client_cpu_us = per_req(cpu.0.1, cpu.1.1);
        res.token_cpu_us = match (&cpu.0.3, &cpu.1.3) {
            (Some(a), Some(b)) if res.n > 0 => Some(b.secs_since(a) * 1e6 / res.n as f64),
            _ => None,
        };
        res.token_nice = cpu.1.3.map(|t| t.nice).unwrap_or_default();
        res.steal_pct = steal_between(cpu.0.2, cpu.1.2);
        Ok(res)
    }
}

pub(crate) fn encrypt_body(key: &str, pt: &[u8]) -> Bytes {
    Bytes::from(json!({"KeyId": key, "Plaintext": b64(pt)}).to_string())
}

pub(crate) fn gdk_body(key: &str) -> Bytes {
    Bytes::from(json!({"KeyId": key, "KeySpec": "AES_256"}).to_string())
}

pub(crate) struct Trio {
    pub(crate) encrypt: LoadResult,
    pub(crate) decrypt: LoadResult,
    pub(crate) gdk: LoadResult,
    /// With a raw side: the raw single-session encryption rate interleaved with Encrypt, and
    /// the spread of Encrypt over it in the A B B A blocks.
    pub(crate) raw_enc32_1: Option<(f64, String)>,
}

/// Encrypt, Decrypt and GenerateDataKey on `key`. With `raw`, Encrypt is interleaved in
/// slices with the raw single-session figure it is compared with (returned with it).
pub(crate) async fn trio(
    srv: Server,
    api: &mut Api,
    key: &str,
    set: &Settings,
    raw: Option<&RawToken>,
) -> Res<Trio> {
    let pt = [0x42u8; 32];
    let enc = api
        .call("Encrypt", json!({"KeyId": key, "Plaintext": b64(&pt)}))
        .await?;
    let blob = enc["CiphertextBlob"]
        .as_str()
        .ok_or("Encrypt returned no CiphertextBlob")?;
    let dec_body = Bytes::from(json!({ "CiphertextBlob": blob }).to_string());
    let b = Bound::Timed(set.secs);
    let body = Arc::new(vec![encrypt_body(key, &pt)]);
    let (encrypt, raw_enc32_1) = match raw {
        Some(raw) => {
            let enc = raw.one_session(&pt);
            let http = Workload::encrypt(set, srv, body);
            let pair = interleave(Side::Http(http), Side::Raw(&enc, set.secs), set.secs).await?;
            let spread = pair.spread();
            (pair.a, Some((pair.b.rps, spread)))
        }
        None => (load(srv, "Encrypt", body, set.conns, b).await?, None),
    };
    let decrypt = load(srv, "Decrypt", Arc::new(vec![dec_body]), set.conns, b).await?;
    let gdk = load(
        srv,
        "GenerateDataKey",
        Arc::new(vec![gdk_body(key)]),
        set.conns,
        b,
    )
    .await?;
    Ok(Trio {
        encrypt,
        decrypt,
        gdk,
        raw_enc32_1,
    })
}
