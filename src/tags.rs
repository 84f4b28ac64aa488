//! One tag validator for both services: KMS keys and CloudHSM clusters and backups follow
//! the same tag rules (AWS's tagging rules: keys of 1 to 128 and values of at most 256
//! characters, the `aws:` prefix reserved in any case), each service with a few of its own
//! (KMS refuses a key given twice and counts 50 tags in a request; CloudHSM allows only
//! letters, digits, spaces and `_.:/=+-@`). Each domain turns the first problem into its own
//! exception and words.

/// What one service's tags must also satisfy.
#[derive(Debug, Clone, Copy)]
pub struct TagRules {
    /// Most tags in one request, if the request itself is limited.
    pub max_tags: Option<usize>,
    /// Refuse a tag key given twice.
    pub refuse_duplicates: bool,
    /// Only letters, digits, white space and `_.:/=+-@` in keys and values.
    pub plain_characters: bool,
}

/// The first thing wrong with a list of tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagProblem<'a> {
    /// More tags than the request may carry.
    TooMany,
    /// A key of no or more than 128 characters.
    KeyLength(&'a str),
    /// A key with a character outside the service's set.
    KeyCharacters(&'a str),
    /// A key starting with `aws:` (in any case).
    ReservedPrefix(&'a str),
    /// A key given twice.
    DuplicateKey(&'a str),
    /// A value of more than 256 characters (and the key it belongs to).
    ValueLength(&'a str, &'a str),
    /// A value with a character outside the service's set (and its key).
    ValueCharacters(&'a str, &'a str),
}

/// Longest tag key.
pub const MAX_KEY_CHARS: usize = 128;
/// Longest tag value.
pub const MAX_VALUE_CHARS: usize = 256;

fn plain(c: char) -> bool {
    c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c)
}

/// The first problem of `tags` under `rules`, in this order: the count, then tag by tag its
/// key's length, characters and prefix, a repeated key, its value's length and characters.
pub fn first_problem<'a>(tags: &'a [(String, String)], rules: &TagRules) -> Option<TagProblem<'a>> {
    if rules.max_tags.is_some_and(|max| tags.len() > max) {
        return Some(TagProblem::TooMany);
    }
    let mut seen = std::collections::BTreeSet::new();
    tags.iter().find_map(|(k, v)| {
        let (k, v) = (k.as_str(), v.as_str());
        let n = k.chars().count();
        if n == 0 || n > MAX_KEY_CHARS {
            Some(TagProblem::KeyLength(k))
        } else if rules.plain_characters && !k.chars().all(plain) {
            Some(TagProblem::KeyCharacters(k))
        } else if k.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:")) {
            Some(TagProblem::ReservedPrefix(k))
        } else if rules.refuse_duplicates && !seen.insert(k) {
            Some(TagProblem::DuplicateKey(k))
        } else if v.chars().count() > MAX_VALUE_CHARS {
            Some(TagProblem::ValueLength(k, v))
        } else if rules.plain_characters && !v.chars().all(plain) {
            Some(TagProblem::ValueCharacters(k, v))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KMS: TagRules = TagRules {
        max_tags: Some(50),
        refuse_duplicates: true,
        plain_characters: false,
    };
    const CLOUDHSM: TagRules = TagRules {
        max_tags: None,
        refuse_duplicates: false,
        plain_characters: true,
    };

    fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_aws_prefix_is_reserved_in_any_case_for_both_services() {
        for rules in [KMS, CLOUDHSM] {
            let t = tags(&[("ok", "v"), ("AwS:x", "v")]);
            assert_eq!(
                first_problem(&t, &rules),
                Some(TagProblem::ReservedPrefix("AwS:x"))
            );
        }
    }

    #[test]
    fn kms_counts_and_refuses_a_repeated_key_cloudhsm_does_neither() {
        let many: Vec<(String, String)> =
            (0..51).map(|i| (format!("k{i}"), String::new())).collect();
        assert_eq!(first_problem(&many, &KMS), Some(TagProblem::TooMany));
        assert_eq!(first_problem(&many, &CLOUDHSM), None);
        let twice = tags(&[("k", "1"), ("k", "2")]);
        assert_eq!(
            first_problem(&twice, &KMS),
            Some(TagProblem::DuplicateKey("k"))
        );
        assert_eq!(first_problem(&twice, &CLOUDHSM), None);
    }

    #[test]
    fn lengths_are_1_to_128_for_keys_and_up_to_256_for_values() {
        let long_key = "k".repeat(129);
        let t = tags(&[(long_key.as_str(), "")]);
        assert_eq!(
            first_problem(&t, &KMS),
            Some(TagProblem::KeyLength(&long_key))
        );
        let t = tags(&[("", "")]);
        assert_eq!(
            first_problem(&t, &CLOUDHSM),
            Some(TagProblem::KeyLength(""))
        );
        let long_value = "v".repeat(257);
        let t = tags(&[("k", long_value.as_str())]);
        assert_eq!(
            first_problem(&t, &KMS),
            Some(TagProblem::ValueLength("k", &long_value))
        );
        let t = tags(&[(&"k".repeat(128), &"v".repeat(256))]);
        assert_eq!(first_problem(&t, &KMS), None);
    }

    #[test]
    fn cloudhsm_allows_only_plain_characters() {
        let t = tags(&[("a#b", "v")]);
        assert_eq!(
            first_problem(&t, &CLOUDHSM),
            Some(TagProblem::KeyCharacters("a#b"))
        );
        assert_eq!(first_problem(&t, &KMS), None);
        let t = tags(&[("k", "v!")]);
        assert_eq!(
            first_problem(&t, &CLOUDHSM),
            Some(TagProblem::ValueCharacters("k", "v!"))
        );
        let t = tags(&[("Name", "prod db_1:/=+-@.")]);
        assert_eq!(first_problem(&t, &CLOUDHSM), None);
    }
}
