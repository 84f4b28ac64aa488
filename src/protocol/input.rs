//! `Input`: typed, validated access to a decoded JSON request object.
//!
//! Each door maps an [`InputError`] to its own exception: KMS answers a wrong type with
//! `SerializationException` and a missing or out-of-range member with `ValidationException`;
//! cloudhsmv2 answers both with `CloudHsmInvalidRequestException`.

use base64::Engine;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// What is wrong with a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputError {
    /// The body is not a JSON object.
    Malformed(String),
    /// A member has the wrong JSON type.
    Type {
        /// Member name.
        member: String,
        /// What was expected.
        expected: &'static str,
    },
    /// A required member is absent.
    Missing {
        /// Member name.
        member: String,
    },
    /// A member breaks a constraint.
    Constraint {
        /// Member name.
        member: String,
        /// The value as shown to the user (truncated); `None` for a sensitive member, whose
        /// value is never echoed.
        value: Option<String>,
        /// The rule, in AWS's words.
        rule: String,
    },
    /// Members break the model's constraints (each as AWS's validator words it).
    Invalid(Vec<Violation>),
}

/// One broken constraint: `Value '…' at '…' failed to satisfy constraint: …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The member's path in AWS's form (`keyId`, `tags.1.member.tagKey`).
    pub path: String,
    /// The value as AWS shows it (`null` for a missing member, unquoted); `None` for a
    /// sensitive member, whose value is never shown.
    pub value: Option<String>,
    /// The rule, in AWS's words.
    pub rule: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (path, rule) = (&self.path, &self.rule);
        match &self.value {
            Some(v) if v == "null" && rule == "Member must not be null" => {
                write!(
                    f,
                    "Value null at '{path}' failed to satisfy constraint: {rule}"
                )
            }
            Some(v) => write!(
                f,
                "Value '{v}' at '{path}' failed to satisfy constraint: {rule}"
            ),
            None => write!(f, "Value at '{path}' failed to satisfy constraint: {rule}"),
        }
    }
}

/// AWS's validation message: `1 validation error detected: …`, or `N validation errors
/// detected: …; …`.
pub fn validation_message(violations: &[Violation]) -> String {
    let n = violations.len();
    let all: Vec<String> = violations.iter().map(ToString::to_string).collect();
    let errors = if n == 1 { "error" } else { "errors" };
    format!("{n} validation {errors} detected: {}", all.join("; "))
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InputError::Malformed(m) => write!(f, "{m}"),
            InputError::Type { member, expected } => {
                write!(f, "member {member} must be {expected}")
            }
            InputError::Missing { member } => write!(f, "member {member} is required"),
            InputError::Constraint {
                member,
                value,
                rule,
            } => match value {
                Some(v) => write!(
                    f,
                    "value '{v}' at '{member}' failed to satisfy constraint: {rule}"
                ),
                None => write!(
                    f,
                    "value at '{member}' failed to satisfy constraint: {rule}"
                ),
            },
            InputError::Invalid(v) => write!(f, "{}", validation_message(v)),
        }
    }
}

/// Members whose values AWS never echoes in an error (the models' `sensitive` shapes:
/// `KeyStorePasswordType`, `PlaintextType` and the XKS proxy credential), and the control
/// door's passwords and PINs.
pub const SENSITIVE_MEMBERS: &[&str] = &[
    "KeyStorePassword",
    "Plaintext",
    "AccessKeyId",
    "RawSecretAccessKey",
    "password",
    "new_password",
    "auth_password",
    "admin_password",
    "pin",
];

/// Whether `member` (in any case) holds a secret.
pub fn is_sensitive(member: &str) -> bool {
    SENSITIVE_MEMBERS
        .iter()
        .any(|m| m.eq_ignore_ascii_case(member))
}

/// The value to show in an error about `member`: none for a sensitive member.
pub fn visible(member: &str, value: String) -> Option<String> {
    (!is_sensitive(member)).then_some(value)
}

