//! Multi-Region keys: `mrk-` key IDs, `ReplicateKey`, `UpdatePrimaryRegion`,
//! `MultiRegionConfiguration`, and the deletion rules of primaries and replicas.
//!
//! A primary and its replicas are separate KMS keys of one account, one per region, with the
//! same key ID and the same material: every copy points at the same object on the internal
//! token (no copy of the material is made), so a ciphertext made in one region decrypts in
//! any other. Since the copies share the key ID, the world stores a multi-Region key under
//! `<key id>/<account>/<region>` ([`storage_id`]): a request finds the copy of its own region
//! with one hash lookup, and the copies of a key are neighbours in the ordered map, found by
//! a range, not a scan.
//!
//! Which copy is the primary is recorded on each copy ([`MultiRegionRole`]); the replicas of
//! a key are its other copies. The material is destroyed only when the last copy is deleted
//! (see [`super::sweep`]); a primary scheduled for deletion while replicas remain waits in
//! `PendingReplicaDeletion` and its waiting period starts when the last replica is deleted.
//!
//! Replicas are `Enabled` at once (AWS shows `Creating` for a few seconds first), and
//! `UpdatePrimaryRegion` completes at once (AWS shows `Updating` for a few seconds).

use super::error::KmsError;
use super::model::{Key, KeyStateU, MultiRegionRole};
use super::{KeyRef, input_err, resolve_key, visible_state};
use crate::app::{App, Change, World};
use crate::kms_err;
use crate::protocol::input::Input;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// The prefix of a multi-Region key ID.
pub const MRK_PREFIX: &str = "mrk-";

/// Whether `s` is a multi-Region key ID: `mrk-` and 32 lower-case hex digits.
pub fn is_mrk_id(s: &str) -> bool {
    s.strip_prefix(MRK_PREFIX).is_some_and(|h| {
        h.len() == 32
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// A fresh multi-Region key ID.
pub fn new_mrk_id() -> String {
    let hex = crate::codec::hex(&crate::ids::random_bytes(16));
    format!("{MRK_PREFIX}{hex}")
}

/// The storage ID of the copy of multi-Region key `id` in (`account`, `region`).
pub fn storage_id(id: &str, account: &str, region: &str) -> String {
    format!("{id}/{account}/{region}")
}

/// The 16 bytes naming a key's material on its token (`CKA_ID`) and in its ciphertexts: the
/// UUID's bytes, or the 32 hex digits of an `mrk-` ID.
pub fn object_id(key_id: &str) -> Option<[u8; 16]> {
    if let Some(hex) = key_id.strip_prefix(MRK_PREFIX) {
        if !is_mrk_id(key_id) {
            return None;
        }
        return crate::codec::unhex16(hex);
    }
    uuid::Uuid::parse_str(key_id).ok().map(|u| *u.as_bytes())
}

/// The copy of multi-Region key `id` in the namespace of the request being served.
pub fn key_here<'w>(app: &App, w: &'w World, id: &str) -> Option<&'w Arc<Key>> {
    let ns = crate::namespace::current(app);
    w.key(&storage_id(id, &ns.account, &ns.region))
}

/// The key a ciphertext blob names (by its 16 bytes), as the request being served sees it:
/// a single-Region key by its UUID, else the copy of the multi-Region key in this region.
/// A UUID key costs one lookup, as before multi-Region keys.
pub fn blob_key(app: &App, w: &World, bytes: &[u8; 16]) -> Option<Arc<Key>> {
    let uuid = uuid::Uuid::from_bytes(*bytes).to_string();
    let found = w.key(&uuid).or_else(|| {
        let hex = crate::codec::hex(bytes);
        key_here(app, w, &format!("{MRK_PREFIX}{hex}"))
    });
    found.filter(|k| super::key_visible(k)).cloned()
}

/// Every copy (primary and replicas) of multi-Region key `id` in `account`, by region.
pub fn copies<'w>(w: &'w World, id: &str, account: &str) -> impl Iterator<Item = &'w Arc<Key>> {
    let prefix = format!("{id}/{account}/");
    w.keys
        .range::<String, _>(prefix.clone()..)
        .take_while(move |(sid, _)| sid.starts_with(&prefix))
        .map(|(_, k)| k)
}

