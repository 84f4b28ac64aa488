//! Criterion benchmark of the console's server-side rendering (issue 19): the key stores page
//! with 10 stores, and one store's keys page with 1,000 keys. Each request goes through the
//! server's own router in process (routing, the same-origin guard, `DescribeCustomKeyStores`
//! through `kms::handle`, the template and the response body), without a socket.
//!
//! `cargo bench --bench console` (SoftHSM2 from `SOFTHSM2_CONF`, as `.cargo/config.toml` or
//! `scripts/bench` sets it). Target: ≤ 50 ms per page.

use axum::body::Body;
use axum::http::Request;
use cks_sim::app::App;
use cks_sim::config::{Config, FileConfig, Overrides};
use cks_sim::protocol::input::Input;
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tower_service::Service;

const KEYS: usize = 1_000;
/// Cluster IDs for the nine extra stores (a store per cluster).
const EXTRA_CLUSTERS: [&str; 9] = [
    "cluster-benchstorea",
    "cluster-benchstoreb",
    "cluster-benchstorec",
    "cluster-benchstored",
    "cluster-benchstoree",
    "cluster-benchstoref",
    "cluster-benchstoreg",
    "cluster-benchstoreh",
    "cluster-benchstorei",
];

fn softhsm_conf() {
    let conf = PathBuf::from(
        std::env::var_os("SOFTHSM2_CONF")
            .expect("SOFTHSM2_CONF is set by .cargo/config.toml or scripts/bench"),
    );
    cks_sim::hsm::SoftToken::SoftHsm2
        .write_conf_if_missing(&conf, 0)
        .expect("write softhsm2.conf");
}

async fn call(app: &Arc<App>, op: &str, body: Value) -> Value {
    let input = Input::parse_json(body.to_string().as_bytes()).expect("input");
    match cks_sim::kms::handle(app, op, input).await {
        Ok(Some(v)) => v,
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

/// A seed with nine more clusters, each with a (disconnected) key store.
fn seed_file(dir: &Path) -> PathBuf {
    let mut toml = String::new();
    for (i, id) in EXTRA_CLUSTERS.iter().enumerate() {
        toml.push_str(&format!("[[cluster]]\nid = \"{id}\"\nhsms = 2\n\n"));
        toml.push_str(&format!(
            "[[key_store]]\nname = \"BenchStore{i}\"\ncluster_id = \"{id}\"\npassword = \"benchPassw0rd\"\n\n"
        ));
    }
    let path = dir.join("bench-seed.toml");
    std::fs::write(&path, toml).expect("write seed");
    path
}

/// Ten stores; the default cluster's is connected and holds 1,000 keys. Returns its ID.
async fn populate(app: &Arc<App>, dir: &Path) -> String {
    let v = call(
        app,
        "CreateCustomKeyStore",
        json!({
            "CustomKeyStoreName": "BenchKeys",
            "CloudHsmClusterId": read(dir, "default-cluster-id"),
            "TrustAnchorCertificate": read(dir, "customerCA.crt"),
            "KeyStorePassword": read(dir, "kmsuser-password"),
        }),
    )
    .await;
    let store = v["CustomKeyStoreId"].as_str().expect("id").to_string();
    call(
        app,
        "ConnectCustomKeyStore",
        json!({"CustomKeyStoreId": store}),
    )
    .await;
    let t0 = std::time::Instant::now();
    loop {
        let d = call(
            app,
            "DescribeCustomKeyStores",
            json!({"CustomKeyStoreId": store}),
        )
        .await;
        if d["CustomKeyStores"][0]["ConnectionState"] == "CONNECTED" {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "never connected: {d}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for i in 0..KEYS {
        let k = call(
            app,
            "CreateKey",
            json!({"Origin": "AWS_CLOUDHSM", "CustomKeyStoreId": store}),
        )
        .await;
        if i % 2 == 0 {
            let id = k["KeyMetadata"]["KeyId"].as_str().expect("key id");
            call(
                app,
                "CreateAlias",
                json!({"AliasName": format!("alias/bench-{i}"), "TargetKeyId": id}),
            )
            .await;
        }
    }
    store
}

async fn get(router: &mut axum::Router, path: &str) -> usize {
    let req = Request::get(path).body(Body::empty()).expect("request");
    let Ok(resp) = router.call(req).await;
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    http_body_util::BodyExt::collect(resp.into_body())
        .await
        .expect("body")
        .to_bytes()
        .len()
}

fn render(c: &mut Criterion) {
    softhsm_conf();
    let dir = tempfile::Builder::new()
        .prefix("cks-sim-bench-console-")
        .tempdir()
        .expect("tempdir");
    let mut file = FileConfig::default();
    file.simulation.connect_delay_ms = Some(0);
    let ov = Overrides {
        data_dir: Some(dir.path().to_path_buf()),
        seed: Some(seed_file(dir.path())),
        ..Overrides::default()
    };
    let config = Config::from_parts(file, &ov).expect("config");
    let app = App::open(config).expect("open app");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let store = rt.block_on(async {
        cks_sim::start(&app).await.expect("start");
        populate(&app, dir.path()).await
    });
    assert_eq!(app.world().stores.len(), 10);
    let mut router = cks_sim::server::router(Arc::clone(&app));
    let keys_path = format!("/console/key-stores/{store}/keys");
    let mut g = c.benchmark_group("console_render");
    g.bench_function("key_stores_10", |b| {
        b.iter(|| rt.block_on(get(&mut router, "/console/key-stores")))
    });
    g.bench_function("store_keys_1000", |b| {
        b.iter(|| rt.block_on(get(&mut router, &keys_path)))
    });
    g.finish();
    drop(rt);
    drop(dir);
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = render
}
criterion_main!(benches);
