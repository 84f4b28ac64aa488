//! Cryptography on the token (D6): the ciphertext blob format and Encrypt, Decrypt,
//! GenerateDataKey(WithoutPlaintext), ReEncrypt and GenerateRandom.
//!
//! Blob: `version (2) | key id (16) | material object id (16) | iv (12) | tag (16) |
//! ciphertext`. AAD: `version | key id | material object id | canonical encryption context`
//! (pairs sorted by key, each string length-prefixed), so a blob is bound to the KMS key and
//! the key material that made it and to its context. Version 1 blobs (`1 | key id | iv | tag
//! | ciphertext`, AAD without the material) were sealed by a key's first material and still
//! open.

use super::asymmetric::{RsaRequest, rsa_decrypt, rsa_encrypt};
use super::error::{KmsError, KmsErrorKind};
use super::model::{ConnectionState, Key, Origin};
use super::spec::KeyUsage;
use super::{KeyRef, key_arn, resolve_key, visible_state};
use crate::api::kms::KeyState;
use crate::api::kms::{
    DataKeySpec, DecryptRequest, DecryptResponse, EncryptRequest, EncryptResponse,
    EncryptionAlgorithmSpec, GenerateDataKeyRequest, GenerateDataKeyResponse,
    GenerateDataKeyWithoutPlaintextRequest, GenerateDataKeyWithoutPlaintextResponse,
    GenerateRandomRequest, GenerateRandomResponse, ReEncryptRequest, ReEncryptResponse,
};
use crate::app::App;
use crate::hsm::{HsmError, Token};
use crate::kms_err;
use base64::Engine;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Blob format version written before keys had several materials (material = the key's
/// first, object ID = key ID); still decoded.
pub const BLOB_VERSION_1: u8 = 1;
/// Blob format version naming the material that sealed it.
pub const BLOB_VERSION: u8 = 2;
const HEADER_V1: usize = 1 + 16 + 12 + 16;
const HEADER: usize = 1 + 16 + 16 + 12 + 16;

/// A parsed ciphertext blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// [`BLOB_VERSION`] or [`BLOB_VERSION_1`].
    pub version: u8,
    /// The KMS key ID's bytes.
    pub key_id: [u8; 16],
    /// The token object ID of the material that sealed it (= `key_id` in version 1).
    pub material: [u8; 16],
    /// GCM IV.
    pub iv: Vec<u8>,
    /// GCM tag.
    pub tag: [u8; 16],
    /// Ciphertext without the tag.
    pub ciphertext: Vec<u8>,
}

impl Blob {
    /// Serialize.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(HEADER + self.ciphertext.len());
        v.push(self.version);
        v.extend_from_slice(&self.key_id);
        if self.version != BLOB_VERSION_1 {
            v.extend_from_slice(&self.material);
        }
        v.extend_from_slice(&self.iv);
        v.extend_from_slice(&self.tag);
        v.extend_from_slice(&self.ciphertext);
        v
    }

    /// Parse; `None` if this is not one of our blobs.
    pub fn decode(b: &[u8]) -> Option<Blob> {
        let key_id: [u8; 16] = b.get(1..17)?.try_into().ok()?;
        let (material, rest) = match *b.first()? {
            BLOB_VERSION_1 if b.len() >= HEADER_V1 => (key_id, &b[17..]),
            BLOB_VERSION if b.len() >= HEADER => (b[17..33].try_into().ok()?, &b[33..]),
            _ => return None,
        };
        Some(Blob {
            version: b[0],
            key_id,
            material,
            iv: rest[..12].to_vec(),
            tag: rest[12..28].try_into().ok()?,
            ciphertext: rest[28..].to_vec(),
        })
    }

    /// The AAD this blob was sealed with.
    pub fn aad(&self, context: &BTreeMap<String, String>) -> Vec<u8> {
        if self.version == BLOB_VERSION_1 {
            aad(&self.key_id, context)
        } else {
            aad_v2(&self.key_id, &self.material, context)
        }
    }
}

fn push_context(a: &mut Vec<u8>, context: &BTreeMap<String, String>) {
    for (k, v) in context {
        for s in [k, v] {
            a.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_be_bytes());
            a.extend_from_slice(s.as_bytes());
        }
    }
}

