//! Decoding a request object into its operation's typed request ([`crate::api`]), checking
//! every constraint of the service model once, in AWS's words.
//!
//! A member of the wrong JSON type stops decoding at once ([`InputError::Type`]: AWS's
//! deserializer refuses the body). Broken constraints are gathered instead, in the model's
//! member order, and reported together ([`InputError::Invalid`]), as AWS's validator reports
//! `N validation errors detected: …`. The generated `kms` and `cloudhsmv2` modules implement
//! [`Decode`] for every shape a request reaches.

pub mod cloudhsmv2;
pub mod kms;

use super::input::{InputError, Violation};
use crate::api::{Blob, Secret, Timestamp};
use base64::Engine;
use regex::Regex;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// The constraints the model puts on one shape.
#[derive(Debug)]
pub struct Rule {
    /// Least length (strings, blobs, lists, maps) or value (integers).
    pub min: Option<i64>,
    /// Greatest length or value.
    pub max: Option<i64>,
    /// The pattern a string must match (searched, not anchored, as the models' patterns
    /// are), with its text as the model writes it (for the message).
    pub pattern: Option<(&'static LazyLock<Regex>, &'static str)>,
    /// The value is a secret: an error names the member but never shows the value.
    pub sensitive: bool,
    /// The values an enum allows, in the model's order.
    pub values: Option<&'static [&'static str]>,
}

impl Rule {
    /// No constraint (structures).
    pub const NONE: Rule = Rule {
        min: None,
        max: None,
        pattern: None,
        sensitive: false,
        values: None,
    };
}

/// A decoded value's measure, for its rule.
pub enum Measure<'a> {
    /// A string: its length in characters, and the text for the pattern.
    Text(&'a str),
    /// A blob's, list's or map's length, and how AWS shows the value.
    Len(usize, String),
    /// An integer.
    Int(i64),
    /// Nothing to measure (booleans, timestamps, structures, enums).
    Unmeasured,
}

/// A shape that decodes from a JSON value.
pub trait Decode: Sized {
    /// Decode `v`. A wrong JSON type is an error; a broken constraint is recorded in `cx` and
    /// gives `None`.
    fn decode(v: &Value, cx: &mut Cx) -> Result<Option<Self>, InputError>;

    /// What a value of this shape is, for a type error.
    const WHAT: &'static str = "a value";

    /// What the rule of the member holding this value measures.
    fn measure(&self) -> Measure<'_> {
        Measure::Unmeasured
    }
}

/// The decoding context: where we are (for messages) and what is broken so far.
pub struct Cx {
    /// Where we are: each step and whether it holds a secret. Rendered only for an error:
    /// in AWS's form for a violation (`tags.1.member.tagKey`), as the request spells it for a
    /// type error (`Tags.1.TagKey`).
    path: Vec<(Step, bool)>,
    /// The rule of the items of the list or map being decoded.
    item: &'static Rule,
    /// Decoding a plain list item: its enum leaves the report to the list.
    quiet: bool,
    violations: Vec<Violation>,
}

impl Default for Cx {
    fn default() -> Self {
        Cx {
            path: Vec::new(),
            item: &Rule::NONE,
            quiet: false,
            violations: Vec::new(),
        }
    }
}

// AWS's validator echoes a broken member's whole value (a sensitive one excepted), however
// long: so does this one.

/// Decode a whole request body into `T`, reporting every broken constraint at once.
pub fn top_level<T: Decode>(v: &Value) -> Result<T, InputError> {
    let mut cx = Cx::default();
    let decoded = T::decode(v, &mut cx)?;
    match decoded {
        Some(t) if cx.violations.is_empty() => Ok(t),
        _ => Err(InputError::Invalid(cx.violations)),
    }
}

