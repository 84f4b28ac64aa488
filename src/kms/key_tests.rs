//! Unit tests of the key rules that need no server: tags and key policies.

use super::*;
use crate::kms::error::KmsErrorKind;

fn tags(n: usize) -> Vec<(String, String)> {
    (0..n).map(|i| (format!("k{i}"), "v".to_string())).collect()
}

fn tag(k: &str, v: &str) -> Vec<(String, String)> {
    vec![(k.to_string(), v.to_string())]
}

fn refusal(r: Result<(), KmsError>) -> (KmsErrorKind, String) {
    let e = r.expect_err("a refusal");
    (e.kind, e.message)
}

#[test]
fn fifty_tags_are_allowed_and_fifty_one_are_too_many() {
    assert!(check_tags(&tags(MAX_TAGS)).is_ok());
    assert_eq!(
        refusal(check_tags(&tags(MAX_TAGS + 1))),
        (KmsErrorKind::Tag, "Too many tags".to_string())
    );
}

#[test]
fn a_tag_key_is_1_to_128_characters() {
    assert!(check_tags(&tag(&"é".repeat(128), "v")).is_ok());
    for k in [String::new(), "k".repeat(129)] {
        let e = check_tags(&tag(&k, "v")).expect_err("a refusal");
        assert_eq!(e.kind, KmsErrorKind::Validation, "{k:?}");
        assert!(
            e.message
                .contains("Member must have length between 1 and 128"),
            "{}",
            e.message
        );
    }
}

#[test]
fn a_tag_value_is_at_most_256_characters_and_may_be_empty() {
    assert!(check_tags(&tag("k", "")).is_ok());
    assert!(check_tags(&tag("k", &"é".repeat(256))).is_ok());
    let e = check_tags(&tag("k", &"v".repeat(257))).expect_err("a refusal");
    assert_eq!(e.kind, KmsErrorKind::Validation);
    assert!(
        e.message
            .contains("Member must have length less than or equal to 256"),
        "{}",
        e.message
    );
}

#[test]
fn the_aws_prefix_is_reserved_in_any_case_but_only_as_a_prefix() {
    for k in ["aws:x", "AWS:x", "Aws:x", "aws:"] {
        assert_eq!(
            refusal(check_tags(&tag(k, "v"))),
            (
                KmsErrorKind::Tag,
                "Tags beginning with aws: are reserved".to_string()
            ),
            "{k}"
        );
    }
    for k in ["aws", "awsx:", "x:aws:", "aw:s"] {
        assert!(check_tags(&tag(k, "v")).is_ok(), "{k}");
    }
}

#[test]
fn a_tag_key_given_twice_is_refused() {
    let twice = vec![("k".into(), "1".into()), ("k".into(), "2".into())];
    assert_eq!(
        refusal(check_tags(&twice)),
        (KmsErrorKind::Tag, "Duplicate tag keys".to_string())
    );
}

#[test]
fn tag_rules_apply_in_order_count_then_each_tag_in_turn() {
    // Too many wins over a reserved key.
    let mut many = tags(MAX_TAGS + 1);
    many[0].0 = "aws:x".into();
    assert_eq!(refusal(check_tags(&many)).1, "Too many tags");
    // A reserved key before a repeated one.
    let both = vec![
        ("aws:x".into(), "1".into()),
        ("k".into(), "1".into()),
        ("k".into(), "2".into()),
    ];
    assert_eq!(
        refusal(check_tags(&both)).1,
        "Tags beginning with aws: are reserved"
    );
}

#[test]
fn a_key_policy_is_a_json_object_with_a_statement() {
    assert!(check_policy(&default_policy("111122223333")).is_ok());
    for p in [
        "not json",
        "[]",
        "{}",
        r#"{"Version":"2012-10-17"}"#,
        "\"Statement\"",
    ] {
        assert_eq!(
            refusal(check_policy(p)),
            (
                KmsErrorKind::MalformedPolicyDocument,
                "The key policy is not a JSON policy document with a Statement.".to_string()
            ),
            "{p}"
        );
    }
}

#[test]
fn the_default_policy_gives_the_accounts_root_every_kms_action() {
    let p: Value = serde_json::from_str(&default_policy("111122223333")).expect("JSON");
    let s = &p["Statement"][0];
    assert_eq!(s["Principal"]["AWS"], "arn:aws:iam::111122223333:root");
    assert_eq!(s["Action"], "kms:*");
    assert_eq!(s["Effect"], "Allow");
}