/// The AAD of a version 1 blob: `1 | key id | canonical encryption context`.
pub fn aad(key_id: &[u8; 16], context: &BTreeMap<String, String>) -> Vec<u8> {
    let mut a = vec![BLOB_VERSION_1];
    a.extend_from_slice(key_id);
    push_context(&mut a, context);
    a
}

/// The AAD of a version 2 blob: `2 | key id | material object id | canonical context`.
pub fn aad_v2(
    key_id: &[u8; 16],
    material: &[u8; 16],
    context: &BTreeMap<String, String>,
) -> Vec<u8> {
    let mut a = vec![BLOB_VERSION];
    a.extend_from_slice(key_id);
    a.extend_from_slice(material);
    push_context(&mut a, context);
    a
}

pub(super) fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// The 16 bytes that name a key's material (its `CKA_ID`) and that a blob carries: the UUID,
/// or the 32 hex digits of an `mrk-` key ID.
pub(super) fn key_uuid(k: &Key) -> Result<[u8; 16], KmsError> {
    super::multi_region::object_id(&k.id)
        .ok_or_else(|| KmsError::internal(format!("key id {} names no key material", k.id)))
}

/// Refuse an asymmetric encryption algorithm with a symmetric encryption key, in the words AWS
/// is recorded using for an algorithm a key spec does not offer (this pairing itself was not
/// found recorded).
fn symmetric_only(algorithm: Option<EncryptionAlgorithmSpec>) -> Result<(), KmsError> {
    match algorithm {
        None | Some(EncryptionAlgorithmSpec::SymmetricDefault) => Ok(()),
        Some(a) => Err(KmsError::incompatible_algorithm(
            a.as_str(),
            "SYMMETRIC_DEFAULT",
        )),
    }
}

/// Refuse a key whose usage is not `ENCRYPT_DECRYPT` for `op`.
fn encryption_key(k: &Key, op: &str) -> Result<(), KmsError> {
    if k.kind.usage != KeyUsage::EncryptDecrypt {
        return Err(super::signing::wrong_usage(k, op));
    }
    Ok(())
}

/// Refuse a `Recipient` (an attested Nitro enclave), which cks-sim does not simulate.
pub(super) fn refuse_recipient(present: bool) -> Result<(), KmsError> {
    if present {
        return Err(kms_err!(
            UnsupportedOperation,
            "cks-sim does not simulate Nitro Enclaves attestation (Recipient)."
        ));
    }
    Ok(())
}

/// Check that `k` may be used for cryptography now and return the token holding it.
pub(super) async fn usable(app: &Arc<App>, k: &Key) -> Result<Arc<Token>, KmsError> {
    {
        let w = app.world();
        let state = visible_state(&w, k);
        if state == KeyState::PendingImport {
            return Err(pending_import(k));
        }
        super::rules::crypto_allowed(state, &k.arn)?;
        if k.origin == Origin::AwsCloudhsm {
            let store = k.store_id.as_ref().and_then(|s| w.stores.get(s));
            let cluster = store.map(|s| s.cluster_id.clone()).unwrap_or_default();
            super::key::reachable(&w, &cluster)?;
        }
    }
    match k.origin {
        Origin::AwsKms | Origin::External => app.internal_token().await.map_err(KmsError::internal),
        Origin::AwsCloudhsm => {
            let cluster = {
                let w = app.world();
                k.store_id
                    .as_ref()
                    .and_then(|s| w.stores.get(s))
                    .filter(|s| s.state == ConnectionState::Connected)
                    .map(|s| s.cluster_id.clone())
            };
            let cluster =
                cluster.ok_or_else(|| kms_err!(KmsInvalidState, "{} is unavailable.", k.arn))?;
            app.token(&cluster)
                .await
                .map_err(|e| cannot_reach(&cluster, e))
        }
    }
}

pub(super) fn cannot_reach(cluster: &str, e: HsmError) -> KmsError {
    tracing::warn!(cluster, error = %e, "cluster token failure");
    kms_err!(
        KmsInvalidState,
        "KMS cannot communicate with your CloudHSM cluster {cluster}."
    )
}

