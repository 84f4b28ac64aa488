//! A KMS key's key materials (plain data and the rules read from it).
//!
//! A key has one or more key materials, each its own token object (own `CKA_ID`) on the key's
//! token, each named by a `KeyMaterialId` (64 hex digits); one is current and seals new
//! ciphertexts, every other one still opens the ciphertexts it sealed. Rotation adds one;
//! imported material comes and goes with `ImportKeyMaterial`, `DeleteImportedKeyMaterial`
//! and expiry.
//!
//! A key recorded before materials existed (or never rotated) has an empty list: it has one
//! material whose object ID is the key ID's 16 bytes (D4), whose ID is derived from the key
//! ARN as before. The list is written out at the key's first rotation.

use super::model::{Key, Origin};
use super::spec::KeySpec;
use crate::api::Timestamp;
use crate::hsm::ObjectId;
use serde::{Deserialize, Serialize};

/// `KeyMaterialState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum MaterialState {
    Current,
    NonCurrent,
    PendingRotation,
}

impl MaterialState {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            MaterialState::Current => "CURRENT",
            MaterialState::NonCurrent => "NON_CURRENT",
            MaterialState::PendingRotation => "PENDING_ROTATION",
        }
    }
}

/// `RotationType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum RotationType {
    Automatic,
    OnDemand,
}

impl RotationType {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            RotationType::Automatic => "AUTOMATIC",
            RotationType::OnDemand => "ON_DEMAND",
        }
    }
}

/// What is known of an imported material.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Imported {
    /// Whether the material is on the token now (`IMPORTED`); false once deleted or expired
    /// (`PENDING_IMPORT`).
    pub present: bool,
    /// Whether it expires (`KEY_MATERIAL_EXPIRES`).
    pub expires: bool,
    /// When it expires.
    pub valid_to: Option<Timestamp>,
    /// `KeyMaterialDescription`.
    #[serde(default)]
    pub description: Option<String>,
    /// The token's fingerprint of the material (see [`crate::hsm::Token::fingerprint`]), to
    /// tell the same material from another on re-import.
    pub fingerprint: String,
}

impl Imported {
    /// `ExpirationModel`.
    pub fn expiration_model(&self) -> &'static str {
        if self.expires {
            "KEY_MATERIAL_EXPIRES"
        } else {
            "KEY_MATERIAL_DOES_NOT_EXPIRE"
        }
    }
}

/// One key material.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Material {
    /// `KeyMaterialId`: 64 lowercase hex digits.
    pub id: String,
    /// The token object's `CKA_ID`, hex.
    pub object_id: String,
    /// When it was made or first imported.
    pub created: Timestamp,
    /// When it became current by a rotation (None for the key's first material).
    #[serde(default)]
    pub rotation_date: Option<Timestamp>,
    /// How that rotation happened.
    #[serde(default)]
    pub rotation_type: Option<RotationType>,
    /// Current, non-current or waiting for an on-demand rotation.
    pub state: MaterialState,
    /// Imported material only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported: Option<Imported>,
}

impl Material {
    /// Whether its token object exists (generated material always; imported while imported).
    pub fn present(&self) -> bool {
        self.imported.as_ref().is_none_or(|i| i.present)
    }

    /// The token object's `CKA_ID`.
    pub fn object(&self) -> Option<ObjectId> {
        hex_object_id(&self.object_id)
    }
}

/// Automatic rotation settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rotation {
    /// Whether automatic rotation is enabled.
    pub enabled: bool,
    /// `RotationPeriodInDays`.
    pub period_days: u32,
    /// When the next automatic rotation falls due (while enabled).
    pub next: Option<Timestamp>,
}

/// The parameters of the last `GetParametersForImport` (one set is valid at a time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportParams {
    /// The wrapping key pair's `CKA_ID`, hex (on the key's token).
    pub wrapping_object: String,
    /// `WrappingAlgorithm`.
    pub algorithm: String,
    /// `WrappingKeySpec`.
    pub spec: String,
    /// `ParametersValidTo`.
    pub valid_to: Timestamp,
    /// The random part of the import token, hex.
    pub nonce: String,
}

/// Everything about a key's materials (empty for a key that has only its first material).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Materials {
    /// Every material, oldest first; empty means the one implicit first material (see the
    /// module documentation), or none yet for an `EXTERNAL` key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub list: Vec<Material>,
    /// Automatic rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<Rotation>,
    /// On-demand rotations done so far.
    #[serde(default)]
    pub on_demand_rotations: u32,
    /// The import parameters in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import: Option<ImportParams>,
}

impl Materials {
    /// Whether nothing was recorded beyond the implicit first material.
    pub fn is_empty(&self) -> bool {
        *self == Materials::default()
    }
}

/// What names a key's material: its ARN, but with the region left out for a multi-Region
/// key, whose copies share one material and so one `KeyMaterialId`.
fn material_owner(k: &Key) -> String {
    if !super::multi_region::is_mrk_id(&k.id) {
        return k.arn.to_string();
    }
    let mut parts: Vec<&str> = k.arn.splitn(6, ':').collect();
    if let Some(region) = parts.get_mut(3) {
        *region = "";
    }
    parts.join(":")
}

/// The implicit first material of a generated key (object ID = key ID's bytes).
fn first_material(k: &Key) -> Material {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("key-material\0{}", material_owner(k)).as_bytes());
    Material {
        id: hex(&digest),
        object_id: hex(&key_uuid(k).unwrap_or_default()),
        created: k.creation_date,
        rotation_date: None,
        rotation_type: None,
        state: MaterialState::Current,
        imported: None,
    }
}

