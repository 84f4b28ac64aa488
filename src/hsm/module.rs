//! Finding, loading and initializing the PKCS#11 module, once per process.

use super::error::{HsmError, HsmOp};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::slot::Slot;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};

/// The usual places SoftHSM2 installs its module, tried in order when nothing is configured.
pub const SOFTHSM_CANDIDATES: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/opt/homebrew/lib/softhsm/libsofthsm2.so",
    "/usr/local/opt/softhsm/lib/softhsm/libsofthsm2.so",
];

/// Resolve the module path: an explicit path wins (and must exist), else the first SoftHSM2
/// candidate that exists.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, HsmError> {
    if let Some(p) = explicit {
        if p.is_file() {
            return Ok(p.to_path_buf());
        }
        return Err(HsmError::ModuleNotFound {
            looked: p.display().to_string(),
        });
    }
    SOFTHSM_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| HsmError::ModuleNotFound {
            looked: SOFTHSM_CANDIDATES.join(", "),
        })
}

/// A loaded, initialized PKCS#11 module. Cheap to clone (cryptoki's `Pkcs11` is an `Arc`).
#[derive(Clone, Debug)]
pub struct Module {
    ctx: Pkcs11,
    path: PathBuf,
    /// Token labels the simulator asks for (cluster IDs) → the labels the module really shows
    /// (a real HSM's token, e.g. the AWS CloudHSM library's `hsm1`). Empty for soft tokens.
    labels: Arc<BTreeMap<String, String>>,
    /// Serialises token creation in this process: finding a free slot and `C_InitToken` on it
    /// must not interleave (two threads would pick the same slot, and `C_InitToken` on an
    /// initialized token re-initializes it).
    provisioning: Arc<Mutex<()>>,
    /// The module's generation, bumped by every re-initialization. Every use of a session
    /// holds the read side, so `C_Finalize` (write side) never runs under a live call, and a
    /// session from an older generation is known to be gone.
    gate: Arc<RwLock<u64>>,
    /// Added to the process's nice value in the tokens' PKCS#11 threads (0: left alone).
    thread_nice: i32,
}

impl Module {
    /// Load the module at `path` and call `C_Initialize` with `CKF_OS_LOCKING_OK`.
    /// `CKR_CRYPTOKI_ALREADY_INITIALIZED` counts as success (another handle in this process
    /// initialized it first). Blocking: call it from start-up code or a blocking thread.
    pub fn load(path: &Path) -> Result<Self, HsmError> {
        let load_err = |reason: String| HsmError::ModuleLoad {
            path: path.display().to_string(),
            reason,
        };
        let ctx = Pkcs11::new(path).map_err(|e| load_err(e.to_string()))?;
        match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => return Err(load_err(e.to_string())),
        }
        Ok(Module {
            ctx,
            path: path.to_path_buf(),
            labels: Arc::default(),
            provisioning: Arc::default(),
            gate: Arc::default(),
            thread_nice: 0,
        })
    }

    /// Look tokens up under other labels: a token asked for as `k` is the module's token
    /// labelled `labels[k]` (config `[hsm.token_labels]`, for a real HSM whose token labels are
    /// not cluster IDs). Labels not in the map are used as they are.
    #[must_use]
    pub fn with_token_labels(mut self, labels: BTreeMap<String, String>) -> Self {
        self.labels = Arc::new(labels);
        self
    }

    /// Run the tokens' PKCS#11 threads at `nice` from the process's nice value (config
    /// `[hsm] thread_nice`; negative is a higher priority, if the process may take it). Tokens
    /// opened afterwards use it.
    #[must_use]
    pub fn with_thread_nice(mut self, nice: i32) -> Self {
        self.thread_nice = nice;
        self
    }

    /// See [`Module::with_thread_nice`].
    pub fn thread_nice(&self) -> i32 {
        self.thread_nice
    }

    /// Hold this while creating a token (see the field).
    pub(crate) fn provisioning(&self) -> MutexGuard<'_, ()> {
        match self.provisioning.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// The label the module shows for the token the simulator calls `label`.
    pub fn real_label<'a>(&'a self, label: &'a str) -> &'a str {
        self.labels.get(label).map_or(label, String::as_str)
    }

    /// Hold this while using any session: it keeps re-initialization out, and says which
    /// generation the sessions in use must belong to.
    pub(crate) fn enter(&self) -> RwLockReadGuard<'_, u64> {
        match self.gate.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// The current generation (0 until the first re-initialization).
    pub fn generation(&self) -> u64 {
        *self.enter()
    }

    /// Re-initialize the module after a device error (`C_Finalize`, then `C_Initialize`),
    /// unless someone already did since generation `seen`. Waits for every call in flight;
    /// afterwards every session of the old generation is gone, and tokens open new sessions
    /// and log in again on their next use. Blocking.
    pub fn reinitialize(&self, seen: u64) -> Result<u64, HsmError> {
        let mut g = match self.gate.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if *g != seen {
            return Ok(*g);
        }
        tracing::warn!(module = %self.path.display(), "re-initializing the PKCS#11 module after a device error");
        // Ignore the outcome of C_Finalize: a broken device may refuse it, and
        // C_Initialize tells whether the module is usable again.
        let _ = self.ctx.clone().finalize();
        match self
            .ctx
            .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => {
                return Err(HsmError::ModuleLoad {
                    path: self.path.display().to_string(),
                    reason: format!("re-initialization failed: {e}"),
                });
            }
        }
        *g += 1;
        Ok(*g)
    }

    /// The cryptoki context (for the rest of `hsm/` only).
    pub(crate) fn ctx(&self) -> &Pkcs11 {
        &self.ctx
    }

    /// The module's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The library description the module reports (e.g. "Implementation of PKCS11").
    pub fn description(&self) -> String {
        self.ctx
            .get_library_info()
            .map(|i| format!("{} {}", i.manufacturer_id(), i.library_description()))
            .unwrap_or_default()
    }

    /// Find the slot whose token carries `label` (after [`Module::with_token_labels`]). Slots
    /// are found by label, never by number: SoftHSM2 renumbers slots after `C_InitToken`, and
    /// slot numbers mean nothing across modules. Blocking.
    pub fn find_token(&self, label: &str) -> Result<Slot, HsmError> {
        let label = self.real_label(label);
        let slots = self
            .ctx
            .get_slots_with_initialized_token()
            .map_err(|e| HsmError::classify(HsmOp::Inspect, e))?;
        for slot in slots {
            let info = self
                .ctx
                .get_token_info(slot)
                .map_err(|e| HsmError::classify(HsmOp::Inspect, e))?;
            if info.label().trim_end() == label {
                return Ok(slot);
            }
        }
        Err(HsmError::TokenNotFound {
            label: label.to_string(),
        })
    }

    /// Labels of every initialized token. Blocking.
    pub fn token_labels(&self) -> Result<Vec<String>, HsmError> {
        let slots = self
            .ctx
            .get_slots_with_initialized_token()
            .map_err(|e| HsmError::classify(HsmOp::Inspect, e))?;
        slots
            .into_iter()
            .map(|s| {
                self.ctx
                    .get_token_info(s)
                    .map(|i| i.label().trim_end().to_string())
                    .map_err(|e| HsmError::classify(HsmOp::Inspect, e))
            })
            .collect()
    }
}