/// Map an HSM failure during encryption-side work.
pub(super) fn hsm_err(k: &Key, e: HsmError) -> KmsError {
    match (&e, k.origin) {
        (HsmError::KeyNotFound { .. }, Origin::AwsCloudhsm) => kms_err!(
            KmsInvalidState,
            "KMS cannot communicate with your CloudHSM cluster: the key material of {} is missing from the cluster.",
            k.arn
        ),
        (_, Origin::AwsCloudhsm) => cannot_reach(&k.token_label, e),
        _ => KmsError::internal(e),
    }
}

pub(super) fn dry_run_ok() -> KmsError {
    kms_err!(
        DryRunOperation,
        "The request would have succeeded, but the DryRun option is set."
    )
}

pub(super) async fn seal(
    app: &Arc<App>,
    k: &Key,
    ctx: &BTreeMap<String, String>,
    pt: Vec<u8>,
) -> Result<Vec<u8>, KmsError> {
    Ok(seal_material(app, k, ctx, pt).await?.0)
}

/// Seal with the key's current material: the blob and that material's `KeyMaterialId`, if
/// answers show the key's material IDs ([`super::material::shown_id`]).
pub(super) async fn seal_material(
    app: &Arc<App>,
    k: &Key,
    ctx: &BTreeMap<String, String>,
    pt: Vec<u8>,
) -> Result<(Vec<u8>, Option<String>), KmsError> {
    let id = key_uuid(k)?;
    let token = usable(app, k).await?;
    let m = super::material::current(k)
        .filter(super::material::Material::present)
        .ok_or_else(|| pending_import(k))?;
    let material = m
        .object()
        .ok_or_else(|| KmsError::internal(format!("material {} has no object id", m.id)))?;
    let sealed = token
        .encrypt(material, aad_v2(&id, &material, ctx), pt)
        .await
        .map_err(|e| hsm_err(k, e))?;
    let split = sealed.ciphertext.len().saturating_sub(16);
    let (ct, tag) = sealed.ciphertext.split_at(split);
    let blob = Blob {
        version: BLOB_VERSION,
        key_id: id,
        material,
        iv: sealed.iv,
        tag: tag
            .try_into()
            .map_err(|_| KmsError::internal("short GCM output"))?,
        ciphertext: ct.to_vec(),
    };
    Ok((blob.encode(), super::material::shown_id(k, &m)))
}

/// `KMSInvalidStateException` for a key waiting for imported material.
pub(super) fn pending_import(k: &Key) -> KmsError {
    kms_err!(KmsInvalidState, "{} is pending import.", k.arn)
}

pub(super) fn invalid_ciphertext() -> KmsError {
    KmsError::new(
        KmsErrorKind::InvalidCiphertext,
        // AWS sends this exception with no message at all (recorded responses): an empty
        // message is left out of the response.
        "",
    )
}

/// Decrypt `blob`; `expected` is the key the caller named, if any.
async fn open(
    app: &Arc<App>,
    blob: &[u8],
    ctx: &BTreeMap<String, String>,
    expected: Option<&str>,
    dry: bool,
) -> Result<(Arc<Key>, Vec<u8>, Option<String>), KmsError> {
    let b = Blob::decode(blob).ok_or_else(invalid_ciphertext)?;
    let k = {
        let w = app.world();
        let k = super::multi_region::blob_key(app, &w, &b.key_id).ok_or_else(|| {
            let key_id = uuid::Uuid::from_bytes(b.key_id).to_string();
            kms_err!(NotFound, "Key '{}' does not exist", key_arn(app, &key_id))
        })?;
        if let Some(raw) = expected {
            let named = resolve_key(app, &w, raw, KeyRef::AnyName)?;
            if named.id != k.id {
                return Err(KmsError::incorrect_key());
            }
        }
        k
    };
    let token = usable(app, &k).await?;
    // A material the key does not have (or no longer has on the token) opens nothing.
    let m = super::material::by_object(&k, &b.material).ok_or_else(invalid_ciphertext)?;
    if !m.present() {
        return Err(pending_import(&k));
    }
    if dry {
        return Err(dry_run_ok());
    }
    let mut ct = b.ciphertext.clone();
    ct.extend_from_slice(&b.tag);
    let pt = token
        .decrypt(b.material, b.iv.clone(), b.aad(ctx), ct)
        .await
        .map_err(|e| match e {
            HsmError::CiphertextRejected { .. } => invalid_ciphertext(),
            other => hsm_err(&k, other),
        })?;
    let shown = super::material::shown_id(&k, &m);
    Ok((k, pt, shown))
}

