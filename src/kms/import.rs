//! Imported key material (`Origin` `EXTERNAL`): `GetParametersForImport`,
//! `ImportKeyMaterial`, `DeleteImportedKeyMaterial`, and the import fields of `KeyMetadata`.
//!
//! The wrapping key pair is an RSA pair made on the key's token (the internal one); its
//! private half unwraps the material on the token into a sensitive, never-extractable AES key
//! object (`C_UnwrapKey`). Where the token's `CKM_RSA_PKCS_OAEP` does not take SHA-256
//! (SoftHSM2 2.6), the RSA step is a raw RSA decryption on the token, the OAEP padding is
//! removed here (see [`super::oaep`]) and the object is created from the result. The
//! `RSA_AES_KEY_WRAP_*` algorithms unwrap an ephemeral AES key that way, then the material
//! with `CKM_AES_KEY_WRAP_PAD` (RFC 5649) on the token.
//!
//! Only `SYMMETRIC_DEFAULT` keys take imported material here (HMAC, RSA and ECC imports are
//! refused). One set of import parameters is valid at a time: a new `GetParametersForImport`
//! replaces the previous one (its wrapping pair is destroyed).

use super::error::KmsError;
use super::material::{
    self, ImportParams, Imported, Material, MaterialState, hex, hex_object_id, new_object_id,
};
use super::model::{Key, KeyKind, Origin, StoredKeyState};
use super::spec::KeySpec;
use super::{KeyRef, resolve_key};
use crate::api::kms::{
    AlgorithmSpec, DeleteImportedKeyMaterialRequest, DeleteImportedKeyMaterialResponse,
    ExpirationModelType, GetParametersForImportRequest, GetParametersForImportResponse,
    ImportKeyMaterialRequest, ImportKeyMaterialResponse, ImportType, KeyMetadata, WrappingKeySpec,
};
use crate::api::{Blob, Timestamp};
use crate::app::App;
use crate::hsm::asymmetric::{Capability, Hash, PublicParts};
use crate::hsm::import::{MaterialObject, RsaUnwrap};
use crate::hsm::{HsmError, ObjectId, Token};
use crate::kms_err;
use std::sync::Arc;

/// How long import parameters stay valid: 24 hours.
pub const PARAMETERS_VALID_SECONDS: f64 = 86_400.0;
/// The longest `ValidTo` ahead of the request: 365 days.
pub const MAX_VALID_TO_SECONDS: f64 = 365.0 * 86_400.0;
/// Bytes of material a `SYMMETRIC_DEFAULT` key takes.
const SYMMETRIC_LEN: u64 = 32;
const TOKEN_MAGIC: &[u8; 8] = b"cksimIT1";

/// CreateKey with `Origin` `EXTERNAL`: refused in a custom key store. (cks-sim's wording, as
/// for any `CustomKeyStoreId` without `AWS_CLOUDHSM`: AWS's message was not found.)
pub(super) fn external_origin(store_id: Option<&str>) -> Result<(), KmsError> {
    if store_id.is_some() {
        return Err(kms_err!(
            UnsupportedOperation,
            "A CustomKeyStoreId requires Origin AWS_CLOUDHSM: imported key material (Origin EXTERNAL) cannot be used in a CloudHSM key store."
        ));
    }
    Ok(())
}

/// The key specs cks-sim imports material for.
pub(super) fn importable_kind(kind: &KeyKind) -> Result<(), KmsError> {
    if kind.spec != KeySpec::SymmetricDefault {
        return Err(kms_err!(
            UnsupportedOperation,
            "cks-sim imports key material for SYMMETRIC_DEFAULT keys only, not {}.",
            kind.spec.as_str()
        ));
    }
    Ok(())
}

/// `CurrentKeyMaterialId`, and for `EXTERNAL` keys `ExpirationModel` and `ValidTo`.
pub fn material_metadata(k: &Key, m: &mut KeyMetadata) {
    let current = material::current(k);
    m.current_key_material_id = current.as_ref().and_then(|c| material::shown_id(k, c));
    if k.origin != Origin::External {
        return;
    }
    m.expiration_model = current
        .as_ref()
        .and_then(|c| c.imported.as_ref())
        .and_then(|i| ExpirationModelType::parse(i.expiration_model()));
    m.valid_to = material::earliest_valid_to(k);
}

