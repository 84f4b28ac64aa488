//! The targets, in one table (section "T target"), each judged from the phases' figures.

use crate::*;

const TARGET: &str = "T target";

/// How far (in points of the 10,000-key/10-key Encrypt ratio) cks-sim may fall below the
/// token alone measured in the same run.
pub(crate) const SCALE_POINTS: f64 = 0.05;

/// Every target the run has the figures for.
pub(crate) fn targets(t: &mut Table, f: &Figures) {
    if let Some(h) = &f.http {
        encrypt_targets(t, h, f.moto.as_ref());
    }
    if let Some(sc) = &f.scale {
        scale_target(t, f, sc);
        time_targets(t, sc);
    }
    if let Some(sign) = &f.sign {
        for s in sign {
            let r = s.pair.ratio();
            t.add(
                TARGET,
                format!("HTTP Sign {} ≥ 70% raw 1-session", s.spec),
                format!("{:.0}%", r * 100.0),
                format!(
                    "{} ({})",
                    verdict_unless(r >= 0.70, too_much_steal(s.pair.a.steal_pct)),
                    s.pair.spread()
                ),
            );
        }
    }
}

fn encrypt_targets(t: &mut Table, h: &HttpFigures, moto: Option<&Option<Trio>>) {
    let (raw1, spread) = h.raw_enc32_1();
    let e = h.hsm.encrypt.rps;
    let r70 = ratio(e, raw1);
    t.add(
        TARGET,
        "HTTP Encrypt (CloudHSM, 16 conns) ≥ 70% raw 1-session",
        format!("{:.0}%", r70 * 100.0),
        format!(
            "{} ({spread})",
            verdict_unless(r70 >= 0.70, too_much_steal(h.hsm.encrypt.steal_pct)),
        ),
    );
    t.add(
        TARGET,
        "HTTP Encrypt (CloudHSM) p99 ≤ 5 ms",
        ms(h.hsm.encrypt.p99),
        verdict_unless_slowed(
            h.hsm.encrypt.p99 <= Duration::from_millis(5),
            h.hsm.encrypt.steal_pct,
        ),
    );
    match moto {
        Some(Some(m)) => {
            let x = ratio(e, m.encrypt.rps);
            t.add(
                TARGET,
                "Encrypt ≥ 50× moto",
                format!("{x:.1}×"),
                format!(
                    "{} (AWS_KMS key: {:.1}×)",
                    verdict(x >= 50.0),
                    ratio(h.kms.encrypt.rps, m.encrypt.rps)
                ),
            );
        }
        _ => t.add(TARGET, "Encrypt ≥ 50× moto", "n/a".into(), "moto not run"),
    }
}

/// cks-sim's Encrypt at the largest key count over 10 keys (interleaved with a 10-key token
/// in the same process) within [`SCALE_POINTS`] of the same ratio on the token alone: what
/// cks-sim controls is what it adds to the token's own cost of a large working set.
fn scale_target(t: &mut Table, f: &Figures, sc: &ScaleFigures) {
    let (Some(lo), Some(hi)) = (sc.points.first(), sc.points.last()) else {
        return;
    };
    if hi.keys <= SMALL_KEYS {
        return;
    }
    let what = format!(
        "Encrypt {} keys / {SMALL_KEYS} keys within {:.0} points of the token alone",
        thousands(hi.keys as u64),
        SCALE_POINTS * 100.0
    );
    let x = hi.pair.ratio();
    let against_first = format!(
        "against the {}-key figure measured first: {:.0}%",
        thousands(lo.keys as u64),
        ratio(hi.pair.a.rps, lo.pair.a.rps) * 100.0
    );
    let Some((_, rs)) = f.scale_vs_token() else {
        t.add(
            TARGET,
            what,
            format!("{:.1}%", x * 100.0),
            format!(
                "not judged: the token alone was not measured at {} keys; {against_first}",
                thousands(hi.keys as u64)
            ),
        );
        return;
    };
    let noise = sc.self_pair.ratio();
    let unsure = if (noise - 1.0).abs() > SCALE_POINTS {
        Some(format!(
            "the 10-key workload against itself gave {:.0}% in this run ({}), more noise \
             than the {:.0} points the target allows",
            noise * 100.0,
            sc.self_pair.spread(),
            SCALE_POINTS * 100.0
        ))
    } else {
        too_much_steal(
            [hi.pair.a.steal_pct, hi.pair.b.steal_pct]
                .into_iter()
                .flatten()
                .reduce(f64::max),
        )
    };
    t.add(
        TARGET,
        what,
        // One decimal: the verdict is often decided within a point of the line.
        format!("{:+.1} points", (x - rs.ratio) * 100.0),
        format!(
            "{} (cks-sim {:.1}%, interleaved with a 10-key token; {}; the token alone {:.1}%, \
             {}; {against_first})",
            verdict_unless(x >= rs.ratio - SCALE_POINTS, unsure),
            x * 100.0,
            hi.pair.spread(),
            rs.ratio * 100.0,
            rs.spread
        ),
    );
}

fn time_targets(t: &mut Table, sc: &ScaleFigures) {
    let top = thousands(sc.top as u64);
    t.add(
        TARGET,
        format!("start-up with {top} keys ≤ 2 s"),
        secs(sc.restart.startup),
        verdict_unless_slowed(
            sc.restart.startup <= Duration::from_secs(2),
            sc.restart.steal,
        ),
    );
    if let Some(l) = sc.list_default() {
        t.add(
            TARGET,
            format!("ListKeys full pagination of {top} keys ≤ 1 s"),
            secs(l),
            format!(
                "{} (Limit 100, the default)",
                verdict(l <= Duration::from_secs(1))
            ),
        );
    }
    if let Some(c) = sc.batches.first() {
        let x = ratio(c.result.rps, sc.raw_gen.as_ref().map_or(0.0, RawGen::rate));
        // The raw parts alternate with the batch's, so the batch's steal covers both.
        t.add(
            TARGET,
            "CreateKey ≥ 80% raw C_GenerateKey",
            format!("{:.0}%", x * 100.0),
            verdict_unless(x >= 0.80, too_much_steal(c.result.steal_pct)),
        );
    }
}
