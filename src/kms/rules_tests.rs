//! Unit tests of the KMS domain rules ([`super`]): the key-state matrix, the deletion rules
//! on the simulated clock, and what each connection state of a key store allows.

use super::*;
use crate::app::World;
use crate::kms::error::KmsErrorKind;
use crate::kms::model::{KeyKind, Origin};
use crate::kms::visible_state;
use std::collections::BTreeMap;

const ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const STORE: &str = "cks-1234567890abcdef0";

fn key(state: StoredKeyState, store: Option<&str>) -> Key {
    Key {
        id: "1234abcd-12ab-34cd-56ef-1234567890ab".into(),
        arn: ARN.into(),
        creation_date: crate::api::Timestamp(1_700_000_000.0),
        description: String::new(),
        origin: if store.is_some() {
            Origin::AwsCloudhsm
        } else {
            Origin::AwsKms
        },
        store_id: store.map(Into::into),
        token_label: "cluster-abcdefghijk".into(),
        state,
        deletion_date: None,
        pending_window_days: None,
        tags: BTreeMap::new(),
        policy: String::new(),
        kind: KeyKind::default(),
        material: Default::default(),
        multi_region: None,
    }
}

/// A world with store `STORE` in `state` (no store at all for `None`).
fn world_with_store(state: Option<ConnectionState>) -> World {
    let mut w = World::default();
    if let Some(state) = state {
        let s = serde_json::from_value(serde_json::json!({
            "id": STORE, "name": "s", "cluster_id": "cluster-abcdefghijk", "trust_anchor": "",
            "password": "kmsuserPassw0rd", "creation_date": 0.0, "state": state,
            "error_code": null,
        }))
        .expect("a key store");
        w.stores.insert(STORE.into(), s);
    }
    w
}

fn refusal(r: Result<impl std::fmt::Debug, KmsError>) -> (KmsErrorKind, String) {
    let e = r.expect_err("a refusal");
    (e.kind, e.message)
}

const ALL_STORE_STATES: [ConnectionState; 5] = [
    ConnectionState::Connected,
    ConnectionState::Connecting,
    ConnectionState::Disconnected,
    ConnectionState::Disconnecting,
    ConnectionState::Failed,
];

// ---- Visible key state ----

#[test]
fn a_key_of_a_connected_store_shows_its_own_state() {
    let w = world_with_store(Some(ConnectionState::Connected));
    assert_eq!(
        visible_state(&w, &key(StoredKeyState::Enabled, Some(STORE))).as_str(),
        "Enabled"
    );
    assert_eq!(
        visible_state(&w, &key(StoredKeyState::Disabled, Some(STORE))).as_str(),
        "Disabled"
    );
}

#[test]
fn a_key_of_a_store_that_is_not_connected_is_unavailable_whether_enabled_or_disabled() {
    for state in ALL_STORE_STATES
        .into_iter()
        .filter(|s| *s != ConnectionState::Connected)
    {
        let w = world_with_store(Some(state));
        for k in [StoredKeyState::Enabled, StoredKeyState::Disabled] {
            assert_eq!(
                visible_state(&w, &key(k, Some(STORE))).as_str(),
                "Unavailable",
                "{k:?} in a {state:?} store"
            );
        }
    }
}

#[test]
fn a_key_whose_store_is_gone_is_unavailable() {
    let w = world_with_store(None);
    assert_eq!(
        visible_state(&w, &key(StoredKeyState::Enabled, Some(STORE))).as_str(),
        "Unavailable"
    );
}

#[test]
fn pending_deletion_shows_whatever_the_stores_state() {
    for state in ALL_STORE_STATES {
        let w = world_with_store(Some(state));
        assert_eq!(
            visible_state(&w, &key(StoredKeyState::PendingDeletion, Some(STORE))).as_str(),
            "PendingDeletion",
            "{state:?}"
        );
    }
}