/// The copies of a multi-Region key share one material here, imported through the primary.
/// A departure from AWS, where each replica's material is imported on its own; the wording is
/// cks-sim's.
fn not_a_replica(k: &Key) -> Result<(), KmsError> {
    if k.multi_region == Some(super::model::MultiRegionRole::Replica) {
        return Err(kms_err!(
            UnsupportedOperation,
            "{} is a multi-Region replica key: in cks-sim every copy shares the key material imported into its primary key.",
            k.arn
        ));
    }
    Ok(())
}

/// The key named, which must be an `EXTERNAL` key not pending deletion.
fn external_key(app: &App, raw: &str) -> Result<Key, KmsError> {
    let k = Arc::unwrap_or_clone(resolve_key(app, &app.world(), raw, KeyRef::IdOrArn)?);
    if k.origin != Origin::External {
        return Err(super::rotation::origin_not_valid(&k));
    }
    not_a_replica(&k)?;
    if k.state == StoredKeyState::PendingDeletion {
        return Err(kms_err!(KmsInvalidState, "{} is pending deletion.", k.arn));
    }
    Ok(k)
}

/// The size of the RSA wrapping key pair, or the refusal of a wrapping cks-sim (or AWS
/// outside China Regions) does not offer.
fn wrapping_bits(algorithm: AlgorithmSpec, spec: WrappingKeySpec) -> Result<u64, KmsError> {
    match (algorithm, spec) {
        (AlgorithmSpec::RsaesPkcs1V15, _) => Err(kms_err!(
            UnsupportedOperation,
            "RSAES_PKCS1_V1_5 is no longer supported for importing key material: use RSAES_OAEP_SHA_256 or RSA_AES_KEY_WRAP_SHA_256."
        )),
        (AlgorithmSpec::Sm2pke, _) | (_, WrappingKeySpec::Sm2) => Err(kms_err!(
            UnsupportedOperation,
            "SM2 wrapping is available only in China Regions."
        )),
        (_, WrappingKeySpec::Rsa2048) => Ok(2048),
        (_, WrappingKeySpec::Rsa3072) => Ok(3072),
        (_, WrappingKeySpec::Rsa4096) => Ok(4096),
    }
}

/// `GetParametersForImport`.
pub async fn get_parameters(
    app: &Arc<App>,
    req: GetParametersForImportRequest,
) -> Result<GetParametersForImportResponse, KmsError> {
    let bits = wrapping_bits(req.wrapping_algorithm, req.wrapping_key_spec)?;
    let writer = app.lock_writer().await;
    let mut k = external_key(app, &req.key_id)?;
    let token = app.internal_token().await.map_err(KmsError::internal)?;
    let wrapping = new_object_id();
    let label = format!("cks-sim import wrapping key for {}", k.arn);
    let public = token
        .generate_wrapping_pair(&label, wrapping, bits)
        .await
        .map_err(KmsError::internal)?;
    let PublicParts::Rsa { modulus, exponent } = public else {
        return Err(KmsError::internal("the wrapping pair is not RSA"));
    };
    let old = k.material.import.take();
    let nonce = token.random(16).await.map_err(KmsError::internal)?;
    let valid_to = app.now() + PARAMETERS_VALID_SECONDS;
    k.material.import = Some(ImportParams {
        wrapping_object: hex(&wrapping),
        algorithm: req.wrapping_algorithm.as_str().to_string(),
        spec: req.wrapping_key_spec.as_str().to_string(),
        valid_to,
        nonce: hex(&nonce),
    });
    let changes = super::multi_region::with_shared_material(&app.world(), &k);
    if let Err(e) = app.commit(&writer, changes).await {
        let _ = token.destroy(wrapping).await;
        return Err(KmsError::internal(e));
    }
    if let Some(o) = old.and_then(|p| hex_object_id(&p.wrapping_object)) {
        let _ = token.destroy(o).await;
    }
    let import_token = [
        TOKEN_MAGIC.as_slice(),
        &material::key_uuid(&k).unwrap_or_default(),
        &wrapping,
        &nonce,
    ]
    .concat();
    Ok(GetParametersForImportResponse {
        key_id: Some(k.arn.into()),
        import_token: Some(Blob(import_token)),
        public_key: Some(Blob(super::der::rsa_spki(&modulus, &exponent))),
        parameters_valid_to: Some(valid_to),
    })
}

/// What an `ImportKeyMaterial` request asks, checked against the import rules.
struct ImportRequest {
    import_token: Vec<u8>,
    wrapped: Vec<u8>,
    expires: bool,
    valid_to: Option<Timestamp>,
    new_material: Option<bool>,
    description: Option<String>,
    material_id: Option<String>,
}

