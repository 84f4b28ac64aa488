//! `Sign`, `Verify`, `GenerateMac` and `VerifyMac` with keys whose private half or secret is on
//! the token. Messages are hashed here (`MessageType` `RAW`) or taken as digests (`DIGEST`);
//! the token signs the digest (`CKM_RSA_PKCS` over a DigestInfo, `CKM_RSA_PKCS_PSS`,
//! `CKM_ECDSA`), so both message types use the same token mechanisms. ECDSA signatures go out
//! DER-encoded, as KMS returns them.

use super::crypto::{b64, dry_run, dry_run_ok, hsm_err, key_uuid, usable};
use super::error::KmsError;
use super::model::Key;
use super::spec::KeyUsage;
use super::{KeyRef, input_err, resolve_key};
use crate::app::App;
use crate::hsm::HsmError;
use crate::hsm::asymmetric::{Hash, SignMech};
use crate::kms_err;
use crate::protocol::input::Input;
use serde_json::{Value, json};
use sha2::Digest;
use std::sync::Arc;

const SIGNING_ALGORITHMS: &[&str] = &[
    "RSASSA_PSS_SHA_256",
    "RSASSA_PSS_SHA_384",
    "RSASSA_PSS_SHA_512",
    "RSASSA_PKCS1_V1_5_SHA_256",
    "RSASSA_PKCS1_V1_5_SHA_384",
    "RSASSA_PKCS1_V1_5_SHA_512",
    "ECDSA_SHA_256",
    "ECDSA_SHA_384",
    "ECDSA_SHA_512",
    "SM2DSA",
    "ML_DSA_SHAKE_256",
    "ED25519_SHA_512",
    "ED25519_PH_SHA_512",
];
const MAC_ALGORITHMS: &[&str] = &[
    "HMAC_SHA_224",
    "HMAC_SHA_256",
    "HMAC_SHA_384",
    "HMAC_SHA_512",
];
const MESSAGE_TYPES: &[&str] = &["RAW", "DIGEST", "EXTERNAL_MU"];

/// A required enum member, checked against the model's values.
pub(super) fn enum_value<'a>(
    input: &'a Input,
    m: &str,
    allowed: &[&str],
) -> Result<Option<&'a str>, KmsError> {
    match input.opt_str(m).map_err(input_err)? {
        Some(v) if !allowed.contains(&v) => Err(KmsError::validation(
            m,
            v,
            &format!(
                "Member must satisfy enum value set: [{}]",
                allowed.join(", ")
            ),
        )),
        other => Ok(other),
    }
}

fn required<T>(v: Option<T>, m: &str) -> Result<T, KmsError> {
    v.ok_or_else(|| KmsError::missing(m))
}

/// `InvalidKeyUsageException` for a key used against its key usage, in AWS's words (as KMS
/// answers `Encrypt` with a `SIGN_VERIFY` key).
pub(super) fn wrong_usage(k: &Key, op: &str) -> KmsError {
    kms_err!(
        InvalidKeyUsage,
        "{} key usage is {} which is not valid for {op}.",
        k.arn,
        k.kind.usage.as_str()
    )
}

/// Resolve `KeyId` and require `usage`.
pub(super) fn key_with_usage(
    app: &Arc<App>,
    raw: &str,
    usage: KeyUsage,
    op: &str,
) -> Result<Arc<Key>, KmsError> {
    let k = resolve_key(app, &app.world(), raw, KeyRef::AnyName)?;
    if k.kind.usage != usage {
        return Err(wrong_usage(&k, op));
    }
    Ok(k)
}

