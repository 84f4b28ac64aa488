//! Asymmetric and HMAC KMS keys: which spec and usage `CreateKey` accepts, generating their
//! material on the token, `GetPublicKey`, RSA `Encrypt`/`Decrypt` (RSAES-OAEP), ECDH
//! `DeriveSharedSecret` and `GenerateDataKeyPair(WithoutPlaintext)`.
//!
//! RSAES_OAEP_SHA_1 runs as `CKM_RSA_PKCS_OAEP` on the token; RSAES_OAEP_SHA_256 as raw RSA
//! (`CKM_RSA_X_509`) on the token with the OAEP padding done in [`super::oaep`], since
//! SoftHSM2 2.6 refuses OAEP parameters with SHA-256. Either way the private key never leaves
//! the token.

use super::crypto::{
    b64, dry_run_ok, hsm_err, invalid_ciphertext, key_uuid, refuse_recipient, seal_material, usable,
};
use super::error::KmsError;
use super::model::{Key, KeyKind};
use super::signing::{key_with_usage, wrong_usage};
use super::spec::{
    Curve, KeySpec, KeyUsage, algorithm_members, all_curves, offered, offered_kinds,
};
use super::{KeyRef, der, oaep, resolve_key};
use crate::api::kms::{
    CustomerMasterKeySpec, DataKeyPairSpec, DeriveSharedSecretRequest, DeriveSharedSecretResponse,
    EncryptionAlgorithmSpec, GenerateDataKeyPairRequest, GenerateDataKeyPairResponse,
    GenerateDataKeyPairWithoutPlaintextRequest, GenerateDataKeyPairWithoutPlaintextResponse,
    GetPublicKeyRequest, GetPublicKeyResponse, KeyAgreementAlgorithmSpec, KeySpec as ApiKeySpec,
    KeyUsageType, OriginType, SigningAlgorithmSpec,
};
use crate::app::App;
use crate::hsm::asymmetric::{Hash, PairKind, PairUse, PrivateParts, PublicParts, RsaCipher};
use crate::hsm::{HsmError, HsmOp, ObjectId, Token};
use crate::kms_err;
use base64::Engine;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The spec and usage of a key `CreateKey` is asked for, checked as KMS checks them.
/// `usage` is None when the request has no `KeyUsage` (then `ENCRYPT_DECRYPT`).
pub fn checked_kind(spec: &str, usage: Option<&str>, cloudhsm: bool) -> Result<KeyKind, KmsError> {
    let usage_name = usage.unwrap_or("ENCRYPT_DECRYPT");
    if cloudhsm && (spec != "SYMMETRIC_DEFAULT" || usage_name != "ENCRYPT_DECRYPT") {
        return Err(kms_err!(
            UnsupportedOperation,
            "KMS keys in an AWS CloudHSM key store must be symmetric encryption keys (KeySpec SYMMETRIC_DEFAULT, KeyUsage ENCRYPT_DECRYPT)."
        ));
    }
    let Some(key_spec) = KeySpec::parse(spec) else {
        return Err(kms_err!(
            UnsupportedOperation,
            "cks-sim does not simulate {spec} keys (SM2 keys exist in China Regions only; ML-DSA and Ed25519 keys are not simulated)."
        ));
    };
    // AWS's CreateKey documentation: KeyUsage "is optional when you are creating a symmetric
    // encryption KMS key; otherwise, it is required."
    if usage.is_none() && key_spec != KeySpec::SymmetricDefault {
        return Err(KmsError::key_usage_required());
    }
    let key_usage = KeyUsage::parse(usage_name).unwrap_or_default();
    if !key_spec.usages().contains(&key_usage) {
        // AWS's wording for this refusal was not found; this is ours.
        return Err(kms_err!(
            Validation,
            "KeyUsage {usage_name} is not compatible with KeySpec {spec}: use {}.",
            key_spec
                .usages()
                .iter()
                .map(|u| u.as_str())
                .collect::<Vec<_>>()
                .join(" or ")
        ));
    }
    Ok(KeyKind {
        spec: key_spec,
        usage: key_usage,
        public_key: None,
    })
}