fn camel(member: &str) -> String {
    let mut c = member.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// One step of a path into a request.
enum Step {
    /// A structure's member (the model's name).
    Member(&'static str),
    /// A list's item, counted from 1.
    Index(usize),
    /// A map's entry.
    Key(String),
}

impl Cx {
    fn at(&self) -> String {
        let steps: Vec<String> = self
            .path
            .iter()
            .map(|(s, _)| match s {
                Step::Member(m) => camel(m),
                Step::Index(i) => format!("{i}.member"),
                Step::Key(k) => format!("{k}.member"),
            })
            .collect();
        steps.join(".")
    }

    fn type_error(&self, expected: &'static str) -> InputError {
        let steps: Vec<String> = self
            .path
            .iter()
            .map(|(s, _)| match s {
                Step::Member(m) => (*m).to_string(),
                Step::Index(i) => i.to_string(),
                Step::Key(k) => k.clone(),
            })
            .collect();
        InputError::Type {
            member: steps.join("."),
            expected,
        }
    }

    fn hidden(&self) -> bool {
        self.path.iter().any(|(_, sensitive)| *sensitive)
    }

    /// Run `f` one step further in: at `step`, secret if `sensitive`.
    fn at_step<R>(&mut self, step: Step, sensitive: bool, f: impl FnOnce(&mut Self) -> R) -> R {
        self.path.push((step, sensitive));
        let r = f(self);
        self.path.pop();
        r
    }

    fn violate(&mut self, value: Option<String>, rule: String) {
        let value = if self.hidden() { None } else { value };
        self.violations.push(Violation {
            path: self.at(),
            value,
            rule,
        });
    }

    /// The value as an object, or a type error.
    pub fn object<'v>(&self, v: &'v Value) -> Result<&'v Map<String, Value>, InputError> {
        v.as_object().ok_or_else(|| self.type_error("an object"))
    }

    /// An optional member: `None` if absent, null or broken.
    pub fn optional<T: Decode>(
        &mut self,
        o: &Map<String, Value>,
        member: &'static str,
        rule: &Rule,
        item: &'static Rule,
    ) -> Result<Option<T>, InputError> {
        match o.get(member) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => self.at_step(Step::Member(member), rule.sensitive, |cx| {
                cx.checked(v, rule, item)
            }),
        }
    }

    /// A required member: absent or null is recorded as AWS records it.
    pub fn required<T: Decode>(
        &mut self,
        o: &Map<String, Value>,
        member: &'static str,
        rule: &Rule,
        item: &'static Rule,
    ) -> Result<Option<T>, InputError> {
        if matches!(o.get(member), None | Some(Value::Null)) {
            self.at_step(Step::Member(member), rule.sensitive, |cx| {
                cx.violations.push(Violation {
                    path: cx.at(),
                    value: Some("null".into()),
                    rule: "Member must not be null".into(),
                });
                Ok(None)
            })
        } else {
            self.optional(o, member, rule, item)
        }
    }

    /// Decode `v` (with its items checked against `item`), then check it against `rule`.
    fn checked<T: Decode>(
        &mut self,
        v: &Value,
        rule: &Rule,
        item: &'static Rule,
    ) -> Result<Option<T>, InputError> {
        let before = self.violations.len();
        let outer = std::mem::replace(&mut self.item, item);
        let t = T::decode(v, self);
        self.item = outer;
        let t = t?;
        let Some(t) = t else { return Ok(None) };
        self.check(&t, rule);
        Ok((self.violations.len() == before).then_some(t))
    }

    fn check<T: Decode>(&mut self, t: &T, rule: &Rule) {
        let shown_value = match t.measure() {
            Measure::Text(s) => Some(s.to_string()),
            Measure::Len(_, s) => Some(s),
            Measure::Int(i) => Some(i.to_string()),
            Measure::Unmeasured => return,
        };
        for broken in broken_rules(t, rule) {
            self.violate(shown_value.clone(), broken);
        }
    }

    /// A string that must be one of `names`.
    pub fn enum_value<E>(
        &mut self,
        v: &Value,
        parse: fn(&str) -> Option<E>,
        names: &[&str],
    ) -> Result<Option<E>, InputError> {
        let s = v.as_str().ok_or_else(|| self.type_error("a string"))?;
        let e = parse(s);
        if e.is_none() && !self.quiet {
            self.violate(Some(s.to_string()), enum_rule(names));
        }
        Ok(e)
    }

    /// Decode a plain item (a string, a number) without its rule, which the list checks.
    fn plain_item<T: Decode>(&mut self, v: &Value, step: Step) -> Result<Option<T>, InputError> {
        self.quiet = true;
        let t = self.at_step(step, false, |cx| T::decode(v, cx));
        self.quiet = false;
        t
    }

    /// Decode each item of a list or map at `step`, checked against the items' rule.
    fn item<T: Decode>(&mut self, v: &Value, step: Step) -> Result<Option<T>, InputError> {
        let rule = self.item;
        self.at_step(step, rule.sensitive, |cx| cx.checked(v, rule, &Rule::NONE))
    }
}