#[test]
fn an_aws_kms_key_is_never_unavailable() {
    let w = World::default();
    assert_eq!(
        visible_state(&w, &key(StoredKeyState::Enabled, None)).as_str(),
        "Enabled"
    );
}

// ---- Which states allow cryptography and management ----

#[test]
fn only_an_enabled_key_may_be_used_for_cryptography() {
    assert!(crypto_allowed(crate::api::kms::KeyState::Enabled, ARN).is_ok());
    assert_eq!(
        refusal(crypto_allowed(crate::api::kms::KeyState::Disabled, ARN)),
        (KmsErrorKind::Disabled, format!("{ARN} is disabled."))
    );
    assert_eq!(
        refusal(crypto_allowed(
            crate::api::kms::KeyState::PendingDeletion,
            ARN
        )),
        (
            KmsErrorKind::KmsInvalidState,
            format!("{ARN} is pending deletion.")
        )
    );
    assert_eq!(
        refusal(crypto_allowed(crate::api::kms::KeyState::Unavailable, ARN)),
        (
            KmsErrorKind::KmsInvalidState,
            format!("{ARN} is unavailable.")
        )
    );
}

#[test]
fn a_key_may_be_managed_unless_it_is_pending_deletion() {
    assert!(manageable(StoredKeyState::Enabled, ARN).is_ok());
    assert!(manageable(StoredKeyState::Disabled, ARN).is_ok());
    assert_eq!(
        refusal(manageable(StoredKeyState::PendingDeletion, ARN)),
        (
            KmsErrorKind::KmsInvalidState,
            format!("{ARN} is pending deletion.")
        )
    );
}

// ---- Deletion ----

#[test]
fn the_waiting_period_is_7_to_30_days_and_30_by_default() {
    assert_eq!(pending_window(None).unwrap(), 30);
    assert_eq!(pending_window(Some(7)).unwrap(), 7);
    assert_eq!(pending_window(Some(30)).unwrap(), 30);
    for days in [6, 31, 0, -7, i64::MIN, i64::MAX] {
        assert_eq!(
            refusal(pending_window(Some(days))),
            (
                KmsErrorKind::Validation,
                "PendingWindowInDays must be between 7 and 30".to_string()
            ),
            "{days}"
        );
    }
}

#[test]
fn scheduling_sets_pending_deletion_the_window_and_a_date_that_many_days_later() {
    let mut k = key(StoredKeyState::Disabled, Some(STORE));
    schedule_deletion(&mut k, crate::api::Timestamp(1_000.0), 7, false);
    assert_eq!(k.state, StoredKeyState::PendingDeletion);
    assert_eq!(
        k.deletion_date,
        Some(crate::api::Timestamp(1_000.0 + 7.0 * 86_400.0))
    );
    assert_eq!(k.pending_window_days, Some(7));
}

#[test]
fn a_deletion_is_due_when_the_simulated_clock_reaches_its_date_not_before() {
    let mut k = key(StoredKeyState::Enabled, Some(STORE));
    schedule_deletion(&mut k, crate::api::Timestamp(1_000.0), 7, false);
    let date = crate::api::Timestamp(1_000.0 + 7.0 * 86_400.0);
    assert!(!deletion_due(&k, crate::api::Timestamp(1_000.0)));
    assert!(!deletion_due(&k, date - 0.001));
    assert!(deletion_due(&k, date));
    assert!(deletion_due(&k, date + 86_400.0));
}

#[test]
fn a_key_not_pending_deletion_is_never_due() {
    for state in [StoredKeyState::Enabled, StoredKeyState::Disabled] {
        let mut k = key(state, Some(STORE));
        k.deletion_date = Some(crate::api::Timestamp(0.0));
        assert!(
            !deletion_due(&k, crate::api::Timestamp(1_000.0)),
            "{state:?}"
        );
    }
    let mut k = key(StoredKeyState::PendingDeletion, Some(STORE));
    k.deletion_date = None;
    assert!(!deletion_due(&k, crate::api::Timestamp(1_000.0)));
}

