//! AWS's exact words for common refusals, as recorded from real AWS responses: users assert
//! on these messages.

use crate::common::*;
use serde_json::{Value, json};

/// Send a KMS request and return (status, body).
fn kms_raw(sim: &Sim, op: &str, body: Value) -> (u16, Value) {
    block_on(sim.control().raw(
        "POST",
        "/",
        &[
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", &format!("TrentService.{op}")),
        ],
        body.to_string().into_bytes(),
    ))
    .expect("an answer")
}

fn key(sim: &Sim) -> String {
    let (_, v) = kms_raw(sim, "CreateKey", json!({}));
    v["KeyMetadata"]["KeyId"]
        .as_str()
        .expect("key id")
        .to_string()
}

fn tags(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"TagKey": format!("k{i}"), "TagValue": "v"}))
        .collect()
}

#[test]
fn describe_key_with_a_key_id_that_is_not_a_key_id_says_invalid_key_id() {
    let sim = Sim::start();
    let (status, v) = kms_raw(&sim, "DescribeKey", json!({"KeyId": "fake-key-id"}));
    assert_eq!(status, 400);
    assert_eq!(
        v,
        json!({"__type": "NotFoundException", "message": "Invalid keyId 'fake-key-id'"})
    );
}

#[test]
fn fifty_one_tags_are_too_many_on_create_and_on_tag_resource() {
    let sim = Sim::start();
    let (_, v) = kms_raw(&sim, "CreateKey", json!({"Tags": tags(51)}));
    assert_eq!(
        v,
        json!({"__type": "TagException", "message": "Too many tags"})
    );
    let id = key(&sim);
    let (_, v) = kms_raw(&sim, "TagResource", json!({"KeyId": id, "Tags": tags(51)}));
    assert_eq!(
        v,
        json!({"__type": "TagException", "message": "Too many tags"})
    );
}

#[test]
fn the_aws_tag_prefix_is_reserved_in_any_case() {
    let sim = Sim::start();
    for prefix in ["aws:", "AWS:", "Aws:"] {
        let t = json!([{"TagKey": format!("{prefix}x"), "TagValue": "v"}]);
        let (_, v) = kms_raw(&sim, "CreateKey", json!({"Tags": t}));
        assert_eq!(
            v,
            json!({"__type": "TagException", "message": "Tags beginning with aws: are reserved"}),
            "{prefix}"
        );
    }
}

#[test]
fn a_tag_key_given_twice_in_one_request_is_refused() {
    let sim = Sim::start();
    let t = json!([{"TagKey": "k", "TagValue": "1"}, {"TagKey": "k", "TagValue": "2"}]);
    let (status, v) = kms_raw(&sim, "CreateKey", json!({"Tags": t}));
    assert_eq!(status, 400);
    assert_eq!(
        v,
        json!({"__type": "TagException", "message": "Duplicate tag keys"})
    );
}

#[test]
fn generate_random_without_number_of_bytes_says_it_is_required() {
    let sim = Sim::start();
    let (_, v) = kms_raw(&sim, "GenerateRandom", json!({}));
    assert_eq!(
        v,
        json!({"__type": "ValidationException", "message": "NumberOfBytes is required."})
    );
}

#[test]
fn an_invalid_ciphertext_is_refused_with_no_message_at_all() {
    let sim = Sim::start();
    let id = key(&sim);
    let (_, v) = kms_raw(
        &sim,
        "Encrypt",
        json!({"KeyId": id, "Plaintext": "aGVsbG8="}),
    );
    let blob = v["CiphertextBlob"]
        .as_str()
        .expect("ciphertext")
        .to_string();
    let (_, v) = kms_raw(
        &sim,
        "Decrypt",
        json!({"CiphertextBlob": blob, "EncryptionContext": {"changed": "context"}}),
    );
    assert_eq!(v, json!({"__type": "InvalidCiphertextException"}));
}

#[test]
fn an_alias_name_without_its_prefix_is_refused_with_the_guides_link() {
    let sim = Sim::start();
    let id = key(&sim);
    let (status, v) = kms_raw(
        &sim,
        "CreateAlias",
        json!({"AliasName": "nope", "TargetKeyId": id}),
    );
    assert_eq!(status, 400);
    assert_eq!(
        v,
        json!({
            "__type": "ValidationException",
            "message": "Alias must start with the prefix \"alias/\". Please see \
                        https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html"
        })
    );
}

