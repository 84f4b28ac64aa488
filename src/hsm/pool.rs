//! The session pool: every PKCS#11 call runs on one of the token's own threads (D7).
//!
//! A cryptoki `Session` is `Send` but not `Sync`, so a session is checked out by the thread
//! that runs a job and checked in after it. The token has at most `max_sessions` threads
//! (`workers`), each holding at most one session at a time, so that is also the bound on open
//! sessions; a cancelled HTTP request leaves its job queued and the bound intact. A session
//! that saw a device or session failure is dropped (`C_CloseSession`) instead of returned.

use super::error::{HsmError, HsmOp};
use super::module::Module;
use super::workers::Workers;
use cryptoki::session::Session;
use cryptoki::slot::Slot;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;

/// Counters that prove where and how often PKCS#11 was called on one token.
#[derive(Debug, Default)]
pub struct CallStats {
    calls: AtomicU64,
    threads: Mutex<HashSet<ThreadId>>,
}

impl CallStats {
    /// Count `n` PKCS#11 calls made by the current thread.
    pub(crate) fn record(&self, n: u64) {
        self.calls.fetch_add(n, Ordering::Relaxed);
        let id = std::thread::current().id();
        if let Ok(mut t) = self.threads.lock() {
            t.insert(id);
        }
    }

    /// PKCS#11 calls made on this token so far (jobs, each counting its calls).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// The threads that ever made a PKCS#11 call on this token.
    pub fn threads(&self) -> HashSet<ThreadId> {
        self.threads.lock().map(|t| t.clone()).unwrap_or_default()
    }
}

/// A bounded pool of read-write sessions on one slot.
#[derive(Debug)]
pub struct SessionPool {
    module: Module,
    label: String,
    slot: Mutex<Slot>,
    /// Idle sessions with the module generation they were opened in. Sessions are opened
    /// without close-on-drop: after a re-initialization their handles are dead and may be
    /// reused by new sessions, so only current-generation sessions are closed, explicitly.
    idle: Mutex<Vec<(u64, Session)>>,
    /// The threads that run jobs (at most `max_sessions`).
    workers: Workers,
    /// Set by fault injection: every job fails with `InjectedFault` without touching the token.
    failing: AtomicBool,
    stats: CallStats,
}

impl SessionPool {
    /// A pool of at most `max_sessions` sessions on `slot`.
    pub fn new(module: Module, label: &str, slot: Slot, max_sessions: usize) -> Self {
        let workers = Workers::new(label, max_sessions, module.thread_nice());
        SessionPool {
            module,
            label: label.to_string(),
            slot: Mutex::new(slot),
            idle: Mutex::new(Vec::new()),
            workers,
            failing: AtomicBool::new(false),
            stats: CallStats::default(),
        }
    }

    /// The call counters.
    pub fn stats(&self) -> &CallStats {
        &self.stats
    }

    /// Make every later job fail (or stop failing).
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// Whether the injected failure is on.
    pub fn is_failing(&self) -> bool {
        self.failing.load(Ordering::SeqCst)
    }

    /// Close every idle session of generation `generation` and forget older ones.
    pub fn drain(&self, generation: u64) {
        let drained: Vec<(u64, Session)> = match self.idle.lock() {
            Ok(mut idle) => idle.drain(..).collect(),
            Err(_) => return,
        };
        for (g, s) in drained {
            if g == generation {
                let _ = s.close();
            }
        }
    }

    /// The slot of this pool's token (found again by label after a re-initialization).
    pub(crate) fn slot(&self) -> Slot {
        match self.slot.lock() {
            Ok(s) => *s,
            Err(p) => *p.into_inner(),
        }
    }

