//! Key rotation: `EnableKeyRotation`, `DisableKeyRotation`, `GetKeyRotationStatus`,
//! `RotateKeyOnDemand`, `ListKeyRotations`, and the automatic rotations and material expiries
//! that fall due on the simulated clock ([`apply_due_events`], run before every request).
//!
//! A rotation makes a new AES key object on the key's token (labelled with the key ARN, a
//! fresh `CKA_ID`) and makes it the current material; every earlier material stays on the
//! token and opens the ciphertexts it sealed. Token object first, record second (one
//! `Change::Key`): a crash in between leaves an object start-up reconciliation reports as an
//! orphan.

use super::error::KmsError;
use super::material::{
    self, Material, MaterialState, RotationType, hex, new_material_id, new_object_id,
};
use super::model::{Key, MultiRegionRole, Origin, StoredKeyState};
use super::spec::KeySpec;
use super::{KeyRef, paginate, resolve_key, visible_state};
use crate::api::kms::KeyState;
use crate::api::kms::{
    self as api, DisableKeyRotationRequest, EnableKeyRotationRequest, ExpirationModelType,
    GetKeyRotationStatusRequest, GetKeyRotationStatusResponse, ImportState, IncludeKeyMaterial,
    KeyMaterialState, ListKeyRotationsRequest, ListKeyRotationsResponse, RotateKeyOnDemandRequest,
    RotateKeyOnDemandResponse, RotationsListEntry,
};
use crate::app::App;
use crate::kms_err;
use std::sync::Arc;

/// On-demand rotations allowed per key (AWS KMS developer guide, "Perform on-demand key
/// rotation": "a maximum of 25 times per KMS key"; the API reference still says 10).
pub const MAX_ON_DEMAND_ROTATIONS: u32 = 25;
/// The default `RotationPeriodInDays`.
pub const DEFAULT_PERIOD_DAYS: i64 = 365;
/// Automatic rotations caught up in one go after a long clock jump, at most.
const MAX_CATCH_UP: usize = 100;
const DAY: f64 = 86_400.0;

/// AWS's words for an operation a key's origin does not allow (recorded in public reports of
/// real `UnsupportedOperationException`s: "… origin is EXTERNAL which is not valid for this
/// operation.").
pub(super) fn origin_not_valid(k: &Key) -> KmsError {
    kms_err!(
        UnsupportedOperation,
        "{} origin is {} which is not valid for this operation.",
        k.arn,
        k.origin.as_str()
    )
}

/// Refuse keys whose material cannot rotate: keys in a CloudHSM key store, and every key that
/// is not a symmetric encryption key. The second message is the one public reports of AWS's
/// answer for asymmetric and HMAC keys show; it was not found in AWS's documentation.
fn rotatable(k: &Key) -> Result<(), KmsError> {
    if k.origin == Origin::AwsCloudhsm {
        return Err(origin_not_valid(k));
    }
    if k.multi_region == Some(MultiRegionRole::Replica) {
        // Every copy shares one material, rotated through the primary key. cks-sim's wording:
        // AWS's message for a replica was not found.
        return Err(kms_err!(
            UnsupportedOperation,
            "{} is a multi-Region replica key: its key material rotates with its primary key's.",
            k.arn
        ));
    }
    if k.kind.spec != KeySpec::SymmetricDefault {
        return Err(kms_err!(
            UnsupportedOperation,
            "You cannot perform this operation on a non-symmetric key or a key with non-ENCRYPT_DECRYPT key usage."
        ));
    }
    Ok(())
}

/// The state rules of Enable/DisableKeyRotation and RotateKeyOnDemand.
fn usable_state(app: &App, k: &Key) -> Result<(), KmsError> {
    match visible_state(&app.world(), k) {
        KeyState::Disabled => Err(kms_err!(Disabled, "{} is disabled.", k.arn)),
        KeyState::PendingDeletion => {
            Err(kms_err!(KmsInvalidState, "{} is pending deletion.", k.arn))
        }
        KeyState::PendingImport => Err(super::crypto::pending_import(k)),
        KeyState::Unavailable => Err(kms_err!(KmsInvalidState, "{} is unavailable.", k.arn)),
        _ => Ok(()),
    }
}

