//! KMS records: custom key stores, keys, aliases and the orphan log (plain data).

use super::spec::{KeySpec, KeyUsage};
use crate::api::Timestamp;
use crate::names::{ClusterId, CustomKeyStoreId, KeyArn, KeyId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `ConnectionStateType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum ConnectionState {
    Connected,
    Connecting,
    Failed,
    Disconnected,
    Disconnecting,
}

impl ConnectionState {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionState::Connected => "CONNECTED",
            ConnectionState::Connecting => "CONNECTING",
            ConnectionState::Failed => "FAILED",
            ConnectionState::Disconnected => "DISCONNECTED",
            ConnectionState::Disconnecting => "DISCONNECTING",
        }
    }
}

/// `ConnectionErrorCodeType` values a CloudHSM key store can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum ConnectionErrorCode {
    ClusterNotFound,
    SubnetNotFound,
    InsufficientFreeAddressesInSubnet,
    InsufficientCloudhsmHsms,
    NetworkErrors,
    UserNotFound,
    UserLockedOut,
    UserLoggedIn,
    InvalidCredentials,
    InternalError,
}

impl ConnectionErrorCode {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionErrorCode::ClusterNotFound => "CLUSTER_NOT_FOUND",
            ConnectionErrorCode::SubnetNotFound => "SUBNET_NOT_FOUND",
            ConnectionErrorCode::InsufficientFreeAddressesInSubnet => {
                "INSUFFICIENT_FREE_ADDRESSES_IN_SUBNET"
            }
            ConnectionErrorCode::InsufficientCloudhsmHsms => "INSUFFICIENT_CLOUDHSM_HSMS",
            ConnectionErrorCode::NetworkErrors => "NETWORK_ERRORS",
            ConnectionErrorCode::UserNotFound => "USER_NOT_FOUND",
            ConnectionErrorCode::UserLockedOut => "USER_LOCKED_OUT",
            ConnectionErrorCode::UserLoggedIn => "USER_LOGGED_IN",
            ConnectionErrorCode::InvalidCredentials => "INVALID_CREDENTIALS",
            ConnectionErrorCode::InternalError => "INTERNAL_ERROR",
        }
    }
}

/// A CloudHSM key store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyStore {
    /// `cks-…`.
    pub id: CustomKeyStoreId,
    /// Unique name.
    pub name: String,
    /// The associated cluster.
    pub cluster_id: ClusterId,
    /// The trust anchor exactly as supplied.
    pub trust_anchor: String,
    /// The `kmsuser` password KMS knows (write-only on the wire; rotated on each connect).
    pub password: String,
    /// Seconds since the epoch.
    pub creation_date: Timestamp,
    /// Connection state.
    pub state: ConnectionState,
    /// Set only while `FAILED`.
    pub error_code: Option<ConnectionErrorCode>,
    /// The last error code, kept for diagnostics after leaving `FAILED`.
    #[serde(default)]
    pub last_error_code: Option<ConnectionErrorCode>,
    /// The cluster's `kmsuser_epoch` when KMS's `kmsuser` session was opened (at the last
    /// connect); `None` while not connected. The session is good for deleting material only
    /// while the cluster's epoch has not moved since (the password was not changed, nor
    /// `kmsuser` deleted, behind KMS's back).
    #[serde(default)]
    pub session_epoch: Option<u64>,
    /// Records written before `session_epoch` existed said only whether the session was good.
    #[serde(default, rename = "session_valid", skip_serializing)]
    pub legacy_session_valid: bool,
    /// Bumped on every connect/disconnect request, so a stale background task can tell.
    #[serde(default)]
    pub generation: u64,
    /// Its namespace's account; empty for the default one (see [`crate::namespace`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub account: String,
    /// Its namespace's region; empty with `account`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub region: String,
}

impl KeyStore {
    /// The epoch KMS's session was opened at (`0` for a record from before epochs, whose
    /// session was good).
    pub fn session_epoch(&self) -> Option<u64> {
        self.session_epoch
            .or(self.legacy_session_valid.then_some(0))
    }

    /// Record the session KMS opened at `epoch`, or (`None`) that it has none.
    pub fn set_session(&mut self, epoch: Option<u64>) {
        self.session_epoch = epoch;
        self.legacy_session_valid = false;
    }
}

/// The underlying key state (§3.2); the visible state adds `Unavailable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum StoredKeyState {
    Enabled,
    Disabled,
    PendingDeletion,
    /// A multi-Region primary key scheduled for deletion while replicas remain: its waiting
    /// period starts when the last replica is deleted.
    PendingReplicaDeletion,
}

/// Where a key's material lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Origin {
    /// On KMS's own HSMs (here: the `kms-internal` token).
    AwsKms,
    /// In a CloudHSM key store's cluster.
    AwsCloudhsm,
    /// Imported by the customer (here: on the `kms-internal` token).
    External,
}