    /// Open a session (no close-on-drop) on the token, finding the slot again by label if the
    /// module renumbered it. Call with the module gate held.
    pub(crate) fn open_session(&self) -> Result<Session, HsmError> {
        let ctx = self.module.ctx();
        match ctx.open_rw_session_no_drop(self.slot()) {
            Ok(s) => Ok(s),
            Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::SlotIdInvalid, _))
            | Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::TokenNotPresent, _)) => {
                let slot = self.module.find_token(&self.label)?;
                if let Ok(mut s) = self.slot.lock() {
                    *s = slot;
                }
                ctx.open_rw_session_no_drop(slot)
                    .map_err(|e| HsmError::classify(HsmOp::OpenSession, e))
            }
            Err(e) => Err(HsmError::classify(HsmOp::OpenSession, e)),
        }
    }

    /// Run `f` on one of the token's threads without a session (login, logout, session
    /// copies: work that makes its own calls).
    pub async fn offload<T, F>(&self, f: F) -> Result<T, HsmError>
    where
        F: FnOnce() -> Result<T, HsmError> + Send + 'static,
        T: Send + 'static,
    {
        self.workers.run(f).await.map_err(|_| lost())?
    }

    /// Run `job` with a session on one of the token's threads. `calls` is the number of PKCS#11 calls the
    /// job makes (for the call counter). The job returns cryptoki errors; they are classified
    /// with `op` unless the job already returned an `HsmError`.
    pub async fn run<T, F>(self: &Arc<Self>, op: HsmOp, calls: u64, job: F) -> Result<T, HsmError>
    where
        F: FnOnce(&Session) -> Result<T, HsmError> + Send + 'static,
        T: Send + 'static,
    {
        self.run_after(op, calls, || Ok(()), job).await
    }

    /// `run`, with `pre` run first on the same thread (a token's re-login after a
    /// module re-initialization).
    pub async fn run_after<T, P, F>(
        self: &Arc<Self>,
        op: HsmOp,
        calls: u64,
        pre: P,
        job: F,
    ) -> Result<T, HsmError>
    where
        P: FnOnce() -> Result<(), HsmError> + Send + 'static,
        F: FnOnce(&Session) -> Result<T, HsmError> + Send + 'static,
        T: Send + 'static,
    {
        if self.is_failing() {
            return Err(HsmError::InjectedFault);
        }
        let pool = Arc::clone(self);
        self.workers
            .run(move || {
                pre()?;
                pool.run_blocking(op, calls, job)
            })
            .await
            .map_err(|_| lost())?
    }

    /// The body of `run`, for code that is already on one of the token's threads.
    pub fn run_blocking<T, F>(&self, op: HsmOp, calls: u64, job: F) -> Result<T, HsmError>
    where
        F: FnOnce(&Session) -> Result<T, HsmError>,
    {
        let (result, generation) = {
            let gate = self.module.enter();
            let generation = *gate;
            let session = self.checkout(generation)?;
            self.stats.record(calls);
            let result = job(&session);
            match &result {
                Err(e) if !e.keeps_session() => {
                    tracing::warn!(%op, error = %e, "dropping PKCS#11 session after a fatal error");
                    let _ = session.close();
                    // A device failure poisons the other idle sessions too.
                    self.drain(generation);
                }
                _ => self.checkin(generation, session),
            }
            (result, generation)
        };
        if let Err(HsmError::Device { .. }) = &result {
            // The gate is released: re-initialize once (other failing jobs see the new
            // generation and do not repeat it).
            if let Err(e) = self.module.reinitialize(generation) {
                tracing::error!(error = %e, "the PKCS#11 module could not be re-initialized");
            }
        }
        result
    }

    fn checkout(&self, generation: u64) -> Result<Session, HsmError> {
        loop {
            let next = self.idle.lock().ok().and_then(|mut idle| idle.pop());
            match next {
                Some((g, s)) if g == generation => return Ok(s),
                // A session of an older generation died with the old module instance.
                Some(_) => {}
                None => break,
            }
        }
        self.stats.record(1);
        self.open_session()
    }

    fn checkin(&self, generation: u64, session: Session) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push((generation, session));
        }
    }
}

fn lost() -> HsmError {
    HsmError::Worker("a PKCS#11 job did not finish (its thread could not start or panicked)".into())
}

impl Drop for SessionPool {
    fn drop(&mut self) {
        let generation = self.module.generation();
        self.drain(generation);
    }
}
