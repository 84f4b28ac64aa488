//! Completing scheduled deletions (spec §2.10, D10).
//!
//! When a key's `DeletionDate` passes, the KMS key, its aliases and its grants disappear whatever the
//! store's state. Its material is destroyed on the token only if the store is `CONNECTED`
//! with a valid kmsuser session at that moment; otherwise it stays and an orphan record is
//! kept. Every request calls [`sweep_if_due`] first, so results never depend on the
//! background sweeper's timing.

use super::model::{ConnectionState, Key, Origin, Orphan};
use crate::app::{App, Change};
use std::sync::Arc;

fn due(app: &App, now: crate::api::Timestamp) -> Vec<Arc<Key>> {
    let w = app.world();
    let now_ms = (now.seconds() * 1000.0).floor() as i64;
    w.pending
        .iter()
        .take_while(|(d, _)| *d <= now_ms)
        .filter_map(|(_, id)| w.key(id))
        .filter(|k| super::rules::deletion_due(k, now))
        .cloned()
        .collect()
}

/// Complete every deletion that is due. Cheap when none is.
pub async fn sweep_if_due(app: &Arc<App>) {
    super::rotation::apply_due_events(app).await;
    if due(app, app.now()).is_empty() {
        return;
    }
    let writer = app.lock_writer().await;
    let now = app.now();
    // A second pass completes what the first made due: a multi-Region primary whose last
    // replica's deletion started its waiting period at a date already past.
    for _ in 0..2 {
        for k in due(app, now) {
            complete_deletion(app, &writer, &k, now).await;
        }
    }
}

async fn complete_deletion(
    app: &Arc<App>,
    writer: &crate::app::Writer<'_>,
    k: &Key,
    now: crate::api::Timestamp,
) {
    let id: [u8; 16] = super::multi_region::object_id(&k.id).unwrap_or([0; 16]);
    let mut changes = vec![Change::DelKey(k.storage_id())];
    let (aliases, store, next_seq, shared) = {
        let w = app.world();
        let aliases: Vec<String> = w
            .aliases
            .values()
            .filter(|a| super::multi_region::alias_names(app, a, k))
            .map(crate::kms::model::Alias::storage_id)
            .collect();
        let store = k.store_id.as_ref().and_then(|s| w.stores.get(s)).cloned();
        let seq = w.orphans.values().map(|o| o.seq).max().unwrap_or(0) + 1;
        // A multi-Region copy's waiting period ended at its deletion date, whenever the
        // sweep runs.
        let at = k.deletion_date.unwrap_or(now).min(now);
        changes.extend(super::multi_region::after_copy_deleted(&w, k, at));
        changes.extend(super::grants::delete_with_key(&w, &k.arn));
        (
            aliases,
            store,
            seq,
            super::multi_region::material_shared(&w, k),
        )
    };
    changes.extend(aliases.into_iter().map(Change::DelAlias));
    let destroyed_or_reason: Result<(), String> = match k.origin {
        // Another copy of a multi-Region key still uses the material: it stays.
        _ if shared => Ok(()),
        Origin::AwsKms | Origin::External => match app.internal_token().await {
            Ok(t) => destroy_materials(&t, k).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        },
        Origin::AwsCloudhsm => destroy_in_cluster(app, store.as_ref(), id).await,
    };
    if destroyed_or_reason.is_ok() && !shared {
        app.failpoints.hit("deletion.material_destroyed");
    }
    if let Err(reason) = destroyed_or_reason {
        tracing::info!(key = %k.arn, %reason, "key deleted; material left on the token");
        if k.origin == Origin::AwsCloudhsm {
            changes.push(Change::Orphan(Orphan {
                seq: next_seq,
                key_arn: k.arn.to_string(),
                cluster_id: store
                    .as_ref()
                    .map(|s| s.cluster_id.to_string())
                    .unwrap_or_else(|| k.token_label.clone()),
                object_id: crate::codec::hex(id.as_slice()),
                time: now,
                reason,
            }));
        }
    }
    if let Err(e) = app.commit(writer, changes).await {
        tracing::error!(error = %e, key = %k.arn, "cannot record a completed deletion");
    }
}

/// Destroy a CloudHSM key's backing key on its cluster's token, if KMS's session there is
/// still the one it opened; else why the material stays.
async fn destroy_in_cluster(
    app: &Arc<App>,
    store: Option<&super::model::KeyStore>,
    id: [u8; 16],
) -> Result<(), String> {
    match store {
        Some(s) if session_open(&app.world(), s) && app.has_kms_login(&s.id) => {
            if super::key::reachable(&app.world(), &s.cluster_id).is_err() {
                return Err("KMS could not reach the cluster".into());
            }
            match app.token(&s.cluster_id).await {
                Ok(t) => already_gone_is_destroyed(t.destroy(id).await)
                    .map_err(|e| format!("destroying the backing key failed: {e}")),
                Err(e) => Err(format!("the cluster token is unavailable: {e}")),
            }
        }
        Some(s) if s.state == ConnectionState::Connected => {
            Err("the kmsuser password was changed behind KMS's back".into())
        }
        Some(s) => Err(format!("the custom key store was {}", s.state.as_str())),
        None => Err("the custom key store no longer exists".into()),
    }
}

/// Destroy every material of `k` on `t` (and the wrapping pair of a pending import).
async fn destroy_materials(
    t: &Arc<crate::hsm::Token>,
    k: &Key,
) -> Result<(), crate::hsm::HsmError> {
    let mut objects = super::material::present_objects(k);
    objects.extend(
        k.material
            .import
            .as_ref()
            .and_then(|p| super::material::hex_object_id(&p.wrapping_object)),
    );
    for o in objects {
        already_gone_is_destroyed(t.destroy(o).await)?;
    }
    Ok(())
}

/// Sweep every second in the background (reads sweep too, so this only keeps the token tidy
/// while nobody asks).
pub fn spawn_sweeper(app: &Arc<App>) {
    let app = Arc::clone(app);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tick.tick().await;
            sweep_if_due(&app).await;
        }
    });
}

/// A key object that is already gone counts as destroyed: a process stopped between the
/// destroy and the commit finds it so when the deletion is completed again after a restart,
/// and recording an orphan then would name material that no longer exists.
fn already_gone_is_destroyed(
    r: Result<(), crate::hsm::HsmError>,
) -> Result<(), crate::hsm::HsmError> {
    match r {
        Err(crate::hsm::HsmError::KeyNotFound { id }) => {
            tracing::info!(object = %id, "the key's material was already destroyed");
            Ok(())
        }
        other => other,
    }
}

/// Whether KMS's `kmsuser` session on the store's cluster is still the one it opened: the
/// store is connected and `kmsuser`'s password has not changed (nor `kmsuser` gone) since.
fn session_open(w: &crate::app::World, s: &super::model::KeyStore) -> bool {
    s.state == ConnectionState::Connected
        && s.session_epoch().is_some()
        && s.session_epoch() == crate::cluster::users::kmsuser_epoch(w, &s.cluster_id)
}
