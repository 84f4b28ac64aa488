//! AWS at the edges: SigV4 verification on the KMS, cloudhsmv2 and STS doors, STS
//! `GetCallerIdentity`, `[auth] mode = "none"`, and the opt-in request quotas.

use crate::common::{Sim, block_on, cloudhsm_key, code, connected_store};
use aws_sdk_kms::error::ProvideErrorMetadata;
use cks_sim::auth::{SignedRequest, format_amz_date, sign_headers, sigv4::Scope};
use cks_sim::client::ControlClient;
use serde_json::Value;

const SECOND_ACCOUNT: &str = r#"
[[auth.credentials]]
access_key_id = "AKIDALICE0000000000A"
secret_access_key = "alice/secret+key"
account = "444455556666"
user = "alice"
"#;

const SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match the \
     signature you provided. Check your AWS Secret Access Key and signing method. Consult the \
     service documentation for details.";

fn message<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    r: Result<T, E>,
) -> String {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.message().unwrap_or_default().to_string(),
    }
}

/// The host part of the endpoint (what clients sign as `host`).
fn host(sim: &Sim) -> String {
    sim.endpoint.trim_start_matches("http://").to_string()
}

/// Headers of a `ListKeys` request signed with `test`/`test` at Unix time `when`.
fn list_keys_signed_at(sim: &Sim, when: i64) -> Vec<(String, String)> {
    let base = vec![
        (
            "content-type".to_string(),
            "application/x-amz-json-1.1".to_string(),
        ),
        ("host".to_string(), host(sim)),
        (
            "x-amz-target".to_string(),
            "TrentService.ListKeys".to_string(),
        ),
    ];
    let date = format_amz_date(when);
    let scope = Scope {
        date: date[..8].to_string(),
        region: "us-east-1".into(),
        service: "kms".into(),
    };
    let req = SignedRequest {
        method: "POST",
        raw_path: "/",
        raw_query: "",
        headers: &base,
        body: b"{}",
    };
    let mut all = base.clone();
    all.extend(sign_headers(("test", "test"), &scope, &date, &req));
    all
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn raw(c: &ControlClient, headers: &[(String, String)], body: &[u8]) -> (u16, Value) {
    let h: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    c.raw("POST", "/", &h, body.to_vec())
        .await
        .expect("reach the server")
}

#[test]
fn the_right_secret_works_and_the_default_pair_is_the_default_account() {
    let sim = Sim::start_with_config(SECOND_ACCOUNT);
    block_on(async {
        let alice = sim.kms_as(
            "AKIDALICE0000000000A",
            "alice/secret+key",
            "us-east-1",
            None,
        );
        alice
            .list_keys()
            .send()
            .await
            .expect("alice's own secret is accepted");
        let key = sim
            .kms()
            .create_key()
            .send()
            .await
            .expect("test/test still works");
        let arn = key.key_metadata().unwrap().arn().unwrap().to_string();
        assert!(
            arn.starts_with("arn:aws:kms:us-east-1:111122223333:key/"),
            "{arn}"
        );
    });
}

#[test]
fn a_wrong_secret_is_an_invalid_signature_in_aws_words() {
    let sim = Sim::start_with_config(SECOND_ACCOUNT);
    block_on(async {
        let wrong = sim.kms_as("AKIDALICE0000000000A", "not-alice's", "us-east-1", None);
        let r = wrong.list_keys().send().await;
        assert_eq!(
            code(wrong.list_keys().send().await),
            "InvalidSignatureException"
        );
        assert_eq!(message(r), SIGNATURE_MISMATCH);
    });
}

#[test]
fn an_unknown_access_key_is_an_unrecognized_client() {
    let sim = Sim::start();
    block_on(async {
        let stranger = sim.kms_as("AKIDNOBODY", "x", "us-east-1", None);
        let r = stranger.describe_custom_key_stores().send().await;
        assert_eq!(
            code(stranger.describe_custom_key_stores().send().await),
            "UnrecognizedClientException"
        );
        assert_eq!(
            message(r),
            "The security token included in the request is invalid."
        );
    });
}

#[test]
fn an_unsigned_request_is_missing_its_authentication_token_on_every_aws_door() {
    let sim = Sim::start();
    block_on(async {
        let c = sim.control().with_signing(None);
        let (st, v) = c
            .raw(
                "POST",
                "/",
                &[
                    ("content-type", "application/x-amz-json-1.1"),
                    ("x-amz-target", "TrentService.ListKeys"),
                ],
                b"{}".to_vec(),
            )
            .await
            .unwrap();
        assert_eq!(
            (st, v["__type"].as_str()),
            (400, Some("MissingAuthenticationTokenException")),
            "{v}"
        );
        let (st, v) = c
            .raw(
                "POST",
                "/",
                &[
                    ("content-type", "application/x-amz-json-1.1"),
                    ("x-amz-target", "BaldrApiService.DescribeClusters"),
                ],
                b"{}".to_vec(),
            )
            .await
            .unwrap();
        assert_eq!(
            (st, v["__type"].as_str()),
            (400, Some("MissingAuthenticationTokenException")),
            "{v}"
        );
        let (st, v) = c
            .raw(
                "POST",
                "/",
                &[("content-type", "application/x-www-form-urlencoded")],
                b"Action=GetCallerIdentity&Version=2011-06-15".to_vec(),
            )
            .await
            .unwrap();
        let xml = v.as_str().unwrap_or_default();
        assert_eq!(st, 403, "{xml}");
        assert!(
            xml.contains("<Code>MissingAuthenticationToken</Code>"),
            "{xml}"
        );
        // The control door stays unsigned.
        c.call("GET", "/_sim/health", None)
            .await
            .expect("health, unsigned");
    });
}

#[test]
fn a_request_time_more_than_five_minutes_off_has_expired() {
    let sim = Sim::start();
    block_on(async {
        let c = sim.control();
        let (st, v) = raw(&c, &list_keys_signed_at(&sim, now_secs() - 600), b"{}").await;
        assert_eq!(
            (st, v["__type"].as_str()),
            (400, Some("InvalidSignatureException")),
            "{v}"
        );
        let m = v["message"].as_str().unwrap();
        assert!(
            m.starts_with("Signature expired: ") && m.ends_with(" - 5 min.)"),
            "{m}"
        );
        let (st, v) = raw(&c, &list_keys_signed_at(&sim, now_secs() - 30), b"{}").await;
        assert_eq!(st, 200, "30 s of skew is fine: {v}");
        let (st, _) = raw(&c, &list_keys_signed_at(&sim, now_secs()), b"{\"Limit\":5}").await;
        assert_eq!(st, 400, "a body other than the signed one does not pass");
    });
}

#[test]
fn sts_get_caller_identity_answers_with_the_signing_account() {
    let sim = Sim::start_with_config(SECOND_ACCOUNT);
    block_on(async {
        let form = [(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )];
        let body = b"Action=GetCallerIdentity&Version=2011-06-15".to_vec();
        let (st, v) = sim
            .control()
            .raw("POST", "/", &form, body.clone())
            .await
            .unwrap();
        let xml = v.as_str().unwrap().to_string();
        assert_eq!(st, 200, "{xml}");
        assert!(xml.contains("<Account>111122223333</Account>"), "{xml}");
        assert!(
            xml.contains("<Arn>arn:aws:iam::111122223333:root</Arn>"),
            "{xml}"
        );
        let alice = sim.control().with_signing(Some((
            "AKIDALICE0000000000A",
            "alice/secret+key",
            "eu-west-1",
        )));
        let (st, v) = alice.raw("POST", "/", &form, body).await.unwrap();
        let xml = v.as_str().unwrap().to_string();
        assert_eq!(st, 200, "{xml}");
        assert!(xml.contains("<Account>444455556666</Account>"), "{xml}");
        assert!(
            xml.contains("<Arn>arn:aws:iam::444455556666:user/alice</Arn>"),
            "{xml}"
        );
        assert!(xml.contains("<UserId>AIDA"), "{xml}");
    });
}

#[test]
fn mode_none_accepts_any_signature_as_before() {
    let sim = Sim::start_with_config("[auth]\nmode = \"none\"\n");
    block_on(async {
        let anyone = sim.kms_as("AKIDNOBODY", "whatever", "us-east-1", None);
        anyone.list_keys().send().await.expect("any key passes");
        let (st, v) = sim
            .control()
            .with_signing(None)
            .raw(
                "POST",
                "/",
                &[("x-amz-target", "TrentService.ListKeys")],
                b"{}".to_vec(),
            )
            .await
            .unwrap();
        assert_eq!(st, 200, "unsigned passes too: {v}");
    });
}

#[test]
fn the_cbor_door_verifies_signatures_too() {
    let sim = Sim::start();
    block_on(async {
        let h = [
            ("smithy-protocol", "rpc-v2-cbor"),
            ("content-type", "application/cbor"),
        ];
        let path = "/service/BaldrApiService/operation/DescribeClusters";
        // An empty CBOR map.
        let body = vec![0xa0];
        let (st, _) = sim
            .control()
            .raw("POST", path, &h, body.clone())
            .await
            .unwrap();
        assert_eq!(st, 200);
        let (st, _) = sim
            .control()
            .with_signing(Some(("test", "wrong", "us-east-1")))
            .raw("POST", path, &h, body)
            .await
            .unwrap();
        assert_eq!(st, 400);
    });
}

/// Fire `total` Encrypts of `body` from `tasks` concurrent connections; count those admitted
/// (answered, or refused by the operation itself with `ValidationException`) and those
/// throttled (checking the throttle's exact wording), panicking on anything else.
async fn flood(endpoint: &str, body: Value, tasks: usize, total: usize) -> (usize, usize) {
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let c = ControlClient::new(endpoint);
        let body = body.clone();
        let next = next.clone();
        handles.push(tokio::spawn(async move {
            let (mut admitted, mut throttled) = (0, 0);
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < total {
                match c.aws("TrentService.Encrypt", body.clone()).await {
                    Ok(_) => admitted += 1,
                    Err(cks_sim::client::ClientError::Api {
                        status, type_name, ..
                    }) if type_name == "ValidationException" => {
                        assert_eq!(status, 400);
                        admitted += 1;
                    }
                    Err(cks_sim::client::ClientError::Api {
                        status,
                        type_name,
                        message,
                    }) => {
                        assert_eq!((status, type_name.as_str()), (400, "ThrottlingException"));
                        assert_eq!(
                            message,
                            "You have exceeded the rate at which you may call KMS. Reduce the \
                             frequency of your calls."
                        );
                        throttled += 1;
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            (admitted, throttled)
        }));
    }
    let mut sum = (0, 0);
    for h in handles {
        let (a, b) = h.await.unwrap();
        sum = (sum.0 + a, sum.1 + b);
    }
    sum
}

/// An Encrypt on `key` that the operation refuses (no `Plaintext`) without touching the
/// token: it still counts against the key's store, so a burst of them outpaces 1,800 a
/// second on any machine.
fn cheap_encrypt(key: &str) -> Value {
    serde_json::json!({ "KeyId": key })
}

fn real_encrypt(key: &str) -> Value {
    serde_json::json!({ "KeyId": key, "Plaintext": "aGVsbG8=" })
}

/// The store's quota at `[quotas] scale = 0.1`: 180 a second, which any machine running the
/// tests outpaces (the unit tests of `auth::quota` show the unscaled 1,800 exactly).
const SCALED_STORE_RPS: f64 = 180.0;

#[test]
fn with_quotas_on_a_burst_on_one_store_is_throttled_and_the_standard_retry_recovers() {
    // The store and its key first, then quotas on (a restart: the store reconnects).
    let mut sim = Sim::start_with_config("");
    let key = block_on(async {
        let (store, _) = connected_store(&sim, "quota-store").await;
        cloudhsm_key(&sim, &store).await
    });
    std::fs::write(
        sim.dir.path().join("config.toml"),
        "[quotas]\nmode = \"aws\"\nscale = 0.1\n",
    )
    .unwrap();
    sim.restart();
    block_on(async {
        let started = std::time::Instant::now();
        let (ok, throttled) = flood(&sim.endpoint, cheap_encrypt(&key), 32, 2000).await;
        let secs = started.elapsed().as_secs_f64();
        assert!(
            throttled > 0,
            "2,000 Encrypts in {secs:.2} s: none throttled"
        );
        // One second's burst plus the rate after it, never more.
        assert!(
            (ok as f64) <= SCALED_STORE_RPS * (1.0 + secs) + 1.0,
            "{ok} admitted in {secs:.2} s"
        );
        // While another burst drains the store, an SDK client without retries sees the
        // ThrottlingException, and one in the standard retry mode backs off and gets through.
        let background = {
            let endpoint = sim.endpoint.clone();
            let key = key.clone();
            tokio::spawn(async move { flood(&endpoint, cheap_encrypt(&key), 16, 3000).await })
        };
        let once = sim.kms_as(
            "test",
            "test",
            "us-east-1",
            Some(aws_sdk_kms::config::retry::RetryConfig::standard().with_max_attempts(1)),
        );
        let encrypt = |c: &aws_sdk_kms::Client| {
            c.encrypt()
                .key_id(&key)
                .plaintext(aws_sdk_kms::primitives::Blob::new(b"retry me".to_vec()))
                .send()
        };
        let mut seen = None;
        for _ in 0..500 {
            if let Err(e) = encrypt(&once).await {
                seen = e.code().map(str::to_string);
                break;
            }
        }
        assert_eq!(seen.as_deref(), Some("ThrottlingException"));
        let retrying = sim.kms_as(
            "test",
            "test",
            "us-east-1",
            Some(aws_sdk_kms::config::retry::RetryConfig::standard().with_max_attempts(10)),
        );
        for _ in 0..20 {
            encrypt(&retrying)
                .await
                .expect("the standard retry mode recovers from ThrottlingException");
        }
        let (_, throttled) = background.await.unwrap();
        assert!(throttled > 0, "the second burst was throttled too");
    });
}

#[test]
fn with_quotas_off_the_same_burst_is_never_throttled() {
    let sim = Sim::start();
    block_on(async {
        let (store, _) = connected_store(&sim, "no-quota-store").await;
        let key = cloudhsm_key(&sim, &store).await;
        let (ok, throttled) = flood(&sim.endpoint, real_encrypt(&key), 32, 3000).await;
        assert_eq!((ok, throttled), (3000, 0));
    });
}
