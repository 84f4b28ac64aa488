//! The table: rows, number formats and verdicts.

use crate::*;

// ---------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------

pub(crate) struct Row {
    pub(crate) section: &'static str,
    pub(crate) what: String,
    pub(crate) value: String,
    pub(crate) p50: String,
    pub(crate) p99: String,
    pub(crate) note: String,
}

#[derive(Default)]
pub(crate) struct Table {
    pub(crate) rows: Vec<Row>,
}

impl Table {
    pub(crate) fn add(
        &mut self,
        section: &'static str,
        what: impl Into<String>,
        value: String,
        note: impl Into<String>,
    ) {
        self.rows.push(Row {
            section,
            what: what.into(),
            value,
            p50: String::new(),
            p99: String::new(),
            note: note.into(),
        });
    }

    pub(crate) fn add_load(
        &mut self,
        section: &'static str,
        what: impl Into<String>,
        r: &LoadResult,
        note: impl Into<String>,
    ) {
        let mut note = note.into();
        if r.errors > 0 {
            let first = r.first_error.clone().unwrap_or_default();
            note = format!("{note} {} ERRORS (first: {first})", r.errors)
                .trim()
                .to_string();
        }
        if let (Some(sv), Some(cl)) = (r.server_cpu_us, r.client_cpu_us) {
            let token = r
                .token_cpu_us
                .filter(|t| *t > 0.0)
                .map_or(String::new(), |t| {
                    format!("; token threads {t:.0}{}", nice_note(&r.token_nice))
                });
            note = format!(
                "{note} [CPU/req: server {:.0} µs ({:.0} user + {:.0} sys{token}), load gen {:.0} µs]",
                sv.0 + sv.1,
                sv.0,
                sv.1,
                cl.0 + cl.1
            )
            .trim()
            .to_string();
        }
        note = format!("{note}{}", steal_note(r.steal_pct))
            .trim()
            .to_string();
        if r.reconnects > 0 {
            note = format!(
                "{note} ({} new connections: the server closes them)",
                r.reconnects
            )
            .trim()
            .to_string();
        }
        self.rows.push(Row {
            section,
            what: what.into(),
            value: rate(r.rps),
            p50: ms(r.p50),
            p99: ms(r.p99),
            note,
        });
    }

    pub(crate) fn print(&self) {
        let head = ["", "measure", "value", "p50", "p99", "note"];
        // Rows in section order (sections are numbered), in insertion order within one.
        let mut rows: Vec<&Row> = self.rows.iter().collect();
        rows.sort_by_key(|r| r.section);
        let cells: Vec<[&str; 6]> = rows
            .into_iter()
            .map(|r| [r.section, &r.what, &r.value, &r.p50, &r.p99, &r.note])
            .collect();
        let mut w = head.map(str::len);
        for c in &cells {
            for (i, s) in c.iter().enumerate() {
                w[i] = w[i].max(s.chars().count());
            }
        }
        let line = |c: [&str; 6]| {
            let mut s = String::from("|");
            for (i, x) in c.iter().enumerate() {
                let pad = w[i] - x.chars().count();
                // Numbers right-aligned, text left-aligned.
                if (2..=4).contains(&i) {
                    s.push_str(&format!(" {}{} |", " ".repeat(pad), x));
                } else {
                    s.push_str(&format!(" {}{} |", x, " ".repeat(pad)));
                }
            }
            s
        };
        println!("{}", line(head));
        let sep: Vec<String> = (0..6)
            .map(|i| {
                if (2..=4).contains(&i) {
                    format!("{}:", "-".repeat(w[i] + 1))
                } else {
                    "-".repeat(w[i] + 2)
                }
            })
            .collect();
        println!("|{}|", sep.join("|"));
        for c in cells {
            println!("{}", line(c));
        }
    }
}

pub(crate) fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

pub(crate) fn rate(per_sec: f64) -> String {
    if per_sec >= 100.0 {
        format!("{} /s", thousands(per_sec.round() as u64))
    } else {
        format!("{per_sec:.1} /s")
    }
}

pub(crate) fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

pub(crate) fn secs(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{:.0} ms", d.as_secs_f64() * 1000.0)
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

pub(crate) fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

pub(crate) fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

/// Steal above this share of the machine's time during a measurement, or an interleaved
/// pair's own noise (the same workload on both sides) further than this from 100%, and a
/// verdict would be the neighbours' rather than the software's: the target is not judged
/// (for a ratio either way; for a time bound, only a miss, as steal cannot make a figure
/// better).
pub(crate) const NOISE_LIMIT: f64 = 0.10;

/// [`verdict`], unless `noise` says why this run cannot tell.
pub(crate) fn verdict_unless(ok: bool, noise: Option<String>) -> String {
    match noise {
        Some(why) => format!("not judged: {why}"),
        None => verdict(ok).to_string(),
    }
}

/// [`verdict`] on a bound that steal can only push a figure past (a time, a latency): a miss
/// under too much steal is not judged; a pass stands.
pub(crate) fn verdict_unless_slowed(ok: bool, steal_pct: Option<f64>) -> String {
    verdict_unless(ok, too_much_steal(steal_pct).filter(|_| !ok))
}

/// Why a measurement with this much steal (percent) cannot be judged, if it cannot.
pub(crate) fn too_much_steal(steal_pct: Option<f64>) -> Option<String> {
    steal_pct
        .filter(|st| *st >= NOISE_LIMIT * 100.0)
        .map(|st| format!("the hypervisor took {st:.0}% of the machine's time meanwhile"))
}

/// " (steal N%)" for a row's note, when the hypervisor took at least 1% meanwhile.
pub(crate) fn steal_note(steal_pct: Option<f64>) -> String {
    steal_pct
        .filter(|st| *st >= 1.0)
        .map_or(String::new(), |st| format!(" (steal {st:.0}%)"))
}

/// The machine's steal (percent of all CPU time) between two [`steal_ticks`] samples.
pub(crate) fn steal_between(a: Option<(u64, u64)>, b: Option<(u64, u64)>) -> Option<f64> {
    match (a, b) {
        (Some((t0, s0)), Some((t1, s1))) if t1 > t0 => {
            Some((s1.saturating_sub(s0)) as f64 * 100.0 / (t1 - t0) as f64)
        }
        _ => None,
    }
}