#[test]
fn an_alias_name_with_a_colon_contains_invalid_characters() {
    let sim = Sim::start();
    let id = key(&sim);
    let (_, v) = kms_raw(
        &sim,
        "CreateAlias",
        json!({"AliasName": "alias/Service:Test", "TargetKeyId": id}),
    );
    assert_eq!(
        v,
        json!({
            "__type": "ValidationException",
            "message": "alias/Service:Test contains invalid characters for an alias"
        })
    );
}

#[test]
fn describe_key_reports_a_stable_current_key_material_id() {
    let sim = Sim::start();
    let id = key(&sim);
    let (_, a) = kms_raw(&sim, "DescribeKey", json!({"KeyId": id}));
    let (_, b) = kms_raw(&sim, "DescribeKey", json!({"KeyId": id}));
    let m = a["KeyMetadata"]["CurrentKeyMaterialId"]
        .as_str()
        .expect("material id");
    assert_eq!(m.len(), 64);
    assert!(
        m.bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
        "{m}"
    );
    assert_eq!(b["KeyMetadata"]["CurrentKeyMaterialId"], m);
    let other = key(&sim);
    let (_, c) = kms_raw(&sim, "DescribeKey", json!({"KeyId": other}));
    assert_ne!(c["KeyMetadata"]["CurrentKeyMaterialId"], m);
}

// ---- Key IDs and ARNs ----

/// A new key of `spec` and `usage`; returns (key ID, key ARN).
fn key_of(sim: &Sim, spec: &str, usage: &str) -> (String, String) {
    let (status, v) = kms_raw(
        sim,
        "CreateKey",
        json!({"KeySpec": spec, "KeyUsage": usage}),
    );
    assert_eq!(status, 200, "{spec} {usage}: {v}");
    let m = &v["KeyMetadata"];
    (
        m["KeyId"].as_str().expect("key id").to_string(),
        m["Arn"].as_str().expect("arn").to_string(),
    )
}

fn arn_of(sim: &Sim, id: &str) -> String {
    let (_, v) = kms_raw(sim, "DescribeKey", json!({"KeyId": id}));
    v["KeyMetadata"]["Arn"].as_str().expect("arn").to_string()
}

fn refusal(kind: &str, message: &str) -> Value {
    json!({"__type": kind, "message": message})
}

#[test]
fn a_uuid_without_its_hyphens_is_an_invalid_key_id() {
    let sim = Sim::start();
    let bare = "134f2428cec14b25a1ae9048164dba47";
    let (status, v) = kms_raw(&sim, "DescribeKey", json!({"KeyId": bare}));
    assert_eq!(status, 400);
    assert_eq!(
        v,
        refusal("NotFoundException", &format!("Invalid keyId '{bare}'"))
    );
}

#[test]
fn an_mrk_prefix_without_its_hex_digits_is_an_invalid_key_id() {
    let sim = Sim::start();
    let (_, v) = kms_raw(&sim, "DescribeKey", json!({"KeyId": "mrk-fake-key-id"}));
    assert_eq!(
        v,
        refusal("NotFoundException", "Invalid keyId 'mrk-fake-key-id'")
    );
}

#[test]
fn an_unknown_key_id_is_refused_with_its_full_arn() {
    let sim = Sim::start();
    let id = key(&sim);
    let arn = arn_of(&sim, &id);
    let unknown = "00000000-0000-4000-8000-000000000000";
    let (_, v) = kms_raw(&sim, "DescribeKey", json!({"KeyId": unknown}));
    assert_eq!(
        v,
        refusal(
            "NotFoundException",
            &format!("Key '{}' does not exist", arn.replace(&id, unknown))
        )
    );
}

#[test]
fn a_key_arn_of_another_region_names_that_region() {
    let sim = Sim::start();
    let id = key(&sim);
    let arn = arn_of(&sim, &id);
    let mut parts: Vec<&str> = arn.split(':').collect();
    let other = if parts[3] == "ap-southeast-1" {
        "eu-west-1"
    } else {
        "ap-southeast-1"
    };
    parts[3] = other;
    let (status, v) = kms_raw(&sim, "DescribeKey", json!({"KeyId": parts.join(":")}));
    assert_eq!(status, 400);
    assert_eq!(
        v,
        refusal("NotFoundException", &format!("Invalid arn {other}"))
    );
}