/// `Encrypt`.
pub async fn encrypt(app: &Arc<App>, req: EncryptRequest) -> Result<EncryptResponse, KmsError> {
    let ctx = req.encryption_context.unwrap_or_default();
    let alg = req.encryption_algorithm;
    let dry = req.dry_run.unwrap_or(false);
    let k = resolve_key(app, &app.world(), &req.key_id, KeyRef::AnyName)?;
    let (ciphertext, alg) = if k.kind.spec.is_asymmetric() {
        let r = RsaRequest {
            key: &k,
            algorithm: alg,
            context: &ctx,
            dry,
        };
        rsa_encrypt(app, r, req.plaintext.0).await?
    } else {
        encryption_key(&k, "Encrypt")?;
        symmetric_only(alg)?;
        if dry {
            usable(app, &k).await?;
            return Err(dry_run_ok());
        }
        let blob = seal(app, &k, &ctx, req.plaintext.0).await?;
        (blob, EncryptionAlgorithmSpec::SymmetricDefault)
    };
    Ok(EncryptResponse {
        ciphertext_blob: Some(ciphertext.into()),
        encryption_algorithm: Some(alg),
        key_id: Some(k.arn.to_string()),
    })
}

/// `Decrypt` (with or without `KeyId`).
pub async fn decrypt(app: &Arc<App>, req: DecryptRequest) -> Result<DecryptResponse, KmsError> {
    let dry = req.dry_run.unwrap_or(false);
    let blob = req
        .ciphertext_blob
        .ok_or_else(|| KmsError::missing("CiphertextBlob"))?
        .0;
    let ctx = req.encryption_context.unwrap_or_default();
    let alg = req.encryption_algorithm;
    refuse_recipient(req.recipient.is_some())?;
    let expected = req.key_id.as_deref();
    if let Some(raw) = expected {
        let k = resolve_key(app, &app.world(), raw, KeyRef::AnyName)?;
        if k.kind.spec.is_asymmetric() {
            let r = RsaRequest {
                key: &k,
                algorithm: alg,
                context: &ctx,
                dry,
            };
            let (pt, alg) = rsa_decrypt(app, r, blob).await?;
            return Ok(DecryptResponse {
                encryption_algorithm: Some(alg),
                key_id: Some(k.arn.to_string()),
                plaintext: Some(pt.into()),
                ..Default::default()
            });
        }
        // A named key that cannot decrypt at all (an HMAC key, say) is IncorrectKey, as AWS
        // answers (recorded responses), not InvalidKeyUsage.
        encryption_key(&k, "Decrypt").map_err(|_| KmsError::incorrect_key())?;
    }
    symmetric_only(alg)?;
    let (k, pt, material) = open(app, &blob, &ctx, expected, dry).await?;
    Ok(DecryptResponse {
        encryption_algorithm: Some(EncryptionAlgorithmSpec::SymmetricDefault),
        key_id: Some(k.arn.to_string()),
        key_material_id: material,
        plaintext: Some(pt.into()),
        ..Default::default()
    })
}

/// The members `GenerateDataKey` and `GenerateDataKeyWithoutPlaintext` share.
struct DataKeyOrder {
    key_id: String,
    number_of_bytes: Option<i64>,
    key_spec: Option<DataKeySpec>,
    context: BTreeMap<String, String>,
    recipient: bool,
    dry: bool,
}

/// A data key made and sealed under a KMS key.
struct DataKey {
    key_arn: String,
    plaintext: Vec<u8>,
    ciphertext: Vec<u8>,
    material: Option<String>,
}

