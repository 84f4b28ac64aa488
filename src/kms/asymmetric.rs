//! Asymmetric and HMAC KMS keys: which spec and usage `CreateKey` accepts, generating their
//! material on the token, `GetPublicKey`, RSA `Encrypt`/`Decrypt` (RSAES-OAEP), ECDH
//! `DeriveSharedSecret` and `GenerateDataKeyPair(WithoutPlaintext)`.
//!
//! RSAES_OAEP_SHA_1 runs as `CKM_RSA_PKCS_OAEP` on the token; RSAES_OAEP_SHA_256 as raw RSA
//! (`CKM_RSA_X_509`) on the token with the OAEP padding done in [`super::oaep`], since
//! SoftHSM2 2.6 refuses OAEP parameters with SHA-256. Either way the private key never leaves
//! the token.

use super::crypto::{
    b64, context, dry_run, dry_run_ok, hsm_err, invalid_ciphertext, key_uuid, seal_material, usable,
};
use super::error::KmsError;
use super::model::{Key, KeyKind};
use super::signing::{enum_value, key_with_usage, wrong_usage};
use super::spec::{KeySpec, KeyUsage, algorithm_members, all_curves, offered, offered_kinds};
use super::{KeyRef, der, input_err, oaep, resolve_key};
use crate::app::App;
use crate::hsm::asymmetric::{Hash, PairUse, PrivateParts, PublicParts, RsaCipher};
use crate::hsm::{HsmError, HsmOp, ObjectId, Token};
use crate::kms_err;
use crate::protocol::input::Input;
use serde_json::{Map, Value, json};
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
    if usage.is_none() && !key_spec.usages().contains(&KeyUsage::EncryptDecrypt) {
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

fn required<T>(v: Option<T>, m: &str) -> Result<T, KmsError> {
    v.ok_or_else(|| KmsError::missing(m))
}

fn no_recipient(input: &Input) -> Result<(), KmsError> {
    if input.has("Recipient") {
        return Err(kms_err!(
            UnsupportedOperation,
            "cks-sim does not simulate Nitro Enclaves attestation (Recipient)."
        ));
    }
    Ok(())
}

/// `GetPublicKey`.
pub async fn get_public_key(app: &Arc<App>, input: &Input) -> Result<Value, KmsError> {
    let raw = required(input.opt_str("KeyId").map_err(input_err)?, "KeyId")?;
    let k = resolve_key(app, &app.world(), raw, KeyRef::AnyName)?;
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
    let mut out = Map::new();
    out.insert("KeyId".into(), json!(k.arn));
    out.insert("PublicKey".into(), json!(public_key));
    out.insert("CustomerMasterKeySpec".into(), json!(k.kind.spec.as_str()));
    out.insert("KeySpec".into(), json!(k.kind.spec.as_str()));
    out.insert("KeyUsage".into(), json!(k.kind.usage.as_str()));
    for (member, algorithms) in algorithm_members(k.kind.spec, k.kind.usage) {
        out.insert(member.into(), json!(algorithms));
    }
    Ok(Value::Object(out))
}

/// `DeriveSharedSecret` (ECDH on the token, raw shared x-coordinate).
pub async fn derive_shared_secret(app: &Arc<App>, input: &Input) -> Result<Value, KmsError> {
    let raw = required(input.opt_str("KeyId").map_err(input_err)?, "KeyId")?;
    required(
        enum_value(input, "KeyAgreementAlgorithm", &["ECDH"])?,
        "KeyAgreementAlgorithm",
    )?;
    let peer = required(
        input.opt_blob("PublicKey", 1, 8192).map_err(input_err)?,
        "PublicKey",
    )?;
    no_recipient(input)?;
    let dry = dry_run(input)?;
    let k = key_with_usage(app, raw, KeyUsage::KeyAgreement, "DeriveSharedSecret")?;
    let curve = k
        .kind
        .spec
        .curve()
        .ok_or_else(|| wrong_usage(&k, "DeriveSharedSecret"))?;
    // AWS's wording for these refusals was not found; these are ours.
    let (peer_curve, point) = der::ec_spki_parts(&peer).ok_or_else(|| {
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
    Ok(json!({
        "KeyId": k.arn,
        "SharedSecret": b64(&secret),
        "KeyAgreementAlgorithm": "ECDH",
        "KeyOrigin": k.origin.as_str(),
    }))
}

const DATA_KEY_PAIR_SPECS: &[&str] = &[
    "RSA_2048",
    "RSA_3072",
    "RSA_4096",
    "ECC_NIST_P256",
    "ECC_NIST_P384",
    "ECC_NIST_P521",
    "ECC_SECG_P256K1",
    "SM2",
    "ECC_NIST_EDWARDS25519",
    "ML_KEM_512",
    "ML_KEM_768",
    "ML_KEM_1024",
];

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

/// `GenerateDataKeyPair` and `GenerateDataKeyPairWithoutPlaintext`: the pair is made on the
/// token as extractable session objects and read out; the private key (PKCS #8) is encrypted
/// under the KMS key like any data key.
pub async fn generate_data_key_pair(
    app: &Arc<App>,
    input: &Input,
    with_plaintext: bool,
) -> Result<Value, KmsError> {
    let op = if with_plaintext {
        "GenerateDataKeyPair"
    } else {
        "GenerateDataKeyPairWithoutPlaintext"
    };
    let raw = required(input.opt_str("KeyId").map_err(input_err)?, "KeyId")?;
    let pair_spec = required(
        enum_value(input, "KeyPairSpec", DATA_KEY_PAIR_SPECS)?,
        "KeyPairSpec",
    )?;
    let ctx = context(input, "EncryptionContext")?;
    no_recipient(input)?;
    let dry = dry_run(input)?;
    let k = resolve_key(app, &app.world(), raw, KeyRef::AnyName)?;
    if k.store_id.is_some() {
        return Err(kms_err!(
            UnsupportedOperation,
            "{op} is not supported for KMS keys in a custom key store ({}).",
            k.arn
        ));
    }
    require_symmetric_encryption(&k, op)?;
    let Some((spec, kind)) =
        KeySpec::parse(pair_spec).and_then(|s| s.pair_kind().map(|kind| (s, kind)))
    else {
        return Err(kms_err!(
            UnsupportedOperation,
            "cks-sim does not generate {pair_spec} data key pairs."
        ));
    };
    let token = usable(app, &k).await?;
    let offers = token
        .offers(all_curves())
        .await
        .map_err(|e| hsm_err(&k, e))?;
    let generated = spec.rsa_bits().map_or_else(
        || spec.curve().is_some_and(|c| offers.curve(c.oid_der)),
        |bits| offers.rsa(bits),
    );
    if !generated {
        return Err(kms_err!(
            UnsupportedOperation,
            "The PKCS#11 token behind cks-sim ({}) does not generate {pair_spec} key pairs: see GET /_sim/key-specs for what it offers.",
            token.label()
        ));
    }
    if dry {
        return Err(dry_run_ok());
    }
    let parts = token
        .extractable_pair(kind)
        .await
        .map_err(|e| hsm_err(&k, e))?;
    let (private_der, public_der) = encode_pair(spec, &parts)
        .ok_or_else(|| KmsError::internal("the token gave EC parts for a non-EC spec"))?;
    let (blob, material) = seal_material(app, &k, &ctx, private_der.clone()).await?;
    let mut out = json!({
        "KeyId": k.arn,
        "KeyMaterialId": material,
        "KeyPairSpec": pair_spec,
        "PrivateKeyCiphertextBlob": b64(&blob),
        "PublicKey": b64(&public_der),
    });
    if with_plaintext {
        out["PrivateKeyPlaintext"] = json!(b64(&private_der));
    }
    Ok(out)
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
fn oaep_hash(k: &Key, algorithm: Option<&str>) -> Result<Hash, KmsError> {
    match algorithm {
        Some("RSAES_OAEP_SHA_1") => Ok(Hash::Sha1),
        Some("RSAES_OAEP_SHA_256") => Ok(Hash::Sha256),
        other => Err(KmsError::incompatible_algorithm(
            other.unwrap_or("SYMMETRIC_DEFAULT"),
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

fn algorithm_name(hash: Hash) -> &'static str {
    if hash == Hash::Sha1 {
        "RSAES_OAEP_SHA_1"
    } else {
        "RSAES_OAEP_SHA_256"
    }
}

/// An RSA encryption request, checked.
pub(super) struct RsaRequest<'a> {
    /// The key.
    pub key: &'a Key,
    /// The algorithm member's value, if any.
    pub algorithm: Option<&'a str>,
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
) -> Result<(Vec<u8>, &'static str), KmsError> {
    let k = r.key;
    if k.kind.usage != KeyUsage::EncryptDecrypt {
        return Err(wrong_usage(k, "Encrypt"));
    }
    let hash = oaep_hash(k, r.algorithm)?;
    no_context(r.context)?;
    let max = k.kind.spec.oaep_max_plaintext(hash).unwrap_or(0);
    if plaintext.len() > max {
        return Err(KmsError::plaintext_too_large(
            algorithm_name(hash),
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
    Ok((ct, algorithm_name(hash)))
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

/// What the internal token offers: every key spec and usage it serves (`GET /_sim/key-specs`).
pub async fn offered_key_specs(app: &Arc<App>) -> Result<Value, KmsError> {
    let token = app.internal_token().await.map_err(KmsError::internal)?;
    let offers = token
        .offers(all_curves())
        .await
        .map_err(KmsError::internal)?;
    let kinds: Vec<Value> = offered_kinds(&offers)
        .into_iter()
        .map(|(s, u)| json!({"KeySpec": s.as_str(), "KeyUsage": u.as_str()}))
        .collect();
    Ok(json!({ "token": token.label(), "key_specs": kinds }))
}

fn modulus_len(k: &Key) -> usize {
    k.kind.spec.rsa_bits().unwrap_or(0) as usize / 8
}

/// RSAES-OAEP decryption with the private half on the token. Returns the plaintext and the
/// algorithm's name; any ciphertext that does not decrypt is `InvalidCiphertextException`.
pub(super) async fn rsa_decrypt(
    app: &Arc<App>,
    r: RsaRequest<'_>,
    ciphertext: Vec<u8>,
) -> Result<(Vec<u8>, &'static str), KmsError> {
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
    Ok((plaintext, algorithm_name(hash)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_key_combinations_follow_the_spec_table() {
        assert!(checked_kind("RSA_2048", Some("SIGN_VERIFY"), false).is_ok());
        assert!(checked_kind("RSA_2048", None, false).is_ok());
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
