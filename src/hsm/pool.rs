//! The session pool: every PKCS#11 call runs on a blocking thread (D7).
//!
//! A cryptoki `Session` is `Send` but not `Sync`, so a session is *moved* into a blocking job
//! and moved back. A semaphore bounds the sessions open at once; the permit travels into the
//! blocking job, so a cancelled HTTP request cannot make the bound lie. A session that saw a
//! device or session failure is dropped (`C_CloseSession`) instead of returned.

use super::error::{HsmError, HsmOp};
use super::module::Module;
use cryptoki::session::Session;
use cryptoki::slot::Slot;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use tokio::sync::Semaphore;

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
    slot: Slot,
    idle: Mutex<Vec<Session>>,
    permits: Arc<Semaphore>,
    /// Set by fault injection: every job fails with `InjectedFault` without touching the token.
    failing: AtomicBool,
    stats: CallStats,
}

impl SessionPool {
    /// A pool of at most `max_sessions` sessions on `slot`.
    pub fn new(module: Module, slot: Slot, max_sessions: usize) -> Self {
        SessionPool {
            module,
            slot,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(max_sessions.max(1))),
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

    /// Drop every idle session (after a device error, or before a re-login).
    pub fn drain(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }

    /// Run `job` with a session on a blocking thread. `calls` is the number of PKCS#11 calls the
    /// job makes (for the call counter). The job returns cryptoki errors; they are classified
    /// with `op` unless the job already returned an `HsmError`.
    pub async fn run<T, F>(self: &Arc<Self>, op: HsmOp, calls: u64, job: F) -> Result<T, HsmError>
    where
        F: FnOnce(&Session) -> Result<T, HsmError> + Send + 'static,
        T: Send + 'static,
    {
        if self.is_failing() {
            return Err(HsmError::InjectedFault);
        }
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|e| HsmError::Worker(e.to_string()))?;
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            pool.run_blocking(op, calls, job)
        })
        .await
        .map_err(|e| HsmError::Worker(e.to_string()))?
    }

    /// The body of `run`, for code that is already on a blocking thread.
    pub fn run_blocking<T, F>(&self, op: HsmOp, calls: u64, job: F) -> Result<T, HsmError>
    where
        F: FnOnce(&Session) -> Result<T, HsmError>,
    {
        let session = self.checkout()?;
        self.stats.record(calls);
        match job(&session) {
            Ok(v) => {
                self.checkin(session);
                Ok(v)
            }
            Err(e) => {
                if e.keeps_session() {
                    self.checkin(session);
                } else {
                    tracing::warn!(%op, error = %e, "dropping PKCS#11 session after a fatal error");
                    // A device failure poisons the other idle sessions too.
                    self.drain();
                }
                Err(e)
            }
        }
    }

    fn checkout(&self) -> Result<Session, HsmError> {
        if let Some(s) = self.idle.lock().ok().and_then(|mut idle| idle.pop()) {
            return Ok(s);
        }
        self.stats.record(1);
        self.module
            .ctx()
            .open_rw_session(self.slot)
            .map_err(|e| HsmError::classify(HsmOp::OpenSession, e))
    }

    fn checkin(&self, session: Session) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(session);
        }
    }
}