/// The other copies of `k` (none for a single-Region key).
fn others<'w>(w: &'w World, k: &'w Key) -> impl Iterator<Item = &'w Arc<Key>> {
    let account = super::arn_region_account(&k.arn).1;
    k.multi_region
        .map(|_| copies(w, &k.id, account))
        .into_iter()
        .flatten()
        .filter(move |c| c.arn != k.arn)
}

/// The commit of `k`, and for a multi-Region primary key of every replica with `k`'s
/// materials and rotation settings: the copies share one material, changed through the
/// primary only.
pub fn with_shared_material(w: &World, k: &Key) -> Vec<Change> {
    let mut changes = vec![Change::Key(k.clone())];
    if k.multi_region == Some(MultiRegionRole::Primary) {
        changes.extend(others(w, k).map(|c| {
            let mut c = Key::clone(c);
            c.material = k.material.clone();
            Change::Key(c)
        }));
    }
    changes
}

/// Whether `k` is a multi-Region primary key that still has replicas.
pub fn replicas_remain(w: &World, k: &Key) -> bool {
    k.multi_region == Some(MultiRegionRole::Primary) && others(w, k).next().is_some()
}

/// Whether another copy of `k` still uses its material.
pub fn material_shared(w: &World, k: &Key) -> bool {
    others(w, k).next().is_some()
}

fn region_of(k: &Key) -> &str {
    super::arn_region_account(&k.arn).0
}

/// `MultiRegion`, `MultiRegionConfiguration` and `PendingDeletionWindowInDays` of a key's
/// `KeyMetadata`.
pub fn describe(w: &World, k: &Key, m: &mut Map<String, Value>) {
    m.insert("MultiRegion".into(), json!(k.multi_region.is_some()));
    let Some(role) = k.multi_region else {
        return;
    };
    let account = super::arn_region_account(&k.arn).1;
    let entry = |c: &Key| json!({"Arn": c.arn, "Region": region_of(c)});
    let mut primary = None;
    let mut replicas = Vec::new();
    for c in copies(w, &k.id, account) {
        match c.multi_region {
            Some(MultiRegionRole::Primary) => primary = Some(entry(c)),
            _ => replicas.push(entry(c)),
        }
    }
    let mut conf = Map::new();
    conf.insert("MultiRegionKeyType".into(), json!(role_str(role)));
    if let Some(p) = primary {
        conf.insert("PrimaryKey".into(), p);
    }
    conf.insert("ReplicaKeys".into(), Value::Array(replicas));
    m.insert("MultiRegionConfiguration".into(), Value::Object(conf));
    if k.state == KeyStateU::PendingReplicaDeletion {
        m.insert(
            "PendingDeletionWindowInDays".into(),
            json!(k.pending_window_days),
        );
    }
}

fn role_str(r: MultiRegionRole) -> &'static str {
    match r {
        MultiRegionRole::Primary => "PRIMARY",
        MultiRegionRole::Replica => "REPLICA",
    }
}

/// The changes a completed deletion of copy `k` (at `at`) brings to the other copies: when
/// the last replica of a primary in `PendingReplicaDeletion` goes, the primary moves to
/// `PendingDeletion` and its waiting period starts then.
pub fn after_copy_deleted(w: &World, k: &Key, at: f64) -> Vec<Change> {
    if k.multi_region != Some(MultiRegionRole::Replica) {
        return vec![];
    }
    let rest: Vec<&Arc<Key>> = others(w, k).collect();
    match rest.as_slice() {
        [p] if p.state == KeyStateU::PendingReplicaDeletion => {
            let mut p = Key::clone(p);
            let days = f64::from(p.pending_window_days.unwrap_or(30));
            p.state = KeyStateU::PendingDeletion;
            p.deletion_date = Some(at + days * 86_400.0);
            vec![Change::Key(p)]
        }
        _ => vec![],
    }
}

