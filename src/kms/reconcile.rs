//! Start-up reconciliation of each token with the metadata (D8, D20).
//!
//! A process stopped between a token change and its commit leaves the two apart: material made
//! for a key that was never acknowledged, or material destroyed for a deletion never recorded.
//! At start-up, after interrupted PIN changes are settled, key stores reconnected and due
//! deletions completed, every token is compared with the metadata:
//!
//! - a key object labelled with a KMS key ARN that no live key owns and no orphan record
//!   explains is recorded as an orphan, reason [`FOUND_AT_START`];
//! - a live key whose object is missing is reported (the key stays: using it fails as for
//!   any key whose material is gone);
//! - an orphan record whose object is gone is cleared (the material was removed outside).
//!
//! Nothing is silently "fixed": material is never destroyed here. The counts are kept for
//! `/_sim/health`.

use super::model::{Key, Orphan};
use crate::app::{App, Change};
use crate::hsm::{ObjectId, Token};
use serde::Serialize;
use std::collections::BTreeSet;
use std::sync::Arc;

/// The reason recorded for material no metadata explains.
pub const FOUND_AT_START: &str = "found on the token at start-up";

/// What one reconciliation found, over every token.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Tokens compared with the metadata.
    pub tokens_checked: usize,
    /// Tokens that could not be read (named in the log).
    pub tokens_unreadable: usize,
    /// Key objects no live key or orphan record explained, now recorded as orphans.
    pub orphans_found: usize,
    /// Live keys whose material is missing from their token.
    pub keys_missing_material: usize,
    /// Orphan records whose material was gone, cleared.
    pub orphan_records_cleared: usize,
}

/// Reconcile every token (the internal one and each cluster's) with the metadata.
pub async fn reconcile(app: &Arc<App>) -> Report {
    let writer = app.lock_writer().await;
    let mut report = Report::default();
    let clusters: Vec<(String, String, bool)> = app
        .world()
        .clusters
        .values()
        .map(|c| (c.id.to_string(), c.token_user_pin.clone(), c.has_token))
        .collect();
    let internal = app.config.internal_token_label.clone();
    match app.internal_token().await {
        Ok(t) => reconcile_token(app, &writer, &t, &internal, &mut report).await,
        Err(e) => unreadable(&internal, &e, &mut report),
    }
    for (id, pin, _) in clusters.into_iter().filter(|c| c.2) {
        match app.token(&id).await {
            Ok(t) if t.is_logged_in() => reconcile_token(app, &writer, &t, &id, &mut report).await,
            Ok(t) => {
                let pin = app.pin(crate::cluster::model::KMSUSER, &pin);
                let held = &writer;
                let r = t
                    .with_login(&pin, |t| async move {
                        reconcile_token(app, held, &t, &id, &mut report).await;
                        Ok(())
                    })
                    .await;
                if let Err(e) = r {
                    unreadable(t.label(), &e, &mut report);
                }
            }
            Err(e) => unreadable(&id, &e, &mut report),
        }
    }
    if let Ok(mut r) = app.reconciliation.lock() {
        *r = report;
    }
    report
}

fn unreadable(label: &str, e: &dyn std::fmt::Display, report: &mut Report) {
    tracing::warn!(token = label, error = %e, "reconciliation: cannot read the token");
    report.tokens_unreadable += 1;
}

/// Compare one logged-in token (`label`) with the keys and orphan records that name it.
async fn reconcile_token(
    app: &Arc<App>,
    writer: &crate::app::Writer<'_>,
    token: &Arc<Token>,
    label: &str,
    report: &mut Report,
) {
    report.tokens_checked += 1;
    let on_token: BTreeSet<ObjectId> = token.indexed_ids().into_iter().collect();
    let (live, orphans) = expected(app, label);
    let mut changes = Vec::new();
    for k in &live {
        if key_objects(k).iter().any(|id| !on_token.contains(id)) {
            tracing::warn!(key = %k.arn, token = label, "reconciliation: the key's material is missing");
            report.keys_missing_material += 1;
        }
    }
    for o in &orphans {
        if crate::kms::material::hex_object_id(&o.object_id)
            .is_some_and(|id| !on_token.contains(&id))
        {
            tracing::info!(key = %o.key_arn, "reconciliation: an orphan's material is gone; record cleared");
            report.orphan_records_cleared += 1;
            changes.push(Change::DelOrphan(crate::app::orphan_id(o.seq)));
        }
    }
    let explained: BTreeSet<ObjectId> = live
        .iter()
        .flat_map(key_objects)
        .chain(
            orphans
                .iter()
                .filter_map(|o| crate::kms::material::hex_object_id(&o.object_id)),
        )
        .collect();
    let mut seq = app
        .world()
        .orphans
        .values()
        .map(|o| o.seq)
        .max()
        .unwrap_or(0);
    for id in on_token.difference(&explained) {
        let Some(arn) = kms_label(token, *id).await else {
            continue; // not KMS material (another user's key): not ours to explain
        };
        seq += 1;
        tracing::warn!(key = %arn, token = label, "reconciliation: material no key owns; recorded as an orphan");
        report.orphans_found += 1;
        changes.push(Change::Orphan(Orphan {
            seq,
            key_arn: arn,
            cluster_id: label.to_string(),
            object_id: crate::codec::hex(id.as_slice()),
            time: app.now(),
            reason: FOUND_AT_START.into(),
        }));
    }
    if let Err(e) = app.commit(writer, changes).await {
        tracing::error!(error = %e, "reconciliation: cannot record what it found");
    }
}

/// The live keys whose material is on token `label`, and the orphan records that name it:
/// those of every cluster (and of the internal token) that share the physical token, since
/// clusters bound to one token (`[cluster.token]`) see each other's objects.
fn expected(app: &App, label: &str) -> (Vec<Arc<Key>>, Vec<Orphan>) {
    let w = app.world();
    let physical = |l: &str| {
        w.clusters
            .get(l)
            .and_then(|c| c.bound_token.as_ref())
            .map_or_else(|| l.to_string(), |b| b.label.clone())
    };
    let here = physical(label);
    let live = w
        .keys
        .values()
        .filter(|k| physical(&k.token_label) == here)
        .cloned()
        .collect();
    let orphans = w
        .orphans
        .values()
        .filter(|o| physical(&o.cluster_id) == here)
        .cloned()
        .collect();
    (live, orphans)
}

/// The object ids of a key's materials on the token: the key ID's 16 bytes (D4) for its
/// first material, and one per later or imported material (see [`super::material`]). A
/// material object no key's record names (made for a rotation or an import that was never
/// committed) is an orphan like any other.
fn key_objects(k: &Arc<Key>) -> Vec<ObjectId> {
    super::material::present_objects(k)
}

/// The object's label if it is a KMS key ARN (`arn:…:kms:…:key/<id>`), i.e. KMS material.
async fn kms_label(token: &Arc<Token>, id: ObjectId) -> Option<String> {
    let label = token.describe_key(id).await.ok()?.label;
    let is_kms = label.starts_with("arn:")
        && label.split(':').nth(2) == Some("kms")
        && label.contains(":key/");
    is_kms.then_some(label)
}

#[cfg(test)]
mod tests {

    #[test]
    fn object_ids_round_trip_through_hex() {
        let id: [u8; 16] = *uuid::Uuid::new_v4().as_bytes();
        let text: String = crate::codec::hex(&id);
        assert_eq!(crate::kms::material::hex_object_id(&text), Some(id));
        assert_eq!(crate::kms::material::hex_object_id("zz"), None);
        assert_eq!(crate::kms::material::hex_object_id("00"), None);
    }
}
