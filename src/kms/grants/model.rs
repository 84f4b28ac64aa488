//! The grant record (plain data), as the store keeps it.

use crate::api::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `GrantConstraints`: at most one of the two encryption context constraints, and the
/// service's `SourceArn` (recorded only).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Constraints {
    /// `EncryptionContextEquals`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<BTreeMap<String, String>>,
    /// `EncryptionContextSubset`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset: Option<BTreeMap<String, String>>,
    /// `SourceArn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_arn: Option<String>,
}

/// A grant on one KMS key. Principals are recorded as given: cks-sim evaluates no IAM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    /// 64 hex digits.
    pub id: String,
    /// The ID of the key it allows.
    pub key_id: String,
    /// The ARN of that key (a multi-Region key's ID names a key in each of its regions; the
    /// ARN names one).
    pub key_arn: String,
    /// `Name`, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Seconds since the epoch.
    pub creation_date: Timestamp,
    /// `GranteePrincipal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grantee: Option<String>,
    /// `GranteeServicePrincipal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grantee_service: Option<String>,
    /// `RetiringPrincipal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retiring: Option<String>,
    /// `RetiringServicePrincipal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retiring_service: Option<String>,
    /// `IssuingAccount`: `arn:aws:iam::<account>:root` of the caller.
    pub issuing_account: String,
    /// `Operations`, in the order given.
    pub operations: Vec<String>,
    /// `Constraints`, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraints: Option<Constraints>,
    /// Its namespace's account; empty for the default one (see [`crate::namespace`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub account: String,
    /// Its namespace's region; empty with `account`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub region: String,
}

impl Grant {
    /// Its ID in the world and the store: `<key ARN>/<grant id>`, so a key's grants are one
    /// ordered range (listing, counting and deleting them with the key), whatever its
    /// namespace.
    pub fn storage_id(&self) -> String {
        storage_id(&self.key_arn, &self.id)
    }

    /// Whether a request with these parameters would create this very grant (a retry of a
    /// named CreateGrant returns the existing grant).
    pub fn same_request(&self, other: &Grant) -> bool {
        self.name.is_some()
            && self.name == other.name
            && self.grantee == other.grantee
            && self.grantee_service == other.grantee_service
            && self.retiring == other.retiring
            && self.retiring_service == other.retiring_service
            && same_set(&self.operations, &other.operations)
            && self.constraints == other.constraints
    }
}

fn same_set(a: &[String], b: &[String]) -> bool {
    let set = |v: &[String]| v.iter().cloned().collect::<std::collections::BTreeSet<_>>();
    set(a) == set(b)
}

/// The storage ID of grant `grant_id` on the key with ARN `key_arn`.
pub fn storage_id(key_arn: &str, grant_id: &str) -> String {
    format!("{key_arn}/{grant_id}")
}

/// The range of storage IDs of the grants of the key with ARN `key_arn`: `<arn>/` up to
/// `<arn>0` (`'0'` follows `'/'`; key IDs have one length, so no ARN extends another).
pub fn key_range(key_arn: &str) -> std::ops::Range<String> {
    format!("{key_arn}/")..format!("{key_arn}0")
}
