//! KMS domain rules that need no server, no token and no store: which key states allow
//! cryptography and management, the deletion waiting period, its due date and its
//! cancellation, and what a key store's connection state allows. The operations
//! ([`super::key`], [`super::crypto`], [`super::key_store`], [`super::sweep`]) call these, so
//! the unit tests below check the very rules the API applies.

use super::error::KmsError;
use super::model::{ConnectionState, Key, StoredKeyState};
use crate::api::kms::KeyState;
use crate::kms_err;

/// Seconds in a day of the simulated clock.
const DAY: f64 = 86_400.0;
/// The shortest deletion waiting period, in days.
pub const MIN_PENDING_WINDOW: i64 = 7;
/// The longest deletion waiting period, in days (also the default).
pub const MAX_PENDING_WINDOW: i64 = 30;

/// Whether a key in visible state `state` (see [`super::visible_state`]) may be used for
/// cryptography: `Enabled` only. `Disabled` answers `DisabledException`, `PendingDeletion`
/// and `Unavailable` answer `KMSInvalidStateException`.
pub fn crypto_allowed(state: KeyState, arn: &str) -> Result<(), KmsError> {
    match state {
        KeyState::Disabled => Err(kms_err!(Disabled, "{arn} is disabled.")),
        KeyState::PendingDeletion => Err(kms_err!(KmsInvalidState, "{arn} is pending deletion.")),
        // cks-sim's wording, after the one above: no AWS message for this state was found.
        KeyState::PendingReplicaDeletion => Err(kms_err!(
            KmsInvalidState,
            "{arn} is pending replica deletion."
        )),
        KeyState::Unavailable => Err(kms_err!(KmsInvalidState, "{arn} is unavailable.")),
        _ => Ok(()),
    }
}

/// Whether a key in underlying state `state` may be managed (enabled, disabled, described,
/// tagged, aliased, scheduled for deletion): not while it is pending deletion. A key whose
/// store is disconnected (`Unavailable`) may be managed; the change applies on reconnect.
pub fn manageable(state: StoredKeyState, arn: &str) -> Result<(), KmsError> {
    match state {
        StoredKeyState::PendingDeletion => {
            Err(kms_err!(KmsInvalidState, "{arn} is pending deletion."))
        }
        // cks-sim's wording, after the one above: no AWS message for this state was found.
        StoredKeyState::PendingReplicaDeletion => Err(kms_err!(
            KmsInvalidState,
            "{arn} is pending replica deletion."
        )),
        _ => Ok(()),
    }
}

/// The waiting period of `ScheduleKeyDeletion`: 7 to 30 days, 30 when not given.
pub fn pending_window(days: Option<i64>) -> Result<u32, KmsError> {
    let days = days.unwrap_or(MAX_PENDING_WINDOW);
    if !(MIN_PENDING_WINDOW..=MAX_PENDING_WINDOW).contains(&days) {
        return Err(kms_err!(
            Validation,
            "PendingWindowInDays must be between 7 and 30"
        ));
    }
    u32::try_from(days).map_err(KmsError::internal)
}

/// Schedule the deletion of `k` at `now` (simulated clock, seconds) after `days` days:
/// `PendingDeletion`, with its deletion date and waiting period; or, for a multi-Region
/// primary whose `replicas_remain`, `PendingReplicaDeletion` without a date: its waiting
/// period starts when the last replica is deleted.
pub fn schedule_deletion(
    k: &mut Key,
    now: crate::api::Timestamp,
    days: u32,
    replicas_remain: bool,
) {
    if replicas_remain {
        k.state = StoredKeyState::PendingReplicaDeletion;
        k.deletion_date = None;
    } else {
        k.state = StoredKeyState::PendingDeletion;
        k.deletion_date = Some(now + f64::from(days) * DAY);
    }
    k.pending_window_days = Some(days);
}

/// Cancel the deletion of `k`: only a key pending deletion (or pending the deletion of its
/// replicas), which ends up `Disabled` (never `Enabled`) without a deletion date.
pub fn cancel_deletion(k: &mut Key) -> Result<(), KmsError> {
    if !matches!(
        k.state,
        StoredKeyState::PendingDeletion | StoredKeyState::PendingReplicaDeletion
    ) {
        return Err(kms_err!(
            KmsInvalidState,
            "{} is not pending deletion.",
            k.arn
        ));
    }
    k.state = StoredKeyState::Disabled;
    k.deletion_date = None;
    k.pending_window_days = None;
    Ok(())
}

/// Whether the deletion of `k` is due at `now` (simulated clock): it is pending deletion and
/// its deletion date has come.
pub fn deletion_due(k: &Key, now: crate::api::Timestamp) -> bool {
    k.state == StoredKeyState::PendingDeletion && k.deletion_date.is_some_and(|d| d <= now)
}

