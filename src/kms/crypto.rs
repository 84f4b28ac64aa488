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
use super::{KeyRef, input_err, key_arn, resolve_key, visible_state};
use crate::api::kms::{GenerateRandomRequest, GenerateRandomResponse};
use crate::app::App;
use crate::hsm::{HsmError, Token};
use crate::kms_err;
use crate::protocol::input::Input;
use base64::Engine;
use serde_json::{Value, json};
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

/// An encryption algorithm member, checked against the model's values.
fn algorithm<'a>(input: &'a Input, m: &str) -> Result<Option<&'a str>, KmsError> {
    super::signing::enum_value(
        input,
        m,
        &[
            "SYMMETRIC_DEFAULT",
            "RSAES_OAEP_SHA_1",
            "RSAES_OAEP_SHA_256",
            "SM2PKE",
        ],
    )
}

/// Refuse an asymmetric encryption algorithm with a symmetric encryption key, in the words AWS
/// is recorded using for an algorithm a key spec does not offer (this pairing itself was not
/// found recorded).
fn symmetric_only(algorithm: Option<&str>) -> Result<(), KmsError> {
    match algorithm {
        None | Some("SYMMETRIC_DEFAULT") => Ok(()),
        Some(a) => Err(KmsError::incompatible_algorithm(a, "SYMMETRIC_DEFAULT")),
    }
}

/// Refuse a key whose usage is not `ENCRYPT_DECRYPT` for `op`.
fn encryption_key(k: &Key, op: &str) -> Result<(), KmsError> {
    if k.kind.usage != KeyUsage::EncryptDecrypt {
        return Err(super::signing::wrong_usage(k, op));
    }
    Ok(())
}

pub(super) fn context(input: &Input, m: &str) -> Result<BTreeMap<String, String>, KmsError> {
    Ok(input
        .opt_string_map(m)
        .map_err(input_err)?
        .unwrap_or_default())
}

