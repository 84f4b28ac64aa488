//! Every figure of the run as rows of the table, from the phases' structs (the targets:
//! [`crate::targets`]).

use crate::*;

/// What the run measured: each phase's figures, `None` for a phase not run (or failed).
#[derive(Default)]
pub(crate) struct Figures {
    pub(crate) raw: Option<RawFigures>,
    pub(crate) raw_only: Option<RawOnly>,
    pub(crate) http: Option<HttpFigures>,
    pub(crate) scale: Option<ScaleFigures>,
    pub(crate) sign: Option<Vec<SignFigure>>,
    /// `Some(None)`: phase 3 ran without moto (`MOTO_SERVER_BIN` unset).
    pub(crate) moto: Option<Option<Trio>>,
}

/// The table of every figure, the ratios and the targets, rows in section order.
pub(crate) fn table(f: &Figures, conns: usize) -> Table {
    let mut t = Table::default();
    if let Some(raw) = &f.raw {
        raw_rows(&mut t, raw);
    }
    if let Some(o) = &f.raw_only {
        t.add(
            LIMIT,
            "raw AES-GCM encrypt 32 B, 1 session",
            rate(o.enc32_1),
            RAW_ONE_NOTE,
        );
        t.add(
            LIMIT,
            "raw C_GenerateKey (token AES-256 key), 1 session",
            rate(o.generate.rate()),
            o.generate.note(),
        );
    }
    if let Some(h) = &f.http {
        http_rows(&mut t, h, conns);
    }
    if let Some(s) = &f.scale {
        create_rows(&mut t, s, conns);
        scale_rows(&mut t, s);
    }
    if let Some(sign) = &f.sign {
        sign_rows(&mut t, sign, conns);
    }
    if let Some(m) = &f.moto {
        moto_rows(&mut t, m.as_ref(), conns);
    }
    if let (Some(raw), Some(h)) = (&f.raw, &f.http) {
        ratio_rows(&mut t, f, raw, h);
    }
    targets(&mut t, f);
    t
}

pub(crate) const LIMIT: &str = "1 limit";
const CKS_SIM: &str = "2 cks-sim";
const MOTO: &str = "3 moto";
const SCALE: &str = "4 scale";
const RATIO: &str = "5 ratio";

fn raw_rows(t: &mut Table, raw: &RawFigures) {
    let pool = raw.pool;
    t.add(
        LIMIT,
        format!("raw AES-GCM encrypt 32 B, {pool} sessions"),
        rate(raw.enc32_n),
        format!("{pool} threads = the pool's max_sessions"),
    );
    t.add(
        LIMIT,
        "raw AES-GCM encrypt 4 KiB, 1 session",
        rate(raw.enc4k_1),
        "",
    );
    t.add(
        LIMIT,
        format!("raw AES-GCM encrypt 4 KiB, {pool} sessions"),
        rate(raw.enc4k_n),
        "",
    );
    t.add(
        LIMIT,
        "raw AES-GCM encrypt 32 B, 1 session, fixed IV",
        rate(raw.enc32_fixed_iv),
        "without C_GenerateRandom, for reference",
    );
    if let Some(rs) = &raw.scale {
        t.add(
            LIMIT,
            format!(
                "raw AES-GCM encrypt 32 B, 1 session, {} keys round-robin",
                thousands(rs.keys as u64)
            ),
            rate(rs.many_rps),
            format!(
                "session keys, as cks-sim's session copies; {:.0}% of {SMALL_KEYS} of them \
                 round-robin, {}, interleaved ({})",
                rs.ratio * 100.0,
                rate(rs.few_rps),
                rs.spread
            ),
        );
    }
}

