//! Hostile and malformed requests (proptest): wrong types, missing and extra members, huge
//! strings and numbers, invalid base64, invalid UTF-8, truncated bodies, unknown targets and
//! wrong content types. Each gets a 4xx JSON error of the right name; the server stays up and
//! its state does not change.

use crate::common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug)]
enum Ty {
    Str,
    Int,
    Bool,
    Blob,
    Map,
    List,
}

const OPS: &[(&str, &[(&str, Ty)])] = &[
    (
        "CreateKey",
        &[
            ("Description", Ty::Str),
            ("KeyUsage", Ty::Str),
            ("Policy", Ty::Str),
            ("Tags", Ty::List),
            ("MultiRegion", Ty::Bool),
        ],
    ),
    (
        "Encrypt",
        &[
            ("KeyId", Ty::Str),
            ("Plaintext", Ty::Blob),
            ("EncryptionContext", Ty::Map),
            ("DryRun", Ty::Bool),
        ],
    ),
    (
        "Decrypt",
        &[
            ("CiphertextBlob", Ty::Blob),
            ("EncryptionContext", Ty::Map),
            ("KeyId", Ty::Str),
        ],
    ),
    (
        "CreateCustomKeyStore",
        &[
            ("CustomKeyStoreName", Ty::Str),
            ("CloudHsmClusterId", Ty::Str),
            ("TrustAnchorCertificate", Ty::Str),
            ("KeyStorePassword", Ty::Str),
        ],
    ),
    (
        "UpdateCustomKeyStore",
        &[
            ("CustomKeyStoreId", Ty::Str),
            ("NewCustomKeyStoreName", Ty::Str),
        ],
    ),
    (
        "DescribeCustomKeyStores",
        &[
            ("CustomKeyStoreId", Ty::Str),
            ("Limit", Ty::Int),
            ("Marker", Ty::Str),
        ],
    ),
    (
        "ScheduleKeyDeletion",
        &[("KeyId", Ty::Str), ("PendingWindowInDays", Ty::Int)],
    ),
    ("ListKeys", &[("Limit", Ty::Int), ("Marker", Ty::Str)]),
    (
        "CreateAlias",
        &[("AliasName", Ty::Str), ("TargetKeyId", Ty::Str)],
    ),
    (
        "GenerateRandom",
        &[("NumberOfBytes", Ty::Int), ("CustomKeyStoreId", Ty::Str)],
    ),
    ("TagResource", &[("KeyId", Ty::Str), ("Tags", Ty::List)]),
];

#[derive(Clone, Debug)]
enum Bad {
    /// Bytes that are not UTF-8 (and so not JSON).
    Garbage(Vec<u8>),
    /// A valid-looking body cut short.
    Truncated(usize),
    /// One member with a value of the wrong JSON type.
    WrongType(usize, Value),
    /// A string member far over any limit.
    HugeString(usize, usize),
    /// An integer member out of any range, or not an integer.
    HugeNumber(usize, Value),
    /// A blob member that is not base64.
    NotBase64(usize, String),
    /// An unknown target.
    UnknownTarget(String),
}

fn wrong_value(t: Ty) -> BoxedStrategy<Value> {
    let num = prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from)
    ];
    match t {
        Ty::Str | Ty::Blob => prop_oneof![
            num,
            any::<bool>().prop_map(Value::Bool),
            Just(json!([1, 2])),
            Just(json!({"a": 1}))
        ]
        .boxed(),
        Ty::Int => prop_oneof![
            ".{0,8}".prop_map(Value::String),
            any::<bool>().prop_map(Value::Bool),
            Just(json!([]))
        ]
        .boxed(),
        Ty::Bool => prop_oneof![num, ".{0,8}".prop_map(Value::String)].boxed(),
        Ty::Map => prop_oneof![num, Just(json!(["x"])), Just(json!({"k": 5}))].boxed(),
        Ty::List => prop_oneof![
            num,
            ".{0,8}".prop_map(Value::String),
            Just(json!([5])),
            Just(json!({"TagKey": 1}))
        ]
        .boxed(),
    }
}

fn request() -> impl Strategy<Value = (usize, Bad, bool)> {
    (0..OPS.len()).prop_flat_map(|op| {
        let members = OPS[op].1;
        let n = members.len();
        let member = 0..n;
        let bad = prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..64).prop_map(|mut v| {
                v.insert(0, 0xff);
                Bad::Garbage(v)
            }),
            (1usize..40).prop_map(Bad::Truncated),
            member.clone().prop_flat_map(
                move |m| wrong_value(members[m].1).prop_map(move |v| Bad::WrongType(m, v))
            ),
            (member.clone(), 140_000usize..300_000).prop_map(|(m, len)| Bad::HugeString(m, len)),
            member.clone().prop_flat_map(|m| {
                prop_oneof![
                    Just(json!(1e300)),
                    Just(json!(18_446_744_073_709_551_615u64)),
                    Just(json!(-9_223_372_036_854_775_808i64)),
                    Just(json!(2.5))
                ]
                .prop_map(move |v| Bad::HugeNumber(m, v))
            }),
            (member, "[!-*]{1,20}").prop_map(|(m, s)| Bad::NotBase64(m, s)),
            "[A-Za-z]{1,20}".prop_map(|s| Bad::UnknownTarget(format!("TrentService.No{s}"))),
        ];
        (Just(op), bad, any::<bool>())
    })
}