/// Whether alias `a` names copy `k` (aliases are per region; a single-Region key ID is
/// unique, so its ID suffices).
pub fn alias_names(app: &App, a: &super::model::Alias, k: &Key) -> bool {
    if a.target_key_id != k.id {
        return false;
    }
    if k.multi_region.is_none() {
        return true;
    }
    let (region, account) = super::arn_region_account(&k.arn);
    let ns = crate::namespace::Namespace {
        account: account.to_string(),
        region: region.to_string(),
    };
    ns.stored(app) == (a.account.clone(), a.region.clone())
}

/// The `RegionType` rule of the service model: `^([a-z]+-){2,3}\d+$`, 1–32 characters.
fn region_member<'a>(input: &'a Input, m: &str) -> Result<&'a str, KmsError> {
    let r = input.req_str(m, 1, 32).map_err(input_err)?;
    let parts: Vec<&str> = r.split('-').collect();
    let (last, names) = parts.split_last().unwrap_or((&"", &[]));
    let ok = (2..=3).contains(&names.len())
        && names
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && !last.is_empty()
        && last.bytes().all(|b| b.is_ascii_digit());
    if !ok {
        return Err(KmsError::validation(
            m,
            crate::protocol::input::shown(r),
            "Member must satisfy regular expression pattern: ^([a-z]+-){2,3}\\d+$",
        ));
    }
    Ok(r)
}

/// Refuse a key that is not `Enabled`, in the words the cryptographic operations use.
fn must_be_enabled(w: &World, k: &Key) -> Result<(), KmsError> {
    match visible_state(w, k) {
        "Enabled" => Ok(()),
        "Disabled" => Err(kms_err!(Disabled, "{} is disabled.", k.arn)),
        "PendingDeletion" => Err(kms_err!(KmsInvalidState, "{} is pending deletion.", k.arn)),
        // cks-sim's wording, after the one above: no AWS message for this state was found.
        other => Err(kms_err!(
            KmsInvalidState,
            "{} is {}.",
            k.arn,
            if other == "PendingReplicaDeletion" {
                "pending replica deletion"
            } else {
                other
            }
        )),
    }
}

/// The primary key named by `KeyId` in the caller's region. The wording of these refusals is
/// cks-sim's: no recorded AWS message was found.
fn primary_named(app: &App, w: &World, input: &Input, op: &str) -> Result<Arc<Key>, KmsError> {
    let raw = super::key::key_id_member(input, "KeyId")?;
    let k = resolve_key(app, w, raw, KeyRef::IdOrArn)?;
    match k.multi_region {
        None => Err(kms_err!(
            UnsupportedOperation,
            "{} is not a multi-Region key. {op} applies only to multi-Region keys.",
            k.arn
        )),
        Some(MultiRegionRole::Replica) => Err(kms_err!(
            UnsupportedOperation,
            "{} is a multi-Region replica key. {op} takes the multi-Region primary key, in its own Region.",
            k.arn
        )),
        Some(MultiRegionRole::Primary) => Ok(k),
    }
}