#[test]
fn an_unknown_alias_is_refused_with_its_alias_arn() {
    let sim = Sim::start();
    let id = key(&sim);
    let arn = arn_of(&sim, &id);
    let alias_arn = arn.replace(&format!("key/{id}"), "alias/nowhere");
    let (_, v) = kms_raw(&sim, "DescribeKey", json!({"KeyId": "alias/nowhere"}));
    assert_eq!(
        v,
        refusal(
            "NotFoundException",
            &format!("Alias {alias_arn} is not found.")
        )
    );
}

#[test]
fn an_alias_name_taken_is_refused_with_its_alias_arn() {
    let sim = Sim::start();
    let id = key(&sim);
    let arn = arn_of(&sim, &id);
    let alias = json!({"AliasName": "alias/taken", "TargetKeyId": id});
    let (status, _) = kms_raw(&sim, "CreateAlias", alias.clone());
    assert_eq!(status, 200);
    let (_, v) = kms_raw(&sim, "CreateAlias", alias);
    let alias_arn = arn.replace(&format!("key/{id}"), "alias/taken");
    assert_eq!(
        v,
        refusal(
            "AlreadyExistsException",
            &format!("An alias with the name {alias_arn} already exists")
        )
    );
}

// ---- Key states ----

#[test]
fn a_disabled_key_is_refused_with_its_arn() {
    let sim = Sim::start();
    let id = key(&sim);
    let arn = arn_of(&sim, &id);
    kms_raw(&sim, "DisableKey", json!({"KeyId": id}));
    let (_, v) = kms_raw(
        &sim,
        "Encrypt",
        json!({"KeyId": id, "Plaintext": "aGVsbG8="}),
    );
    assert_eq!(
        v,
        refusal("DisabledException", &format!("{arn} is disabled."))
    );
}

#[test]
fn a_key_pending_deletion_is_refused_with_its_arn() {
    let sim = Sim::start();
    let id = key(&sim);
    let arn = arn_of(&sim, &id);
    kms_raw(
        &sim,
        "ScheduleKeyDeletion",
        json!({"KeyId": id, "PendingWindowInDays": 7}),
    );
    let (_, v) = kms_raw(
        &sim,
        "Encrypt",
        json!({"KeyId": id, "Plaintext": "aGVsbG8="}),
    );
    assert_eq!(
        v,
        refusal(
            "KMSInvalidStateException",
            &format!("{arn} is pending deletion.")
        )
    );
}

#[test]
fn a_key_waiting_for_its_material_is_pending_import() {
    let sim = Sim::start();
    let (_, v) = kms_raw(&sim, "CreateKey", json!({"Origin": "EXTERNAL"}));
    let arn = v["KeyMetadata"]["Arn"].as_str().expect("arn").to_string();
    let (_, v) = kms_raw(
        &sim,
        "Encrypt",
        json!({"KeyId": arn, "Plaintext": "aGVsbG8="}),
    );
    assert_eq!(
        v,
        refusal(
            "KMSInvalidStateException",
            &format!("{arn} is pending import.")
        )
    );
}

#[test]
fn a_deletion_window_outside_7_to_30_days_is_refused() {
    let sim = Sim::start();
    let id = key(&sim);
    let (_, v) = kms_raw(
        &sim,
        "ScheduleKeyDeletion",
        json!({"KeyId": id, "PendingWindowInDays": 31}),
    );
    assert_eq!(
        v,
        refusal(
            "ValidationException",
            "PendingWindowInDays must be between 7 and 30"
        )
    );
}

// ---- Key usage, algorithms and key specs ----

#[test]
fn encrypt_with_a_signing_key_names_its_key_usage() {
    let sim = Sim::start();
    let (id, arn) = key_of(&sim, "ECC_NIST_P256", "SIGN_VERIFY");
    let (_, v) = kms_raw(
        &sim,
        "Encrypt",
        json!({"KeyId": id, "Plaintext": "aGVsbG8="}),
    );
    assert_eq!(
        v,
        refusal(
            "InvalidKeyUsageException",
            &format!("{arn} key usage is SIGN_VERIFY which is not valid for Encrypt.")
        )
    );
}

