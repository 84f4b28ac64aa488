//! A token's own PKCS#11 threads (D7): jobs leave the async workers through one queue.
//!
//! `tokio::task::spawn_blocking` wakes an idle blocking thread for every job, so each PKCS#11
//! call cost two futex wake-ups and two context switches (profiled: about a third of the
//! server's CPU under load). Here a token has at most `max` threads of its own. A thread runs
//! queued jobs back to back and sleeps only when the queue is empty; whoever queues a job wakes
//! (or starts) a thread only when the awake ones cannot be keeping up: none is awake, or more
//! jobs wait than threads are awake. Under load, jobs are handed over with no wake-up at all;
//! with a slow module (a network HSM) the queue grows and more threads join, up to `max`.
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
use std::time::Duration;
use tokio::sync::oneshot;

/// How long a thread waits for work before it ends.
const IDLE: Duration = Duration::from_secs(30);

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
}

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    /// Threads alive.
    threads: usize,
    /// Threads waiting on the condition variable (including those already signalled).
    sleeping: usize,
    /// Signals sent and not yet taken by a sleeping thread.
    wakeups: usize,
    closed: bool,
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
}

impl Shared {
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
    /// A queue served by at most `max` threads named after `name`.
    pub(crate) fn new(name: &str, max: usize) -> Self {
        Workers {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                wake: Condvar::new(),
                name: name.to_string(),
                max: max.max(1),
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
        let mut st = self.shared.lock();
        st.queue.push_back(job);
        if st.awake() > 0 && st.queue.len() <= st.awake() {
            return;
        }
        if st.sleeping > st.wakeups {
            st.wakeups += 1;
            drop(st);
            self.shared.wake.notify_one();
        } else if st.threads < self.shared.max {
            st.threads += 1;
            drop(st);
            let shared = Arc::clone(&self.shared);
            let started = std::thread::Builder::new()
                .name(format!("pkcs11-{}", self.shared.name))
                .spawn(move || serve(&shared));
            if let Err(e) = started {
                tracing::error!(error = %e, "could not start a PKCS#11 thread");
                let mut st = self.shared.lock();
                st.threads -= 1;
                if st.threads == 0 {
                    // Nobody will run these: dropping them closes their result channels.
                    st.queue.clear();
                }
            }
        }
    }

    /// Threads alive now (for tests and stats).
    #[cfg(test)]
    fn threads(&self) -> usize {
        self.shared.lock().threads
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_all();
    }
}

/// A thread's loop: run jobs while there are any, then sleep until woken or idle too long.
fn serve(shared: &Shared) {
    let mut st = shared.lock();
    loop {
        if let Some(job) = st.queue.pop_front() {
            drop(st);
            // A panicking job drops its result sender: the caller sees `Lost`.
            let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
            st = shared.lock();
            continue;
        }
        if st.closed {
            break;
        }
        st.sleeping += 1;
        let mut timed_out = false;
        while st.wakeups == 0 && !st.closed && !timed_out {
            let (next, res) = shared
                .wake
                .wait_timeout(st, IDLE)
                .unwrap_or_else(|p| p.into_inner());
            st = next;
            timed_out = res.timed_out();
        }
        st.sleeping -= 1;
        if st.wakeups > 0 {
            st.wakeups -= 1;
        } else if timed_out && st.queue.is_empty() {
            break;
        }
    }
    st.threads -= 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
    }

    #[test]
    fn runs_every_job_off_the_caller_thread() {
        let w = Workers::new("t", 2);
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

    #[test]
    fn never_more_threads_than_max_even_when_jobs_block() {
        let w = Arc::new(Workers::new("t", 3));
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        rt().block_on(async {
            let mut hs = Vec::new();
            for _ in 0..30 {
                let (running, peak) = (Arc::clone(&running), Arc::clone(&peak));
                hs.push(w.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(5));
                    running.fetch_sub(1, Ordering::SeqCst);
                }));
            }
            for h in hs {
                h.await.expect("job ran");
            }
        });
        let peak = peak.load(Ordering::SeqCst);
        // Blocked jobs make the queue grow, so more threads join — but never more than max.
        assert!((2..=3).contains(&peak), "peak concurrency {peak}");
    }

    #[test]
    fn a_panicking_job_is_lost_and_the_thread_goes_on() {
        let w = Workers::new("t", 1);
        rt().block_on(async {
            let r: Result<(), Lost> = w.run(|| panic!("boom")).await;
            assert!(r.is_err());
            assert_eq!(w.run(|| 7).await.expect("next job runs"), 7);
        });
    }

    #[test]
    fn jobs_queued_before_drop_still_run() {
        let done = Arc::new(AtomicUsize::new(0));
        let w = Workers::new("t", 1);
        let d = Arc::clone(&done);
        let h = w.run(move || {
            std::thread::sleep(Duration::from_millis(20));
            d.fetch_add(1, Ordering::SeqCst);
        });
        let d = Arc::clone(&done);
        let h2 = w.run(move || {
            d.fetch_add(1, Ordering::SeqCst);
        });
        drop(w);
        rt().block_on(async {
            assert!(h.await.is_ok() && h2.await.is_ok());
        });
        assert_eq!(done.load(Ordering::SeqCst), 2);
    }
}