impl Origin {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::AwsKms => "AWS_KMS",
            Origin::AwsCloudhsm => "AWS_CLOUDHSM",
            Origin::External => "EXTERNAL",
        }
    }
}

/// A KMS key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Key {
    /// UUID.
    pub id: KeyId,
    /// Key ARN.
    pub arn: KeyArn,
    /// Seconds since the epoch.
    pub creation_date: Timestamp,
    /// Description.
    pub description: String,
    /// Origin.
    pub origin: Origin,
    /// The key store (CloudHSM keys).
    pub store_id: Option<CustomKeyStoreId>,
    /// The token label holding the material (a cluster ID, or `kms-internal`).
    pub token_label: String,
    /// Underlying state.
    pub state: StoredKeyState,
    /// When the deletion completes (PendingDeletion only).
    pub deletion_date: Option<Timestamp>,
    /// The waiting period asked for.
    pub pending_window_days: Option<u32>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// The key policy.
    pub policy: String,
    /// Key spec, key usage and public key (keys stored before these existed are symmetric
    /// encryption keys).
    #[serde(default)]
    pub kind: KeyKind,
    /// Key materials, rotation and import parameters (see [`super::material`]).
    #[serde(default, skip_serializing_if = "super::material::Materials::is_empty")]
    pub material: super::material::Materials,
    /// A multi-Region key's role (`mrk-` keys only); see [`super::multi_region`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_region: Option<MultiRegionRole>,
}

impl Key {
    /// Its ID in the world and the store: the key ID, but `<key id>/<account>/<region>` for a
    /// multi-Region key, whose primary and replicas share the key ID.
    pub fn storage_id(&self) -> String {
        match self.multi_region {
            None => self.id.to_string(),
            Some(_) => {
                let (region, account) = super::arn_region_account(&self.arn);
                super::multi_region::storage_id(&self.id, account, region)
            }
        }
    }
}

/// `MultiRegionKeyType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum MultiRegionRole {
    Primary,
    Replica,
}

/// What kind of key a KMS key is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct KeyKind {
    /// `KeySpec`.
    pub spec: KeySpec,
    /// `KeyUsage`.
    pub usage: KeyUsage,
    /// Base64 of the DER SubjectPublicKeyInfo of an asymmetric key, as read from the token at
    /// creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

/// An alias.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alias {
    /// `alias/…`.
    pub name: String,
    /// The target key ID.
    pub target_key_id: String,
    /// Seconds since the epoch.
    pub creation_date: Timestamp,
    /// Seconds since the epoch.
    pub last_updated_date: Timestamp,
    /// Its namespace's account; empty for the default one (see [`crate::namespace`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub account: String,
    /// Its namespace's region; empty with `account`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub region: String,
}

impl Alias {
    /// Its ID in the world and the store: the name in the default namespace, else
    /// `<account>/<region>/<name>`, since two namespaces may both have `alias/x`.
    pub fn storage_id(&self) -> String {
        if self.account.is_empty() {
            self.name.clone()
        } else {
            format!("{}/{}/{}", self.account, self.region, self.name)
        }
    }
}

/// Key material left on a cluster's token after its KMS key was deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Orphan {
    /// Sequence number (store ID).
    pub seq: u64,
    /// The deleted key's ARN (= the object's label).
    pub key_arn: String,
    /// The cluster.
    pub cluster_id: String,
    /// The object's `CKA_ID`, hex.
    pub object_id: String,
    /// When the KMS key was deleted.
    pub time: Timestamp,
    /// Why the material was not destroyed.
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key store record as a version before `session_epoch` wrote it.
    fn older_record(session_valid: bool) -> KeyStore {
        serde_json::from_value(serde_json::json!({
            "id": "cks-0123456789abcdef0", "name": "old", "cluster_id": "cluster-abcdefghijk",
            "trust_anchor": "-----BEGIN CERTIFICATE-----", "password": "kmsuser-pw",
            "creation_date": 1_700_000_000.5, "state": "CONNECTED", "error_code": null,
            "session_valid": session_valid
        }))
        .expect("an older record loads")
    }

    #[test]
    fn an_older_records_good_session_reads_as_the_first_epoch_and_a_lost_one_as_none() {
        assert_eq!(older_record(true).session_epoch(), Some(0));
        assert_eq!(older_record(false).session_epoch(), None);
        assert_eq!(older_record(true).creation_date, Timestamp(1_700_000_000.5));
    }

    #[test]
    fn a_session_set_or_ended_replaces_what_an_older_record_said() {
        let mut s = older_record(true);
        s.set_session(None);
        assert_eq!(s.session_epoch(), None);
        s.set_session(Some(3));
        assert_eq!(s.session_epoch(), Some(3));
        let saved = serde_json::to_value(&s).unwrap();
        assert!(saved.get("session_valid").is_none(), "{saved}");
        assert_eq!(saved["session_epoch"], 3);
    }
}