fn import_request(
    req: ImportKeyMaterialRequest,
    now: crate::api::Timestamp,
) -> Result<ImportRequest, KmsError> {
    let valid_to = req.valid_to;
    let expires = expires(req.expiration_model, valid_to, now)?;
    Ok(ImportRequest {
        import_token: req.import_token.0,
        wrapped: req.encrypted_key_material.0,
        expires,
        valid_to,
        new_material: req.import_type.map(|t| t == ImportType::NewKeyMaterial),
        description: req.key_material_description,
        material_id: req.key_material_id,
    })
}

/// Whether the imported material expires: `ExpirationModel` and `ValidTo` must agree (a
/// `ValidTo` alone means it expires), and `ValidTo` must lie within 365 days from `now`.
fn expires(
    model: Option<ExpirationModelType>,
    valid_to: Option<Timestamp>,
    now: crate::api::Timestamp,
) -> Result<bool, KmsError> {
    let expires = match (model, valid_to) {
        (Some(ExpirationModelType::KeyMaterialExpires) | None, Some(_)) => true,
        (Some(ExpirationModelType::KeyMaterialExpires), None) => {
            return Err(KmsError::valid_to_required());
        }
        (Some(_), Some(_)) => {
            return Err(kms_err!(
                Validation,
                "ValidTo is not valid when ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE."
            ));
        }
        _ => false,
    };
    if let Some(v) = valid_to
        && (v <= now || v > now + MAX_VALID_TO_SECONDS)
    {
        return Err(kms_err!(
            Validation,
            "ValidTo must be a future date no more than 365 days from now."
        ));
    }
    Ok(expires)
}

/// Check the import token against the key's parameters in force; returns them.
fn check_token(
    k: &Key,
    token: &[u8],
    now: crate::api::Timestamp,
) -> Result<ImportParams, KmsError> {
    let invalid = || {
        // cks-sim's wording: AWS's message was not found.
        kms_err!(
            InvalidImportToken,
            "The import token is not valid for {}: use the ImportToken of the latest GetParametersForImport for this KMS key.",
            k.arn
        )
    };
    let p = k.material.import.clone().ok_or_else(invalid)?;
    let expected = [
        TOKEN_MAGIC.as_slice(),
        &material::key_uuid(k).unwrap_or_default(),
        &hex_object_id(&p.wrapping_object).unwrap_or_default(),
        &material::hex_object_id(&p.nonce).unwrap_or_default(),
    ]
    .concat();
    if token != expected.as_slice() {
        return Err(invalid());
    }
    if now > p.valid_to {
        return Err(kms_err!(
            ExpiredImportToken,
            "The import token expired: call GetParametersForImport again."
        ));
    }
    Ok(p)
}

/// Which material an import fills: an existing one (re-import, at its own object ID) or a
/// new one (the key's first, or one waiting for an on-demand rotation).
enum Target {
    Existing(usize),
    New { first: bool },
}

fn import_target(k: &Key, r: &ImportRequest) -> Result<Target, KmsError> {
    let list = &k.material.list;
    let new = r.new_material.unwrap_or(list.is_empty());
    if new {
        if r.material_id.is_some() {
            return Err(kms_err!(
                Validation,
                "KeyMaterialId is valid only with ImportType EXISTING_KEY_MATERIAL."
            ));
        }
        if list
            .iter()
            .any(|m| m.state == MaterialState::PendingRotation)
        {
            return Err(kms_err!(
                KmsInvalidState,
                "{} already has key material waiting for rotation: rotate it on demand or delete it first.",
                k.arn
            ));
        }
        return Ok(Target::New {
            first: list.is_empty(),
        });
    }
    let i = match &r.material_id {
        Some(id) => list
            .iter()
            .position(|m| &m.id == id)
            .ok_or_else(|| kms_err!(NotFound, "Key material {id} does not exist for {}.", k.arn))?,
        None => list
            .iter()
            .position(|m| m.state == MaterialState::Current)
            .ok_or_else(|| {
                kms_err!(
                    KmsInvalidState,
                    "{} has no key material to re-import: use ImportType NEW_KEY_MATERIAL.",
                    k.arn
                )
            })?,
    };
    if list[i].present() {
        return Err(kms_err!(
            KmsInvalidState,
            "Key material {} of {} is already imported: delete it first to import it again.",
            list[i].id,
            k.arn
        ));
    }
    Ok(Target::Existing(i))
}