/// Resolve, check and change one key under the writer lock, committing it as one change.
async fn change_key(
    app: &Arc<App>,
    raw: &str,
    f: impl FnOnce(&mut Key) -> Result<(), KmsError>,
) -> Result<Key, KmsError> {
    let writer = app.lock_writer().await;
    let mut k = Arc::unwrap_or_clone(resolve_key(app, &app.world(), raw, KeyRef::IdOrArn)?);
    f(&mut k)?;
    let changes = super::multi_region::with_shared_material(&app.world(), &k);
    app.commit(&writer, changes)
        .await
        .map_err(KmsError::internal)?;
    Ok(k)
}

/// `EnableKeyRotation` (`RotationPeriodInDays` 90–2560, default 365).
pub async fn enable(app: &Arc<App>, req: EnableKeyRotationRequest) -> Result<(), KmsError> {
    let days = req.rotation_period_in_days.unwrap_or(DEFAULT_PERIOD_DAYS);
    let now = app.now();
    change_key(app, &req.key_id, |k| {
        rotatable(k)?;
        if k.origin == Origin::External {
            return Err(origin_not_valid(k));
        }
        usable_state(app, k)?;
        let period = days as f64 * DAY;
        // A new period counts from the start of the running one; a first enable from now.
        let start = k
            .material
            .rotation
            .as_ref()
            .filter(|r| r.enabled)
            .and_then(|r| r.next.map(|n| n - f64::from(r.period_days) * DAY))
            .unwrap_or(now);
        k.material.rotation = Some(material::Rotation {
            enabled: true,
            period_days: u32::try_from(days).unwrap_or(365),
            next: Some((start + period).max(now)),
        });
        Ok(())
    })
    .await?;
    Ok(())
}

/// `DisableKeyRotation`.
pub async fn disable(app: &Arc<App>, req: DisableKeyRotationRequest) -> Result<(), KmsError> {
    change_key(app, &req.key_id, |k| {
        rotatable(k)?;
        if k.origin == Origin::External {
            return Err(origin_not_valid(k));
        }
        usable_state(app, k)?;
        if let Some(r) = &mut k.material.rotation {
            r.enabled = false;
            r.next = None;
        }
        Ok(())
    })
    .await?;
    Ok(())
}

/// `GetKeyRotationStatus`: keys that cannot rotate automatically (asymmetric, HMAC, imported)
/// answer `false`; keys in a CloudHSM key store are refused.
pub fn get_status(
    app: &Arc<App>,
    req: GetKeyRotationStatusRequest,
) -> Result<GetKeyRotationStatusResponse, KmsError> {
    let k = resolve_key(app, &app.world(), &req.key_id, KeyRef::IdOrArn)?;
    if k.origin == Origin::AwsCloudhsm {
        return Err(origin_not_valid(&k));
    }
    let enabled = k.material.rotation.as_ref().filter(|r| r.enabled);
    // On-demand rotations complete within the request here, so none is ever in progress
    // (`OnDemandRotationStartDate` is absent).
    Ok(GetKeyRotationStatusResponse {
        key_id: Some(k.arn.to_string()),
        key_rotation_enabled: Some(enabled.is_some()),
        rotation_period_in_days: enabled.map(|r| i64::from(r.period_days)),
        next_rotation_date: enabled.and_then(|r| r.next),
        ..Default::default()
    })
}

/// Make a new generated material current on the token and in `k` (not committed).
async fn add_generated(
    app: &Arc<App>,
    k: &mut Key,
    how: RotationType,
    at: crate::api::Timestamp,
) -> Result<crate::hsm::ObjectId, KmsError> {
    let token = app.internal_token().await.map_err(KmsError::internal)?;
    let object = new_object_id();
    token
        .generate_aes_key(&k.arn, object)
        .await
        .map_err(KmsError::internal)?;
    app.failpoints.hit("rotation.material_made");
    let mut list = material::all(k);
    demote_current(&mut list);
    list.push(Material {
        id: new_material_id(),
        object_id: hex(&object),
        created: at,
        rotation_date: Some(at),
        rotation_type: Some(how),
        state: MaterialState::Current,
        imported: None,
    });
    k.material.list = list;
    Ok(object)
}

fn demote_current(list: &mut [Material]) {
    for m in list.iter_mut() {
        if m.state == MaterialState::Current {
            m.state = MaterialState::NonCurrent;
        }
    }
}