#[test]
fn generate_mac_with_an_encryption_key_names_its_key_usage() {
    let sim = Sim::start();
    let id = key(&sim);
    let arn = arn_of(&sim, &id);
    let (_, v) = kms_raw(
        &sim,
        "GenerateMac",
        json!({"KeyId": id, "Message": "aGVsbG8=", "MacAlgorithm": "HMAC_SHA_256"}),
    );
    assert_eq!(
        v,
        refusal(
            "InvalidKeyUsageException",
            &format!("{arn} key usage is ENCRYPT_DECRYPT which is not valid for GenerateMac.")
        )
    );
}

#[test]
fn decrypt_naming_another_key_says_it_cannot_perform_the_operation() {
    let sim = Sim::start();
    let id = key(&sim);
    let (hmac, _) = key_of(&sim, "HMAC_256", "GENERATE_VERIFY_MAC");
    let (_, v) = kms_raw(
        &sim,
        "Encrypt",
        json!({"KeyId": id, "Plaintext": "aGVsbG8="}),
    );
    let blob = v["CiphertextBlob"]
        .as_str()
        .expect("ciphertext")
        .to_string();
    let (status, v) = kms_raw(
        &sim,
        "Decrypt",
        json!({"CiphertextBlob": blob, "KeyId": hmac}),
    );
    assert_eq!(status, 400);
    assert_eq!(
        v,
        refusal(
            "IncorrectKeyException",
            "The key ID in the request does not identify a CMK that can perform this operation."
        )
    );
}

#[test]
fn encrypt_with_an_rsa_key_and_no_algorithm_says_symmetric_default_is_incompatible() {
    let sim = Sim::start();
    let (id, _) = key_of(&sim, "RSA_2048", "ENCRYPT_DECRYPT");
    let (_, v) = kms_raw(
        &sim,
        "Encrypt",
        json!({"KeyId": id, "Plaintext": "aGVsbG8="}),
    );
    assert_eq!(
        v,
        refusal(
            "InvalidKeyUsageException",
            "Algorithm SYMMETRIC_DEFAULT is incompatible with key spec RSA_2048."
        )
    );
}

#[test]
fn an_rsa_plaintext_over_the_oaep_limit_names_algorithm_key_spec_and_limit() {
    let sim = Sim::start();
    let (id, _) = key_of(&sim, "RSA_2048", "ENCRYPT_DECRYPT");
    for (algorithm, max) in [("RSAES_OAEP_SHA_1", 214), ("RSAES_OAEP_SHA_256", 190)] {
        let plaintext = base64_of(&vec![7u8; max + 1]);
        let (_, v) = kms_raw(
            &sim,
            "Encrypt",
            json!({"KeyId": id, "Plaintext": plaintext, "EncryptionAlgorithm": algorithm}),
        );
        assert_eq!(
            v,
            refusal(
                "ValidationException",
                &format!(
                    "Algorithm {algorithm} and key spec RSA_2048 cannot encrypt data larger than {max} bytes."
                )
            )
        );
    }
}

#[test]
fn generate_mac_with_another_mac_algorithm_says_it_is_incompatible_with_the_key_spec() {
    let sim = Sim::start();
    let (id, _) = key_of(&sim, "HMAC_256", "GENERATE_VERIFY_MAC");
    let (_, v) = kms_raw(
        &sim,
        "GenerateMac",
        json!({"KeyId": id, "Message": "aGVsbG8=", "MacAlgorithm": "HMAC_SHA_512"}),
    );
    assert_eq!(
        v,
        refusal(
            "InvalidKeyUsageException",
            "Algorithm HMAC_SHA_512 is incompatible with key spec HMAC_256."
        )
    );
}

