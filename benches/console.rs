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
/// Clusters beside the default one (a key store needs a cluster of its own).
const EXTRA_CLUSTERS: usize = 9;

fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

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

/// A seed with nine more clusters (IDs derived from the data directory's fresh salt, so their
/// tokens' labels are new).
fn seed_file(dir: &Path) -> PathBuf {
    let toml = "[[cluster]]\nhsms = 2\n\n".repeat(EXTRA_CLUSTERS);
    let path = dir.join("bench-seed.toml");
    std::fs::write(&path, toml).expect("write seed");
    path
}

/// A disconnected store on each seeded cluster.
async fn extra_stores(app: &Arc<App>, dir: &Path) {
    let default = read(dir, "default-cluster-id");
    let clusters: Vec<String> = app.world().clusters.keys().map(|k| k.to_string()).collect();
    for (i, id) in clusters.iter().filter(|c| **c != default).enumerate() {
        let anchor = read(&dir.join("clusters").join(id), "customerCA.crt");
        call(
            app,
            "CreateCustomKeyStore",
            json!({
                "CustomKeyStoreName": format!("BenchStore{i}"),
                "CloudHsmClusterId": id,
                "TrustAnchorCertificate": anchor,
                "KeyStorePassword": "benchPassw0rd",
            }),
        )
        .await;
    }
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

/// `GET path` through the router; the page's HTML.
async fn get(router: &mut axum::Router, path: &str) -> String {
    let req = Request::get(path)
        .header("host", "localhost")
        .body(Body::empty())
        .expect("request");
    let Ok(resp) = router.call(req).await;
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .expect("body")
        .to_bytes();
    String::from_utf8(body.to_vec()).expect("UTF-8 page")
}

fn render(c: &mut Criterion) {
    softhsm_conf();
    let dir = tempfile::Builder::new()
        .prefix("cks-sim-bench-console-")
        .tempdir()
        .expect("tempdir");
    let mut file = FileConfig::default();
    file.hsm.internal_token_label = Some(format!("bench-internal-{}", short_id()));
    file.hsm.internal_token_pin = Some("bench-internal-pin".into());
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
        extra_stores(&app, dir.path()).await;
        populate(&app, dir.path()).await
    });
    assert_eq!(app.world().stores.len(), 10);
    let mut router = cks_sim::server::router(Arc::clone(&app));
    let keys_path = format!("/console/key-stores/{store}/keys");
    // What is measured is the full pages: 10 rows, and 1,000 keys.
    let list = rt.block_on(get(&mut router, "/console/key-stores"));
    assert_eq!(list.matches("<tr data-store=").count(), 10);
    let keys = rt.block_on(get(&mut router, &keys_path));
    assert_eq!(keys.matches("<tr data-key=").count(), KEYS);
    println!(
        "console pages: key stores {} bytes, 1,000 keys {} bytes",
        list.len(),
        keys.len()
    );
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
