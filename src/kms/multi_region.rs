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
use super::model::{Key, MultiRegionRole, StoredKeyState};
use super::{KeyRef, resolve_key, visible_state};
use crate::api::kms::KeyState;
use crate::api::kms::{
    KeyMetadata, MultiRegionConfiguration, MultiRegionKey, MultiRegionKeyType, ReplicateKeyRequest,
    ReplicateKeyResponse, Tag, UpdatePrimaryRegionRequest,
};
use crate::app::{App, Change, World};
use crate::kms_err;
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
pub fn describe(w: &World, k: &Key, m: &mut KeyMetadata) {
    m.multi_region = Some(k.multi_region.is_some());
    let Some(role) = k.multi_region else {
        return;
    };
    let account = super::arn_region_account(&k.arn).1;
    let entry = |c: &Key| MultiRegionKey {
        arn: Some(c.arn.to_string()),
        region: Some(region_of(c).to_string()),
    };
    let mut primary = None;
    let mut replicas = Vec::new();
    for c in copies(w, &k.id, account) {
        match c.multi_region {
            Some(MultiRegionRole::Primary) => primary = Some(entry(c)),
            _ => replicas.push(entry(c)),
        }
    }
    m.multi_region_configuration = Some(MultiRegionConfiguration {
        multi_region_key_type: Some(match role {
            MultiRegionRole::Primary => MultiRegionKeyType::Primary,
            MultiRegionRole::Replica => MultiRegionKeyType::Replica,
        }),
        primary_key: primary,
        replica_keys: Some(replicas),
    });
    if k.state == StoredKeyState::PendingReplicaDeletion {
        m.pending_deletion_window_in_days = k.pending_window_days.map(i64::from);
    }
}

/// The changes a completed deletion of copy `k` (at `at`) brings to the other copies: when
/// the last replica of a primary in `PendingReplicaDeletion` goes, the primary moves to
/// `PendingDeletion` and its waiting period starts then.
pub fn after_copy_deleted(w: &World, k: &Key, at: crate::api::Timestamp) -> Vec<Change> {
    if k.multi_region != Some(MultiRegionRole::Replica) {
        return vec![];
    }
    let rest: Vec<&Arc<Key>> = others(w, k).collect();
    match rest.as_slice() {
        [p] if p.state == StoredKeyState::PendingReplicaDeletion => {
            let mut p = Key::clone(p);
            let days = f64::from(p.pending_window_days.unwrap_or(30));
            p.state = StoredKeyState::PendingDeletion;
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

/// Refuse a key that is not `Enabled`, in the words the cryptographic operations use.
fn must_be_enabled(w: &World, k: &Key) -> Result<(), KmsError> {
    match visible_state(w, k) {
        KeyState::Enabled => Ok(()),
        KeyState::Disabled => Err(kms_err!(Disabled, "{} is disabled.", k.arn)),
        KeyState::PendingDeletion => {
            Err(kms_err!(KmsInvalidState, "{} is pending deletion.", k.arn))
        }
        // cks-sim's wording, after the one above: no AWS message for this state was found.
        other => Err(kms_err!(
            KmsInvalidState,
            "{} is {}.",
            k.arn,
            if other == KeyState::PendingReplicaDeletion {
                "pending replica deletion"
            } else {
                other.as_str()
            }
        )),
    }
}

/// The primary key named by `KeyId` in the caller's region. The wording of these refusals is
/// cks-sim's: no recorded AWS message was found.
fn primary_named(app: &App, w: &World, raw: &str, op: &str) -> Result<Arc<Key>, KmsError> {
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
pub async fn replicate_key(
    app: &Arc<App>,
    req: ReplicateKeyRequest,
) -> Result<ReplicateKeyResponse, KmsError> {
    if let Some(p) = &req.policy {
        super::rules::key_policy(p)?;
    }
    let tags: Vec<(String, String)> = req
        .tags
        .unwrap_or_default()
        .into_iter()
        .map(|t| (t.tag_key, t.tag_value))
        .collect();
    super::key::check_tags(&tags)?;
    let region = req.replica_region;
    let writer = app.lock_writer().await;
    let replica = {
        let w = app.world();
        let primary = primary_named(app, &w, &req.key_id, "ReplicateKey")?;
        replicable(&w, &primary, &region)?;
        let account = super::arn_region_account(&primary.arn).1;
        Key {
            arn: format!("arn:aws:kms:{region}:{account}:key/{}", primary.id).into(),
            creation_date: app.now(),
            description: req.description.unwrap_or_default(),
            state: StoredKeyState::Enabled,
            deletion_date: None,
            pending_window_days: None,
            tags: tags.into_iter().collect(),
            policy: req
                .policy
                .unwrap_or_else(|| super::key::default_policy(account)),
            multi_region: Some(MultiRegionRole::Replica),
            // Shared properties (key ID, spec, usage, origin, material) come from the primary.
            ..Key::clone(&primary)
        }
    };
    app.commit(&writer, vec![Change::Key(replica.clone())])
        .await
        .map_err(KmsError::internal)?;
    let metadata = super::key::metadata(&app.world(), &replica);
    let replica_tags = replica
        .tags
        .iter()
        .map(|(k, v)| Tag {
            tag_key: k.clone(),
            tag_value: v.clone(),
        })
        .collect();
    Ok(ReplicateKeyResponse {
        replica_key_metadata: Some(metadata),
        replica_policy: Some(replica.policy),
        replica_tags: Some(replica_tags),
    })
}

/// Whether `primary` may get a replica in `region`: it is `Enabled` (or waits for imported
/// material: as in AWS, its replicas then wait with it and get the material when it is
/// imported into the primary), `region` is not its own, and it has no replica there yet.
fn replicable(w: &World, primary: &Key, region: &str) -> Result<(), KmsError> {
    if visible_state(w, primary) != KeyState::PendingImport {
        must_be_enabled(w, primary)?;
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
    if let Some(r) = copies(w, &primary.id, account).find(|c| region_of(c) == region) {
        return Err(kms_err!(
            AlreadyExists,
            "The multi-Region key {} already has a replica in {region}: {}",
            primary.id,
            r.arn
        ));
    }
    Ok(())
}

/// `UpdatePrimaryRegion`: the primary named by `KeyId` becomes a replica and its replica in
/// `PrimaryRegion` the primary; both must be `Enabled`.
pub async fn update_primary_region(
    app: &Arc<App>,
    req: UpdatePrimaryRegionRequest,
) -> Result<(), KmsError> {
    let region = req.primary_region;
    let writer = app.lock_writer().await;
    let changes = {
        let w = app.world();
        let primary = primary_named(app, &w, &req.key_id, "UpdatePrimaryRegion")?;
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
    app.commit(&writer, changes)
        .await
        .map_err(KmsError::internal)
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