#[test]
fn a_mac_that_does_not_verify_is_refused_with_no_message_at_all() {
    let sim = Sim::start();
    let (id, _) = key_of(&sim, "HMAC_256", "GENERATE_VERIFY_MAC");
    let (_, v) = kms_raw(
        &sim,
        "VerifyMac",
        json!({
            "KeyId": id,
            "Message": "aGVsbG8=",
            "MacAlgorithm": "HMAC_SHA_256",
            "Mac": base64_of(&[0u8; 32]),
        }),
    );
    assert_eq!(v, json!({"__type": "KMSInvalidMacException"}));
}

#[test]
fn a_signature_that_does_not_verify_is_refused_with_no_message_at_all() {
    let sim = Sim::start();
    let (id, _) = key_of(&sim, "ECC_NIST_P256", "SIGN_VERIFY");
    let (_, v) = kms_raw(
        &sim,
        "Sign",
        json!({"KeyId": id, "Message": "aGVsbG8=", "SigningAlgorithm": "ECDSA_SHA_256"}),
    );
    let signature = v["Signature"].as_str().expect("signature").to_string();
    let (_, v) = kms_raw(
        &sim,
        "Verify",
        json!({
            "KeyId": id,
            "Message": "b3RoZXI=",
            "Signature": signature,
            "SigningAlgorithm": "ECDSA_SHA_256",
        }),
    );
    assert_eq!(v, json!({"__type": "KMSInvalidSignatureException"}));
}

#[test]
fn a_digest_of_the_wrong_length_is_refused_naming_the_algorithm() {
    let sim = Sim::start();
    let (id, _) = key_of(&sim, "ECC_NIST_P256", "SIGN_VERIFY");
    let (_, v) = kms_raw(
        &sim,
        "Sign",
        json!({
            "KeyId": id,
            "Message": base64_of(&[1u8; 20]),
            "MessageType": "DIGEST",
            "SigningAlgorithm": "ECDSA_SHA_256",
        }),
    );
    assert_eq!(
        v,
        refusal(
            "ValidationException",
            "Digest is invalid length for algorithm ECDSA_SHA_256."
        )
    );
}

#[test]
fn an_rsa_key_without_key_usage_says_key_usage_is_required() {
    let sim = Sim::start();
    let (_, v) = kms_raw(&sim, "CreateKey", json!({"KeySpec": "RSA_2048"}));
    assert_eq!(
        v,
        refusal(
            "ValidationException",
            "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys."
        )
    );
}

#[test]
fn an_hmac_key_without_key_usage_says_key_usage_is_required() {
    let sim = Sim::start();
    let (_, v) = kms_raw(&sim, "CreateKey", json!({"KeySpec": "HMAC_256"}));
    assert_eq!(
        v,
        refusal(
            "ValidationException",
            "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys."
        )
    );
}

#[test]
fn rotation_of_an_asymmetric_key_is_refused_in_aws_words() {
    let sim = Sim::start();
    let (id, _) = key_of(&sim, "ECC_NIST_P256", "SIGN_VERIFY");
    let (_, v) = kms_raw(&sim, "EnableKeyRotation", json!({"KeyId": id}));
    assert_eq!(
        v,
        refusal(
            "UnsupportedOperationException",
            "You cannot perform this operation on a non-symmetric key or a key with non-ENCRYPT_DECRYPT key usage."
        )
    );
}

#[test]
fn import_parameters_for_a_key_of_origin_aws_kms_name_its_origin() {
    let sim = Sim::start();
    let id = key(&sim);
    let arn = arn_of(&sim, &id);
    let (_, v) = kms_raw(
        &sim,
        "GetParametersForImport",
        json!({"KeyId": id, "WrappingAlgorithm": "RSAES_OAEP_SHA_256", "WrappingKeySpec": "RSA_2048"}),
    );
    assert_eq!(
        v,
        refusal(
            "UnsupportedOperationException",
            &format!("{arn} origin is AWS_KMS which is not valid for this operation.")
        )
    );
}

#[test]
fn expiring_key_material_without_a_valid_to_date_is_refused() {
    let sim = Sim::start();
    let (_, v) = kms_raw(&sim, "CreateKey", json!({"Origin": "EXTERNAL"}));
    let id = v["KeyMetadata"]["KeyId"].as_str().expect("id").to_string();
    let (_, v) = kms_raw(
        &sim,
        "ImportKeyMaterial",
        json!({
            "KeyId": id,
            "ImportToken": base64_of(&[1u8; 32]),
            "EncryptedKeyMaterial": base64_of(&[2u8; 256]),
            "ExpirationModel": "KEY_MATERIAL_EXPIRES",
        }),
    );
    assert_eq!(
        v,
        refusal(
            "ValidationException",
            "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES"
        )
    );
}