/// Generate a new key's material on `token`, labelled `label` with `CKA_ID` = `id`; returns
/// the base64 DER public key of an asymmetric key.
pub async fn generate_material(
    token: &Arc<Token>,
    label: &str,
    id: ObjectId,
    kind: &KeyKind,
) -> Result<Option<String>, HsmError> {
    if let Some(hash) = kind.spec.hmac_hash() {
        token
            .generate_hmac_key(label, id, hash.output_len() as u64)
            .await?;
        return Ok(None);
    }
    let Some(pair) = kind.spec.pair_kind() else {
        token.generate_aes_key(label, id).await?;
        return Ok(None);
    };
    let usage = match kind.usage {
        KeyUsage::SignVerify => PairUse::Sign,
        KeyUsage::KeyAgreement => PairUse::Derive,
        _ => PairUse::Decrypt,
    };
    let parts = token.generate_key_pair(label, id, pair, usage).await?;
    Ok(Some(b64(&spki(kind.spec, &parts))))
}

/// The DER SubjectPublicKeyInfo of a public half.
fn spki(spec: KeySpec, parts: &PublicParts) -> Vec<u8> {
    match (parts, spec.curve()) {
        (PublicParts::Rsa { modulus, exponent }, _) => der::rsa_spki(modulus, exponent),
        (PublicParts::Ec { point }, Some(c)) => {
            der::ec_spki(c.oid_der, &der::ec_point_raw(point, c.field_len))
        }
        (PublicParts::Ec { point }, None) => point.clone(),
    }
}

/// `GetPublicKey`.
pub async fn get_public_key(
    app: &Arc<App>,
    req: GetPublicKeyRequest,
) -> Result<GetPublicKeyResponse, KmsError> {
    let k = resolve_key(app, &app.world(), &req.key_id, KeyRef::AnyName)?;
    let Some(public_key) = k.kind.public_key.as_ref() else {
        // AWS's wording for this refusal was not found; this is ours.
        return Err(kms_err!(
            UnsupportedOperation,
            "{} is not an asymmetric KMS key (KeySpec {}): only asymmetric KMS keys have a public key.",
            k.arn,
            k.kind.spec.as_str()
        ));
    };
    usable(app, &k).await?;
    let public_key = base64::engine::general_purpose::STANDARD
        .decode(public_key)
        .map_err(|e| KmsError::internal(format!("stored public key of {}: {e}", k.arn)))?;
    let spec = k.kind.spec.as_str();
    let mut out = GetPublicKeyResponse {
        customer_master_key_spec: CustomerMasterKeySpec::parse(spec),
        key_id: Some(k.arn.to_string()),
        key_spec: ApiKeySpec::parse(spec),
        key_usage: KeyUsageType::parse(k.kind.usage.as_str()),
        public_key: Some(public_key.into()),
        ..Default::default()
    };
    for (member, names) in algorithm_members(k.kind.spec, k.kind.usage) {
        match member {
            "EncryptionAlgorithms" => {
                out.encryption_algorithms = Some(parsed(&names, EncryptionAlgorithmSpec::parse));
            }
            "SigningAlgorithms" => {
                out.signing_algorithms = Some(parsed(&names, SigningAlgorithmSpec::parse));
            }
            "KeyAgreementAlgorithms" => {
                out.key_agreement_algorithms =
                    Some(parsed(&names, KeyAgreementAlgorithmSpec::parse));
            }
            // Only keys without a public key (HMAC, symmetric) have other members.
            _ => {}
        }
    }
    Ok(out)
}

/// The model's values named in `names` (every name the domain lists is one of them).
fn parsed<T>(names: &[&str], parse: fn(&str) -> Option<T>) -> Vec<T> {
    names.iter().filter_map(|n| parse(n)).collect()
}

/// The peer's uncompressed EC point in `spki`, checked against the curve of key `k`.
fn peer_point<'a>(k: &Key, curve: Curve, spki: &'a [u8]) -> Result<&'a [u8], KmsError> {
    // AWS's wording for these refusals was not found; these are ours.
    let (peer_curve, point) = der::ec_spki_parts(spki).ok_or_else(|| {
        kms_err!(
            Validation,
            "PublicKey must be a DER-encoded X.509 SubjectPublicKeyInfo of an elliptic-curve public key."
        )
    })?;
    if peer_curve != curve.oid_der {
        return Err(kms_err!(
            Validation,
            "The public key is not on the curve of key spec {}.",
            k.kind.spec.as_str()
        ));
    }
    if point.len() != 2 * curve.field_len + 1 || point[0] != 4 {
        return Err(kms_err!(
            Validation,
            "The public key must be an uncompressed point on the curve of key spec {}.",
            k.kind.spec.as_str()
        ));
    }
    Ok(point)
}

