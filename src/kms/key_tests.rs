//! Unit tests of the key rules that need no server: tags and the default key policy.

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
fn the_default_policy_passes_the_key_policy_rule() {
    assert!(crate::kms::rules::key_policy(&default_policy("111122223333")).is_ok());
}

#[test]
fn the_default_policy_gives_the_accounts_root_every_kms_action() {
    let p: serde_json::Value = serde_json::from_str(&default_policy("111122223333")).expect("JSON");
    let s = &p["Statement"][0];
    assert_eq!(s["Principal"]["AWS"], "arn:aws:iam::111122223333:root");
    assert_eq!(s["Action"], "kms:*");
    assert_eq!(s["Effect"], "Allow");
}