/// Commit `k` (and its materials to every copy of a multi-Region key); on failure destroy
/// the material objects made for it.
async fn commit_or_undo(
    app: &Arc<App>,
    writer: &crate::app::Writer<'_>,
    k: &Key,
    made: &[crate::hsm::ObjectId],
) -> Result<(), KmsError> {
    let changes = super::multi_region::with_shared_material(&app.world(), k);
    if let Err(e) = app.commit(writer, changes).await {
        if let Ok(t) = app.internal_token().await {
            for o in made {
                let _ = t.destroy(*o).await;
            }
        }
        return Err(KmsError::internal(e));
    }
    Ok(())
}

/// `RotateKeyOnDemand`: a new generated material, or for an imported key the material
/// imported with `ImportType` `NEW_KEY_MATERIAL` (waiting as `PENDING_ROTATION`).
pub async fn rotate_on_demand(
    app: &Arc<App>,
    req: RotateKeyOnDemandRequest,
) -> Result<RotateKeyOnDemandResponse, KmsError> {
    let writer = app.lock_writer().await;
    let mut k = Arc::unwrap_or_clone(resolve_key(
        app,
        &app.world(),
        &req.key_id,
        KeyRef::IdOrArn,
    )?);
    rotatable(&k)?;
    usable_state(app, &k)?;
    if k.material.on_demand_rotations >= MAX_ON_DEMAND_ROTATIONS {
        // cks-sim's wording: AWS's message for this limit was not found.
        return Err(kms_err!(
            LimitExceeded,
            "{} has been rotated on demand {MAX_ON_DEMAND_ROTATIONS} times, the maximum for a KMS key.",
            k.arn
        ));
    }
    let now = app.now();
    let made = if k.origin == Origin::External {
        promote_pending(&mut k, now)?;
        Vec::new()
    } else {
        vec![add_generated(app, &mut k, RotationType::OnDemand, now).await?]
    };
    k.material.on_demand_rotations += 1;
    commit_or_undo(app, &writer, &k, &made).await?;
    Ok(RotateKeyOnDemandResponse {
        key_id: Some(k.arn.into()),
    })
}

/// Make an imported key's `PENDING_ROTATION` material current.
fn promote_pending(k: &mut Key, now: crate::api::Timestamp) -> Result<(), KmsError> {
    let Some(i) = k
        .material
        .list
        .iter()
        .position(|m| m.state == MaterialState::PendingRotation && m.present())
    else {
        // cks-sim's wording (AWS's message for this case was not found).
        return Err(kms_err!(
            KmsInvalidState,
            "{} has no key material waiting for rotation: import new key material with ImportType NEW_KEY_MATERIAL first.",
            k.arn
        ));
    };
    demote_current(&mut k.material.list);
    let m = &mut k.material.list[i];
    m.state = MaterialState::Current;
    m.rotation_date = Some(now);
    m.rotation_type = Some(RotationType::OnDemand);
    Ok(())
}

/// `ListKeyRotations` (`IncludeKeyMaterial` `ROTATIONS_ONLY` by default, or
/// `ALL_KEY_MATERIAL`), oldest first, `Limit`/`Marker` pagination.
pub fn list(
    app: &Arc<App>,
    req: ListKeyRotationsRequest,
) -> Result<ListKeyRotationsResponse, KmsError> {
    let every_material = req.include_key_material == Some(IncludeKeyMaterial::AllKeyMaterial);
    let k = resolve_key(app, &app.world(), &req.key_id, KeyRef::IdOrArn)?;
    if k.origin == Origin::AwsCloudhsm {
        return Err(origin_not_valid(&k));
    }
    let entries: Vec<(String, RotationsListEntry)> = material::all(&k)
        .iter()
        .filter(|m| every_material || m.rotation_date.is_some())
        .enumerate()
        .map(|(i, m)| (format!("{i:06}"), rotation_entry(&k, m)))
        .collect();
    let (page, next) = paginate(
        entries.iter().map(|(i, e)| (i, e.clone())),
        "rotations",
        req.marker.as_deref(),
        req.limit
            .and_then(|l| usize::try_from(l).ok())
            .unwrap_or(100),
    )?;
    Ok(ListKeyRotationsResponse {
        rotations: Some(page),
        truncated: Some(next.is_some()),
        next_marker: next,
    })
}