fn enum_rule(values: &[&str]) -> String {
    format!(
        "Member must satisfy enum value set: [{}]",
        values.join(", ")
    )
}

/// The rules of `rule` that `t` breaks, in AWS's words.
fn broken_rules<T: Decode>(t: &T, rule: &Rule) -> Vec<String> {
    let (n, what) = match t.measure() {
        Measure::Text(s) => (s.chars().count() as i64, "length"),
        Measure::Len(n, _) => (n as i64, "length"),
        Measure::Int(i) => (i, "value"),
        Measure::Unmeasured => return Vec::new(),
    };
    let mut broken = Vec::new();
    if let Some(min) = rule.min.filter(|m| n < *m) {
        broken.push(format!(
            "Member must have {what} greater than or equal to {min}"
        ));
    }
    if let Some(max) = rule.max.filter(|m| n > *m) {
        broken.push(format!(
            "Member must have {what} less than or equal to {max}"
        ));
    }
    if let (Measure::Text(s), Some((rx, text))) = (t.measure(), rule.pattern)
        && !rx.is_match(s)
    {
        broken.push(format!(
            "Member must satisfy regular expression pattern: {text}"
        ));
    }
    broken
}

impl Rule {
    /// Whether the rule constrains nothing.
    fn is_none(&self) -> bool {
        self.min.is_none()
            && self.max.is_none()
            && self.pattern.is_none()
            && self.values.is_none()
            && !self.sensitive
    }

    /// Every constraint of the rule, as AWS lists a list member's constraints:
    /// `[Member must have length less than or equal to 8192, Member must have length greater
    /// than or equal to 1]`.
    fn all_constraints(&self) -> String {
        let mut all = Vec::new();
        if let Some(max) = self.max {
            all.push(format!(
                "Member must have length less than or equal to {max}"
            ));
        }
        if let Some(min) = self.min {
            all.push(format!(
                "Member must have length greater than or equal to {min}"
            ));
        }
        if let Some((_, text)) = self.pattern {
            all.push(format!(
                "Member must satisfy regular expression pattern: {text}"
            ));
        }
        if let Some(values) = self.values {
            all.push(enum_rule(values));
        }
        format!("[{}]", all.join(", "))
    }
}

impl Decode for String {
    const WHAT: &'static str = "a string";

    fn decode(v: &Value, cx: &mut Cx) -> Result<Option<Self>, InputError> {
        let s = v.as_str().ok_or_else(|| cx.type_error("a string"))?;
        Ok(Some(s.to_string()))
    }

    fn measure(&self) -> Measure<'_> {
        Measure::Text(self)
    }
}

impl Decode for Secret {
    fn decode(v: &Value, cx: &mut Cx) -> Result<Option<Self>, InputError> {
        Ok(String::decode(v, cx)?.map(Secret))
    }

    fn measure(&self) -> Measure<'_> {
        Measure::Text(&self.0)
    }
}

impl Decode for i64 {
    fn decode(v: &Value, cx: &mut Cx) -> Result<Option<Self>, InputError> {
        let i = v.as_i64().ok_or_else(|| cx.type_error("an integer"))?;
        Ok(Some(i))
    }

