//! CPU time of the server, of its PKCS#11 threads and of the load generator, and the
//! hypervisor's steal, from `/proc`.

use crate::*;

/// What the bench reads from a `/proc/…/stat` line (a process's or a thread's).
pub(crate) struct Stat<'a> {
    pub(crate) name: &'a str,
    /// CPU ticks (USER_HZ = 100 per second).
    pub(crate) user: u64,
    pub(crate) sys: u64,
    pub(crate) nice: i32,
}

pub(crate) fn parse_stat(stat: &str) -> Option<Stat<'_>> {
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    // After the command: state is field 3, utime field 14, stime field 15, nice field 19.
    Some(Stat {
        name: &stat[open + 1..close],
        user: f.get(11)?.parse().ok()?,
        sys: f.get(12)?.parse().ok()?,
        nice: f.get(16)?.parse().ok()?,
    })
}

/// CPU time (user, system; all threads) of process `pid` ("self" for this one), in seconds.
pub(crate) fn cpu_secs(pid: &str) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let Stat { user, sys, .. } = parse_stat(&stat)?;
    Some((user as f64 / 100.0, sys as f64 / 100.0))
}

/// The server's PKCS#11 threads (`pkcs11-…`, one pool per token) at one moment: each one's CPU
/// time (user + system ticks) by thread id, and their nice values, sorted, each once
/// (`[hsm] thread_nice` raises their priority when the server may).
#[derive(Default)]
pub(crate) struct TokenThreads {
    pub(crate) ticks: BTreeMap<String, u64>,
    pub(crate) nice: Vec<i32>,
}

impl TokenThreads {
    pub(crate) fn sample(pid: u32) -> Option<TokenThreads> {
        let mut out = TokenThreads::default();
        for t in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
            let t = t.ok()?;
            let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else {
                continue;
            };
            if let Some(st) = parse_stat(&stat)
                && st.name.starts_with("pkcs11-")
            {
                out.ticks.insert(
                    t.file_name().to_string_lossy().into_owned(),
                    st.user + st.sys,
                );
                out.nice.push(st.nice);
            }
        }
        out.nice.sort_unstable();
        out.nice.dedup();
        Some(out)
    }

    /// CPU seconds the token's threads spent since `before`: the token's own work, the rest
    /// of the server's time being HTTP, JSON and scheduling. Counted per thread, so a thread
    /// that started meanwhile counts from zero; one that ended (after 30 s idle) is not
    /// counted at all, rather than taking its earlier time out of the total.
    pub(crate) fn secs_since(&self, before: &TokenThreads) -> f64 {
        let ticks: u64 = self
            .ticks
            .iter()
            .map(|(tid, t)| t.saturating_sub(before.ticks.get(tid).copied().unwrap_or(0)))
            .sum();
        ticks as f64 / 100.0
    }
}

/// " at nice -10" (or " at nice -20/-10" when the threads differ); empty when none was seen.
pub(crate) fn nice_note(nice: &[i32]) -> String {
    if nice.is_empty() {
        return String::new();
    }
    let v: Vec<String> = nice.iter().map(i32::to_string).collect();
    format!(" at nice {}", v.join("/"))
}

/// The machine's CPU time so far, in ticks: (all, stolen by the hypervisor), from
/// `/proc/stat`. On a shared VM, steal is the time neighbours took: a run with much of it
/// measured the neighbours as much as the software.
pub(crate) fn steal_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().next()?.strip_prefix("cpu ")?;
    let f: Vec<u64> = cpu
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    Some((f.iter().take(8).sum(), *f.get(7)?))
}

/// CPU time of the server and of this process, and the machine's steal ticks.
pub(crate) type CpuPair = (
    Option<(f64, f64)>,
    Option<(f64, f64)>,
    Option<(u64, u64)>,
    Option<TokenThreads>,
);

pub(crate) fn cpu_pair(server: u32) -> CpuPair {
    (
        cpu_secs(&server.to_string()),
        cpu_secs("self"),
        steal_ticks(),
        TokenThreads::sample(server),
    )
}
