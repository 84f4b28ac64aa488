//! Criterion benchmarks of the in-process hot paths (issue 7): the ciphertext blob format, the
//! awsJson1_1 request decode, the token's AES-GCM encrypt through `cks_sim::hsm::Token` (session
//! pool and blocking thread included), and the service's whole Encrypt path without HTTP
//! (`kms::handle`, on a CloudHSM-store key and on an AWS_KMS key, HSM call included).
//!
//! `cargo bench --bench hot_paths` (SoftHSM2 from `SOFTHSM2_CONF`, as `.cargo/config.toml` or
//! `scripts/bench` sets it). Every token this creates has a fresh label.

use base64::Engine;
use cks_sim::app::App;
use cks_sim::config::{Config, FileConfig, Overrides};
use cks_sim::hsm::{Module, Provisioner, Token};
use cks_sim::kms::crypto::Blob;
use cks_sim::protocol::input::Input;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Make sure `SOFTHSM2_CONF` names a config whose token directory exists.
fn softhsm_conf() {
    let conf = PathBuf::from(
        std::env::var_os("SOFTHSM2_CONF")
            .expect("SOFTHSM2_CONF is set by .cargo/config.toml or scripts/bench"),
    );
    cks_sim::hsm::SoftToken::SoftHsm2
        .write_conf_if_missing(&conf, 0)
        .expect("write softhsm2.conf");
}

fn module_path() -> PathBuf {
    let explicit = std::env::var_os("CKS_SIM_PKCS11_MODULE").map(PathBuf::from);
    cks_sim::hsm::module::locate(explicit.as_deref()).expect("a PKCS#11 module")
}

fn blob(c: &mut Criterion) {
    let mut g = c.benchmark_group("blob");
    for n in [32usize, 4096] {
        let b = Blob {
            version: cks_sim::kms::crypto::BLOB_VERSION,
            key_id: [7; 16],
            material: [9; 16],
            iv: vec![1; 12],
            tag: [2; 16],
            ciphertext: vec![3; n],
        };
        let encoded = b.encode();
        g.throughput(Throughput::Bytes(n as u64));
        g.bench_with_input(BenchmarkId::new("encode", n), &b, |bch, b| {
            bch.iter(|| black_box(b).encode())
        });
        g.bench_with_input(BenchmarkId::new("decode", n), &encoded, |bch, e| {
            bch.iter(|| Blob::decode(black_box(e)))
        });
    }
    g.finish();
}

fn request(c: &mut Criterion) {
    let mut g = c.benchmark_group("request_decode");
    for n in [32usize, 4096] {
        let body = json!({
            "KeyId": "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "Plaintext": b64(&vec![0x42; n]),
            "EncryptionContext": {"purpose": "bench", "tenant": "a"},
        })
        .to_string()
        .into_bytes();
        g.throughput(Throughput::Bytes(body.len() as u64));
        // Before the typed layer: the two members Encrypt read first, through `Input`.
        g.bench_with_input(
            BenchmarkId::new("encrypt_members", n),
            &body,
            |bch, body| {
                bch.iter(|| {
                    let i = Input::parse_json(black_box(body)).expect("parse");
                    let pt = i.opt_blob("Plaintext", 1, 4096).expect("blob");
                    black_box((i.opt_str("KeyId").ok().flatten().map(str::len), pt))
                })
            },
        );
        // The typed layer: the whole `EncryptRequest`, every constraint of the model checked.
        g.bench_with_input(BenchmarkId::new("encrypt_typed", n), &body, |bch, body| {
            bch.iter(|| {
                let i = Input::parse_json(black_box(body)).expect("parse");
                let v = Value::Object(i.0);
                let r = cks_sim::protocol::decode::kms::decode_request("Encrypt", &v);
                black_box(r.expect("an operation").expect("valid"))
            })
        });
    }
    g.finish();
}