#[test]
fn cancelling_leaves_the_key_disabled_without_date_or_window() {
    let mut k = key(StoredKeyState::Enabled, Some(STORE));
    schedule_deletion(&mut k, crate::api::Timestamp(0.0), 30, false);
    cancel_deletion(&mut k).unwrap();
    assert_eq!(k.state, StoredKeyState::Disabled);
    assert_eq!(k.deletion_date, None);
    assert_eq!(k.pending_window_days, None);
}

#[test]
fn cancelling_a_key_not_pending_deletion_is_refused_and_changes_nothing() {
    for state in [StoredKeyState::Enabled, StoredKeyState::Disabled] {
        let mut k = key(state, Some(STORE));
        let before = k.clone();
        assert_eq!(
            refusal(cancel_deletion(&mut k)),
            (
                KmsErrorKind::KmsInvalidState,
                format!("{ARN} is not pending deletion.")
            )
        );
        assert_eq!(k, before);
    }
}

// ---- What a key store's connection state allows ----

#[test]
fn connect_starts_only_from_disconnected_and_is_a_no_op_when_connected_or_connecting() {
    assert!(connect_allowed(STORE, ConnectionState::Disconnected).unwrap());
    assert!(!connect_allowed(STORE, ConnectionState::Connected).unwrap());
    assert!(!connect_allowed(STORE, ConnectionState::Connecting).unwrap());
}

#[test]
fn connect_is_refused_while_failed_or_disconnecting() {
    assert_eq!(
        refusal(connect_allowed(STORE, ConnectionState::Failed)),
        (
            KmsErrorKind::CustomKeyStoreInvalidState,
            format!(
                "Custom key store {STORE} is FAILED: disconnect it (DisconnectCustomKeyStore) before connecting again."
            )
        )
    );
    assert_eq!(
        refusal(connect_allowed(STORE, ConnectionState::Disconnecting)),
        (
            KmsErrorKind::CustomKeyStoreInvalidState,
            format!("Custom key store {STORE} is DISCONNECTING: wait until it is DISCONNECTED.")
        )
    );
}

#[test]
fn disconnect_ends_a_connection_or_an_attempt_only() {
    for state in [
        ConnectionState::Connected,
        ConnectionState::Connecting,
        ConnectionState::Failed,
    ] {
        assert!(disconnect_allowed(STORE, state).is_ok(), "{state:?}");
    }
    for (state, name) in [
        (ConnectionState::Disconnected, "DISCONNECTED"),
        (ConnectionState::Disconnecting, "DISCONNECTING"),
    ] {
        assert_eq!(
            refusal(disconnect_allowed(STORE, state)),
            (
                KmsErrorKind::CustomKeyStoreInvalidState,
                format!("Custom key store {STORE} is {name}: there is no connection to end.")
            )
        );
    }
}

#[test]
fn delete_needs_a_disconnected_store() {
    for (state, name) in [
        (ConnectionState::Connected, "CONNECTED"),
        (ConnectionState::Connecting, "CONNECTING"),
        (ConnectionState::Disconnecting, "DISCONNECTING"),
        (ConnectionState::Failed, "FAILED"),
    ] {
        assert_eq!(
            refusal(delete_allowed(STORE, state, 0)),
            (
                KmsErrorKind::CustomKeyStoreInvalidState,
                format!(
                    "Custom key store {STORE} is {name}: disconnect it (DisconnectCustomKeyStore) before deleting it."
                )
            )
        );
    }
    assert!(delete_allowed(STORE, ConnectionState::Disconnected, 0).is_ok());
}

#[test]
fn delete_needs_a_store_without_keys_and_checks_the_state_first() {
    assert_eq!(
        refusal(delete_allowed(STORE, ConnectionState::Disconnected, 1)),
        (
            KmsErrorKind::CustomKeyStoreHasCmks,
            format!(
                "Custom key store {STORE} still holds 1 KMS key(s), counting keys pending deletion: schedule their deletion and wait until the waiting period ends."
            )
        )
    );
    assert_eq!(
        refusal(delete_allowed(STORE, ConnectionState::Connected, 3)).0,
        KmsErrorKind::CustomKeyStoreInvalidState
    );
}