/// The length of a data key: `NumberOfBytes` or `KeySpec`, exactly one of them.
fn data_key_len(
    number_of_bytes: Option<i64>,
    spec: Option<DataKeySpec>,
) -> Result<usize, KmsError> {
    match (number_of_bytes, spec) {
        (Some(n), None) => Ok(usize::try_from(n).unwrap_or(32)),
        (None, Some(DataKeySpec::Aes256)) => Ok(32),
        (None, Some(DataKeySpec::Aes128)) => Ok(16),
        (Some(_), Some(_)) => Err(kms_err!(
            Validation,
            "Specify NumberOfBytes or KeySpec, not both."
        )),
        (None, None) => Err(kms_err!(
            Validation,
            "Specify either NumberOfBytes or KeySpec."
        )),
    }
}

/// Make a data key on the token and seal it under the KMS key (`op` names the operation).
async fn data_key(app: &Arc<App>, order: DataKeyOrder, op: &str) -> Result<DataKey, KmsError> {
    let len = data_key_len(order.number_of_bytes, order.key_spec)?;
    refuse_recipient(order.recipient)?;
    let k = resolve_key(app, &app.world(), &order.key_id, KeyRef::AnyName)?;
    super::asymmetric::require_symmetric_encryption(&k, op)?;
    let token = usable(app, &k).await?;
    if order.dry {
        return Err(dry_run_ok());
    }
    let plaintext = token.random(len).await.map_err(|e| hsm_err(&k, e))?;
    let (ciphertext, material) = seal_material(app, &k, &order.context, plaintext.clone()).await?;
    Ok(DataKey {
        key_arn: k.arn.to_string(),
        plaintext,
        ciphertext,
        material,
    })
}

/// `GenerateDataKey`.
pub async fn generate_data_key(
    app: &Arc<App>,
    req: GenerateDataKeyRequest,
) -> Result<GenerateDataKeyResponse, KmsError> {
    let order = DataKeyOrder {
        key_id: req.key_id,
        number_of_bytes: req.number_of_bytes,
        key_spec: req.key_spec,
        context: req.encryption_context.unwrap_or_default(),
        recipient: req.recipient.is_some(),
        dry: req.dry_run.unwrap_or(false),
    };
    let dk = data_key(app, order, "GenerateDataKey").await?;
    Ok(GenerateDataKeyResponse {
        ciphertext_blob: Some(dk.ciphertext.into()),
        key_id: Some(dk.key_arn),
        key_material_id: dk.material,
        plaintext: Some(dk.plaintext.into()),
        ..Default::default()
    })
}

/// `GenerateDataKeyWithoutPlaintext`.
pub async fn generate_data_key_without_plaintext(
    app: &Arc<App>,
    req: GenerateDataKeyWithoutPlaintextRequest,
) -> Result<GenerateDataKeyWithoutPlaintextResponse, KmsError> {
    let order = DataKeyOrder {
        key_id: req.key_id,
        number_of_bytes: req.number_of_bytes,
        key_spec: req.key_spec,
        context: req.encryption_context.unwrap_or_default(),
        recipient: false,
        dry: req.dry_run.unwrap_or(false),
    };
    let dk = data_key(app, order, "GenerateDataKeyWithoutPlaintext").await?;
    Ok(GenerateDataKeyWithoutPlaintextResponse {
        ciphertext_blob: Some(dk.ciphertext.into()),
        key_id: Some(dk.key_arn),
        key_material_id: dk.material,
    })
}

/// What `ReEncrypt` opened: the source key's ARN, the plaintext, the source algorithm and,
/// for a symmetric source, the material that had sealed it.
struct Opened {
    key_arn: String,
    plaintext: Vec<u8>,
    algorithm: EncryptionAlgorithmSpec,
    material: Option<String>,
}

/// What `ReEncrypt` sealed: the ciphertext, the destination algorithm and, for a symmetric
/// destination, the material that sealed it.
struct Sealed {
    ciphertext: Vec<u8>,
    algorithm: EncryptionAlgorithmSpec,
    material: Option<String>,
}