/// `ImportKeyMaterial`.
pub async fn import_material(
    app: &Arc<App>,
    req: ImportKeyMaterialRequest,
) -> Result<ImportKeyMaterialResponse, KmsError> {
    let raw = req.key_id.clone();
    let r = import_request(req, app.now())?;
    let writer = app.lock_writer().await;
    let mut k = external_key(app, &raw)?;
    let params = check_token(&k, &r.import_token, app.now())?;
    let target = import_target(&k, &r)?;
    let object = match target {
        Target::Existing(i) => hex_object_id(&k.material.list[i].object_id)
            .ok_or_else(|| KmsError::internal("a material without an object id"))?,
        Target::New { .. } => new_object_id(),
    };
    let token = app.internal_token().await.map_err(KmsError::internal)?;
    unwrap_material(&token, &k, &params, r.wrapped.clone(), object).await?;
    let fingerprint = match token.fingerprint(object).await {
        Ok(f) => f,
        Err(e) => {
            let _ = token.destroy(object).await;
            return Err(KmsError::internal(e));
        }
    };
    if let Err(e) = record_import(&mut k, &r, target, object, fingerprint, app.now()) {
        let _ = token.destroy(object).await;
        return Err(e);
    }
    app.failpoints.hit("import.material_made");
    let changes = super::multi_region::with_shared_material(&app.world(), &k);
    if let Err(e) = app.commit(&writer, changes).await {
        let _ = token.destroy(object).await;
        return Err(KmsError::internal(e));
    }
    let id = material::by_object(&k, &object)
        .map(|m| m.id)
        .unwrap_or_default();
    Ok(ImportKeyMaterialResponse {
        key_id: Some(k.arn.into()),
        key_material_id: Some(id),
    })
}

/// Record the imported material in `k`: the same material as before for a re-import (else
/// `IncorrectKeyMaterialException`), a material unlike every other for a new one.
fn record_import(
    k: &mut Key,
    r: &ImportRequest,
    target: Target,
    object: ObjectId,
    fingerprint: String,
    now: crate::api::Timestamp,
) -> Result<(), KmsError> {
    let imported = Imported {
        present: true,
        expires: r.expires,
        valid_to: r.valid_to,
        description: r.description.clone(),
        fingerprint: fingerprint.clone(),
    };
    // cks-sim's wording for both refusals: AWS's message was not found.
    let incorrect = || {
        kms_err!(
            IncorrectKeyMaterial,
            "The key material in the request does not match the key material previously imported into {}.",
            k.arn
        )
    };
    match target {
        Target::Existing(i) => {
            let m = &mut k.material.list[i];
            if m.imported.as_ref().map(|x| &x.fingerprint) != Some(&fingerprint) {
                return Err(incorrect());
            }
            let description = imported
                .description
                .clone()
                .or_else(|| m.imported.as_ref().and_then(|x| x.description.clone()));
            m.imported = Some(Imported {
                description,
                ..imported
            });
        }
        Target::New { first } => {
            if k.material
                .list
                .iter()
                .any(|m| m.imported.as_ref().map(|x| &x.fingerprint) == Some(&fingerprint))
            {
                return Err(kms_err!(
                    IncorrectKeyMaterial,
                    "This key material was imported into {} before: import it with ImportType EXISTING_KEY_MATERIAL.",
                    k.arn
                ));
            }
            let id = material::imported_material_id(k, &fingerprint);
            k.material.list.push(Material {
                id,
                object_id: hex(&object),
                created: now,
                rotation_date: None,
                rotation_type: None,
                state: if first {
                    MaterialState::Current
                } else {
                    MaterialState::PendingRotation
                },
                imported: Some(imported),
            });
        }
    }
    Ok(())
}

/// Turn the wrapped material into key object `object` on the token, as the parameters say.
async fn unwrap_material(
    token: &Arc<Token>,
    k: &Key,
    p: &ImportParams,
    wrapped: Vec<u8>,
    object: ObjectId,
) -> Result<(), KmsError> {
    let wrapping = hex_object_id(&p.wrapping_object)
        .ok_or_else(|| KmsError::internal("a wrapping pair without an object id"))?;
    let obj = MaterialObject {
        label: k.arn.to_string(),
        id: object,
    };
    let modulus_len = match p.spec.as_str() {
        "RSA_2048" => 256,
        "RSA_3072" => 384,
        _ => 512,
    };
    let hash = if p.algorithm.ends_with("SHA_1") {
        Hash::Sha1
    } else {
        Hash::Sha256
    };
    let res = if p.algorithm.starts_with("RSA_AES_KEY_WRAP") {
        if wrapped.len() <= modulus_len {
            return Err(bad_wrapping());
        }
        let (rsa_part, kwp_part) = wrapped.split_at(modulus_len);
        let how = rsa_step(token, wrapping, hash, rsa_part, modulus_len).await?;
        token
            .import_aes_wrapped(
                wrapping,
                how,
                rsa_part.to_vec(),
                kwp_part.to_vec(),
                obj,
                SYMMETRIC_LEN,
            )
            .await
    } else {
        let how = rsa_step(token, wrapping, hash, &wrapped, modulus_len).await?;
        token
            .import_rsa_wrapped(wrapping, how, wrapped, obj, SYMMETRIC_LEN)
            .await
    };
    res.map_err(|e| {
        tracing::info!(key = %k.arn, error = %e, "the token did not unwrap imported material");
        match e {
            HsmError::CiphertextRejected { .. } => bad_wrapping(),
            other => KmsError::internal(other),
        }
    })
}