/// The SigV4 verification of one Encrypt request with the headers `aws-sdk-kms` signs (issue
/// 21's target: at most 10 µs of server CPU per request).
fn sigv4(c: &mut Criterion) {
    use cks_sim::auth::{AuthMode, AuthSettings, Authenticator, Credential, SignedRequest};
    let settings = AuthSettings {
        mode: AuthMode::SigV4,
        credentials: vec![Credential {
            access_key_id: "test".into(),
            secret_access_key: "test".into(),
            account: "111122223333".into(),
            user: None,
        }],
    };
    let auth = Authenticator::new(&settings, "111122223333", "us-east-1");
    let body = json!({
        "KeyId": "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "Plaintext": b64(&[0x42; 32]),
    })
    .to_string()
    .into_bytes();
    let base: Vec<(String, String)> = [
        (
            "amz-sdk-invocation-id",
            "2a3c0f0e-6d5b-4a36-9a2c-6f2ab1c8e1d4",
        ),
        ("amz-sdk-request", "attempt=1; max=3"),
        ("content-length", "120"),
        ("content-type", "application/x-amz-json-1.1"),
        ("host", "127.0.0.1:4599"),
        ("x-amz-target", "TrentService.Encrypt"),
        (
            "x-amz-user-agent",
            "aws-sdk-rust/1.3.9 api/kms/1.99.0 os/linux lang/rust/1.94.0",
        ),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let now = std::time::SystemTime::now();
    let secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let date = cks_sim::auth::format_amz_date(secs);
    let scope = cks_sim::auth::sigv4::Scope {
        date: date[..8].to_string(),
        region: "us-east-1".into(),
        service: "kms".into(),
    };
    let unsigned = SignedRequest {
        method: "POST",
        raw_path: "/",
        raw_query: "",
        headers: &base,
        body: &body,
    };
    let mut headers = base.clone();
    headers.extend(cks_sim::auth::sign_headers(
        ("test", "test"),
        &scope,
        &date,
        &unsigned,
    ));
    let req = SignedRequest {
        method: "POST",
        raw_path: "/",
        raw_query: "",
        headers: &headers,
        body: &body,
    };
    auth.verify(&req, "kms", now)
        .expect("the bench's request verifies");
    c.bench_function("sigv4_verify/encrypt_32", |bch| {
        bch.iter(|| auth.verify(black_box(&req), "kms", now).expect("verify"))
    });
}

fn token(c: &mut Criterion) {
    softhsm_conf();
    let module = Module::load(&module_path()).expect("load module");
    let label = format!("bench-{}", short_id());
    let pin = "bench-user-pin";
    Provisioner::SoftToken
        .ensure_token(&module, &label, "bench-so-pin", pin)
        .expect("provision token");
    let rt = runtime();
    let t = Arc::new(Token::open(&module, &label, 4).expect("open token"));
    let id = *uuid::Uuid::new_v4().as_bytes();
    rt.block_on(async {
        t.login(pin).await.expect("login");
        t.generate_aes_key("arn:aws:kms:us-east-1:111122223333:key/bench", id)
            .await
            .expect("generate");
    });
    let mut g = c.benchmark_group("token");
    for n in [32usize, 4096] {
        g.throughput(Throughput::Bytes(n as u64));
        let pt = vec![0x42u8; n];
        g.bench_with_input(BenchmarkId::new("encrypt", n), &pt, |bch, pt| {
            bch.iter(|| {
                rt.block_on(t.encrypt(id, vec![1; 17], pt.clone()))
                    .expect("encrypt")
            })
        });
    }
    g.finish();
    rt.block_on(t.logout()).expect("logout");
}

async fn call(app: &Arc<App>, op: &str, body: Value) -> Value {
    let input = Input::parse_json(body.to_string().as_bytes()).expect("input");
    match cks_sim::protocol::dispatch::kms(app, op, input).await {
        Ok(Some(r)) => cks_sim::protocol::response::to_json(&r),
        Ok(None) => panic!("{op}: unknown operation"),
        Err(e) => panic!("{op}: {e:?}"),
    }
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("read {file}: {e}"))
        .trim()
        .to_string()
}

/// An in-process simulator on a fresh data dir: a connected store with one key, and an
/// AWS_KMS key (on an internal token with a fresh label).
fn service(c: &mut Criterion) {
    softhsm_conf();
    let dir = tempfile::Builder::new()
        .prefix("cks-sim-bench-")
        .tempdir()
        .expect("tempdir");
    let mut file = FileConfig::default();
    file.hsm.internal_token_label = Some(format!("bench-internal-{}", short_id()));
    file.hsm.internal_token_pin = Some("bench-internal-pin".into());
    file.simulation.connect_delay_ms = Some(0);
    let ov = Overrides {
        data_dir: Some(dir.path().to_path_buf()),
        ..Overrides::default()
    };
    let config = Config::from_parts(file, &ov).expect("config");
    let app = App::open(config).expect("open app");
    let rt = runtime();
    let (hsm_key, kms_key) = rt.block_on(async {
        cks_sim::start(&app).await.expect("start");
        let d = dir.path();
        let v = call(
            &app,
            "CreateCustomKeyStore",
            json!({
                "CustomKeyStoreName": "bench",
                "CloudHsmClusterId": read(d, "default-cluster-id"),
                "TrustAnchorCertificate": read(d, "customerCA.crt"),
                "KeyStorePassword": read(d, "kmsuser-password"),
            }),
        )
        .await;
        let store = v["CustomKeyStoreId"]
            .as_str()
            .expect("store id")
            .to_string();
        call(
            &app,
            "ConnectCustomKeyStore",
            json!({ "CustomKeyStoreId": store }),
        )
        .await;
        let t0 = std::time::Instant::now();
        loop {
            let d = call(
                &app,
                "DescribeCustomKeyStores",
                json!({ "CustomKeyStoreId": store }),
            )
            .await;
            if d["CustomKeyStores"][0]["ConnectionState"] == "CONNECTED" {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "store never connected: {d}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let hk = call(
            &app,
            "CreateKey",
            json!({"Origin": "AWS_CLOUDHSM", "CustomKeyStoreId": store}),
        )
        .await;
        let kk = call(&app, "CreateKey", json!({})).await;
        (
            hk["KeyMetadata"]["KeyId"].as_str().expect("id").to_string(),
            kk["KeyMetadata"]["KeyId"].as_str().expect("id").to_string(),
        )
    });
    let mut g = c.benchmark_group("service_encrypt");
    for (name, key) in [("cloudhsm", &hsm_key), ("aws_kms", &kms_key)] {
        let body = json!({"KeyId": key, "Plaintext": b64(&[0x42; 32])})
            .to_string()
            .into_bytes();
        g.bench_with_input(BenchmarkId::new(name, 32), &body, |bch, body| {
            bch.iter(|| {
                rt.block_on(async {
                    let input = Input::parse_json(body).expect("input");
                    cks_sim::protocol::dispatch::kms(&app, "Encrypt", input)
                        .await
                        .expect("encrypt")
                })
            })
        });
    }
    g.finish();
    drop(rt);
    drop(dir);
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = blob, request, sigv4, token, service
}
criterion_main!(benches);