/// `ConnectCustomKeyStore` on store `id` in `state`: `Ok(true)` to start connecting,
/// `Ok(false)` when it is already `CONNECTED` or `CONNECTING` (nothing to do), or
/// `CustomKeyStoreInvalidStateException` for `FAILED` (disconnect first) and `DISCONNECTING`.
pub fn connect_allowed(id: &str, state: ConnectionState) -> Result<bool, KmsError> {
    match state {
        ConnectionState::Connected | ConnectionState::Connecting => Ok(false),
        ConnectionState::Failed => Err(kms_err!(
            CustomKeyStoreInvalidState,
            "Custom key store {id} is FAILED: disconnect it (DisconnectCustomKeyStore) before connecting again."
        )),
        ConnectionState::Disconnecting => Err(kms_err!(
            CustomKeyStoreInvalidState,
            "Custom key store {id} is DISCONNECTING: wait until it is DISCONNECTED."
        )),
        ConnectionState::Disconnected => Ok(true),
    }
}

/// `DisconnectCustomKeyStore` on store `id` in `state`: any state with a connection or an
/// attempt (`CONNECTED`, `CONNECTING`, `FAILED`); not `DISCONNECTED` or `DISCONNECTING`.
pub fn disconnect_allowed(id: &str, state: ConnectionState) -> Result<(), KmsError> {
    if matches!(
        state,
        ConnectionState::Disconnected | ConnectionState::Disconnecting
    ) {
        return Err(kms_err!(
            CustomKeyStoreInvalidState,
            "Custom key store {id} is {}: there is no connection to end.",
            state.as_str()
        ));
    }
    Ok(())
}

/// `DeleteCustomKeyStore` on store `id` in `state` holding `keys` KMS keys (counting keys
/// pending deletion): only `DISCONNECTED` and empty.
pub fn delete_allowed(id: &str, state: ConnectionState, keys: usize) -> Result<(), KmsError> {
    if state != ConnectionState::Disconnected {
        return Err(kms_err!(
            CustomKeyStoreInvalidState,
            "Custom key store {id} is {}: disconnect it (DisconnectCustomKeyStore) before deleting it.",
            state.as_str()
        ));
    }
    if keys > 0 {
        return Err(kms_err!(
            CustomKeyStoreHasCmks,
            "Custom key store {id} still holds {keys} KMS key(s), counting keys pending deletion: schedule their deletion and wait until the waiting period ends."
        ));
    }
    Ok(())
}

/// `UpdateCustomKeyStore` on store `id` in `state`: a new password or cluster only while
/// `DISCONNECTED`; a new name (alone) while `CONNECTED` or `DISCONNECTED`.
pub fn update_allowed(
    id: &str,
    state: ConnectionState,
    new_password_or_cluster: bool,
    new_name: bool,
) -> Result<(), KmsError> {
    if new_password_or_cluster {
        if state != ConnectionState::Disconnected {
            return Err(kms_err!(
                CustomKeyStoreInvalidState,
                "Custom key store {id} is {}: disconnect it before changing its password or cluster.",
                state.as_str()
            ));
        }
    } else if new_name
        && !matches!(
            state,
            ConnectionState::Connected | ConnectionState::Disconnected
        )
    {
        return Err(kms_err!(
            CustomKeyStoreInvalidState,
            "Custom key store {id} is {}: it can be renamed only while CONNECTED or DISCONNECTED.",
            state.as_str()
        ));
    }
    Ok(())
}

/// The largest key policy, in bytes (the "Key policy document size" quota: 32 KB).
pub const MAX_POLICY_BYTES: usize = 32 * 1024;

/// A key policy given with a request (`Policy`, whose length and characters the decoder
/// checks): within the 32 KB quota (`LimitExceededException`), and a JSON object with a
/// `Statement` (`MalformedPolicyDocumentException`; cks-sim evaluates no policy, so nothing
/// more of it is checked). The wording of both refusals is cks-sim's.
pub fn key_policy(p: &str) -> Result<(), KmsError> {
    if p.len() > MAX_POLICY_BYTES {
        return Err(kms_err!(
            LimitExceeded,
            "The key policy exceeds the 32 KB limit."
        ));
    }
    // The policy is a JSON document by definition (not the request's wire form): a JSON
    // object, every value well-formed, which must hold a `Statement`.
    let document: Option<serde_json::Map<String, serde_json::Value>> = serde_json::from_str(p).ok();
    if !document.is_some_and(|d| d.contains_key("Statement")) {
        return Err(kms_err!(
            MalformedPolicyDocument,
            "The key policy is not a JSON policy document with a Statement."
        ));
    }
    Ok(())
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