/// Open `ReEncrypt`'s ciphertext with the source key (named or found in the blob).
async fn re_encrypt_open(
    app: &Arc<App>,
    req: &ReEncryptRequest,
    blob: Vec<u8>,
    dry: bool,
) -> Result<Opened, KmsError> {
    let ctx = req.source_encryption_context.clone().unwrap_or_default();
    let alg = req.source_encryption_algorithm;
    let src = req.source_key_id.as_deref();
    let source = match src {
        Some(raw) => Some(resolve_key(app, &app.world(), raw, KeyRef::AnyName)?),
        None => None,
    };
    if let Some(sk) = source.filter(|k| k.kind.spec.is_asymmetric()) {
        let r = RsaRequest {
            key: &sk,
            algorithm: alg,
            context: &ctx,
            dry,
        };
        let (plaintext, algorithm) = rsa_decrypt(app, r, blob).await?;
        return Ok(Opened {
            key_arn: sk.arn.to_string(),
            plaintext,
            algorithm,
            material: None,
        });
    }
    symmetric_only(alg)?;
    let (sk, plaintext, m) = open(app, &blob, &ctx, src, dry).await?;
    Ok(Opened {
        key_arn: sk.arn.to_string(),
        plaintext,
        algorithm: EncryptionAlgorithmSpec::SymmetricDefault,
        material: m,
    })
}

/// Seal `ReEncrypt`'s plaintext under the destination key `dk`.
async fn re_encrypt_seal(
    app: &Arc<App>,
    req: &ReEncryptRequest,
    dk: &Key,
    plaintext: Vec<u8>,
) -> Result<Sealed, KmsError> {
    let ctx = req
        .destination_encryption_context
        .clone()
        .unwrap_or_default();
    if dk.kind.spec.is_asymmetric() {
        let r = RsaRequest {
            key: dk,
            algorithm: req.destination_encryption_algorithm,
            context: &ctx,
            dry: false,
        };
        let (ciphertext, algorithm) = rsa_encrypt(app, r, plaintext).await?;
        return Ok(Sealed {
            ciphertext,
            algorithm,
            material: None,
        });
    }
    let (ciphertext, m) = seal_material(app, dk, &ctx, plaintext).await?;
    Ok(Sealed {
        ciphertext,
        algorithm: EncryptionAlgorithmSpec::SymmetricDefault,
        material: m,
    })
}

/// `ReEncrypt`: from and to symmetric encryption keys and RSA encryption keys.
pub async fn re_encrypt(
    app: &Arc<App>,
    req: ReEncryptRequest,
) -> Result<ReEncryptResponse, KmsError> {
    let blob = req
        .ciphertext_blob
        .clone()
        .ok_or_else(|| KmsError::missing("CiphertextBlob"))?
        .0;
    let dry = req.dry_run.unwrap_or(false);
    let dk = resolve_key(app, &app.world(), &req.destination_key_id, KeyRef::AnyName)?;
    if !dk.kind.spec.is_asymmetric() {
        encryption_key(&dk, "ReEncrypt")?;
        symmetric_only(req.destination_encryption_algorithm)?;
    }
    usable(app, &dk).await?;
    let opened = re_encrypt_open(app, &req, blob, dry).await?;
    let sealed = re_encrypt_seal(app, &req, &dk, opened.plaintext).await?;
    Ok(ReEncryptResponse {
        ciphertext_blob: Some(sealed.ciphertext.into()),
        destination_encryption_algorithm: Some(sealed.algorithm),
        destination_key_material_id: sealed.material,
        key_id: Some(dk.arn.to_string()),
        source_encryption_algorithm: Some(opened.algorithm),
        source_key_id: Some(opened.key_arn),
        source_key_material_id: opened.material,
    })
}