/// Hash `message` with a SHA-2 `hash` (no KMS signing algorithm uses SHA-1: None).
fn digest(hash: Hash, message: &[u8]) -> Option<Vec<u8>> {
    match hash {
        Hash::Sha1 => None,
        Hash::Sha224 => Some(sha2::Sha224::digest(message).to_vec()),
        Hash::Sha256 => Some(sha2::Sha256::digest(message).to_vec()),
        Hash::Sha384 => Some(sha2::Sha384::digest(message).to_vec()),
        Hash::Sha512 => Some(sha2::Sha512::digest(message).to_vec()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Pss,
    Pkcs1,
    Ecdsa,
}

fn scheme_of(algorithm: &str) -> Option<(Scheme, Hash)> {
    let hash = match algorithm.rsplit('_').next()? {
        "256" => Hash::Sha256,
        "384" => Hash::Sha384,
        "512" => Hash::Sha512,
        _ => return None,
    };
    let scheme = if algorithm.starts_with("RSASSA_PSS_") {
        Scheme::Pss
    } else if algorithm.starts_with("RSASSA_PKCS1_V1_5_") {
        Scheme::Pkcs1
    } else if algorithm.starts_with("ECDSA_") {
        Scheme::Ecdsa
    } else {
        return None;
    };
    Some((scheme, hash))
}

/// What the token is given to sign or verify, and with which mechanism.
struct ToSign {
    mech: SignMech,
    data: Vec<u8>,
    ecdsa_field: Option<usize>,
}

/// The parsed members common to `Sign` and `Verify`, after every check but the key state.
struct SignRequest {
    key: Arc<Key>,
    algorithm: String,
    to_sign: ToSign,
    dry: bool,
}

fn sign_request(app: &Arc<App>, input: &Input, op: &str) -> Result<SignRequest, KmsError> {
    let raw = required(input.opt_str("KeyId").map_err(input_err)?, "KeyId")?;
    let message = required(
        input.opt_blob("Message", 1, 4096).map_err(input_err)?,
        "Message",
    )?;
    let message_type = enum_value(input, "MessageType", MESSAGE_TYPES)?.unwrap_or("RAW");
    let algorithm = required(
        enum_value(input, "SigningAlgorithm", SIGNING_ALGORITHMS)?,
        "SigningAlgorithm",
    )?;
    let dry = dry_run(input)?;
    let key = key_with_usage(app, raw, KeyUsage::SignVerify, op)?;
    let spec = key.kind.spec;
    let Some((scheme, hash)) =
        scheme_of(algorithm).filter(|_| spec.signing_algorithms().contains(&algorithm))
    else {
        return Err(KmsError::incompatible_algorithm(algorithm, spec.as_str()));
    };
    let digest = match message_type {
        "RAW" => digest(hash, &message)
            .ok_or_else(|| KmsError::internal("a signing algorithm with SHA-1"))?,
        "DIGEST" if message.len() == hash.output_len() => message,
        "DIGEST" => {
            // AWS's words (recorded responses).
            return Err(kms_err!(
                Validation,
                "Digest is invalid length for algorithm {algorithm}."
            ));
        }
        _ => {
            return Err(kms_err!(
                Validation,
                "MessageType EXTERNAL_MU is valid only with the ML_DSA_SHAKE_256 signing algorithm."
            ));
        }
    };
    let to_sign = match scheme {
        Scheme::Pss => ToSign {
            mech: SignMech::RsaPss(hash),
            data: digest,
            ecdsa_field: None,
        },
        Scheme::Pkcs1 => ToSign {
            mech: SignMech::RsaPkcs1,
            data: [super::der::digest_info_prefix(hash.output_len()), &digest].concat(),
            ecdsa_field: None,
        },
        Scheme::Ecdsa => ToSign {
            mech: SignMech::Ecdsa,
            data: digest,
            ecdsa_field: spec.curve().map(|c| c.field_len),
        },
    };
    Ok(SignRequest {
        key,
        algorithm: algorithm.to_string(),
        to_sign,
        dry,
    })
}

/// `Sign`.
pub async fn sign(app: &Arc<App>, input: &Input) -> Result<Value, KmsError> {
    let r = sign_request(app, input, "Sign")?;
    let token = usable(app, &r.key).await?;
    if r.dry {
        return Err(dry_run_ok());
    }
    let id = key_uuid(&r.key)?;
    let raw = token
        .sign(id, r.to_sign.mech, r.to_sign.data)
        .await
        .map_err(|e| hsm_err(&r.key, e))?;
    let signature = match r.to_sign.ecdsa_field {
        Some(_) => super::der::ecdsa_to_der(&raw),
        None => raw,
    };
    Ok(json!({
        "KeyId": r.key.arn,
        "Signature": b64(&signature),
        "SigningAlgorithm": r.algorithm,
    }))
}

fn invalid_signature() -> KmsError {
    KmsError::invalid_signature()
}

/// `Verify`: a signature that does not verify is `KMSInvalidSignatureException`.
pub async fn verify(app: &Arc<App>, input: &Input) -> Result<Value, KmsError> {
    let r = sign_request(app, input, "Verify")?;
    let signature = required(
        input.opt_blob("Signature", 1, 6144).map_err(input_err)?,
        "Signature",
    )?;
    let token = usable(app, &r.key).await?;
    if r.dry {
        return Err(dry_run_ok());
    }
    let signature = match r.to_sign.ecdsa_field {
        Some(field) => {
            super::der::ecdsa_from_der(&signature, field).ok_or_else(invalid_signature)?
        }
        None => signature,
    };
    let id = key_uuid(&r.key)?;
    match token
        .verify(id, r.to_sign.mech, r.to_sign.data, signature)
        .await
    {
        Ok(()) => Ok(json!({
            "KeyId": r.key.arn,
            "SignatureValid": true,
            "SigningAlgorithm": r.algorithm,
        })),
        Err(HsmError::SignatureRejected { .. }) => Err(invalid_signature()),
        Err(e) => Err(hsm_err(&r.key, e)),
    }
}

struct MacRequest {
    key: Arc<Key>,
    algorithm: String,
    hash: Hash,
    message: Vec<u8>,
    dry: bool,
}

fn mac_request(app: &Arc<App>, input: &Input, op: &str) -> Result<MacRequest, KmsError> {
    let message = required(
        input.opt_blob("Message", 1, 4096).map_err(input_err)?,
        "Message",
    )?;
    let raw = required(input.opt_str("KeyId").map_err(input_err)?, "KeyId")?;
    let algorithm = required(
        enum_value(input, "MacAlgorithm", MAC_ALGORITHMS)?,
        "MacAlgorithm",
    )?;
    let dry = dry_run(input)?;
    let key = key_with_usage(app, raw, KeyUsage::GenerateVerifyMac, op)?;
    let spec = key.kind.spec;
    let hash = match spec.hmac_hash() {
        Some(h) if spec.mac_algorithm() == Some(algorithm) => h,
        _ => return Err(KmsError::incompatible_algorithm(algorithm, spec.as_str())),
    };
    Ok(MacRequest {
        key,
        algorithm: algorithm.to_string(),
        hash,
        message,
        dry,
    })
}

/// `GenerateMac`.
pub async fn generate_mac(app: &Arc<App>, input: &Input) -> Result<Value, KmsError> {
    let r = mac_request(app, input, "GenerateMac")?;
    let token = usable(app, &r.key).await?;
    if r.dry {
        return Err(dry_run_ok());
    }
    let mac = token
        .sign(key_uuid(&r.key)?, SignMech::Hmac(r.hash), r.message)
        .await
        .map_err(|e| hsm_err(&r.key, e))?;
    Ok(json!({ "KeyId": r.key.arn, "Mac": b64(&mac), "MacAlgorithm": r.algorithm }))
}

/// `VerifyMac`: a MAC that does not verify is `KMSInvalidMacException`.
pub async fn verify_mac(app: &Arc<App>, input: &Input) -> Result<Value, KmsError> {
    let r = mac_request(app, input, "VerifyMac")?;
    let mac = required(input.opt_blob("Mac", 1, 6144).map_err(input_err)?, "Mac")?;
    let token = usable(app, &r.key).await?;
    if r.dry {
        return Err(dry_run_ok());
    }
    match token
        .verify(key_uuid(&r.key)?, SignMech::Hmac(r.hash), r.message, mac)
        .await
    {
        Ok(()) => Ok(json!({
            "KeyId": r.key.arn,
            "MacValid": true,
            "MacAlgorithm": r.algorithm,
        })),
        Err(HsmError::SignatureRejected { .. }) => Err(KmsError::invalid_mac()),
        Err(e) => Err(hsm_err(&r.key, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_names_give_scheme_and_hash() {
        assert_eq!(
            scheme_of("RSASSA_PSS_SHA_384"),
            Some((Scheme::Pss, Hash::Sha384))
        );
        assert_eq!(
            scheme_of("RSASSA_PKCS1_V1_5_SHA_512"),
            Some((Scheme::Pkcs1, Hash::Sha512))
        );
        assert_eq!(
            scheme_of("ECDSA_SHA_256"),
            Some((Scheme::Ecdsa, Hash::Sha256))
        );
        assert_eq!(scheme_of("SM2DSA"), None);
        assert_eq!(scheme_of("ED25519_SHA_512"), None);
    }
}