    fn measure(&self) -> Measure<'_> {
        Measure::Int(*self)
    }
}

impl Decode for bool {
    fn decode(v: &Value, cx: &mut Cx) -> Result<Option<Self>, InputError> {
        let b = v.as_bool().ok_or_else(|| cx.type_error("a boolean"))?;
        Ok(Some(b))
    }
}

impl Decode for Timestamp {
    fn decode(v: &Value, cx: &mut Cx) -> Result<Option<Self>, InputError> {
        let t = v.as_f64().ok_or_else(|| cx.type_error("a number"))?;
        Ok(Some(Timestamp(t)))
    }
}

impl Decode for Blob {
    fn decode(v: &Value, cx: &mut Cx) -> Result<Option<Self>, InputError> {
        let bytes = v
            .as_str()
            .and_then(|s| {
                base64::engine::general_purpose::STANDARD
                    .decode(s.trim())
                    .ok()
            })
            .ok_or_else(|| cx.type_error("a base64-encoded blob"))?;
        Ok(Some(Blob(bytes)))
    }

    /// AWS's validator shows a blob as the Java buffer holding it.
    fn measure(&self) -> Measure<'_> {
        let n = self.0.len();
        Measure::Len(n, format!("java.nio.HeapByteBuffer[pos=0 lim={n} cap={n}]"))
    }
}

impl<T: Decode + std::fmt::Debug> Decode for Vec<T> {
    /// Items that are structures report their own members (`tags.1.member.tagKey`); a broken
    /// constraint of a plain item is reported on the list, as AWS does (`Value '[a, b]' at
    /// 'grantTokens' failed to satisfy constraint: Member must satisfy constraint: […]`).
    fn decode(v: &Value, cx: &mut Cx) -> Result<Option<Self>, InputError> {
        let items = v.as_array().ok_or_else(|| cx.type_error("a list"))?;
        let rule = cx.item;
        let mut out = Vec::with_capacity(items.len());
        let mut whole = true;
        let mut plain_broken = false;
        for (i, item) in items.iter().enumerate() {
            let t = if rule.is_none() {
                cx.item::<T>(item, Step::Index(i + 1))?
            } else {
                cx.plain_item::<T>(item, Step::Index(i + 1))?
            };
            match t {
                Some(t) => {
                    plain_broken |= !rule.is_none() && !broken_rules(&t, rule).is_empty();
                    out.push(t);
                }
                None => (whole, plain_broken) = (false, !rule.is_none()),
            }
        }
        if plain_broken {
            let constraints = format!("Member must satisfy constraint: {}", rule.all_constraints());
            cx.violate(Some(json_list(items)), constraints);
            return Ok(None);
        }
        Ok(whole.then_some(out))
    }

    fn measure(&self) -> Measure<'_> {
        Measure::Len(self.len(), java_list(self))
    }
}

impl<T: Decode> Decode for BTreeMap<String, T> {
    fn decode(v: &Value, cx: &mut Cx) -> Result<Option<Self>, InputError> {
        let what = if T::WHAT == String::WHAT {
            "a map of strings to strings"
        } else {
            "a map"
        };
        let o = v.as_object().ok_or_else(|| cx.type_error(what))?;
        let mut out = BTreeMap::new();
        let mut whole = true;
        for (k, item) in o {
            match cx.item::<T>(item, Step::Key(k.clone())) {
                Ok(Some(t)) => {
                    out.insert(k.clone(), t);
                }
                Ok(None) => whole = false,
                Err(InputError::Type { .. }) => return Err(cx.type_error(what)),
                Err(e) => return Err(e),
            }
        }
        Ok(whole.then_some(out))
    }

    fn measure(&self) -> Measure<'_> {
        Measure::Len(self.len(), format!("{{{} entries}}", self.len()))
    }
}

/// A list of JSON values as AWS's (Java) validator prints it: `[a, b]`.
fn json_list(items: &[Value]) -> String {
    let shown: Vec<String> = items
        .iter()
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
        .collect();
    format!("[{}]", shown.join(", "))
}