fn http_rows(t: &mut Table, h: &HttpFigures, conns: usize) {
    let (raw1, _) = h.raw_enc32_1();
    t.add(
        LIMIT,
        "raw AES-GCM encrypt 32 B, 1 session",
        rate(raw1),
        format!(
            "{RAW_ONE_NOTE}; interleaved in slices with cks-sim's Encrypt (CloudHSM key), which \
             it is compared with (total over its slices)"
        ),
    );
    let s = CKS_SIM;
    let c = format!("{conns} conns");
    t.add_load(
        s,
        format!("Encrypt 32 B, CloudHSM key, {c}"),
        &h.hsm.encrypt,
        "",
    );
    t.add_load(s, format!("Decrypt, CloudHSM key, {c}"), &h.hsm.decrypt, "");
    t.add_load(
        s,
        format!("GenerateDataKey, CloudHSM key, {c}"),
        &h.hsm.gdk,
        "AES_256",
    );
    t.add_load(s, format!("Encrypt 4 KiB, CloudHSM key, {c}"), &h.enc4k, "");
    t.add_load(
        s,
        format!("Encrypt 32 B, AWS_KMS key, {c}"),
        &h.kms.encrypt,
        "internal token",
    );
    t.add_load(s, format!("Decrypt, AWS_KMS key, {c}"), &h.kms.decrypt, "");
    t.add_load(
        s,
        format!("ListAliases (Limit 1), {c}"),
        &h.floor,
        "no HSM call: the HTTP and JSON floor of a KMS request",
    );
    t.add_load(
        s,
        format!("GenerateDataKey, AWS_KMS key, {c}"),
        &h.kms.gdk,
        "AES_256",
    );
    let plain = &h.plain;
    t.add_load(
        s,
        format!("Encrypt, 10 keys, thread_nice = 0, {c}"),
        &plain.b,
        format!(
            "a second server (own data dir and token) whose PKCS#11 threads keep the process's \
             priority; the default server's {} ({}) against it: {:.0}% ({})",
            rate(plain.a.rps),
            match nice_note(&plain.a.token_nice) {
                n if n.is_empty() => "token threads not seen".into(),
                n => format!("token threads{n}"),
            },
            plain.ratio() * 100.0,
            plain.spread()
        ),
    );
    let signed = &h.signed;
    t.add_load(
        s,
        format!("Encrypt, 10 keys, [auth] sigv4, {c}"),
        &signed.b,
        format!(
            "a second server that verifies each request's SigV4 signature; the default server \
             ([auth] none, {}, {} server CPU) against it: {:.0}% ({})",
            rate(signed.a.rps),
            signed
                .a
                .server_cpu_us
                .map_or_else(|| "?".into(), |(u, k)| format!("{:.0} µs", u + k)),
            signed.ratio() * 100.0,
            signed.spread()
        ),
    );
}

fn create_rows(t: &mut Table, s: &ScaleFigures, conns: usize) {
    if let Some(g) = &s.raw_gen {
        t.add(
            LIMIT,
            "raw C_GenerateKey (token AES-256 key), 1 session",
            rate(g.rate()),
            format!(
                "{}; in parts alternating with the first CreateKey batch's",
                g.note()
            ),
        );
    }
    for b in &s.batches {
        t.add_load(
            CKS_SIM,
            format!("CreateKey in a CloudHSM store, {conns} conns"),
            &b.result,
            format!(
                "{} → {} keys on the token; {} keys in {}",
                thousands(b.from as u64),
                thousands(b.to as u64),
                thousands(b.result.n),
                secs(b.result.elapsed)
            ),
        );
    }
}