#[test]
fn a_new_password_or_cluster_needs_a_disconnected_store() {
    assert!(update_allowed(STORE, ConnectionState::Disconnected, true, true).is_ok());
    for (state, name) in [
        (ConnectionState::Connected, "CONNECTED"),
        (ConnectionState::Connecting, "CONNECTING"),
        (ConnectionState::Disconnecting, "DISCONNECTING"),
        (ConnectionState::Failed, "FAILED"),
    ] {
        for new_name in [false, true] {
            assert_eq!(
                refusal(update_allowed(STORE, state, true, new_name)),
                (
                    KmsErrorKind::CustomKeyStoreInvalidState,
                    format!(
                        "Custom key store {STORE} is {name}: disconnect it before changing its password or cluster."
                    )
                )
            );
        }
    }
}

#[test]
fn a_new_name_alone_needs_a_connected_or_disconnected_store() {
    for state in [ConnectionState::Connected, ConnectionState::Disconnected] {
        assert!(
            update_allowed(STORE, state, false, true).is_ok(),
            "{state:?}"
        );
    }
    for (state, name) in [
        (ConnectionState::Connecting, "CONNECTING"),
        (ConnectionState::Disconnecting, "DISCONNECTING"),
        (ConnectionState::Failed, "FAILED"),
    ] {
        assert_eq!(
            refusal(update_allowed(STORE, state, false, true)),
            (
                KmsErrorKind::CustomKeyStoreInvalidState,
                format!(
                    "Custom key store {STORE} is {name}: it can be renamed only while CONNECTED or DISCONNECTED."
                )
            )
        );
    }
}

#[test]
fn an_update_that_changes_nothing_is_allowed_in_every_state() {
    for state in ALL_STORE_STATES {
        assert!(
            update_allowed(STORE, state, false, false).is_ok(),
            "{state:?}"
        );
    }
}

#[test]
fn a_primary_with_replicas_waits_for_them_without_a_deletion_date_and_can_be_cancelled() {
    let mut k = key(StoredKeyState::Enabled, None);
    schedule_deletion(&mut k, crate::api::Timestamp(1_000.0), 7, true);
    assert_eq!(k.state, StoredKeyState::PendingReplicaDeletion);
    assert_eq!((k.deletion_date, k.pending_window_days), (None, Some(7)));
    assert!(!deletion_due(&k, crate::api::Timestamp(f64::MAX)));
    let arn = k.arn.clone();
    let e = manageable(k.state, &arn).unwrap_err();
    assert_eq!(e.message, format!("{arn} is pending replica deletion."));
    cancel_deletion(&mut k).unwrap();
    assert_eq!(k.state, StoredKeyState::Disabled);
}

#[test]
fn a_key_policy_is_a_json_object_with_a_statement_within_32_kb() {
    assert!(key_policy(r#"{"Version":"2012-10-17","Statement":[]}"#).is_ok());
    for malformed in [
        "[1]",
        r#"{"Version":"2012-10-17"}"#,
        "not json",
        r#""Statement""#,
    ] {
        let (kind, _) = refusal(key_policy(malformed));
        assert_eq!(kind, KmsErrorKind::MalformedPolicyDocument, "{malformed}");
    }
    let big = format!(
        r#"{{"Statement":[],"Pad":"{}"}}"#,
        "x".repeat(MAX_POLICY_BYTES)
    );
    assert_eq!(
        refusal(key_policy(&big)),
        (
            KmsErrorKind::LimitExceeded,
            "The key policy exceeds the 32 KB limit.".into()
        )
    );
}

#[test]
fn a_key_policy_with_a_number_out_of_range_is_malformed() {
    let (kind, _) = refusal(key_policy(r#"{"Statement":[],"N":1e400}"#));
    assert_eq!(kind, KmsErrorKind::MalformedPolicyDocument);
}