/// `ReplicateKey`.
pub async fn replicate_key(app: &Arc<App>, input: &Input) -> Result<Value, KmsError> {
    super::key::key_id_member(input, "KeyId")?;
    let region = region_member(input, "ReplicaRegion")?.to_string();
    let policy = super::key::policy_member(input)?;
    let description = input
        .str_len("Description", 0, 8192)
        .map_err(input_err)?
        .unwrap_or("")
        .to_string();
    let tags = input
        .opt_tags("Tags", "TagKey", "TagValue")
        .map_err(input_err)?
        .unwrap_or_default();
    super::key::check_tags(&tags)?;
    input
        .opt_bool("BypassPolicyLockoutSafetyCheck")
        .map_err(input_err)?;
    let _w = app.writer.lock().await;
    let replica = {
        let w = app.world();
        let primary = primary_named(app, &w, input, "ReplicateKey")?;
        // A primary waiting for imported material replicates too (as in AWS); its replicas
        // wait with it, and get the material when it is imported into the primary.
        if visible_state(&w, &primary) != "PendingImport" {
            must_be_enabled(&w, &primary)?;
        }
        let (home, account) = super::arn_region_account(&primary.arn);
        // cks-sim's wording for both refusals: no recorded AWS message was found.
        if region == home {
            return Err(kms_err!(
                Validation,
                "The replica Region {region} is the Region of the primary key {}: a replica must be in another Region.",
                primary.arn
            ));
        }
        if let Some(r) = copies(&w, &primary.id, account).find(|c| region_of(c) == region) {
            return Err(kms_err!(
                AlreadyExists,
                "The multi-Region key {} already has a replica in {region}: {}",
                primary.id,
                r.arn
            ));
        }
        Key {
            arn: format!("arn:aws:kms:{region}:{account}:key/{}", primary.id),
            creation_date: app.now(),
            description,
            state: KeyStateU::Enabled,
            deletion_date: None,
            pending_window_days: None,
            tags: tags.into_iter().collect(),
            policy: policy.unwrap_or_else(|| super::key::default_policy(account)),
            multi_region: Some(MultiRegionRole::Replica),
            // Shared properties (key ID, spec, usage, origin, material) come from the primary.
            ..Key::clone(&primary)
        }
    };
    app.commit(vec![Change::Key(replica.clone())])
        .await
        .map_err(KmsError::internal)?;
    let w = app.world();
    let tags: Vec<Value> = replica
        .tags
        .iter()
        .map(|(k, v)| json!({"TagKey": k, "TagValue": v}))
        .collect();
    Ok(json!({
        "ReplicaKeyMetadata": super::key::metadata(app, &w, &replica),
        "ReplicaPolicy": replica.policy,
        "ReplicaTags": tags,
    }))
}

/// `UpdatePrimaryRegion`: the primary named by `KeyId` becomes a replica and its replica in
/// `PrimaryRegion` the primary; both must be `Enabled`.
pub async fn update_primary_region(app: &Arc<App>, input: &Input) -> Result<Value, KmsError> {
    super::key::key_id_member(input, "KeyId")?;
    let region = region_member(input, "PrimaryRegion")?.to_string();
    let _w = app.writer.lock().await;
    let changes = {
        let w = app.world();
        let primary = primary_named(app, &w, input, "UpdatePrimaryRegion")?;
        let (home, account) = super::arn_region_account(&primary.arn);
        if region == home {
            // cks-sim's wording: no recorded AWS message was found.
            return Err(kms_err!(
                UnsupportedOperation,
                "{} is already the primary key in {region}.",
                primary.arn
            ));
        }
        let target = copies(&w, &primary.id, account)
            .find(|c| region_of(c) == region)
            .ok_or_else(|| {
                kms_err!(
                    NotFound,
                    "Key 'arn:aws:kms:{region}:{account}:key/{}' does not exist",
                    primary.id
                )
            })?;
        must_be_enabled(&w, &primary)?;
        must_be_enabled(&w, target)?;
        let mut old = Key::clone(&primary);
        old.multi_region = Some(MultiRegionRole::Replica);
        let mut new = Key::clone(target);
        new.multi_region = Some(MultiRegionRole::Primary);
        vec![Change::Key(old), Change::Key(new)]
    };
    app.commit(changes).await.map_err(KmsError::internal)?;
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mrk_ids_name_sixteen_bytes_of_material() {
        let id = new_mrk_id();
        assert!(is_mrk_id(&id), "{id}");
        let bytes = object_id(&id).unwrap();
        let hex = crate::codec::hex(&bytes);
        assert_eq!(format!("mrk-{hex}"), id);
        assert!(!is_mrk_id("mrk-1234"));
        assert!(!is_mrk_id("mrk-1234ABCD12ab34cd56ef1234567890ab"));
        assert!(is_mrk_id("mrk-1234abcd12ab34cd56ef1234567890ab"));
        let u = uuid::Uuid::new_v4();
        assert_eq!(object_id(&u.to_string()), Some(*u.as_bytes()));
        assert_eq!(object_id("mrk-zz"), None);
    }
}
