//! What a CreateGrant request may ask for: principals, grant operations that fit the key,
//! and encryption context constraints (KMS Developer Guide, "Grants in AWS KMS" and the
//! `GrantConstraints` reference).
//!
//! Where the messages below are not AWS's words, no recording of AWS's answer was found; the
//! exception is AWS's (the API reference names `ValidationException` for an operation the key
//! does not support).

use super::model::Constraints;
use crate::kms::error::KmsError;
use crate::kms::input_err;
use crate::kms::model::Key;
use crate::kms::spec::{KeySpec, KeyUsage};
use crate::kms_err;
use crate::protocol::input::{Input, shown};
use serde_json::Value;
use std::collections::BTreeMap;

/// The model's `GrantOperation` values.
pub const GRANT_OPERATIONS: &[&str] = &[
    "Decrypt",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "ReEncryptFrom",
    "ReEncryptTo",
    "Sign",
    "Verify",
    "GetPublicKey",
    "CreateGrant",
    "RetireGrant",
    "DescribeKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateMac",
    "VerifyMac",
    "DeriveSharedSecret",
    "Encapsulate",
    "Decapsulate",
];

/// Encryption context pairs a constraint may hold, and the longest value (the `GrantConstraints`
/// reference: "up to 8 encryption context pairs", values of at most 384 characters).
pub const MAX_CONSTRAINT_PAIRS: usize = 8;
/// See [`MAX_CONSTRAINT_PAIRS`].
pub const MAX_CONSTRAINT_VALUE: usize = 384;

const PRINCIPAL_PATTERN: &str = r"^[\w+=,.@:/-]+$";
const SERVICE_PATTERN: &str = r"^([A-Za-z0-9\-]+)\.([A-Za-z0-9\-]+)(\.[A-Za-z0-9\-]+)+$";
const NAME_PATTERN: &str = "^[a-zA-Z0-9:/_-]+$";
const SOURCE_ARN_PATTERN: &str = "^arn:aws[a-z0-9-]*:[a-z0-9-]+:[a-z0-9-]*:[0-9]{12}:.+$";

/// The grant operations a key of this kind supports, besides CreateGrant, RetireGrant and
/// DescribeKey, which every key supports.
fn key_operations(k: &Key) -> &'static [&'static str] {
    match (k.kind.spec, k.kind.usage) {
        (KeySpec::SymmetricDefault, _) => &[
            "Decrypt",
            "Encrypt",
            "GenerateDataKey",
            "GenerateDataKeyWithoutPlaintext",
            "GenerateDataKeyPair",
            "GenerateDataKeyPairWithoutPlaintext",
            "ReEncryptFrom",
            "ReEncryptTo",
        ],
        (_, KeyUsage::EncryptDecrypt) => &[
            "Decrypt",
            "Encrypt",
            "ReEncryptFrom",
            "ReEncryptTo",
            "GetPublicKey",
        ],
        (_, KeyUsage::SignVerify) => &["Sign", "Verify", "GetPublicKey"],
        (_, KeyUsage::GenerateVerifyMac) => &["GenerateMac", "VerifyMac"],
        (_, KeyUsage::KeyAgreement) => &["DeriveSharedSecret", "GetPublicKey"],
    }
}

/// Whether the key's operations take an encryption context (symmetric encryption keys only).
fn takes_encryption_context(k: &Key) -> bool {
    k.kind.spec == KeySpec::SymmetricDefault
}

/// `Operations`: required, each a `GrantOperation`, not CreateGrant alone. Duplicates are
/// dropped, the order kept.
pub fn operations(input: &Input) -> Result<Vec<String>, KmsError> {
    let ops = input
        .opt_str_list("Operations")
        .map_err(input_err)?
        .ok_or_else(|| KmsError::missing("Operations"))?;
    if ops.iter().any(|o| !GRANT_OPERATIONS.contains(&o.as_str())) {
        return Err(KmsError::validation(
            "Operations",
            format!("[{}]", ops.join(", ")),
            &format!(
                "Member must satisfy constraint: [Member must satisfy enum value set: [{}]]",
                GRANT_OPERATIONS.join(", ")
            ),
        ));
    }
    let mut unique: Vec<String> = Vec::new();
    for o in ops {
        if !unique.contains(&o) {
            unique.push(o);
        }
    }
    match unique.as_slice() {
        // cks-sim's words: no recording of AWS's answer to an empty list was found.
        [] => Err(kms_err!(
            Validation,
            "Operations must name at least one grant operation."
        )),
        // AWS's words (a recorded response).
        [only] if only == "CreateGrant" => Err(kms_err!(
            Validation,
            "Grants must not contain only the CreateGrant operation."
        )),
        _ => Ok(unique),
    }
}