/// How the RSA step runs on this token: its own OAEP, or (SHA-256 on a token whose OAEP
/// takes only SHA-1) a raw decryption whose padding is removed here.
async fn rsa_step(
    token: &Arc<Token>,
    wrapping: ObjectId,
    hash: Hash,
    block: &[u8],
    modulus_len: usize,
) -> Result<RsaUnwrap, KmsError> {
    let offers = token
        .offers(super::spec::all_curves())
        .await
        .map_err(KmsError::internal)?;
    let native = match hash {
        Hash::Sha256 => token
            .oaep_sha256_native(&offers, wrapping)
            .await
            .map_err(KmsError::internal)?,
        _ => true,
    };
    if native {
        if !offers.can(Capability::RsaOaep) {
            return Err(kms_err!(
                UnsupportedOperation,
                "This token offers no RSA OAEP unwrapping (CKM_RSA_PKCS_OAEP)."
            ));
        }
        return Ok(RsaUnwrap::Oaep(hash));
    }
    if block.len() != modulus_len {
        return Err(bad_wrapping());
    }
    let em = token
        .raw_rsa_decrypt(wrapping, block.to_vec())
        .await
        .map_err(|e| match e {
            HsmError::CiphertextRejected { .. } => bad_wrapping(),
            other => KmsError::internal(other),
        })?;
    // Raw RSA gives the block without its leading zero bytes on some tokens.
    let mut padded = vec![0; modulus_len.saturating_sub(em.len())];
    padded.extend_from_slice(&em);
    super::oaep::decode(&padded, modulus_len)
        .map(RsaUnwrap::Value)
        .ok_or_else(bad_wrapping)
}

fn bad_wrapping() -> KmsError {
    // cks-sim's wording: AWS's message was not found.
    kms_err!(
        InvalidCiphertext,
        "The EncryptedKeyMaterial could not be unwrapped with the wrapping key and algorithm of the import token."
    )
}

/// `DeleteImportedKeyMaterial` (the current material, or the one `KeyMaterialId` names).
pub async fn delete_material(
    app: &Arc<App>,
    req: DeleteImportedKeyMaterialRequest,
) -> Result<DeleteImportedKeyMaterialResponse, KmsError> {
    let wanted = req.key_material_id;
    let writer = app.lock_writer().await;
    let mut k = Arc::unwrap_or_clone(resolve_key(
        app,
        &app.world(),
        &req.key_id,
        KeyRef::IdOrArn,
    )?);
    if k.origin != Origin::External {
        return Err(super::rotation::origin_not_valid(&k));
    }
    not_a_replica(&k)?;
    let i = match &wanted {
        Some(id) => k.material.list.iter().position(|m| &m.id == id),
        None => k
            .material
            .list
            .iter()
            .position(|m| m.state == MaterialState::Current),
    };
    let Some(i) = i.filter(|i| k.material.list[*i].present()) else {
        return Err(super::crypto::pending_import(&k));
    };
    let token = app.internal_token().await.map_err(KmsError::internal)?;
    if let Some(o) = k.material.list[i].object() {
        match token.destroy(o).await {
            Ok(()) | Err(HsmError::KeyNotFound { .. }) => {}
            Err(e) => return Err(KmsError::internal(e)),
        }
    }
    let id = k.material.list[i].id.clone();
    if k.material.list[i].state == MaterialState::PendingRotation {
        // Material that never became current leaves no ciphertexts behind: forget it.
        k.material.list.remove(i);
    } else if let Some(imp) = k.material.list[i].imported.as_mut() {
        imp.present = false;
    }
    let changes = super::multi_region::with_shared_material(&app.world(), &k);
    app.commit(&writer, changes)
        .await
        .map_err(KmsError::internal)?;
    Ok(DeleteImportedKeyMaterialResponse {
        key_id: Some(k.arn.into()),
        key_material_id: Some(id),
    })
}