/// `GenerateRandom` (on a store's cluster with `CustomKeyStoreId`).
pub async fn generate_random(
    app: &Arc<App>,
    req: GenerateRandomRequest,
) -> Result<GenerateRandomResponse, KmsError> {
    let n = req
        .number_of_bytes
        .ok_or_else(|| KmsError::new(KmsErrorKind::Validation, "NumberOfBytes is required."))?;
    refuse_recipient(req.recipient.is_some())?;
    let n = usize::try_from(n).unwrap_or(1);
    let token = match req.custom_key_store_id.as_deref() {
        Some(sid) => {
            let cluster = {
                let w = app.world();
                let s = super::key_store::connected(&w, sid, "first")?;
                super::key::reachable(&w, &s.cluster_id)?;
                s.cluster_id.clone()
            };
            app.token(&cluster)
                .await
                .map_err(|e| cannot_reach(&cluster, e))?
        }
        None => app.internal_token().await.map_err(KmsError::internal)?,
    };
    let label = token.label().to_string();
    let bytes = token.random(n).await.map_err(|e| cannot_reach(&label, e))?;
    Ok(GenerateRandomResponse {
        plaintext: Some(bytes.into()),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_key_takes_exactly_one_of_number_of_bytes_and_key_spec() {
        assert_eq!(data_key_len(Some(7), None).unwrap(), 7);
        assert_eq!(data_key_len(None, Some(DataKeySpec::Aes256)).unwrap(), 32);
        assert_eq!(data_key_len(None, Some(DataKeySpec::Aes128)).unwrap(), 16);
        let both = data_key_len(Some(16), Some(DataKeySpec::Aes128)).unwrap_err();
        assert_eq!(both.message, "Specify NumberOfBytes or KeySpec, not both.");
        let neither = data_key_len(None, None).unwrap_err();
        assert_eq!(neither.message, "Specify either NumberOfBytes or KeySpec.");
        assert_eq!(neither.kind, KmsErrorKind::Validation);
    }

    #[test]
    fn blob_round_trip_and_rejects_foreign_bytes() {
        let b = Blob {
            version: BLOB_VERSION,
            key_id: [7; 16],
            material: [9; 16],
            iv: vec![1; 12],
            tag: [2; 16],
            ciphertext: vec![3, 4, 5],
        };
        let e = b.encode();
        assert_eq!(e.len(), 61 + 3);
        assert_eq!(Blob::decode(&e), Some(b));
        assert_eq!(Blob::decode(&e[..60]), None);
        let mut v3 = e.clone();
        v3[0] = 3;
        assert_eq!(Blob::decode(&v3), None);
    }

    #[test]
    fn version_1_blobs_still_decode_with_the_key_as_material() {
        let b = Blob {
            version: BLOB_VERSION_1,
            key_id: [7; 16],
            material: [7; 16],
            iv: vec![1; 12],
            tag: [2; 16],
            ciphertext: vec![3, 4, 5],
        };
        let e = b.encode();
        assert_eq!(e.len(), 45 + 3);
        assert_eq!(Blob::decode(&e), Some(b.clone()));
        assert_eq!(b.aad(&BTreeMap::new()), aad(&[7; 16], &BTreeMap::new()));
        assert_eq!(Blob::decode(&e[..44]), None);
    }

    #[test]
    fn the_material_is_bound_by_the_aad() {
        let ctx = BTreeMap::new();
        assert_ne!(
            aad_v2(&[0; 16], &[1; 16], &ctx),
            aad_v2(&[0; 16], &[2; 16], &ctx)
        );
        assert_ne!(aad_v2(&[0; 16], &[0; 16], &ctx), aad(&[0; 16], &ctx));
    }

    #[test]
    fn aad_is_canonical_and_unambiguous() {
        let mut a = BTreeMap::new();
        a.insert("b".to_string(), "2".to_string());
        a.insert("a".to_string(), "1".to_string());
        let mut b = BTreeMap::new();
        b.insert("a".to_string(), "1".to_string());
        b.insert("b".to_string(), "2".to_string());
        assert_eq!(aad(&[0; 16], &a), aad(&[0; 16], &b));
        let mut c = BTreeMap::new();
        c.insert("a1".to_string(), String::new());
        let mut d = BTreeMap::new();
        d.insert("a".to_string(), "1".to_string());
        assert_ne!(
            aad(&[0; 16], &c),
            aad(&[0; 16], &d),
            "length prefixes keep pairs apart"
        );
        assert_ne!(aad(&[0; 16], &a), aad(&[1; 16], &a));
    }
}