/// A list as AWS's (Java) validator prints it: `[a, b]` for strings.
fn java_list<T: std::fmt::Debug>(items: &[T]) -> String {
    let shown: Vec<String> = items
        .iter()
        .map(|t| format!("{t:?}").trim_matches('"').to_string())
        .collect();
    format!("[{}]", shown.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kms_error(op: &str, body: serde_json::Value) -> String {
        match kms::decode_request(op, &body).expect("a KMS operation") {
            Ok(r) => panic!("{r:?} was accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_missing_required_member_is_null_in_awss_words() {
        assert_eq!(
            kms_error("DescribeKey", serde_json::json!({})),
            "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: \
             Member must not be null"
        );
    }

    #[test]
    fn every_broken_constraint_is_reported_at_once() {
        let m = kms_error(
            "CreateKey",
            serde_json::json!({"KeyUsage": "x", "Description": "d".repeat(8193)}),
        );
        assert!(
            m.starts_with("2 validation errors detected: Value '"),
            "{m}"
        );
        assert!(m.contains("at 'description' failed to satisfy constraint: Member must have length less than or equal to 8192; "), "{m}");
        assert!(m.ends_with("Value 'x' at 'keyUsage' failed to satisfy constraint: Member must satisfy enum value set: [SIGN_VERIFY, ENCRYPT_DECRYPT, GENERATE_VERIFY_MAC, KEY_AGREEMENT, ENCAPSULATE_DECAPSULATE]"), "{m}");
    }

    #[test]
    fn a_structure_in_a_list_is_reported_by_its_members_path() {
        let long = "k".repeat(129);
        let m = kms_error(
            "TagResource",
            serde_json::json!({"KeyId": "k", "Tags": [{"TagKey": "a", "TagValue": ""}, {"TagKey": long, "TagValue": ""}]}),
        );
        assert_eq!(
            m,
            format!(
                "1 validation error detected: Value '{}' at 'tags.2.member.tagKey' failed to satisfy constraint: Member must have length less than or equal to 128",
                "k".repeat(129)
            )
        );
    }

    #[test]
    fn a_plain_list_item_is_reported_on_the_list_with_all_its_constraints() {
        let m = kms_error(
            "DescribeKey",
            serde_json::json!({"KeyId": "k", "GrantTokens": ["t", ""]}),
        );
        assert_eq!(
            m,
            "1 validation error detected: Value '[t, ]' at 'grantTokens' failed to satisfy constraint: Member must satisfy constraint: [Member must have length less than or equal to 8192, Member must have length greater than or equal to 1]"
        );
    }

    #[test]
    fn a_sensitive_members_value_is_never_shown() {
        let m = kms_error(
            "Encrypt",
            serde_json::json!({"KeyId": "k", "Plaintext": ""}),
        );
        assert_eq!(
            m,
            "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length greater than or equal to 1"
        );
    }

    #[test]
    fn a_blob_is_shown_as_awss_java_buffer() {
        let m = kms_error("Decrypt", serde_json::json!({"CiphertextBlob": ""}));
        assert_eq!(
            m,
            "1 validation error detected: Value 'java.nio.HeapByteBuffer[pos=0 lim=0 cap=0]' at 'ciphertextBlob' failed to satisfy constraint: Member must have length greater than or equal to 1"
        );
    }

    #[test]
    fn a_wrong_json_type_stops_decoding_with_the_members_name() {
        let m = kms_error("Encrypt", serde_json::json!({"KeyId": 5, "Plaintext": "!"}));
        assert_eq!(m, "member KeyId must be a string");
    }

    #[test]
    fn every_pattern_of_both_models_compiles() {
        for rule in kms::RULES.iter().chain(cloudhsmv2::RULES) {
            if let Some((rx, text)) = rule.pattern {
                assert!(!rx.as_str().is_empty(), "{text}");
            }
        }
    }
}
