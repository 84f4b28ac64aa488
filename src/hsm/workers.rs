//! A token's own PKCS#11 threads (D7): jobs leave the async workers through one queue.
//!
//! `tokio::task::spawn_blocking` wakes an idle blocking thread for every job, so each PKCS#11
//! call cost two futex wake-ups and two context switches (profiled: about a third of the
//! server's CPU under load). Here a token has at most `max` threads of its own. A thread runs
//! queued jobs back to back and sleeps only when the queue is empty. Another thread is woken
//! (or started) only when no thread is awake, or when the job at the head of the queue has
//! waited [`SPREAD_AFTER`] while the threads in calls are blocked in them (a network HSM, key
//! generation waiting on the disk). A job also waits when the thread running the jobs before it
//! is merely waiting for a CPU (the async workers and this thread share the cores): then
//! another thread would not help, only contend, so on Linux the busy threads' scheduler state
//! is looked at (`/proc`, at most once per [`SPREAD_AFTER`]) and no thread joins while one of
//! them is runnable, unless the oldest job has waited [`SPREAD_ANYWAY`]. A fast in-process
//! module such as SoftHSM2, which serialises its calls internally, so stays on one thread under
//! load, where a second one would only contend on its locks (measured: raw SoftHSM2 encryption
//! is slower on four sessions than on one; HTTP Encrypt on a 2-core machine, where waiting for
//! a CPU used to bring all four threads in, ran about 20% faster on one). When the burst is
//! over (jobs no longer wait, or the busy threads are on a CPU again), the extra threads step
//! back and sleep.
//!
//! Threads that stay idle for [`IDLE`] end, so a cluster nobody uses holds no threads. A job
//! that panics is contained: its result channel closes (the caller sees an error) and the
//! thread goes on.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How long a thread waits for work before it ends.
const IDLE: Duration = Duration::from_secs(30);

/// How long the oldest queued job may wait before another thread joins (if the threads in
/// calls are blocked, not just waiting for a CPU).
const SPREAD_AFTER: Duration = Duration::from_millis(1);

/// How long the oldest queued job may wait before another thread joins, whatever the busy
/// threads are doing (a long CPU-bound call). Waiting for a CPU alone passed 10 ms often
/// enough on a loaded 2-core machine to bring all four threads in; 100 ms did not.
const SPREAD_ANYWAY: Duration = Duration::from_millis(100);

/// How often a thread that stepped back looks at a non-empty queue again.
const RECHECK: Duration = Duration::from_millis(5);

type Job = Box<dyn FnOnce() + Send + 'static>;

/// The threads and queue of one token.
#[derive(Debug)]
pub(crate) struct Workers {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    name: String,
    max: usize,
    /// Added to the process's nice value in each thread this token starts (see
    /// [`renice_self`]).
    nice: i32,
    /// The threads started, joined when the pool goes away.
    handles: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

#[derive(Default)]
struct State {
    /// Jobs with the time they were queued.
    queue: VecDeque<(Instant, Job)>,
    /// Threads alive.
    threads: usize,
    /// Threads waiting on the condition variable (including those already signalled).
    sleeping: usize,
    /// Signals sent and not yet taken by a sleeping thread.
    wakeups: usize,
    closed: bool,
    /// The threads running a job now, by Linux thread id (None where it is unknown).
    in_calls: Vec<Option<u32>>,
    /// When the busy threads' scheduler state was last looked at, and whether one of them was
    /// runnable (on a CPU or waiting for one) then.
    probed: Option<(Instant, bool)>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("queued", &self.queue.len())
            .field("threads", &self.threads)
            .field("sleeping", &self.sleeping)
            .finish()
    }
}

impl State {
    /// Threads that will look at the queue again without being woken.
    fn awake(&self) -> usize {
        self.threads - self.sleeping + self.wakeups
    }

    /// How long the oldest queued job has waited.
    fn waited(&self) -> Duration {
        self.queue
            .front()
            .map_or(Duration::ZERO, |(queued, _)| queued.elapsed())
    }

