//! Failpoints: named steps of a mutation where a test can stop the process (D20), to show
//! that a crash exactly there loses nothing acknowledged and leaves nothing half-done.
//!
//! A failpoint is armed through the control door (`POST /_sim/failpoints {"name": …}`) or,
//! for steps taken while the server starts, with `CKS_SIM_FAILPOINTS=name,name`. When an
//! armed step is reached the process aborts at once, as a crash or `kill -9` would stop it:
//! no destructor runs and nothing more is written.

use std::collections::BTreeSet;
use std::sync::Mutex;

/// Every named step, in the order a reader meets them.
pub const STEPS: &[&str] = &[
    // A token PIN change (kmsuser's password: connect rotation, change-password, delete).
    "pin.intent_recorded",
    "pin.token_changed",
    // The connect that rotated kmsuser's password has committed its outcome.
    "connect.committed",
    // CreateKey: material made on the token, metadata not yet committed.
    "create_key.material_made",
    // A deletion that completed while connected: material destroyed, not yet committed.
    "deletion.material_destroyed",
    // ImportKeyMaterial: material unwrapped onto the token, metadata not yet committed.
    "import.material_made",
    // A rotation: the new material made on the token, metadata not yet committed.
    "rotation.material_made",
];

/// The armed failpoints of one simulator.
#[derive(Debug, Default)]
pub struct Failpoints {
    armed: Mutex<BTreeSet<String>>,
}

impl Failpoints {
    /// Failpoints armed from `CKS_SIM_FAILPOINTS` (comma-separated step names).
    pub fn from_env() -> Self {
        let f = Failpoints::default();
        if let Ok(list) = std::env::var("CKS_SIM_FAILPOINTS") {
            for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                let _ = f.arm(name);
            }
        }
        f
    }

    /// Arm the step `name`; an unknown name is refused with the list of known ones.
    pub fn arm(&self, name: &str) -> Result<(), String> {
        if !STEPS.contains(&name) {
            return Err(format!(
                "no failpoint named {name:?}; the failpoints are: {}",
                STEPS.join(", ")
            ));
        }
        self.lock().insert(name.to_string());
        Ok(())
    }

    /// The armed steps.
    pub fn armed(&self) -> Vec<String> {
        self.lock().iter().cloned().collect()
    }

    /// Stop the process here if `step` is armed.
    pub fn hit(&self, step: &'static str) {
        debug_assert!(STEPS.contains(&step), "unnamed failpoint {step}");
        if self.lock().contains(step) {
            eprintln!("cks-sim: failpoint {step} reached: stopping the process");
            std::process::abort();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.armed.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_named_steps_can_be_armed() {
        let f = Failpoints::default();
        assert!(f.arm("pin.token_changed").is_ok());
        let e = f.arm("pin.nowhere").unwrap_err();
        assert!(e.contains("pin.intent_recorded"), "{e}");
        assert_eq!(f.armed(), vec!["pin.token_changed".to_string()]);
        f.hit("pin.intent_recorded"); // not armed: returns
    }
}