fn scale_rows(t: &mut Table, sc: &ScaleFigures) {
    let s = SCALE;
    for p in &sc.points {
        t.add_load(
            s,
            format!(
                "Encrypt, {} keys on the token (round-robin, warm)",
                thousands(p.keys as u64)
            ),
            &p.pair.a,
            p.copies
                .map(|c| format!("{} session copies of keys; ", thousands(c)))
                .unwrap_or_default()
                + "all slices of the pair below",
        );
        t.add_load(
            s,
            format!("  and {SMALL_KEYS} keys on a second token (round-robin)"),
            &p.pair.b,
            format!(
                "interleaved with the row above, which is {:.0}% of this ({})",
                p.pair.ratio() * 100.0,
                p.pair.spread()
            ),
        );
        if let Some(h) = &p.hot10 {
            t.add_load(
                s,
                format!(
                    "Encrypt, 10 of the {} keys (round-robin)",
                    thousands(p.keys as u64)
                ),
                h,
                "same object count, small working set",
            );
        }
    }
    t.add(
        s,
        format!("  the {SMALL_KEYS}-key token's Encrypt interleaved with itself"),
        format!("{:.0}%", sc.self_pair.ratio() * 100.0),
        format!(
            "the pairing's own noise: the same workload on both sides ({})",
            sc.self_pair.spread()
        ),
    );
    for l in &sc.lists {
        t.add(
            s,
            format!(
                "ListKeys full pagination, {} keys, Limit {}",
                thousands(l.keys as u64),
                l.limit
            ),
            secs(l.took),
            format!("{} pages", l.pages),
        );
    }
    t.add(
        s,
        "start-up, fresh data dir (first start)",
        secs(sc.first_start),
        "spawn → port file; seeds the default cluster",
    );
    let r = &sc.restart;
    let top = thousands(sc.top as u64);
    t.add(
        s,
        format!("start-up with {top} keys on the token"),
        secs(r.startup),
        format!(
            "spawn → port file (store CONNECTED); first Encrypt +{}; stop took {}{}",
            r.first_encrypt.map_or("FAILED".to_string(), secs),
            secs(r.stop_took),
            steal_note(r.steal)
        ),
    );
    if let Some(h) = &r.hot10 {
        t.add_load(
            s,
            format!("Encrypt, 10 of the {top} keys, after the restart"),
            h,
            "same keys as above, on a fresh process",
        );
    }
}

fn sign_rows(t: &mut Table, sign: &[SignFigure], conns: usize) {
    for f in sign {
        let (spec, algorithm, pair) = (f.spec, f.algorithm, &f.pair);
        t.add(
            LIMIT,
            format!("raw sign {spec} ({algorithm} over a digest), 1 session"),
            rate(pair.b.rps),
            "C_SignInit + C_Sign with a session key pair; interleaved in slices with cks-sim's Sign",
        );
        t.add_load(
            CKS_SIM,
            format!("Sign {spec} {algorithm}, 32 B, AWS_KMS key, {conns} conns"),
            &pair.a,
            format!(
                "{:.0}% of the raw token's rate ({}): {} (target ≥ 70%)",
                pair.ratio() * 100.0,
                pair.spread(),
                verdict_unless(pair.ratio() >= 0.70, too_much_steal(pair.a.steal_pct))
            ),
        );
    }
}

fn moto_rows(t: &mut Table, moto: Option<&Trio>, conns: usize) {
    let s = MOTO;
    match moto {
        Some(m) => {
            t.add_load(
                s,
                format!("Encrypt 32 B, ordinary key, {conns} conns"),
                &m.encrypt,
                "moto_server on loopback",
            );
            t.add_load(
                s,
                format!("Decrypt, ordinary key, {conns} conns"),
                &m.decrypt,
                "",
            );
            t.add_load(
                s,
                format!("GenerateDataKey, ordinary key, {conns} conns"),
                &m.gdk,
                "",
            );
        }
        None => t.add(s, "moto_server", "not run".into(), "MOTO_SERVER_BIN unset"),
    }
    t.add(
        s,
        "CloudHSM key stores",
        "n/a".into(),
        "moto cannot simulate CloudHSM key stores at all",
    );
}