/// `DeriveSharedSecret` (ECDH on the token, raw shared x-coordinate).
pub async fn derive_shared_secret(
    app: &Arc<App>,
    req: DeriveSharedSecretRequest,
) -> Result<DeriveSharedSecretResponse, KmsError> {
    refuse_recipient(req.recipient.is_some())?;
    let dry = req.dry_run.unwrap_or(false);
    let k = key_with_usage(
        app,
        &req.key_id,
        KeyUsage::KeyAgreement,
        "DeriveSharedSecret",
    )?;
    let curve = k
        .kind
        .spec
        .curve()
        .ok_or_else(|| wrong_usage(&k, "DeriveSharedSecret"))?;
    let point = peer_point(&k, curve, req.public_key.bytes())?;
    let token = usable(app, &k).await?;
    if dry {
        return Err(dry_run_ok());
    }
    let secret = token
        .derive_ecdh(key_uuid(&k)?, point.to_vec(), curve.field_len as u64)
        .await
        .map_err(|e| match e {
            HsmError::Pkcs11 {
                op: HsmOp::Derive, ..
            } => kms_err!(
                Validation,
                "The public key is not a valid point on the curve of key spec {}.",
                k.kind.spec.as_str()
            ),
            other => hsm_err(&k, other),
        })?;
    Ok(DeriveSharedSecretResponse {
        key_agreement_algorithm: Some(req.key_agreement_algorithm),
        key_id: Some(k.arn.to_string()),
        key_origin: OriginType::parse(k.origin.as_str()),
        shared_secret: Some(secret.into()),
        ..Default::default()
    })
}

/// Refuse anything but a symmetric encryption key for `op` (data keys, data key pairs).
pub(super) fn require_symmetric_encryption(k: &Key, op: &str) -> Result<(), KmsError> {
    if k.kind.usage != KeyUsage::EncryptDecrypt {
        return Err(wrong_usage(k, op));
    }
    if k.kind.spec != KeySpec::SymmetricDefault {
        // AWS's wording for this refusal was not found; this is ours.
        return Err(kms_err!(
            InvalidKeyUsage,
            "{} key spec is {} which is not valid for {op}: use a symmetric encryption KMS key.",
            k.arn,
            k.kind.spec.as_str()
        ));
    }
    Ok(())
}

/// The members `GenerateDataKeyPair` and `GenerateDataKeyPairWithoutPlaintext` share.
struct DataKeyPairOrder {
    key_id: String,
    spec: DataKeyPairSpec,
    context: BTreeMap<String, String>,
    recipient: bool,
    dry: bool,
}

/// A data key pair made on the token, its private key sealed under the KMS key.
struct DataKeyPair {
    key_arn: String,
    material: Option<String>,
    private_ciphertext: Vec<u8>,
    private_der: Vec<u8>,
    public_der: Vec<u8>,
}

/// The key spec and pair kind of a data key pair spec cks-sim generates.
fn pair_kind_of(pair_spec: DataKeyPairSpec) -> Result<(KeySpec, PairKind), KmsError> {
    let name = pair_spec.as_str();
    KeySpec::parse(name)
        .and_then(|s| s.pair_kind().map(|kind| (s, kind)))
        .ok_or_else(|| {
            kms_err!(
                UnsupportedOperation,
                "cks-sim does not generate {name} data key pairs."
            )
        })
}

/// Refuse a data key pair spec `token` (behind key `k`) does not generate.
async fn require_pair_offered(k: &Key, token: &Arc<Token>, spec: KeySpec) -> Result<(), KmsError> {
    let offers = token
        .offers(all_curves())
        .await
        .map_err(|e| hsm_err(k, e))?;
    let generated = spec.rsa_bits().map_or_else(
        || spec.curve().is_some_and(|c| offers.curve(c.oid_der)),
        |bits| offers.rsa(bits),
    );
    if !generated {
        return Err(kms_err!(
            UnsupportedOperation,
            "The PKCS#11 token behind cks-sim ({}) does not generate {} key pairs: see GET /_sim/key-specs for what it offers.",
            token.label(),
            spec.as_str()
        ));
    }
    Ok(())
}