/// An optional member matched against the model's length and pattern.
fn patterned<'a>(
    input: &'a Input,
    m: &str,
    max: usize,
    pattern: &str,
    ok: impl Fn(&str) -> bool,
) -> Result<Option<&'a str>, KmsError> {
    let v = input.str_len(m, 1, max).map_err(input_err)?;
    if let Some(s) = v
        && !ok(s)
    {
        return Err(KmsError::validation(
            m,
            shown(s),
            &format!("Member must satisfy regular expression pattern: {pattern}"),
        ));
    }
    Ok(v)
}

fn principal_chars(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c))
}

fn service_chars(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() >= 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

fn name_chars(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || ":/_-".contains(c))
}

fn source_arn_ok(s: &str) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    let lower_dash = |p: &str| {
        p.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && lower_dash(parts[1])
        && !parts[2].is_empty()
        && lower_dash(parts[2])
        && lower_dash(parts[3])
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && !parts[5].is_empty()
}

/// A principal (`…Principal`, up to 256 characters).
pub fn principal<'a>(input: &'a Input, m: &str) -> Result<Option<&'a str>, KmsError> {
    patterned(input, m, 256, PRINCIPAL_PATTERN, principal_chars)
}

/// A service principal (`…ServicePrincipal`, up to 128 characters, `a.b.c`).
pub fn service_principal<'a>(input: &'a Input, m: &str) -> Result<Option<&'a str>, KmsError> {
    patterned(input, m, 128, SERVICE_PATTERN, service_chars)
}

/// `Name` (1–256 characters of `[a-zA-Z0-9:/_-]`).
pub fn name(input: &Input) -> Result<Option<String>, KmsError> {
    Ok(patterned(input, "Name", 256, NAME_PATTERN, name_chars)?.map(str::to_string))
}

/// `Constraints`, checked against the model and the documented limits. AWS's words for two
/// encryption context constraints at once come from a recorded response; the other messages
/// are cks-sim's (no recording found).
pub fn constraints(input: &Input) -> Result<Option<Constraints>, KmsError> {
    let Some(obj) = input.0.get("Constraints").and_then(Value::as_object) else {
        return Ok(None);
    };
    let inner = Input(obj.clone());
    let equals = context_constraint(&inner, "EncryptionContextEquals")?;
    let subset = context_constraint(&inner, "EncryptionContextSubset")?;
    if equals.is_some() && subset.is_some() {
        return Err(kms_err!(Validation, "More than one constraint supplied"));
    }
    let source_arn = patterned(&inner, "SourceArn", 512, SOURCE_ARN_PATTERN, source_arn_ok)?;
    if source_arn.is_some_and(|s| s.chars().count() < 20) {
        return Err(KmsError::validation(
            "SourceArn",
            source_arn.unwrap_or_default(),
            "Member must have length greater than or equal to 20",
        ));
    }
    Ok(Some(Constraints {
        equals,
        subset,
        source_arn: source_arn.map(str::to_string),
    }))
}

fn context_constraint(
    input: &Input,
    m: &str,
) -> Result<Option<BTreeMap<String, String>>, KmsError> {
    let Some(map) = input.opt_string_map(m).map_err(input_err)? else {
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
pub fn fit_key(k: &Key, ops: &[String], c: Option<&Constraints>) -> Result<(), KmsError> {
    let supported = key_operations(k);
    let common = ["CreateGrant", "RetireGrant", "DescribeKey"];
    if let Some(op) = ops
        .iter()
        .find(|o| !supported.contains(&o.as_str()) && !common.contains(&o.as_str()))
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
    fn patterns_accept_what_the_model_accepts() {
        assert!(principal_chars(
            "arn:aws:iam::111122223333:role/app_Role+x=y,z.w@q-1"
        ));
        assert!(!principal_chars("arn:aws:iam::111122223333:role/a b"));
        assert!(service_chars("s3.amazonaws.com"));
        assert!(!service_chars("amazonaws.com"));
        assert!(!service_chars("s3..amazonaws.com"));
        assert!(name_chars("my-grant:1/x_y"));
        assert!(!name_chars("my grant"));
        assert!(source_arn_ok("arn:aws:s3:us-east-1:111122223333:bucket/x"));
        assert!(source_arn_ok("arn:aws-cn:s3::111122223333:x"));
        assert!(!source_arn_ok("arn:aws:s3:us-east-1:1111:bucket/x"));
        assert!(!source_arn_ok("arn:gcp:s3:us-east-1:111122223333:x"));
    }
}