fn valid_body(op: usize) -> String {
    let mut m = serde_json::Map::new();
    for (name, t) in OPS[op].1 {
        let v = match t {
            Ty::Str if *name == "AliasName" => json!("alias/valid"),
            Ty::Str if *name == "Policy" => json!(r#"{"Version":"2012-10-17","Statement":[]}"#),
            Ty::Str => json!("x"),
            Ty::Int => json!(5),
            Ty::Bool => json!(false),
            Ty::Blob => json!("aGVsbG8="),
            Ty::Map => json!({"k": "v"}),
            Ty::List => json!([{"TagKey": "k", "TagValue": "v"}]),
        };
        m.insert(name.to_string(), v);
    }
    Value::Object(m).to_string()
}

/// A member's name as AWS's validation messages write it.
fn camel(member: &str) -> String {
    member[..1].to_lowercase() + &member[1..]
}

/// What a non-base64 string in one member must get.
#[derive(Debug)]
enum NotBase64Answer {
    /// Exactly this exception and message.
    Exactly(&'static str, String),
    /// Exactly this exception, with a message that names the value.
    Exception(&'static str),
    /// The member accepts any string (or another member fails first): the same answer, word
    /// for word, as the untouched body.
    AsUntouchedBody,
}

/// The answer to a non-base64 string in member `m` of operation `op`. Only a blob member
/// must be base64: there the deserializer rejects it. AWS documents the exception for a
/// value its deserializer cannot read (`SerializationException`), but we found no AWS text
/// for the message, so the message pinned here is cks-sim's own. Every other member gives
/// the answer its own validation gives.
fn not_base64_answer(op: &str, m: &str, t: Ty) -> NotBase64Answer {
    use NotBase64Answer::*;
    let cannot = |what: &str| format!("Cannot deserialize member '{m}': it must be {what}.");
    match t {
        Ty::Blob => Exactly("SerializationException", cannot("a base64-encoded blob")),
        Ty::Int => Exactly("SerializationException", cannot("an integer")),
        Ty::Bool => Exactly("SerializationException", cannot("a boolean")),
        Ty::Map => Exactly(
            "SerializationException",
            cannot("a map of strings to strings"),
        ),
        Ty::List => Exactly("SerializationException", cannot("a list")),
        Ty::Str => match (op, m) {
            (_, "KeyId" | "TargetKeyId") if op != "ScheduleKeyDeletion" => {
                Exception("NotFoundException")
            }
            (_, "CustomKeyStoreId") => Exception("CustomKeyStoreNotFoundException"),
            (_, "KeyUsage" | "CloudHsmClusterId") => Exception("ValidationException"),
            ("ListKeys", "Marker") => Exception("InvalidMarkerException"),
            // `[!-*]` breaks the model's pattern for alias names, which is checked before the
            // `alias/` prefix.
            (_, "AliasName") => Exception("ValidationException"),
            // CreateKey's body breaks the model's `KeyUsage` enum, checked before the policy.
            ("CreateKey", "Policy") => AsUntouchedBody,
            (_, "Policy") => Exactly(
                "MalformedPolicyDocumentException",
                "The key policy is not a JSON policy document with a Statement.".into(),
            ),
            _ => AsUntouchedBody,
        },
    }
}

async fn snapshot(sim: &Sim) -> Vec<Value> {
    let c = sim.control();
    let mut out = Vec::new();
    for op in ["DescribeCustomKeyStores", "ListKeys", "ListAliases"] {
        out.push(
            c.aws(&format!("TrentService.{op}"), json!({}))
                .await
                .unwrap(),
        );
    }
    out.push(c.call("GET", "/_sim/orphans", None).await.unwrap());
    out
}

#[test]
fn hostile_requests_get_named_4xx_errors_and_change_nothing() {
    let sim = Sim::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Something to protect.
    rt.block_on(async {
        let (store, _) = connected_store(&sim, "guarded").await;
        cloudhsm_key(&sim, &store).await;
        sim.kms().create_key().send().await.unwrap();
    });
    let before = rt.block_on(snapshot(&sim));
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct(
                "proptest-regressions/bad_input.txt",
            ),
        )),
        ..Config::default()
    });
    let c = sim.control();
    runner
        .run(&request(), |(op, bad, json_content_type)| {
            let (name, members) = OPS[op];
            let mut target = format!("TrentService.{name}");
            let mut body_obj: serde_json::Map<String, Value> =
                serde_json::from_str(&valid_body(op)).unwrap();
            let mut not_base64 = None;
            let (body, want): (Vec<u8>, &[&str]) = match &bad {
                Bad::Garbage(b) => (b.clone(), &["SerializationException"]),
                Bad::Truncated(cut) => {
                    let s = valid_body(op);
                    let cut = (*cut).min(s.len() - 1);
                    (s.as_bytes()[..cut].to_vec(), &["SerializationException"])
                }
                Bad::WrongType(m, v) => {
                    body_obj.insert(members[*m].0.into(), v.clone());
                    (
                        Value::Object(body_obj).to_string().into_bytes(),
                        &["SerializationException", "ValidationException"],
                    )
                }
                Bad::HugeString(m, len) => {
                    body_obj.insert(members[*m].0.into(), json!("A".repeat(*len)));
                    (
                        Value::Object(body_obj).to_string().into_bytes(),
                        &["ValidationException", "SerializationException"],
                    )
                }
                Bad::HugeNumber(m, v) => {
                    body_obj.insert(members[*m].0.into(), v.clone());
                    (
                        Value::Object(body_obj).to_string().into_bytes(),
                        &["SerializationException", "ValidationException"],
                    )
                }
                Bad::NotBase64(m, s) => {
                    body_obj.insert(members[*m].0.into(), json!(s));
                    not_base64 = Some((
                        not_base64_answer(name, members[*m].0, members[*m].1),
                        s.clone(),
                        members[*m].0,
                    ));
                    (Value::Object(body_obj).to_string().into_bytes(), &[])
                }
                Bad::UnknownTarget(t) => {
                    target = t.clone();
                    (
                        Value::Object(body_obj).to_string().into_bytes(),
                        &["UnknownOperationException"],
                    )
                }
            };
            let ctype = if json_content_type {
                "application/x-amz-json-1.1"
            } else {
                "text/plain"
            };
            let (status, v) = rt
                .block_on(c.raw(
                    "POST",
                    "/",
                    &[("x-amz-target", target.as_str()), ("content-type", ctype)],
                    body,
                ))
                .map_err(|e| {
                    TestCaseError::fail(format!("server unreachable after {bad:?}: {e}"))
                })?;
            prop_assert!(
                (400..500).contains(&status),
                "{name} {bad:?}: status {status} {v}"
            );
            let ty = v["__type"].as_str().unwrap_or("");
            if let Some((answer, value, member)) = not_base64 {
                let exception = match answer {
                    NotBase64Answer::Exactly(e, m) => {
                        prop_assert_eq!(&v["message"], &json!(m), "{} {:?}", name, bad);
                        e
                    }
                    NotBase64Answer::Exception(e) => {
                        let message = v["message"].as_str().unwrap_or("");
                        prop_assert!(message.contains(&value), "{} {:?}: {}", name, bad, v);
                        e
                    }
                    NotBase64Answer::AsUntouchedBody => {
                        let untouched = rt
                            .block_on(c.raw(
                                "POST",
                                "/",
                                &[("x-amz-target", target.as_str()), ("content-type", ctype)],
                                valid_body(op).into_bytes(),
                            ))
                            .map_err(|e| TestCaseError::fail(e.to_string()))?;
                        if untouched.1["__type"] == "ValidationException" {
                            // The untouched body's own violations are all reported; the string
                            // adds none for a member the untouched body did not break.
                            let at = format!("at '{}'", camel(member));
                            let message = v["message"].as_str().unwrap_or("");
                            let before = untouched.1["message"].as_str().unwrap_or("");
                            prop_assert_eq!(ty, "ValidationException", "{} {:?}: {}", name, bad, v);
                            prop_assert!(
                                before.contains(&at) || !message.contains(&at),
                                "{} {:?}: {}",
                                name,
                                bad,
                                v
                            );
                        } else {
                            prop_assert_eq!(&(status, &v), &(untouched.0, &untouched.1));
                        }
                        return Ok(());
                    }
                };
                prop_assert_eq!(ty, exception, "{} {:?}: {}", name, bad, v);
                return Ok(());
            }
            prop_assert!(
                want.contains(&ty),
                "{name} {bad:?}: got {ty} ({v}), want one of {want:?}"
            );
            prop_assert!(
                v["message"].as_str().is_some_and(|m| !m.is_empty()),
                "no message: {v}"
            );
            Ok(())
        })
        .unwrap();
    let after = rt.block_on(snapshot(&sim));
    assert_eq!(before, after, "hostile requests changed the state");
    let h = rt.block_on(c.call("GET", "/_sim/health", None)).unwrap();
    assert_eq!(h["status"], "ok");
}