/// Every material of `k`, oldest first (the implicit first one included).
pub fn all(k: &Key) -> Vec<Material> {
    if k.material.list.is_empty() && k.origin != Origin::External {
        return vec![first_material(k)];
    }
    k.material.list.clone()
}

/// The first material of `k` that `wanted` accepts, copying only that one (Encrypt and
/// Decrypt look one up per request): the implicit first material of a key with no recorded
/// list, or one of the list.
fn find(k: &Key, wanted: impl Fn(&Material) -> bool) -> Option<Material> {
    if k.material.list.is_empty() && k.origin != Origin::External {
        return Some(first_material(k)).filter(|m| wanted(m));
    }
    k.material.list.iter().find(|m| wanted(m)).cloned()
}

/// The `KeyMaterialId` responses give for material `m` of key `k`, if they give one. AWS
/// documents material IDs (`CurrentKeyMaterialId` in `KeyMetadata`, `KeyMaterialId` in the
/// cryptographic answers) for the keys whose material can rotate: symmetric encryption keys
/// of `AWS_KMS` origin, and single-Region ones of `EXTERNAL` origin. A key in a CloudHSM key
/// store, an asymmetric or an HMAC key shows none.
pub fn shown_id(k: &Key, m: &Material) -> Option<String> {
    let rotates = k.kind.spec == KeySpec::SymmetricDefault
        && match k.origin {
            Origin::AwsKms => true,
            Origin::External => k.multi_region.is_none(),
            Origin::AwsCloudhsm => false,
        };
    rotates.then(|| m.id.clone())
}

/// The current material, if any.
pub fn current(k: &Key) -> Option<Material> {
    find(k, |m| m.state == MaterialState::Current)
}

/// The material whose token object has this ID.
pub fn by_object(k: &Key, object: &ObjectId) -> Option<Material> {
    find(k, |m| m.object().as_ref() == Some(object))
}

/// The token objects of every material of `k` that is on the token.
pub fn present_objects(k: &Key) -> Vec<ObjectId> {
    all(k)
        .iter()
        .filter(|m| m.present())
        .filter_map(Material::object)
        .collect()
}

/// Whether an `EXTERNAL` key waits for material (`PendingImport`): it has none, or a material
/// other than one waiting for rotation was deleted or expired.
pub fn pending_import(k: &Key) -> bool {
    k.origin == Origin::External
        && (k.material.list.is_empty()
            || k.material
                .list
                .iter()
                .any(|m| m.state != MaterialState::PendingRotation && !m.present()))
}

/// The earliest `ValidTo` of the key's imported materials that are present.
pub fn earliest_valid_to(k: &Key) -> Option<crate::api::Timestamp> {
    k.material
        .list
        .iter()
        .filter(|m| m.present())
        .filter_map(|m| m.imported.as_ref().and_then(|i| i.valid_to))
        .reduce(crate::api::Timestamp::min)
}

/// When something next happens to `k`'s materials by the clock alone: an imported material
/// expires, or an automatic rotation falls due. Indexed by the world (see
/// [`crate::app::World::material_events`]).
pub fn next_event(k: &Key) -> Option<crate::api::Timestamp> {
    // A replica's materials change with its primary's (`multi_region::with_shared_material`).
    if k.multi_region == Some(super::model::MultiRegionRole::Replica) {
        return None;
    }
    let rotation = k
        .material
        .rotation
        .as_ref()
        .filter(|r| r.enabled)
        .and_then(|r| r.next);
    match (earliest_valid_to(k), rotation) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The object ID of a key's first material: the 16 bytes of its UUID (or of an `mrk-` ID).
pub fn key_uuid(k: &Key) -> Option<ObjectId> {
    super::multi_region::object_id(&k.id)
}

/// A fresh token object ID for a new material (random, so it never meets a key ID).
pub fn new_object_id() -> ObjectId {
    *uuid::Uuid::new_v4().as_bytes()
}

/// A fresh `KeyMaterialId` for generated material (64 hex digits).
pub fn new_material_id() -> String {
    hex(uuid::Uuid::new_v4().as_bytes()) + &hex(uuid::Uuid::new_v4().as_bytes())
}

/// The `KeyMaterialId` of imported material: derived from the key and the material's
/// fingerprint, so re-importing the same material gives the same ID.
pub fn imported_material_id(k: &Key, fingerprint: &str) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(
        format!("imported\0{}\0{fingerprint}", k.arn).as_bytes(),
    ))
}

pub use crate::codec::hex;

/// Parse 32 hex digits into an object ID.
pub fn hex_object_id(text: &str) -> Option<ObjectId> {
    crate::codec::unhex16(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids_round_trip_through_hex() {
        let id = new_object_id();
        assert_eq!(hex_object_id(&hex(&id)), Some(id));
        assert_eq!(hex_object_id("zz"), None);
    }

    #[test]
    fn material_ids_are_64_hex_digits() {
        let id = new_material_id();
        assert_eq!(id.len(), 64);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
    }

    #[test]
    fn old_records_without_materials_still_load() {
        let json = r#"{"id":"6f1c4b3e-1b7a-4c51-9d43-2f8e4f0e6a11",
            "arn":"arn:aws:kms:us-east-1:111122223333:key/6f1c4b3e-1b7a-4c51-9d43-2f8e4f0e6a11",
            "creation_date":1.0,"description":"","origin":"AWS_KMS","store_id":null,
            "token_label":"kms-internal","state":"Enabled","deletion_date":null,
            "pending_window_days":null,"tags":{},"policy":"{}"}"#;
        let k: Key = serde_json::from_str(json).unwrap();
        let ms = all(&k);
        assert_eq!(ms.len(), 1);
        assert_eq!(ms[0].object(), key_uuid(&k));
        assert_eq!(ms[0].state, MaterialState::Current);
        assert!(!pending_import(&k));
    }
}
