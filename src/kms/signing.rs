//! `Sign`, `Verify`, `GenerateMac` and `VerifyMac` with keys whose private half or secret is on
//! the token. Messages are hashed here (`MessageType` `RAW`) or taken as digests (`DIGEST`);
//! the token signs the digest (`CKM_RSA_PKCS` over a DigestInfo, `CKM_RSA_PKCS_PSS`,
//! `CKM_ECDSA`), so both message types use the same token mechanisms. ECDSA signatures go out
//! DER-encoded, as KMS returns them.

use super::crypto::{dry_run_ok, hsm_err, key_uuid, usable};
use super::error::KmsError;
use super::model::Key;
use super::spec::KeyUsage;
use super::{KeyRef, resolve_key};
use crate::api::kms::{
    GenerateMacRequest, GenerateMacResponse, MacAlgorithmSpec, MessageType, SignRequest,
    SignResponse, SigningAlgorithmSpec, VerifyMacRequest, VerifyMacResponse, VerifyRequest,
    VerifyResponse,
};
use crate::app::App;
use crate::hsm::HsmError;
use crate::hsm::asymmetric::{Hash, SignMech};
use crate::kms_err;
use sha2::Digest;
use std::sync::Arc;

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

/// The members `Sign` and `Verify` share.
struct SignMembers {
    key_id: String,
    message: Vec<u8>,
    message_type: Option<MessageType>,
    algorithm: SigningAlgorithmSpec,
    dry: bool,
}

/// The parsed members common to `Sign` and `Verify`, after every check but the key state.
struct CheckedSign {
    key: Arc<Key>,
    algorithm: SigningAlgorithmSpec,
    to_sign: ToSign,
    dry: bool,
}

/// The digest `message` stands for under `message_type`, for `algorithm` hashing with `hash`.
fn message_digest(
    message: Vec<u8>,
    message_type: Option<MessageType>,
    algorithm: SigningAlgorithmSpec,
    hash: Hash,
) -> Result<Vec<u8>, KmsError> {
    match message_type.unwrap_or(MessageType::Raw) {
        MessageType::Raw => digest(hash, &message)
            .ok_or_else(|| KmsError::internal("a signing algorithm with SHA-1")),
        MessageType::Digest if message.len() == hash.output_len() => Ok(message),
        // AWS's words (recorded responses).
        MessageType::Digest => Err(kms_err!(
            Validation,
            "Digest is invalid length for algorithm {}.",
            algorithm.as_str()
        )),
        MessageType::ExternalMu => Err(kms_err!(
            Validation,
            "MessageType EXTERNAL_MU is valid only with the ML_DSA_SHAKE_256 signing algorithm."
        )),
    }
}

/// Resolve the key of `Sign`/`Verify` (`op`), check the algorithm against its key spec and
/// prepare what the token signs or verifies.
fn sign_request(app: &Arc<App>, m: SignMembers, op: &str) -> Result<CheckedSign, KmsError> {
    let key = key_with_usage(app, &m.key_id, KeyUsage::SignVerify, op)?;
    let spec = key.kind.spec;
    let algorithm = m.algorithm.as_str();
    let Some((scheme, hash)) =
        scheme_of(algorithm).filter(|_| spec.signing_algorithms().contains(&algorithm))
    else {
        return Err(KmsError::incompatible_algorithm(algorithm, spec.as_str()));
    };
    let digest = message_digest(m.message, m.message_type, m.algorithm, hash)?;
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
    Ok(CheckedSign {
        key,
        algorithm: m.algorithm,
        to_sign,
        dry: m.dry,
    })
}

/// `Sign`.
pub async fn sign(app: &Arc<App>, req: SignRequest) -> Result<SignResponse, KmsError> {
    let members = SignMembers {
        key_id: req.key_id,
        message: req.message.0,
        message_type: req.message_type,
        algorithm: req.signing_algorithm,
        dry: req.dry_run.unwrap_or(false),
    };
    let r = sign_request(app, members, "Sign")?;
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
    Ok(SignResponse {
        key_id: Some(r.key.arn.to_string()),
        signature: Some(signature.into()),
        signing_algorithm: Some(r.algorithm),
    })
}

fn invalid_signature() -> KmsError {
    KmsError::invalid_signature()
}

