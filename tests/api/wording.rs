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
    assert_eq!(v["__type"], "TagException", "{v}");
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
        v["message"],
        "Alias must start with the prefix \"alias/\". Please see \
         https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html"
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