// ---- Grants ----

#[test]
fn a_grant_of_create_grant_alone_is_refused() {
    let sim = Sim::start();
    let id = key(&sim);
    let (_, v) = kms_raw(
        &sim,
        "CreateGrant",
        json!({
            "KeyId": id,
            "GranteePrincipal": "arn:aws:iam::111122223333:role/r",
            "Operations": ["CreateGrant"],
        }),
    );
    assert_eq!(
        v,
        refusal(
            "ValidationException",
            "Grants must not contain only the CreateGrant operation."
        )
    );
}

#[test]
fn a_grant_with_both_encryption_context_constraints_is_refused() {
    let sim = Sim::start();
    let id = key(&sim);
    let (_, v) = kms_raw(
        &sim,
        "CreateGrant",
        json!({
            "KeyId": id,
            "GranteePrincipal": "arn:aws:iam::111122223333:role/r",
            "Operations": ["Decrypt"],
            "Constraints": {
                "EncryptionContextSubset": {"a": "1"},
                "EncryptionContextEquals": {"a": "1"},
            },
        }),
    );
    assert_eq!(
        v,
        refusal("ValidationException", "More than one constraint supplied")
    );
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

// ---- Generic validation (AWS's "N validation error(s) detected" form) ----
//
// These take the words and member paths of AWS's generic validation, which the typed request
// layer produces; see the lead's notes. Each is marked so.

fn validation(detail: &str) -> Value {
    refusal(
        "ValidationException",
        &format!("1 validation error detected: {detail}"),
    )
}

// generic validation, by the typed layer (src/protocol/decode)
#[test]
fn generic_number_of_bytes_below_its_range_says_greater_than_or_equal() {
    let sim = Sim::start();
    let (_, v) = kms_raw(&sim, "GenerateRandom", json!({"NumberOfBytes": 0}));
    assert_eq!(
        v,
        validation(
            "Value '0' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1"
        )
    );
}

// generic validation, by the typed layer (src/protocol/decode)
#[test]
fn generic_number_of_bytes_above_its_range_says_less_than_or_equal() {
    let sim = Sim::start();
    let (_, v) = kms_raw(&sim, "GenerateRandom", json!({"NumberOfBytes": 1025}));
    assert_eq!(
        v,
        validation(
            "Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024"
        )
    );
}

// generic validation, by the typed layer (src/protocol/decode)
#[test]
fn generic_a_tag_key_too_long_is_pathed_by_its_position_in_the_list() {
    let sim = Sim::start();
    let long = "k".repeat(129);
    let t = json!([{"TagKey": long, "TagValue": "v"}]);
    let (_, v) = kms_raw(&sim, "CreateKey", json!({"Tags": t}));
    assert_eq!(
        v,
        validation(&format!(
            "Value '{long}' at 'tags.1.member.tagKey' failed to satisfy constraint: Member must have length less than or equal to 128"
        ))
    );
}

// generic validation, by the typed layer (src/protocol/decode)
#[test]
fn generic_a_tag_value_too_long_is_pathed_by_its_position_in_the_list() {
    let sim = Sim::start();
    let long = "v".repeat(257);
    let t = json!([{"TagKey": "a", "TagValue": "1"}, {"TagKey": "b", "TagValue": long}]);
    let (_, v) = kms_raw(&sim, "CreateKey", json!({"Tags": t}));
    assert_eq!(
        v,
        validation(&format!(
            "Value '{long}' at 'tags.2.member.tagValue' failed to satisfy constraint: Member must have length less than or equal to 256"
        ))
    );
}

// generic validation, by the typed layer (src/protocol/decode)
#[test]
fn generic_a_plaintext_too_long_is_refused_without_its_value() {
    let sim = Sim::start();
    let id = key(&sim);
    let (_, v) = kms_raw(
        &sim,
        "Encrypt",
        json!({"KeyId": id, "Plaintext": base64_of(&[0u8; 4097])}),
    );
    assert_eq!(
        v,
        validation(
            "Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096"
        )
    );
}

// generic validation, by the typed layer (src/protocol/decode)
#[test]
fn generic_an_empty_key_id_says_length_greater_than_or_equal_to_1() {
    let sim = Sim::start();
    let (_, v) = kms_raw(&sim, "DescribeKey", json!({"KeyId": ""}));
    assert_eq!(
        v,
        validation(
            "Value '' at 'keyId' failed to satisfy constraint: Member must have length greater than or equal to 1"
        )
    );
}

// generic validation, by the typed layer (src/protocol/decode)
#[test]
fn generic_an_unknown_mac_algorithm_lists_the_enum_in_aws_order() {
    let sim = Sim::start();
    let (id, _) = key_of(&sim, "HMAC_256", "GENERATE_VERIFY_MAC");
    let (_, v) = kms_raw(
        &sim,
        "GenerateMac",
        json!({"KeyId": id, "Message": "aGVsbG8=", "MacAlgorithm": "INVALID"}),
    );
    assert_eq!(
        v,
        validation(
            "Value 'INVALID' at 'macAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [HMAC_SHA_384, HMAC_SHA_256, HMAC_SHA_224, HMAC_SHA_512]"
        )
    );
}

// ---- cloudhsmv2 ----

#[test]
fn a_cluster_of_an_hsm_type_cloudhsm_does_not_offer_is_refused() {
    let sim = Sim::start();
    let (status, v) = block_on(
        sim.control().raw(
            "POST",
            "/",
            &[
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amz-target", "BaldrApiService.CreateCluster"),
            ],
            json!({
                "HsmType": "hsm9.huge",
                "SubnetIds": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
            })
            .to_string()
            .into_bytes(),
        ),
    )
    .expect("an answer");
    assert_eq!(status, 400);
    assert_eq!(v["__type"], "CloudHsmInvalidRequestException", "{v}");
    assert_eq!(v["Message"], "Provided HsmType is not supported.", "{v}");
}

#[test]
fn re_encrypt_naming_another_source_key_says_it_cannot_perform_the_operation() {
    let sim = Sim::start();
    let id = key(&sim);
    let other = key(&sim);
    let (_, v) = kms_raw(
        &sim,
        "Encrypt",
        json!({"KeyId": id, "Plaintext": "aGVsbG8="}),
    );
    let blob = v["CiphertextBlob"]
        .as_str()
        .expect("ciphertext")
        .to_string();
    let (_, v) = kms_raw(
        &sim,
        "ReEncrypt",
        json!({"CiphertextBlob": blob, "SourceKeyId": other, "DestinationKeyId": id}),
    );
    assert_eq!(
        v,
        refusal(
            "IncorrectKeyException",
            "The key ID in the request does not identify a CMK that can perform this operation."
        )
    );
}

#[test]
fn encrypt_with_a_symmetric_key_and_an_rsa_algorithm_says_it_is_incompatible() {
    let sim = Sim::start();
    let id = key(&sim);
    let (_, v) = kms_raw(
        &sim,
        "Encrypt",
        json!({"KeyId": id, "Plaintext": "aGVsbG8=", "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}),
    );
    assert_eq!(
        v,
        refusal(
            "InvalidKeyUsageException",
            "Algorithm RSAES_OAEP_SHA_256 is incompatible with key spec SYMMETRIC_DEFAULT."
        )
    );
}

#[test]
fn a_key_store_on_a_cluster_with_hsms_in_one_zone_is_refused() {
    let sim = Sim::start();
    let cluster = block_on(super::key_stores::new_cluster(&sim, 1));
    let (status, v) = kms_raw(
        &sim,
        "CreateCustomKeyStore",
        json!({
            "CustomKeyStoreName": "one-zone",
            "CloudHsmClusterId": cluster.id,
            "TrustAnchorCertificate": cluster.anchor,
            "KeyStorePassword": cluster.kmsuser_password,
        }),
    );
    assert_eq!(status, 400);
    assert_eq!(
        v,
        refusal(
            "CloudHsmClusterInvalidConfigurationException",
            "CloudHSM cluster must contain active HSMs in at least two Availability Zones"
        )
    );
}