/// Check that `k` may be used for cryptography now and return the token holding it.
pub(super) async fn usable(app: &Arc<App>, k: &Key) -> Result<Arc<Token>, KmsError> {
    {
        let w = app.world();
        let state = visible_state(&w, k);
        if state == "PendingImport" {
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

pub(super) fn dry_run(input: &Input) -> Result<bool, KmsError> {
    Ok(input
        .opt_bool("DryRun")
        .map_err(input_err)?
        .unwrap_or(false))
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

/// Seal with the key's current material: the blob and that material's `KeyMaterialId`.
pub(super) async fn seal_material(
    app: &Arc<App>,
    k: &Key,
    ctx: &BTreeMap<String, String>,
    pt: Vec<u8>,
) -> Result<(Vec<u8>, String), KmsError> {
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
    Ok((blob.encode(), m.id))
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
) -> Result<(Arc<Key>, Vec<u8>, String), KmsError> {
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
    Ok((k, pt, m.id))
}

/// `Encrypt`.
pub async fn encrypt(app: &Arc<App>, input: &Input) -> Result<Value, KmsError> {
    let raw = input
        .opt_str("KeyId")
        .map_err(input_err)?
        .ok_or_else(|| KmsError::missing("KeyId"))?;
    let pt = input
        .opt_blob("Plaintext", 1, 4096)
        .map_err(input_err)?
        .ok_or_else(|| KmsError::missing("Plaintext"))?;
    let ctx = context(input, "EncryptionContext")?;
    let alg = algorithm(input, "EncryptionAlgorithm")?;
    let dry = dry_run(input)?;
    let k = resolve_key(app, &app.world(), raw, KeyRef::AnyName)?;
    if k.kind.spec.is_asymmetric() {
        let r = RsaRequest {
            key: &k,
            algorithm: alg,
            context: &ctx,
            dry,
        };
        let (ct, alg) = rsa_encrypt(app, r, pt).await?;
        return Ok(
            json!({ "CiphertextBlob": b64(&ct), "KeyId": k.arn, "EncryptionAlgorithm": alg }),
        );
    }
    encryption_key(&k, "Encrypt")?;
    symmetric_only(alg)?;
    if dry {
        usable(app, &k).await?;
        return Err(dry_run_ok());
    }
    let blob = seal(app, &k, &ctx, pt).await?;
    Ok(
        json!({ "CiphertextBlob": b64(&blob), "KeyId": k.arn, "EncryptionAlgorithm": "SYMMETRIC_DEFAULT" }),
    )
}

/// `Decrypt` (with or without `KeyId`).
pub async fn decrypt(app: &Arc<App>, input: &Input) -> Result<Value, KmsError> {
    input.str_len("KeyId", 1, 2048).map_err(input_err)?;
    let dry = dry_run(input)?;
    let blob = input
        .opt_blob("CiphertextBlob", 1, 6144)
        .map_err(input_err)?
        .ok_or_else(|| KmsError::missing("CiphertextBlob"))?;
    let ctx = context(input, "EncryptionContext")?;
    let alg = algorithm(input, "EncryptionAlgorithm")?;
    if input.has("Recipient") {
        return Err(kms_err!(
            UnsupportedOperation,
            "cks-sim does not simulate Nitro Enclaves attestation (Recipient)."
        ));
    }
    let expected = input.str_len("KeyId", 1, 2048).map_err(input_err)?;
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
            return Ok(
                json!({ "KeyId": k.arn, "Plaintext": b64(&pt), "EncryptionAlgorithm": alg }),
            );
        }
        // A named key that cannot decrypt at all (an HMAC key, say) is IncorrectKey, as AWS
        // answers (recorded responses), not InvalidKeyUsage.
        encryption_key(&k, "Decrypt").map_err(|_| KmsError::incorrect_key())?;
    }
    symmetric_only(alg)?;
    let (k, pt, material) = open(app, &blob, &ctx, expected, dry).await?;
    Ok(
        json!({ "KeyId": k.arn, "Plaintext": b64(&pt), "EncryptionAlgorithm": "SYMMETRIC_DEFAULT", "KeyMaterialId": material }),
    )
}

/// `GenerateDataKey` and `GenerateDataKeyWithoutPlaintext`.
pub async fn generate_data_key(
    app: &Arc<App>,
    input: &Input,
    with_plaintext: bool,
) -> Result<Value, KmsError> {
    let raw = input
        .opt_str("KeyId")
        .map_err(input_err)?
        .ok_or_else(|| KmsError::missing("KeyId"))?;
    let n = input.opt_int("NumberOfBytes", 1, 1024).map_err(input_err)?;
    let spec = input.opt_str("KeySpec").map_err(input_err)?;
    let len = match (n, spec) {
        (Some(n), None) => usize::try_from(n).unwrap_or(32),
        (None, Some("AES_256")) => 32,
        (None, Some("AES_128")) => 16,
        (None, Some(other)) => {
            return Err(KmsError::validation(
                "KeySpec",
                other,
                "Member must satisfy enum value set: [AES_256, AES_128]",
            ));
        }
        (Some(_), Some(_)) => {
            return Err(kms_err!(
                Validation,
                "Specify NumberOfBytes or KeySpec, not both."
            ));
        }
        (None, None) => {
            return Err(kms_err!(
                Validation,
                "Specify either NumberOfBytes or KeySpec."
            ));
        }
    };
    let ctx = context(input, "EncryptionContext")?;
    let dry = dry_run(input)?;
    if input.has("Recipient") {
        return Err(kms_err!(
            UnsupportedOperation,
            "cks-sim does not simulate Nitro Enclaves attestation (Recipient)."
        ));
    }
    let k = resolve_key(app, &app.world(), raw, KeyRef::AnyName)?;
    let op = if with_plaintext {
        "GenerateDataKey"
    } else {
        "GenerateDataKeyWithoutPlaintext"
    };
    super::asymmetric::require_symmetric_encryption(&k, op)?;
    let token = usable(app, &k).await?;
    if dry {
        return Err(dry_run_ok());
    }
    let dk = token.random(len).await.map_err(|e| hsm_err(&k, e))?;
    let (blob, material) = seal_material(app, &k, &ctx, dk.clone()).await?;
    let mut out =
        json!({ "CiphertextBlob": b64(&blob), "KeyId": k.arn, "KeyMaterialId": material });
    if with_plaintext {
        out["Plaintext"] = json!(b64(&dk));
    }
    Ok(out)
}

/// `ReEncrypt`: from and to symmetric encryption keys and RSA encryption keys.
pub async fn re_encrypt(app: &Arc<App>, input: &Input) -> Result<Value, KmsError> {
    let blob = input
        .opt_blob("CiphertextBlob", 1, 6144)
        .map_err(input_err)?
        .ok_or_else(|| KmsError::missing("CiphertextBlob"))?;
    let dest = input
        .str_len("DestinationKeyId", 1, 2048)
        .map_err(input_err)?
        .ok_or_else(|| KmsError::missing("DestinationKeyId"))?;
    let src_ctx = context(input, "SourceEncryptionContext")?;
    let dst_ctx = context(input, "DestinationEncryptionContext")?;
    let src_alg = algorithm(input, "SourceEncryptionAlgorithm")?;
    let dst_alg = algorithm(input, "DestinationEncryptionAlgorithm")?;
    let dry = dry_run(input)?;
    let src = input.str_len("SourceKeyId", 1, 2048).map_err(input_err)?;
    let dk = resolve_key(app, &app.world(), dest, KeyRef::AnyName)?;
    if !dk.kind.spec.is_asymmetric() {
        encryption_key(&dk, "ReEncrypt")?;
        symmetric_only(dst_alg)?;
    }
    usable(app, &dk).await?;
    let source = match src {
        Some(raw) => Some(resolve_key(app, &app.world(), raw, KeyRef::AnyName)?),
        None => None,
    };
    let (src_arn, pt, src_alg, src_material) = match source.filter(|k| k.kind.spec.is_asymmetric())
    {
        Some(sk) => {
            let r = RsaRequest {
                key: &sk,
                algorithm: src_alg,
                context: &src_ctx,
                dry,
            };
            let (pt, alg) = rsa_decrypt(app, r, blob).await?;
            (sk.arn.clone(), pt, alg, None)
        }
        None => {
            symmetric_only(src_alg)?;
            let (sk, pt, m) = open(app, &blob, &src_ctx, src, dry).await?;
            (sk.arn.clone(), pt, "SYMMETRIC_DEFAULT", Some(m))
        }
    };
    let (out, dst_alg, dst_material) = if dk.kind.spec.is_asymmetric() {
        let r = RsaRequest {
            key: &dk,
            algorithm: dst_alg,
            context: &dst_ctx,
            dry: false,
        };
        let (ct, alg) = rsa_encrypt(app, r, pt).await?;
        (ct, alg, None)
    } else {
        let (ct, m) = seal_material(app, &dk, &dst_ctx, pt).await?;
        (ct, "SYMMETRIC_DEFAULT", Some(m))
    };
    let mut body = json!({
        "CiphertextBlob": b64(&out),
        "SourceKeyId": src_arn,
        "KeyId": dk.arn,
        "SourceEncryptionAlgorithm": src_alg,
        "DestinationEncryptionAlgorithm": dst_alg,
    });
    if let Some(m) = src_material {
        body["SourceKeyMaterialId"] = json!(m);
    }
    if let Some(m) = dst_material {
        body["DestinationKeyMaterialId"] = json!(m);
    }
    Ok(body)
}

/// `GenerateRandom` (on a store's cluster with `CustomKeyStoreId`).
pub async fn generate_random(
    app: &Arc<App>,
    req: GenerateRandomRequest,
) -> Result<GenerateRandomResponse, KmsError> {
    let n = req
        .number_of_bytes
        .ok_or_else(|| KmsError::new(KmsErrorKind::Validation, "NumberOfBytes is required."))?;
    if req.recipient.is_some() {
        return Err(kms_err!(
            UnsupportedOperation,
            "cks-sim does not simulate Nitro Enclaves attestation (Recipient)."
        ));
    }
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