    /// Whether the queue is behind for want of a thread: its oldest job has waited
    /// [`SPREAD_AFTER`] and a fresh look found every thread in a call blocked in it (not
    /// waiting for a CPU, see [`State::probe_due`]), or it has waited [`SPREAD_ANYWAY`].
    fn behind(&self) -> bool {
        let waited = self.waited();
        waited >= SPREAD_ANYWAY || (waited >= SPREAD_AFTER && self.calls_blocked())
    }

    /// Whether the last look, if fresh, found the threads in calls all blocked. With no
    /// thread in a call, the awake ones are about to take the next job: not blocked.
    fn calls_blocked(&self) -> bool {
        !self.in_calls.is_empty()
            && self
                .probed
                .is_some_and(|(at, runnable)| !runnable && at.elapsed() < SPREAD_AFTER)
    }

    /// Whether the busy threads' state should be looked at before deciding: the queue waits,
    /// and the last look is older than [`SPREAD_AFTER`]. Returns the threads to look at.
    fn probe_due(&self) -> Option<Vec<Option<u32>>> {
        let waited = self.waited();
        let stale = self
            .probed
            .is_none_or(|(at, _)| at.elapsed() >= SPREAD_AFTER);
        (waited >= SPREAD_AFTER && waited < SPREAD_ANYWAY && stale && !self.in_calls.is_empty())
            .then(|| self.in_calls.clone())
    }

    /// Whether a thread about to take a job should sleep instead: another thread is awake and
    /// the queue is not behind (a fast module keeps up on one thread).
    fn steps_back(&self) -> bool {
        !self.closed && self.awake() > 1 && !self.behind()
    }

    /// Whether queued work needs one more thread, and which: a sleeping one, or a new one
    /// (counted here; the caller starts it after releasing the lock), or first a look at the
    /// busy threads (then the caller asks again).
    fn want_more(&mut self, max: usize) -> More {
        if self.queue.is_empty() {
            return More::No;
        }
        if self.awake() > 0 {
            if let Some(tids) = self.probe_due() {
                return More::Probe(tids);
            }
            if !self.behind() {
                return More::No;
            }
        }
        if self.sleeping > self.wakeups {
            self.wakeups += 1;
            More::Wake
        } else if self.threads < max {
            self.threads += 1;
            More::Start
        } else {
            More::No
        }
    }
}

enum More {
    No,
    Wake,
    Start,
    /// Look at these busy threads' scheduler state, then decide.
    Probe(Vec<Option<u32>>),
}