/// One `RotationsListEntry`.
fn rotation_entry(k: &Key, m: &Material) -> RotationsListEntry {
    let imported = m.imported.as_ref();
    RotationsListEntry {
        key_id: Some(k.id.to_string()),
        key_material_id: Some(m.id.clone()),
        key_material_state: Some(material_state(m.state)),
        rotation_date: m.rotation_date,
        rotation_type: m.rotation_type.map(rotation_type),
        import_state: imported.map(|i| {
            if i.present {
                ImportState::Imported
            } else {
                ImportState::PendingImport
            }
        }),
        expiration_model: imported.map(|i| expiration_model(i.expires)),
        valid_to: imported.filter(|i| i.expires).and_then(|i| i.valid_to),
        key_material_description: imported.and_then(|i| i.description.clone()),
    }
}

/// A material's state as the model's `KeyMaterialState`.
fn material_state(s: MaterialState) -> KeyMaterialState {
    match s {
        MaterialState::Current => KeyMaterialState::Current,
        MaterialState::NonCurrent => KeyMaterialState::NonCurrent,
        MaterialState::PendingRotation => KeyMaterialState::PendingRotation,
    }
}

/// How a material became current, as the model's `RotationType`.
fn rotation_type(t: RotationType) -> api::RotationType {
    match t {
        RotationType::Automatic => api::RotationType::Automatic,
        RotationType::OnDemand => api::RotationType::OnDemand,
    }
}

/// Whether an imported material expires, as the model's `ExpirationModelType`.
fn expiration_model(expires: bool) -> ExpirationModelType {
    if expires {
        ExpirationModelType::KeyMaterialExpires
    } else {
        ExpirationModelType::KeyMaterialDoesNotExpire
    }
}

/// Apply what the clock made due (D10's rule for deletions, applied to materials): imported
/// materials past `ValidTo` are destroyed (the key goes back to `PendingImport`), and keys
/// whose next automatic rotation date passed rotate — once per period missed, each dated when
/// it fell due. Cheap when nothing is due.
pub async fn apply_due_events(app: &Arc<App>) {
    let due = |app: &App, now: crate::api::Timestamp| -> Vec<String> {
        let now_ms = (now.seconds() * 1000.0).floor() as i64;
        app.world()
            .material_events
            .iter()
            .take_while(|(t, _)| *t <= now_ms)
            .map(|(_, id)| id.clone())
            .collect()
    };
    if due(app, app.now()).is_empty() {
        return;
    }
    let writer = app.lock_writer().await;
    let now = app.now();
    for id in due(app, now) {
        let Some(k) = app.world().key(&id).cloned() else {
            continue;
        };
        if let Err(e) = apply_key_events(app, &writer, Arc::unwrap_or_clone(k), now).await {
            tracing::error!(key = %id, error = %e, "cannot apply a due rotation or expiry");
        }
    }
}

async fn apply_key_events(
    app: &Arc<App>,
    writer: &crate::app::Writer<'_>,
    mut k: Key,
    now: crate::api::Timestamp,
) -> Result<(), KmsError> {
    expire_materials(app, &mut k, now).await?;
    let mut made = Vec::new();
    for _ in 0..MAX_CATCH_UP {
        let Some(r) = k.material.rotation.clone().filter(|r| r.enabled) else {
            break;
        };
        let Some(due) = r.next.filter(|n| *n <= now) else {
            break;
        };
        // A disabled key or one pending deletion is not rotated; its schedule moves on.
        if k.state == StoredKeyState::Enabled {
            made.push(add_generated(app, &mut k, RotationType::Automatic, due).await?);
        }
        if let Some(r) = &mut k.material.rotation {
            r.next = Some(due + f64::from(r.period_days) * DAY);
        }
    }
    commit_or_undo(app, writer, &k, &made).await
}

/// Destroy the imported materials of `k` whose `ValidTo` passed (not committed).
async fn expire_materials(
    app: &Arc<App>,
    k: &mut Key,
    now: crate::api::Timestamp,
) -> Result<(), KmsError> {
    let token = app.internal_token().await.map_err(KmsError::internal)?;
    for m in k.material.list.iter_mut() {
        let Some(i) = m.imported.as_mut() else {
            continue;
        };
        if !(i.present && i.expires && i.valid_to.is_some_and(|v| v <= now)) {
            continue;
        }
        if let Some(o) = material::hex_object_id(&m.object_id) {
            match token.destroy(o).await {
                Ok(()) | Err(crate::hsm::HsmError::KeyNotFound { .. }) => {}
                Err(e) => return Err(KmsError::internal(e)),
            }
        }
        i.present = false;
        tracing::info!(key = %k.arn, material = %m.id, "imported key material expired");
    }
    Ok(())
}