/// The pair is made on the token as extractable session objects and read out; the private
/// key (PKCS #8) is encrypted under the KMS key like any data key. `op` names the operation.
async fn data_key_pair(
    app: &Arc<App>,
    order: DataKeyPairOrder,
    op: &str,
) -> Result<DataKeyPair, KmsError> {
    refuse_recipient(order.recipient)?;
    let k = resolve_key(app, &app.world(), &order.key_id, KeyRef::AnyName)?;
    if k.store_id.is_some() {
        return Err(kms_err!(
            UnsupportedOperation,
            "{op} is not supported for KMS keys in a custom key store ({}).",
            k.arn
        ));
    }
    require_symmetric_encryption(&k, op)?;
    let (spec, kind) = pair_kind_of(order.spec)?;
    let token = usable(app, &k).await?;
    require_pair_offered(&k, &token, spec).await?;
    if order.dry {
        return Err(dry_run_ok());
    }
    let parts = token
        .extractable_pair(kind)
        .await
        .map_err(|e| hsm_err(&k, e))?;
    let (private_der, public_der) = encode_pair(spec, &parts)
        .ok_or_else(|| KmsError::internal("the token gave EC parts for a non-EC spec"))?;
    let (private_ciphertext, material) =
        seal_material(app, &k, &order.context, private_der.clone()).await?;
    Ok(DataKeyPair {
        key_arn: k.arn.to_string(),
        material,
        private_ciphertext,
        private_der,
        public_der,
    })
}

/// `GenerateDataKeyPair`.
pub async fn generate_data_key_pair(
    app: &Arc<App>,
    req: GenerateDataKeyPairRequest,
) -> Result<GenerateDataKeyPairResponse, KmsError> {
    let order = DataKeyPairOrder {
        key_id: req.key_id,
        spec: req.key_pair_spec,
        context: req.encryption_context.unwrap_or_default(),
        recipient: req.recipient.is_some(),
        dry: req.dry_run.unwrap_or(false),
    };
    let pair = data_key_pair(app, order, "GenerateDataKeyPair").await?;
    Ok(GenerateDataKeyPairResponse {
        key_id: Some(pair.key_arn),
        key_material_id: pair.material,
        key_pair_spec: Some(req.key_pair_spec),
        private_key_ciphertext_blob: Some(pair.private_ciphertext.into()),
        private_key_plaintext: Some(pair.private_der.into()),
        public_key: Some(pair.public_der.into()),
        ..Default::default()
    })
}

/// `GenerateDataKeyPairWithoutPlaintext`.
pub async fn generate_data_key_pair_without_plaintext(
    app: &Arc<App>,
    req: GenerateDataKeyPairWithoutPlaintextRequest,
) -> Result<GenerateDataKeyPairWithoutPlaintextResponse, KmsError> {
    let order = DataKeyPairOrder {
        key_id: req.key_id,
        spec: req.key_pair_spec,
        context: req.encryption_context.unwrap_or_default(),
        recipient: false,
        dry: req.dry_run.unwrap_or(false),
    };
    let pair = data_key_pair(app, order, "GenerateDataKeyPairWithoutPlaintext").await?;
    Ok(GenerateDataKeyPairWithoutPlaintextResponse {
        key_id: Some(pair.key_arn),
        key_material_id: pair.material,
        key_pair_spec: Some(req.key_pair_spec),
        private_key_ciphertext_blob: Some(pair.private_ciphertext.into()),
        public_key: Some(pair.public_der.into()),
    })
}

/// (PKCS #8 private key, SubjectPublicKeyInfo) of a data key pair; None for EC parts of a
/// spec without a curve.
fn encode_pair(spec: KeySpec, parts: &PrivateParts) -> Option<(Vec<u8>, Vec<u8>)> {
    match (parts, spec.curve()) {
        (PrivateParts::Rsa { components }, _) => Some((
            der::rsa_pkcs8(components),
            der::rsa_spki(&components[0], &components[1]),
        )),
        (PrivateParts::Ec { scalar, point }, Some(c)) => {
            let point = der::ec_point_raw(point, c.field_len);
            Some((
                der::ec_pkcs8(c.oid_der, c.field_len, scalar, &point),
                der::ec_spki(c.oid_der, &point),
            ))
        }
        (PrivateParts::Ec { .. }, None) => None,
    }
}