/// `Verify`: a signature that does not verify is `KMSInvalidSignatureException`.
pub async fn verify(app: &Arc<App>, req: VerifyRequest) -> Result<VerifyResponse, KmsError> {
    let members = SignMembers {
        key_id: req.key_id,
        message: req.message.0,
        message_type: req.message_type,
        algorithm: req.signing_algorithm,
        dry: req.dry_run.unwrap_or(false),
    };
    let r = sign_request(app, members, "Verify")?;
    let token = usable(app, &r.key).await?;
    if r.dry {
        return Err(dry_run_ok());
    }
    let signature = match r.to_sign.ecdsa_field {
        Some(field) => super::der::ecdsa_from_der(req.signature.bytes(), field)
            .ok_or_else(invalid_signature)?,
        None => req.signature.0,
    };
    let id = key_uuid(&r.key)?;
    match token
        .verify(id, r.to_sign.mech, r.to_sign.data, signature)
        .await
    {
        Ok(()) => Ok(VerifyResponse {
            key_id: Some(r.key.arn.to_string()),
            signature_valid: Some(true),
            signing_algorithm: Some(r.algorithm),
        }),
        Err(HsmError::SignatureRejected { .. }) => Err(invalid_signature()),
        Err(e) => Err(hsm_err(&r.key, e)),
    }
}

/// The key and hash of `GenerateMac`/`VerifyMac`, after every check but the key state.
struct CheckedMac {
    key: Arc<Key>,
    hash: Hash,
    dry: bool,
}

/// Resolve the key of `GenerateMac`/`VerifyMac` (`op`) and check `algorithm` against it.
fn mac_request(
    app: &Arc<App>,
    key_id: &str,
    algorithm: MacAlgorithmSpec,
    dry: Option<bool>,
    op: &str,
) -> Result<CheckedMac, KmsError> {
    let key = key_with_usage(app, key_id, KeyUsage::GenerateVerifyMac, op)?;
    let spec = key.kind.spec;
    let hash = match spec.hmac_hash() {
        Some(h) if spec.mac_algorithm() == Some(algorithm.as_str()) => h,
        _ => {
            return Err(KmsError::incompatible_algorithm(
                algorithm.as_str(),
                spec.as_str(),
            ));
        }
    };
    Ok(CheckedMac {
        key,
        hash,
        dry: dry.unwrap_or(false),
    })
}

/// `GenerateMac`.
pub async fn generate_mac(
    app: &Arc<App>,
    req: GenerateMacRequest,
) -> Result<GenerateMacResponse, KmsError> {
    let r = mac_request(
        app,
        &req.key_id,
        req.mac_algorithm,
        req.dry_run,
        "GenerateMac",
    )?;
    let token = usable(app, &r.key).await?;
    if r.dry {
        return Err(dry_run_ok());
    }
    let mac = token
        .sign(key_uuid(&r.key)?, SignMech::Hmac(r.hash), req.message.0)
        .await
        .map_err(|e| hsm_err(&r.key, e))?;
    Ok(GenerateMacResponse {
        key_id: Some(r.key.arn.to_string()),
        mac: Some(mac.into()),
        mac_algorithm: Some(req.mac_algorithm),
    })
}

/// `VerifyMac`: a MAC that does not verify is `KMSInvalidMacException`.
pub async fn verify_mac(
    app: &Arc<App>,
    req: VerifyMacRequest,
) -> Result<VerifyMacResponse, KmsError> {
    let r = mac_request(
        app,
        &req.key_id,
        req.mac_algorithm,
        req.dry_run,
        "VerifyMac",
    )?;
    let token = usable(app, &r.key).await?;
    if r.dry {
        return Err(dry_run_ok());
    }
    let mech = SignMech::Hmac(r.hash);
    match token
        .verify(key_uuid(&r.key)?, mech, req.message.0, req.mac.0)
        .await
    {
        Ok(()) => Ok(VerifyMacResponse {
            key_id: Some(r.key.arn.to_string()),
            mac_algorithm: Some(req.mac_algorithm),
            mac_valid: Some(true),
        }),
        Err(HsmError::SignatureRejected { .. }) => Err(KmsError::invalid_mac()),
        Err(e) => Err(hsm_err(&r.key, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_must_have_the_length_of_the_algorithms_hash() {
        let alg = SigningAlgorithmSpec::EcdsaSha256;
        let d = vec![1u8; 32];
        let taken = message_digest(d.clone(), Some(MessageType::Digest), alg, Hash::Sha256);
        assert_eq!(taken.unwrap(), d);
        let short = message_digest(vec![1; 31], Some(MessageType::Digest), alg, Hash::Sha256);
        assert_eq!(
            short.unwrap_err().message,
            "Digest is invalid length for algorithm ECDSA_SHA_256."
        );
    }

    #[test]
    fn a_raw_message_is_hashed_and_external_mu_is_refused() {
        let alg = SigningAlgorithmSpec::RsassaPssSha384;
        let raw = message_digest(b"m".to_vec(), None, alg, Hash::Sha384).unwrap();
        assert_eq!(raw, sha2::Sha384::digest(b"m").to_vec());
        let mu = message_digest(
            b"m".to_vec(),
            Some(MessageType::ExternalMu),
            alg,
            Hash::Sha384,
        );
        assert_eq!(mu.unwrap_err().type_name(), "ValidationException");
    }

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