fn ratio_rows(t: &mut Table, f: &Figures, raw: &RawFigures, h: &HttpFigures) {
    let s = RATIO;
    let (raw1, _) = h.raw_enc32_1();
    let e = h.hsm.encrypt.rps;
    t.add(
        s,
        "cks-sim Encrypt (CloudHSM) / raw encrypt, 1 session",
        format!("{:.2}", ratio(e, raw1)),
        "",
    );
    t.add(
        s,
        format!(
            "cks-sim Encrypt (CloudHSM) / raw encrypt, {} sessions",
            raw.pool
        ),
        format!("{:.2}", ratio(e, raw.enc32_n)),
        "",
    );
    if let (Some(enc), Some(fl)) = (h.hsm.encrypt.server_cpu_us, h.floor.server_cpu_us) {
        let (enc, fl) = (enc.0 + enc.1, fl.0 + fl.1);
        t.add(
            s,
            "Encrypt (CloudHSM) server CPU/req beyond the HTTP floor",
            format!("{:.0} µs", enc - fl),
            format!(
                "{enc:.0} µs = {fl:.0} µs as ListAliases + the token's work, its hand-off to the \
                 token's thread and back, and the Encrypt handler (raw: {:.0} µs per encrypt)",
                1e6 / raw1.max(1.0)
            ),
        );
    }
    t.add(
        s,
        "cks-sim Encrypt 4 KiB / raw encrypt 4 KiB, 1 session",
        format!("{:.2}", ratio(h.enc4k.rps, raw.enc4k_1)),
        format!(
            "{} sessions: {:.2}",
            raw.pool,
            ratio(h.enc4k.rps, raw.enc4k_n)
        ),
    );
    if let Some(Some(m)) = &f.moto {
        t.add(
            s,
            "cks-sim / moto, Encrypt (AWS_KMS key)",
            format!("{:.1}×", ratio(h.kms.encrypt.rps, m.encrypt.rps)),
            format!("CloudHSM key: {:.1}×", ratio(e, m.encrypt.rps)),
        );
        t.add(
            s,
            "cks-sim / moto, Decrypt (AWS_KMS key)",
            format!("{:.1}×", ratio(h.kms.decrypt.rps, m.decrypt.rps)),
            "",
        );
        t.add(
            s,
            "cks-sim / moto, GenerateDataKey (AWS_KMS key)",
            format!("{:.1}×", ratio(h.kms.gdk.rps, m.gdk.rps)),
            "",
        );
    }
    if let Some(sc) = &f.scale
        && let Some(c) = sc.batches.first()
    {
        t.add(
            s,
            "CreateKey / raw C_GenerateKey",
            format!(
                "{:.2}",
                ratio(c.result.rps, sc.raw_gen.as_ref().map_or(0.0, RawGen::rate))
            ),
            "first CreateKey batch vs raw generation of as many keys, in alternating parts",
        );
    }
    t.add(
        s,
        "raw encrypt fixed IV / with C_GenerateRandom",
        format!("{:.2}", ratio(raw.enc32_fixed_iv, raw1)),
        "what the IV draw costs",
    );
    if let Some((hi, rs)) = f.scale_vs_token() {
        let cpu = |r: &LoadResult| r.server_cpu_us.map(|(u, s)| u + s);
        let added = match (cpu(&hi.pair.a), cpu(&hi.pair.b)) {
            (Some(a), Some(b)) => format!("server CPU {:+.0} µs", a - b),
            _ => "server CPU not read".into(),
        } + &match (hi.pair.a.token_cpu_us, hi.pair.b.token_cpu_us) {
            (Some(a), Some(b)) => format!(" (token threads {:+.0} µs)", a - b),
            _ => String::new(),
        };
        t.add(
            s,
            format!(
                "Encrypt, {} keys / {SMALL_KEYS} keys: cks-sim, the token alone",
                thousands(hi.keys as u64)
            ),
            format!("{:.0}%, {:.0}%", hi.pair.ratio() * 100.0, rs.ratio * 100.0),
            format!(
                "both interleaved in slices; per Encrypt the large working set adds {added} \
                 in cks-sim and {:+.1} µs to a raw encryption (the token's {})",
                rs.us_added, rs.spread
            ),
        );
    }
}

impl Figures {
    /// The largest scale point and the token alone measured at the same key count: what the
    /// scale target compares.
    pub(crate) fn scale_vs_token(&self) -> Option<(&ScalePoint, &RawScale)> {
        let hi = self.scale.as_ref()?.points.last()?;
        let rs = self.raw.as_ref()?.scale.as_ref()?;
        (rs.keys == hi.keys).then_some((hi, rs))
    }
}