/// The OAEP hash of an RSA encryption algorithm on an asymmetric key, checked as KMS checks
/// it: no algorithm means `SYMMETRIC_DEFAULT`, which AWS refuses in the words recorded for it
/// (`Algorithm SYMMETRIC_DEFAULT is incompatible with key spec RSA_4096.`); other algorithms
/// take the same words.
fn oaep_hash(k: &Key, algorithm: Option<EncryptionAlgorithmSpec>) -> Result<Hash, KmsError> {
    match algorithm {
        Some(EncryptionAlgorithmSpec::RsaesOaepSha1) => Ok(Hash::Sha1),
        Some(EncryptionAlgorithmSpec::RsaesOaepSha256) => Ok(Hash::Sha256),
        other => Err(KmsError::incompatible_algorithm(
            other.map_or("SYMMETRIC_DEFAULT", EncryptionAlgorithmSpec::as_str),
            k.kind.spec.as_str(),
        )),
    }
}

fn no_context(ctx: &BTreeMap<String, String>) -> Result<(), KmsError> {
    if ctx.is_empty() {
        return Ok(());
    }
    // AWS's wording for this refusal was not found; this is ours.
    Err(kms_err!(
        Validation,
        "An encryption context is not supported with asymmetric KMS keys."
    ))
}

fn algorithm_of(hash: Hash) -> EncryptionAlgorithmSpec {
    if hash == Hash::Sha1 {
        EncryptionAlgorithmSpec::RsaesOaepSha1
    } else {
        EncryptionAlgorithmSpec::RsaesOaepSha256
    }
}

/// An RSA encryption request, checked.
pub(super) struct RsaRequest<'a> {
    /// The key.
    pub key: &'a Key,
    /// The algorithm member's value, if any.
    pub algorithm: Option<EncryptionAlgorithmSpec>,
    /// The encryption context (must be empty).
    pub context: &'a BTreeMap<String, String>,
    /// Whether this is a dry run.
    pub dry: bool,
}

/// RSAES-OAEP encryption with the public half on the token. Returns the ciphertext and the
/// algorithm's name.
pub(super) async fn rsa_encrypt(
    app: &Arc<App>,
    r: RsaRequest<'_>,
    plaintext: Vec<u8>,
) -> Result<(Vec<u8>, EncryptionAlgorithmSpec), KmsError> {
    let k = r.key;
    if k.kind.usage != KeyUsage::EncryptDecrypt {
        return Err(wrong_usage(k, "Encrypt"));
    }
    let hash = oaep_hash(k, r.algorithm)?;
    no_context(r.context)?;
    let max = k.kind.spec.oaep_max_plaintext(hash).unwrap_or(0);
    if plaintext.len() > max {
        return Err(KmsError::plaintext_too_large(
            algorithm_of(hash).as_str(),
            k.kind.spec.as_str(),
            max,
        ));
    }
    let token = usable(app, k).await?;
    if r.dry {
        return Err(dry_run_ok());
    }
    let id = key_uuid(k)?;
    let cipher = rsa_cipher(&token, id, hash)
        .await
        .map_err(|e| hsm_err(k, e))?;
    let (cipher, block) = if cipher != RsaCipher::Raw {
        (cipher, plaintext)
    } else {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(KmsError::internal)?;
        let k_len = modulus_len(k);
        let em = oaep::encode(&plaintext, k_len, &seed)
            .ok_or_else(|| KmsError::internal("OAEP encoding refused a checked plaintext"))?;
        (RsaCipher::Raw, em)
    };
    let ct = token
        .public_encrypt(id, cipher, block)
        .await
        .map_err(|e| hsm_err(k, e))?;
    Ok((ct, algorithm_of(hash)))
}

/// How RSAES-OAEP with `hash` runs on `token` for key `id`: SHA-1 as the token's OAEP; SHA-256
/// as the token's OAEP where it takes SHA-256 parameters, else as raw RSA with the padding
/// done here (SoftHSM2 2.6 lists OAEP but refuses its SHA-256 parameters).
async fn rsa_cipher(token: &Arc<Token>, id: ObjectId, hash: Hash) -> Result<RsaCipher, HsmError> {
    if hash == Hash::Sha1 {
        return Ok(RsaCipher::Oaep(Hash::Sha1));
    }
    let offers = token.offers(all_curves()).await?;
    let native = token.oaep_sha256_native(&offers, id).await?;
    Ok(if native {
        RsaCipher::Oaep(hash)
    } else {
        RsaCipher::Raw
    })
}