/// Whether a thread failed to take its nice value already (said once per process).
static RENICE_REFUSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Move the calling thread's nice value by `delta` from the process's.
///
/// A token's threads are the one serial stage of every request that uses it: under load the
/// async workers and the HTTP clients wake up thousands of times a second, and each wake-up
/// may preempt the token's thread while requests queue behind it (measured under Encrypt
/// load on 2 cores: 0.2 preemptions of the token's thread per request; the workers then run
/// out of work and park). At a higher priority (`[hsm] thread_nice`, default -10) it is
/// preempted a tenth as often and the workers park a fifth as often. Raising a priority
/// needs `CAP_SYS_NICE` or a `RLIMIT_NICE` that allows it; without either, the highest
/// priority the limit allows is taken if that is still a raise, else the threads keep the
/// process's priority, and the simulator says so once.
fn renice_self(delta: i32, name: &str) {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{Resource, getpriority_process, getrlimit, setpriority_process};
        let tid = rustix::thread::gettid();
        // The process's nice value is its main thread's (what `nice cks-sim` set). A thread
        // starts with its creator's value, which may be another token thread's, already moved.
        let (Ok(now), Ok(base)) = (
            getpriority_process(Some(tid)),
            getpriority_process(Some(rustix::process::getpid())),
        ) else {
            return;
        };
        let limit = getrlimit(Resource::Nice).current;
        let mut refused = None;
        for nice in nice_steps(now, base + delta, limit) {
            match setpriority_process(Some(tid), nice) {
                Ok(()) => {
                    tracing::debug!(token = name, from = now, nice, "PKCS#11 thread reniced");
                    return;
                }
                Err(e) => refused = Some(e),
            }
        }
        if let Some(e) = refused
            && !RENICE_REFUSED.swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::info!(
                token = name,
                wanted = base + delta,
                nice = now,
                error = %e,
                "PKCS#11 threads keep the process's priority: a higher one needs CAP_SYS_NICE or \
                 a larger RLIMIT_NICE (ulimit -e); set [hsm] thread_nice = 0 to stop trying"
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (delta, name);
}

/// The nice values to try for a thread at `now` that should be at `want`, best first: `want`
/// (within -20..=19); then, if that is a raise beyond what `RLIMIT_NICE` (`rlimit`, None for
/// unlimited) allows without `CAP_SYS_NICE`, the most the limit allows, when that is still a
/// raise. Empty when there is nothing to do.
fn nice_steps(now: i32, want: i32, rlimit: Option<u64>) -> Vec<i32> {
    let want = want.clamp(-20, 19);
    if want == now {
        return Vec::new();
    }
    let mut steps = vec![want];
    // Without CAP_SYS_NICE a thread may lower its nice value to 20 - RLIMIT_NICE at most.
    if let Some(lim) = rlimit {
        let floor = 20 - i32::try_from(lim.min(40)).unwrap_or(40);
        if want < floor && floor < now {
            steps.push(floor);
        }
    }
    steps
}

/// This thread's Linux thread id (None elsewhere).
fn own_tid() -> Option<u32> {
    #[cfg(target_os = "linux")]
    return u32::try_from(rustix::process::Pid::as_raw(Some(rustix::thread::gettid()))).ok();
    #[cfg(not(target_os = "linux"))]
    None
}

/// Whether thread `tid` of this process is runnable (on a CPU or waiting for one), from its
/// `/proc` stat line; None if that cannot be read.
fn runnable(tid: u32) -> Option<bool> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // The state follows the command name, which is in parentheses and may hold anything.
    let state = stat
        .get(stat.rfind(')')? + 1..)?
        .trim_start()
        .chars()
        .next()?;
    Some(state == 'R')
}

impl Shared {
    /// Look at these busy threads (without the lock), then take the lock and note what was
    /// seen: whether one of them is runnable. A thread whose state is unknown counts as
    /// blocked: then the queue's wait alone decides, as on systems without /proc.
    fn probe(&self, tids: &[Option<u32>]) -> MutexGuard<'_, State> {
        let on_cpu = tids.iter().any(|t| t.and_then(runnable).unwrap_or(false));
        let mut st = self.lock();
        st.probed = Some((Instant::now(), on_cpu));
        st
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Jobs never run under this lock, so it cannot be poisoned by a job's panic.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The result of a job that could not run or did not finish (the thread could not be
/// started, or the job panicked).
#[derive(Debug)]
pub(crate) struct Lost;

/// The result of a queued job, to await.
#[derive(Debug)]
pub(crate) struct Pending<T>(oneshot::Receiver<T>);

impl<T> Future for Pending<T> {
    type Output = Result<T, Lost>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map_err(|_| Lost)
    }
}

