//! What a CreateGrant request may ask for, beyond the service model (which the decoder
//! checks): grant operations that fit the key, and encryption context constraints (KMS
//! Developer Guide, "Grants in AWS KMS" and the `GrantConstraints` reference).
//!
//! Where the messages below are not AWS's words, no recording of AWS's answer was found; the
//! exception is AWS's (the API reference names `ValidationException` for an operation the key
//! does not support).

use super::model::Constraints;
use crate::api::kms::{GrantConstraints, GrantOperation};
use crate::kms::error::KmsError;
use crate::kms::model::Key;
use crate::kms::spec::{KeySpec, KeyUsage};
use crate::kms_err;
use crate::protocol::input::shown;
use std::collections::BTreeMap;

/// Encryption context pairs a constraint may hold, and the longest value (the `GrantConstraints`
/// reference: "up to 8 encryption context pairs", values of at most 384 characters).
pub const MAX_CONSTRAINT_PAIRS: usize = 8;
/// See [`MAX_CONSTRAINT_PAIRS`].
pub const MAX_CONSTRAINT_VALUE: usize = 384;

/// The grant operations a key of this kind supports, besides CreateGrant, RetireGrant and
/// DescribeKey, which every key supports.
fn key_operations(k: &Key) -> &'static [GrantOperation] {
    use GrantOperation as G;
    match (k.kind.spec, k.kind.usage) {
        (KeySpec::SymmetricDefault, _) => &[
            G::Decrypt,
            G::Encrypt,
            G::GenerateDataKey,
            G::GenerateDataKeyWithoutPlaintext,
            G::GenerateDataKeyPair,
            G::GenerateDataKeyPairWithoutPlaintext,
            G::ReEncryptFrom,
            G::ReEncryptTo,
        ],
        (_, KeyUsage::EncryptDecrypt) => &[
            G::Decrypt,
            G::Encrypt,
            G::ReEncryptFrom,
            G::ReEncryptTo,
            G::GetPublicKey,
        ],
        (_, KeyUsage::SignVerify) => &[G::Sign, G::Verify, G::GetPublicKey],
        (_, KeyUsage::GenerateVerifyMac) => &[G::GenerateMac, G::VerifyMac],
        (_, KeyUsage::KeyAgreement) => &[G::DeriveSharedSecret, G::GetPublicKey],
    }
}

/// Whether the key's operations take an encryption context (symmetric encryption keys only).
fn takes_encryption_context(k: &Key) -> bool {
    k.kind.spec == KeySpec::SymmetricDefault
}

/// `Operations` (each already a `GrantOperation`): not empty, not CreateGrant alone.
/// Duplicates are dropped, the order kept.
pub fn operations(ops: &[GrantOperation]) -> Result<Vec<GrantOperation>, KmsError> {
    let mut unique: Vec<GrantOperation> = Vec::new();
    for o in ops {
        if !unique.contains(o) {
            unique.push(*o);
        }
    }
    match unique.as_slice() {
        // cks-sim's words: no recording of AWS's answer to an empty list was found.
        [] => Err(kms_err!(
            Validation,
            "Operations must name at least one grant operation."
        )),
        // AWS's words (a recorded response).
        [GrantOperation::CreateGrant] => Err(kms_err!(
            Validation,
            "Grants must not contain only the CreateGrant operation."
        )),
        _ => Ok(unique),
    }
}

/// `Constraints`, checked against the documented limits (the model's own constraints are
/// the decoder's). AWS's words for two encryption context constraints at once come from a
/// recorded response; the other messages are cks-sim's (no recording found).
pub fn constraints(c: Option<GrantConstraints>) -> Result<Option<Constraints>, KmsError> {
    let Some(c) = c else {
        return Ok(None);
    };
    let equals = context_constraint(c.encryption_context_equals, "EncryptionContextEquals")?;
    let subset = context_constraint(c.encryption_context_subset, "EncryptionContextSubset")?;
    if equals.is_some() && subset.is_some() {
        return Err(kms_err!(Validation, "More than one constraint supplied"));
    }
    Ok(Some(Constraints {
        equals,
        subset,
        source_arn: c.source_arn,
    }))
}

fn context_constraint(
    map: Option<BTreeMap<String, String>>,
    m: &str,
) -> Result<Option<BTreeMap<String, String>>, KmsError> {
    let Some(map) = map else {
        return Ok(None);
    };
    if map.len() > MAX_CONSTRAINT_PAIRS {
        return Err(kms_err!(
            Validation,
            "{m} holds {} encryption context pairs; a grant constraint can hold at most {MAX_CONSTRAINT_PAIRS}.",
            map.len()
        ));
    }
    if let Some((k, _)) = map
        .iter()
        .find(|(_, v)| v.chars().count() > MAX_CONSTRAINT_VALUE)
    {
        return Err(kms_err!(
            Validation,
            "The value of '{}' in {m} exceeds {MAX_CONSTRAINT_VALUE} characters.",
            shown(k)
        ));
    }
    Ok(Some(map))
}

/// Refuse grant operations the key does not support, and encryption context constraints on a
/// key whose operations take no encryption context (cks-sim's words; AWS's exception).
pub fn fit_key(k: &Key, ops: &[GrantOperation], c: Option<&Constraints>) -> Result<(), KmsError> {
    let supported = key_operations(k);
    let common = [
        GrantOperation::CreateGrant,
        GrantOperation::RetireGrant,
        GrantOperation::DescribeKey,
    ];
    if let Some(op) = ops
        .iter()
        .find(|o| !supported.contains(o) && !common.contains(o))
    {
        return Err(kms_err!(
            Validation,
            "The grant operation {op} is not supported for {}: its KeySpec is {} and its KeyUsage is {}.",
            k.arn,
            k.kind.spec.as_str(),
            k.kind.usage.as_str()
        ));
    }
    let context = c.is_some_and(|c| c.equals.is_some() || c.subset.is_some());
    if context && !takes_encryption_context(k) {
        return Err(kms_err!(
            Validation,
            "Encryption context grant constraints are supported only on symmetric encryption KMS keys; {} is {}.",
            k.arn,
            k.kind.spec.as_str()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_drop_duplicates_and_refuse_create_grant_alone() {
        use GrantOperation as G;
        assert_eq!(
            operations(&[G::Encrypt, G::Decrypt, G::Encrypt]).unwrap(),
            vec![G::Encrypt, G::Decrypt]
        );
        assert_eq!(
            operations(&[G::CreateGrant, G::CreateGrant])
                .unwrap_err()
                .message,
            "Grants must not contain only the CreateGrant operation."
        );
        assert!(operations(&[]).is_err());
    }

    #[test]
    fn constraints_hold_one_encryption_context_of_at_most_eight_pairs() {
        let ctx = |n: usize| (0..n).map(|i| (format!("k{i}"), "v".to_string())).collect();
        let both = GrantConstraints {
            encryption_context_equals: Some(ctx(1)),
            encryption_context_subset: Some(ctx(1)),
            source_arn: None,
        };
        assert_eq!(
            constraints(Some(both)).unwrap_err().message,
            "More than one constraint supplied"
        );
        let nine = GrantConstraints {
            encryption_context_subset: Some(ctx(9)),
            ..Default::default()
        };
        assert!(constraints(Some(nine)).is_err());
        let eight = GrantConstraints {
            encryption_context_subset: Some(ctx(8)),
            ..Default::default()
        };
        assert_eq!(
            constraints(Some(eight))
                .unwrap()
                .unwrap()
                .subset
                .unwrap()
                .len(),
            8
        );
    }
}