/// Refuse a key kind the token does not serve, naming what it lacks.
pub async fn require_offered(token: &Arc<Token>, kind: &KeyKind) -> Result<(), KmsError> {
    if kind.spec == KeySpec::SymmetricDefault {
        return Ok(());
    }
    let offers = token
        .offers(all_curves())
        .await
        .map_err(KmsError::internal)?;
    if offered(kind.spec, kind.usage, &offers) {
        return Ok(());
    }
    Err(kms_err!(
        UnsupportedOperation,
        "The PKCS#11 token behind cks-sim ({}) does not offer {} keys with KeyUsage {}: see GET /_sim/key-specs for what it offers.",
        token.label(),
        kind.spec.as_str(),
        kind.usage.as_str()
    ))
}

/// What the internal token offers (`GET /_sim/key-specs`): its label, and every key spec and
/// usage it serves.
pub async fn offered_key_specs(app: &Arc<App>) -> Result<(String, Vec<KeyKindName>), KmsError> {
    let token = app.internal_token().await.map_err(KmsError::internal)?;
    let offers = token
        .offers(all_curves())
        .await
        .map_err(KmsError::internal)?;
    let kinds = offered_kinds(&offers)
        .into_iter()
        .map(|(s, u)| (s.as_str(), u.as_str()))
        .collect();
    Ok((token.label().to_string(), kinds))
}

/// A key spec and a usage, by their wire names.
pub type KeyKindName = (&'static str, &'static str);

fn modulus_len(k: &Key) -> usize {
    k.kind.spec.rsa_bits().unwrap_or(0) as usize / 8
}

/// RSAES-OAEP decryption with the private half on the token. Returns the plaintext and the
/// algorithm's name; any ciphertext that does not decrypt is `InvalidCiphertextException`.
pub(super) async fn rsa_decrypt(
    app: &Arc<App>,
    r: RsaRequest<'_>,
    ciphertext: Vec<u8>,
) -> Result<(Vec<u8>, EncryptionAlgorithmSpec), KmsError> {
    let k = r.key;
    if k.kind.usage != KeyUsage::EncryptDecrypt {
        return Err(wrong_usage(k, "Decrypt"));
    }
    let hash = oaep_hash(k, r.algorithm)?;
    no_context(r.context)?;
    let k_len = modulus_len(k);
    if ciphertext.len() != k_len {
        return Err(invalid_ciphertext());
    }
    let token = usable(app, k).await?;
    if r.dry {
        return Err(dry_run_ok());
    }
    let id = key_uuid(k)?;
    let cipher = rsa_cipher(&token, id, hash)
        .await
        .map_err(|e| hsm_err(k, e))?;
    let out = token
        .private_decrypt(id, cipher, ciphertext)
        .await
        .map_err(|e| match e {
            HsmError::CiphertextRejected { .. } => invalid_ciphertext(),
            other => hsm_err(k, other),
        })?;
    let plaintext = if cipher != RsaCipher::Raw {
        out
    } else {
        // Raw RSA output may come without its leading zero bytes.
        let mut em = vec![0u8; k_len.saturating_sub(out.len())];
        em.extend(out);
        oaep::decode(&em, k_len).ok_or_else(invalid_ciphertext)?
    };
    Ok((plaintext, algorithm_of(hash)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_key_combinations_follow_the_spec_table() {
        assert!(checked_kind("RSA_2048", Some("SIGN_VERIFY"), false).is_ok());
        assert_eq!(
            checked_kind("RSA_2048", None, false).unwrap_err(),
            KmsError::key_usage_required()
        );
        assert!(checked_kind("ECC_NIST_P384", Some("KEY_AGREEMENT"), false).is_ok());
        assert!(checked_kind("HMAC_256", Some("GENERATE_VERIFY_MAC"), false).is_ok());
        for (spec, usage) in [
            ("ECC_NIST_P256", None),
            ("ECC_SECG_P256K1", Some("KEY_AGREEMENT")),
            ("HMAC_256", None),
            ("SYMMETRIC_DEFAULT", Some("SIGN_VERIFY")),
            ("RSA_4096", Some("KEY_AGREEMENT")),
        ] {
            let e = checked_kind(spec, usage, false).unwrap_err();
            assert_eq!(e.type_name(), "ValidationException", "{spec} {usage:?}");
        }
        let e = checked_kind("RSA_2048", Some("SIGN_VERIFY"), true).unwrap_err();
        assert_eq!(e.type_name(), "UnsupportedOperationException");
    }
}