impl Workers {
    /// A queue served by at most `max` threads named `pkcs11-<name>`, each at `nice` from the
    /// process's nice value (0: left alone).
    pub(crate) fn new(name: &str, max: usize, nice: i32) -> Self {
        Workers {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                wake: Condvar::new(),
                name: name.to_string(),
                max: max.max(1),
                nice,
                handles: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Queue `f` now to run on one of the threads; the returned future is its result.
    pub(crate) fn run<T, F>(&self, f: F) -> Pending<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.push(Box::new(move || {
            let _ = tx.send(f());
        }));
        Pending(rx)
    }

    fn push(&self, job: Job) {
        let more = {
            let mut st = self.shared.lock();
            st.queue.push_back((Instant::now(), job));
            st.want_more(self.shared.max)
        };
        add(&self.shared, more);
    }

    /// Threads alive now (for tests and stats).
    #[cfg(test)]
    fn threads(&self) -> usize {
        self.shared.lock().threads
    }
}

/// Act on `want_more` (without the lock held).
fn add(shared: &Arc<Shared>, more: More) {
    match more {
        More::No => {}
        More::Probe(tids) => {
            let more = shared.probe(&tids).want_more(shared.max);
            add(shared, more);
        }
        More::Wake => shared.wake.notify_one(),
        More::Start => {
            let s = Arc::clone(shared);
            let started = std::thread::Builder::new()
                .name(format!("pkcs11-{}", shared.name))
                .spawn(move || serve(&s));
            match started {
                Ok(h) => {
                    let mut hs = shared.handles.lock().unwrap_or_else(|p| p.into_inner());
                    hs.retain(|h| !h.is_finished());
                    hs.push(h);
                }
                Err(e) => {
                    tracing::error!(error = %e, "could not start a PKCS#11 thread");
                    let mut st = shared.lock();
                    st.threads -= 1;
                    if st.threads == 0 {
                        // Nobody will run these: dropping them closes their result channels.
                        st.queue.clear();
                    }
                }
            }
        }
    }
}

impl Drop for Workers {
    /// Let the threads finish the queued jobs and end, and wait for them: a thread still
    /// alive when the module is finalized or the process exits would run the module's
    /// thread-exit clean-up concurrently with its global clean-up (seen with kryoptic as
    /// heap corruption in `cks-sim inspect-token`).
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_all();
        let handles = std::mem::take(
            &mut *self
                .shared
                .handles
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        let me = std::thread::current().id();
        for h in handles {
            // The pool may be dropped by one of its own jobs: that thread ends by itself.
            if h.thread().id() != me {
                let _ = h.join();
            }
        }
    }
}

/// A thread's loop: run jobs while there are any, then sleep until woken or idle too long.
fn serve(shared: &Arc<Shared>) {
    if shared.nice != 0 {
        renice_self(shared.nice, &shared.name);
    }
    let tid = own_tid();
    let mut st = shared.lock();
    loop {
        // Jobs wait while others are in calls: look at those calls before deciding whether to
        // step back (also when no new job comes to make someone look).
        if st.awake() > 1
            && let Some(tids) = st.probe_due()
        {
            drop(st);
            st = shared.probe(&tids);
            continue;
        }
        // Take the next job unless others are awake and keeping up (its wait is short): then
        // this thread steps back, so a burst that spread the work does not leave several
        // threads contending for a module that serialises anyway.
        if !st.steps_back()
            && let Some((_, job)) = st.queue.pop_front()
        {
            // The next job has waited too long already: another thread joins (judged by the
            // threads already in calls: this one has not started its job yet).
            let more = st.want_more(shared.max);
            st.in_calls.push(tid);
            drop(st);
            add(shared, more);
            // A panicking job drops its result sender: the caller sees `Lost`.
            let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
            st = shared.lock();
            if let Some(i) = st.in_calls.iter().position(|t| *t == tid) {
                st.in_calls.swap_remove(i);
            }
            continue;
        }
        if st.closed && st.queue.is_empty() {
            break;
        }
        // With jobs queued (this thread stepped back), look again soon even if nobody queues
        // more: the awake threads may all be stuck in slow calls.
        let nap = if st.queue.is_empty() { IDLE } else { RECHECK };
        st.sleeping += 1;
        let mut timed_out = false;
        while st.wakeups == 0 && !st.closed && !timed_out {
            let (next, res) = shared
                .wake
                .wait_timeout(st, nap)
                .unwrap_or_else(|p| p.into_inner());
            st = next;
            timed_out = res.timed_out();
        }
        st.sleeping -= 1;
        if st.wakeups > 0 {
            st.wakeups -= 1;
        } else if timed_out && st.queue.is_empty() && nap == IDLE {
            break;
        }
    }
    st.threads -= 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
    }