/// Shorten a value for an error message.
pub fn shown(v: &str) -> String {
    if v.chars().count() > 64 {
        format!("{}…", v.chars().take(64).collect::<String>())
    } else {
        v.to_string()
    }
}

/// A decoded request object.
#[derive(Debug, Clone, Default)]
pub struct Input(pub Map<String, Value>);

type R<T> = Result<T, InputError>;

impl Input {
    /// Parse an awsJson1_1 body: empty means `{}`; anything but an object is malformed.
    pub fn parse_json(body: &[u8]) -> R<Self> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Input::default());
        }
        if super::bounds::json_exceeds(body, super::bounds::MAX_ITEMS) {
            return Err(InputError::Malformed(format!(
                "the request body holds more than {} JSON values",
                super::bounds::MAX_ITEMS
            )));
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => Ok(Input(m)),
            Ok(_) => Err(InputError::Malformed(
                "the request body must be a JSON object".into(),
            )),
            Err(e) => Err(InputError::Malformed(format!(
                "the request body is not valid JSON: {e}"
            ))),
        }
    }

    /// From an already decoded value.
    pub fn from_value(v: Value) -> R<Self> {
        match v {
            Value::Object(m) => Ok(Input(m)),
            _ => Err(InputError::Malformed(
                "the request body must be an object".into(),
            )),
        }
    }

    fn get(&self, m: &str) -> Option<&Value> {
        match self.0.get(m) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    /// Whether the member is present (and not null).
    pub fn has(&self, m: &str) -> bool {
        self.get(m).is_some()
    }

    /// An optional string member.
    pub fn opt_str(&self, m: &str) -> R<Option<&str>> {
        match self.get(m) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(InputError::Type {
                member: m.into(),
                expected: "a string",
            }),
        }
    }

    /// An optional string of `min..=max` characters.
    pub fn str_len(&self, m: &str, min: usize, max: usize) -> R<Option<&str>> {
        let Some(s) = self.opt_str(m)? else {
            return Ok(None);
        };
        let n = s.chars().count();
        if n < min {
            return Err(InputError::Constraint {
                member: m.into(),
                value: visible(m, shown(s)),
                rule: format!("Member must have length greater than or equal to {min}"),
            });
        }
        if n > max {
            return Err(InputError::Constraint {
                member: m.into(),
                value: visible(m, shown(s)),
                rule: format!("Member must have length less than or equal to {max}"),
            });
        }
        Ok(Some(s))
    }

    /// A required string of `min..=max` characters.
    pub fn req_str(&self, m: &str, min: usize, max: usize) -> R<&str> {
        self.str_len(m, min, max)?
            .ok_or(InputError::Missing { member: m.into() })
    }

    /// An optional integer in `min..=max`.
    pub fn opt_int(&self, m: &str, min: i64, max: i64) -> R<Option<i64>> {
        let v = match self.get(m) {
            None => return Ok(None),
            Some(Value::Number(n)) => n.as_i64().ok_or(InputError::Type {
                member: m.into(),
                expected: "an integer",
            })?,
            Some(_) => {
                return Err(InputError::Type {
                    member: m.into(),
                    expected: "an integer",
                });
            }
        };
        if v < min {
            return Err(InputError::Constraint {
                member: m.into(),
                value: visible(m, v.to_string()),
                rule: format!("Member must have value greater than or equal to {min}"),
            });
        }
        if v > max {
            return Err(InputError::Constraint {
                member: m.into(),
                value: visible(m, v.to_string()),
                rule: format!("Member must have value less than or equal to {max}"),
            });
        }
        Ok(Some(v))
    }

    /// An optional boolean.
    pub fn opt_bool(&self, m: &str) -> R<Option<bool>> {
        match self.get(m) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(InputError::Type {
                member: m.into(),
                expected: "a boolean",
            }),
        }
    }

    /// An optional base64 blob of `min..=max` bytes.
    pub fn opt_blob(&self, m: &str, min: usize, max: usize) -> R<Option<Vec<u8>>> {
        let Some(s) = self.opt_str(m)? else {
            return Ok(None);
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .map_err(|_| InputError::Type {
                member: m.into(),
                expected: "a base64-encoded blob",
            })?;
        if bytes.len() < min || bytes.len() > max {
            return Err(InputError::Constraint {
                member: m.into(),
                value: visible(m, format!("{} bytes", bytes.len())),
                rule: format!("Member must have length between {min} and {max} bytes"),
            });
        }
        Ok(Some(bytes))
    }

    /// An optional map of strings to strings.
    pub fn opt_string_map(&self, m: &str) -> R<Option<BTreeMap<String, String>>> {
        match self.get(m) {
            None => Ok(None),
            Some(Value::Object(o)) => o
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    _ => Err(InputError::Type {
                        member: m.into(),
                        expected: "a map of strings",
                    }),
                })
                .collect::<R<BTreeMap<_, _>>>()
                .map(Some),
            Some(_) => Err(InputError::Type {
                member: m.into(),
                expected: "a map of strings",
            }),
        }
    }

    /// An optional list.
    pub fn opt_list(&self, m: &str) -> R<Option<&Vec<Value>>> {
        match self.get(m) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(_) => Err(InputError::Type {
                member: m.into(),
                expected: "a list",
            }),
        }
    }

    /// An optional list of strings.
    pub fn opt_str_list(&self, m: &str) -> R<Option<Vec<String>>> {
        let Some(a) = self.opt_list(m)? else {
            return Ok(None);
        };
        a.iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                _ => Err(InputError::Type {
                    member: m.into(),
                    expected: "a list of strings",
                }),
            })
            .collect::<R<Vec<_>>>()
            .map(Some)
    }

    /// An optional `[{<kname>: …, <vname>: …}]` tag list.
    pub fn opt_tags(&self, m: &str, kname: &str, vname: &str) -> R<Option<Vec<(String, String)>>> {
        let Some(a) = self.opt_list(m)? else {
            return Ok(None);
        };
        let bad = || InputError::Type {
            member: m.into(),
            expected: "a list of tag objects",
        };
        a.iter()
            .map(|t| {
                let o = t.as_object().ok_or_else(bad)?;
                let k =
                    o.get(kname)
                        .and_then(Value::as_str)
                        .ok_or_else(|| InputError::Missing {
                            member: format!("{m}.member.{kname}"),
                        })?;
                let v = match o.get(vname) {
                    None | Some(Value::Null) => "",
                    Some(Value::String(s)) => s,
                    Some(_) => return Err(bad()),
                };
                Ok((k.to_string(), v.to_string()))
            })
            .collect::<R<Vec<_>>>()
            .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_validate() {
        assert!(Input::parse_json(b"").unwrap().0.is_empty());
        assert!(matches!(
            Input::parse_json(b"[1]"),
            Err(InputError::Malformed(_))
        ));
        assert!(matches!(
            Input::parse_json(b"{"),
            Err(InputError::Malformed(_))
        ));
        let i = Input::parse_json(br#"{"A":"x","N":5,"B":"aGk=","T":true,"Bad":"%%"}"#).unwrap();
        assert_eq!(i.req_str("A", 1, 2).unwrap(), "x");
        assert!(matches!(
            i.req_str("Z", 1, 2),
            Err(InputError::Missing { .. })
        ));
        assert!(matches!(i.req_str("N", 1, 2), Err(InputError::Type { .. })));
        assert!(matches!(
            i.opt_int("N", 7, 30),
            Err(InputError::Constraint { .. })
        ));
        assert_eq!(i.opt_blob("B", 1, 10).unwrap().unwrap(), b"hi");
        assert!(matches!(
            i.opt_blob("Bad", 1, 10),
            Err(InputError::Type { .. })
        ));
        assert_eq!(i.opt_bool("T").unwrap(), Some(true));
    }
}