    #[test]
    fn runs_every_job_off_the_caller_thread() {
        let w = Workers::new("t", 2, 0);
        let here = std::thread::current().id();
        rt().block_on(async {
            let mut hs = Vec::new();
            for i in 0..200u32 {
                hs.push(w.run(move || (i * 2, std::thread::current().id())));
            }
            for (i, h) in hs.into_iter().enumerate() {
                let (v, id) = h.await.expect("job ran");
                assert_eq!(v, i as u32 * 2);
                assert_ne!(id, here);
            }
        });
        assert!(w.threads() <= 2, "{} threads", w.threads());
    }

    /// A gate jobs wait at (blocked in the kernel, as on a network HSM) until it opens, and
    /// a count of the jobs inside with its peak.
    #[derive(Default)]
    struct Gate {
        state: Mutex<GateState>,
        changed: Condvar,
    }

    #[derive(Default)]
    struct GateState {
        open: bool,
        inside: usize,
        peak: usize,
    }

    impl Gate {
        /// A job's body: count itself in, wait for the gate to open, count itself out.
        fn pass(&self) {
            let mut st = self.state.lock().expect("gate");
            st.inside += 1;
            st.peak = st.peak.max(st.inside);
            self.changed.notify_all();
            while !st.open {
                st = self.changed.wait(st).expect("gate");
            }
            st.inside -= 1;
        }

        fn inside(&self) -> usize {
            self.state.lock().expect("gate").inside
        }

        fn peak(&self) -> usize {
            self.state.lock().expect("gate").peak
        }

        /// Wait up to `d` for the number of jobs inside to change from `seen`.
        fn wait_change(&self, seen: usize, d: Duration) {
            let st = self.state.lock().expect("gate");
            let _ = self
                .changed
                .wait_timeout_while(st, d, |st| st.inside == seen)
                .expect("gate");
        }

        fn open(&self) {
            self.state.lock().expect("gate").open = true;
            self.changed.notify_all();
        }
    }

    /// Runs its closure when dropped: a failing test still lets its pool's jobs finish (the
    /// pool's drop waits for them).
    struct OnDrop<F: FnMut()>(F);

    impl<F: FnMut()> Drop for OnDrop<F> {
        fn drop(&mut self) {
            (self.0)();
        }
    }

    #[test]
    fn blocked_jobs_bring_in_threads_up_to_max_and_never_more() {
        const MAX: usize = 3;
        let w = Workers::new("t", MAX, 0);
        let gate = Arc::new(Gate::default());
        let g = Arc::clone(&gate);
        let _open_on_exit = OnDrop(move || g.open());
        let mut pending = Vec::new();
        let mut push = |w: &Workers| {
            let g = Arc::clone(&gate);
            pending.push(w.run(move || g.pass()));
        };
        // Each job queued behind blocked ones looks at the busy threads, finds them blocked
        // in the kernel and brings in one more thread, up to MAX. Keep queueing (each new job
        // is another chance to decide) until MAX jobs are inside the gate.
        let deadline = Instant::now() + Duration::from_secs(20);
        while gate.inside() < MAX {
            assert!(
                Instant::now() < deadline,
                "only {} of {MAX} threads came in for blocked jobs",
                gate.inside()
            );
            push(&w);
            gate.wait_change(gate.inside(), RECHECK);
        }
        // Every further job finds all MAX threads blocked: many chances to start one too many.
        for _ in 0..20 {
            push(&w);
            gate.wait_change(MAX, RECHECK);
            assert_eq!(gate.inside(), MAX, "more jobs running than max threads");
        }
        assert_eq!(w.threads(), MAX);
        gate.open();
        rt().block_on(async {
            for h in pending {
                h.await.expect("job ran");
            }
        });
        assert_eq!(gate.peak(), MAX, "peak concurrency");
        assert!(w.threads() <= MAX, "{} threads", w.threads());
    }

    #[test]
    fn jobs_that_do_not_wait_stay_on_one_thread() {
        let w = Workers::new("t", 4, 0);
        rt().block_on(async {
            for i in 0..500u32 {
                assert_eq!(w.run(move || i + 1).await.expect("job ran"), i + 1);
            }
        });
        assert_eq!(w.threads(), 1);
    }

    /// One round of `a_job_behind_a_thread_on_a_cpu_brings_in_no_other_thread`: a job spins
    /// on the CPU until told to stop; a second job is queued behind it, and once that one has
    /// waited SPREAD_AFTER a third is queued, which makes the pool look at the spinning
    /// thread. Returns None when the premise failed (the machine stalled this thread so long
    /// that the queue waited SPREAD_ANYWAY, when joining is the rule), else whether the look
    /// found the thread runnable and the threads alive then.
    fn spinner_round() -> Option<(Option<bool>, usize)> {
        let w = Workers::new("t", 4, 0);
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let _stop_on_exit = OnDrop(move || s.store(true, Ordering::SeqCst));
        let spinning = Arc::new(AtomicBool::new(false));
        let (s1, s2) = (Arc::clone(&stop), Arc::clone(&spinning));
        let first = w.run(move || {
            s2.store(true, Ordering::SeqCst);
            while !s1.load(Ordering::SeqCst) {
                std::hint::spin_loop();
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while !spinning.load(Ordering::SeqCst) {
            assert!(Instant::now() < deadline, "the first job never started");
            std::thread::yield_now();
        }
        let second = w.run(|| ());
        // Taken after the second job was queued: its wait is at least this long.
        let queued = Instant::now();
        while queued.elapsed() < SPREAD_AFTER {
            std::thread::yield_now();
        }
        let third = w.run(|| ());
        let decided_in_time = queued.elapsed() < SPREAD_ANYWAY;
        let seen = w.shared.lock().probed.map(|(_, runnable)| runnable);
        let threads = w.threads();
        stop.store(true, Ordering::SeqCst);
        rt().block_on(async {
            for h in [first, second, third] {
                h.await.expect("job ran");
            }
        });
        decided_in_time.then_some((seen, threads))
    }

    #[test]
    fn a_job_behind_a_thread_on_a_cpu_brings_in_no_other_thread() {
        // The rule is about time (SPREAD_ANYWAY lets a thread join whatever the busy one is
        // doing), so a round this thread could not finish in time proves nothing: run again.
        for _ in 0..10 {
            if let Some((seen, threads)) = spinner_round() {
                assert_eq!(
                    seen,
                    Some(true),
                    "the spinning thread was looked at: runnable"
                );
                assert_eq!(threads, 1, "no thread joined a job waiting for a CPU");
                return;
            }
        }
        panic!("ten rounds stalled past SPREAD_ANYWAY: no round could be judged");
    }

    #[test]
    fn a_thread_is_seen_runnable_when_it_runs_and_not_when_it_sleeps() {
        let me = own_tid().expect("/proc/thread-self on Linux");
        assert_eq!(runnable(me), Some(true));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            tid_tx.send(own_tid()).expect("send tid");
            let _ = rx.recv();
        });
        let tid = tid_rx.recv().expect("tid").expect("tid known");
        let deadline = Instant::now() + Duration::from_secs(10);
        while runnable(tid) != Some(false) {
            assert!(
                Instant::now() < deadline,
                "the waiting thread never showed as asleep"
            );
            std::thread::yield_now();
        }
        tx.send(()).expect("wake");
        t.join().expect("join");
        assert_eq!(runnable(u32::MAX), None, "no such thread");
    }

    fn state(threads: usize, sleeping: usize, waited: &[Duration]) -> State {
        let now = Instant::now();
        State {
            queue: waited
                .iter()
                .map(|w| (now - *w, Box::new(|| ()) as Job))
                .collect(),
            threads,
            sleeping,
            ..State::default()
        }
    }

    /// `s` with one thread in a call, last seen runnable or blocked just now.
    fn in_call(mut s: State, runnable: Option<bool>) -> State {
        s.in_calls = vec![Some(7)];
        s.probed = runnable.map(|r| (Instant::now(), r));
        s
    }

    #[test]
    fn a_thread_steps_back_only_while_another_is_awake_and_keeping_up() {
        let fresh = Duration::from_micros(100);
        let late = SPREAD_AFTER * 2;
        // Two awake threads, the queue's oldest job fresh: one steps back.
        assert!(state(2, 0, &[fresh, fresh]).steps_back());
        assert!(in_call(state(2, 0, &[fresh, fresh]), Some(false)).steps_back());
        // The oldest job has waited too long and the call before it is blocked: both work.
        assert!(!in_call(state(2, 0, &[late, fresh]), Some(false)).steps_back());
        // ... but not when the call before it is only waiting for a CPU, or nobody looked.
        assert!(in_call(state(2, 0, &[late, fresh]), Some(true)).steps_back());
        assert!(in_call(state(2, 0, &[late, fresh]), None).steps_back());
        // Waited far too long: everyone works, whatever the call is doing.
        assert!(!in_call(state(2, 0, &[SPREAD_ANYWAY, fresh]), Some(true)).steps_back());
        // The only awake thread never steps back, whatever the queue.
        assert!(!state(2, 1, &[fresh]).steps_back());
        assert!(!state(1, 0, &[fresh, fresh, fresh]).steps_back());
        // Closing: everyone drains the queue.
        let mut closing = state(3, 0, &[fresh]);
        closing.closed = true;
        assert!(!closing.steps_back());
    }

    #[test]
    fn queued_work_asks_for_a_thread_only_when_none_is_awake_or_the_calls_are_blocked() {
        let fresh = Duration::from_micros(100);
        let late = SPREAD_AFTER * 2;
        // Nobody awake: wake or start one, whatever the wait.
        assert!(matches!(state(0, 0, &[fresh]).want_more(4), More::Start));
        assert!(matches!(state(2, 2, &[fresh]).want_more(4), More::Wake));
        // Someone awake and the queue fresh: nothing.
        assert!(matches!(state(2, 1, &[fresh]).want_more(4), More::No));
        // Late, with a thread in a call nobody looked at lately: look first.
        assert!(matches!(
            in_call(state(2, 1, &[late]), None).want_more(4),
            More::Probe(t) if t == vec![Some(7)]
        ));
        // Late and the call blocked: another thread, woken or started, up to max.
        assert!(matches!(
            in_call(state(2, 1, &[late]), Some(false)).want_more(4),
            More::Wake
        ));
        assert!(matches!(
            in_call(state(2, 0, &[late]), Some(false)).want_more(4),
            More::Start
        ));
        assert!(matches!(
            in_call(state(4, 0, &[late]), Some(false)).want_more(4),
            More::No
        ));
        // Late but the call is on a CPU (or waiting for one): nothing.
        assert!(matches!(
            in_call(state(2, 1, &[late]), Some(true)).want_more(4),
            More::No
        ));
        // Late with no thread in a call: the awake one is about to take it.
        assert!(matches!(state(2, 1, &[late]).want_more(4), More::No));
        // Waited far too long: another thread, whatever the call is doing.
        assert!(matches!(
            in_call(state(2, 1, &[SPREAD_ANYWAY]), Some(true)).want_more(4),
            More::Wake
        ));
        assert!(matches!(state(1, 0, &[]).want_more(4), More::No));
    }

    #[test]
    fn nice_steps_raise_as_far_as_allowed_and_stay_in_range() {
        // Unlimited (or CAP_SYS_NICE decides): just the wanted value.
        assert_eq!(nice_steps(0, -10, None), vec![-10]);
        // RLIMIT_NICE 0, the usual default: only the wanted value to try (it fails).
        assert_eq!(nice_steps(0, -10, Some(0)), vec![-10]);
        // RLIMIT_NICE 25 allows nice -5 without the capability: tried second.
        assert_eq!(nice_steps(0, -10, Some(25)), vec![-10, -5]);
        // A limit that allows no raise from where the thread is adds nothing.
        assert_eq!(nice_steps(-5, -15, Some(25)), vec![-15]);
        // A thread started by a thread already there has nothing to do (not -20: the target
        // is the process's value plus the offset, not the creator's).
        assert_eq!(nice_steps(-10, -10, None), Vec::<i32>::new());
        // Clamped to -20..=19; nothing to do when that is where the thread is.
        assert_eq!(nice_steps(5, 25, None), vec![19]);
        assert_eq!(nice_steps(-20, -30, None), Vec::<i32>::new());
        // Lowering the priority needs no permission and no fallback.
        assert_eq!(nice_steps(0, 3, Some(0)), vec![3]);
    }

    /// The nice value of thread (or process) `tid`, as the kernel reports it.
    fn nice_of(tid: u32) -> i32 {
        let pid = rustix::process::Pid::from_raw(i32::try_from(tid).expect("a thread id"));
        rustix::process::getpriority_process(pid).expect("getpriority")
    }

    #[test]
    fn threads_take_their_nice_value_from_the_process_not_from_their_creator() {
        let base = nice_of(std::process::id());
        let want = (base + 3).min(19);
        let w = Workers::new("t", 1, 3);
        let there = rt()
            .block_on(w.run(|| own_tid().map(nice_of)))
            .expect("job runs")
            .expect("linux");
        assert_eq!(there, want);
        assert_eq!(
            nice_of(std::process::id()),
            base,
            "the process was left alone"
        );
        // A thread started by one that has moved already (as a token thread that brings in
        // another has) lands on the same value, not 3 further.
        let w2 = Workers::new("t2", 1, 3);
        let there = std::thread::spawn(move || {
            let me = rustix::thread::gettid();
            rustix::process::setpriority_process(Some(me), want)
                .expect("lowering a priority needs no privilege");
            rt().block_on(w2.run(|| own_tid().map(nice_of)))
        })
        .join()
        .expect("creator thread")
        .expect("job runs")
        .expect("linux");
        assert_eq!(there, want);
    }

    #[test]
    fn a_panicking_job_is_lost_and_the_thread_goes_on() {
        let w = Workers::new("t", 1, 0);
        rt().block_on(async {
            let r: Result<(), Lost> = w.run(|| panic!("boom")).await;
            assert!(r.is_err());
            assert_eq!(w.run(|| 7).await.expect("next job runs"), 7);
        });
    }

    #[test]
    fn jobs_queued_before_drop_still_run() {
        let done = Arc::new(AtomicUsize::new(0));
        let w = Workers::new("t", 1, 0);
        let gate = Arc::new(Gate::default());
        let (g, d) = (Arc::clone(&gate), Arc::clone(&done));
        // The first job holds the only thread until the pool is being dropped.
        let h = w.run(move || {
            g.pass();
            d.fetch_add(1, Ordering::SeqCst);
        });
        let d = Arc::clone(&done);
        let h2 = w.run(move || {
            d.fetch_add(1, Ordering::SeqCst);
        });
        let g = Arc::clone(&gate);
        let _open_on_failure = OnDrop(move || g.open());
        gate.wait_change(0, Duration::from_secs(10));
        assert_eq!(gate.inside(), 1, "the first job started");
        let shared = Arc::clone(&w.shared);
        let opener = std::thread::spawn(move || {
            let g = Arc::clone(&gate);
            let _open_on_exit = OnDrop(move || g.open());
            let deadline = Instant::now() + Duration::from_secs(10);
            while !shared.lock().closed {
                assert!(Instant::now() < deadline, "the pool was never closed");
                std::thread::yield_now();
            }
            assert_eq!(shared.lock().queue.len(), 1, "the second job still queued");
        });
        drop(w);
        opener
            .join()
            .expect("the pool closed with the second job queued");
        rt().block_on(async {
            assert!(h.await.is_ok() && h2.await.is_ok());
        });
        assert_eq!(done.load(Ordering::SeqCst), 2);
    }
}
