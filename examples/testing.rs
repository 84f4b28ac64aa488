//! cks-sim inside a test process: start a simulator, create a key store on its default
//! cluster, connect it, create a key in it, encrypt and decrypt, stop.
//!
//! `cargo run --example testing --features testing` (with `SOFTHSM2_CONF` set, as
//! `.cargo/config.toml` does for this repository).

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{ConnectionStateType, OriginType};
use cks_sim::testing::Simulator;
use std::time::{Duration, Instant};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Res<()> {
    let sim = Simulator::start()?;
    println!("cks-sim on {}", sim.endpoint());
    let kms = aws_sdk_kms::Client::from_conf(sim.kms_config());

    let store = kms
        .create_custom_key_store()
        .custom_key_store_name("example")
        .cloud_hsm_cluster_id(sim.cluster_id())
        .trust_anchor_certificate(sim.trust_anchor())
        .key_store_password(sim.kmsuser_password())
        .send()
        .await?
        .custom_key_store_id()
        .ok_or("no key store ID")?
        .to_string();
    kms.connect_custom_key_store()
        .custom_key_store_id(&store)
        .send()
        .await?;
    wait_connected(&kms, &store).await?;
    println!("key store {store} CONNECTED");

    let key = kms
        .create_key()
        .origin(OriginType::AwsCloudhsm)
        .custom_key_store_id(&store)
        .send()
        .await?
        .key_metadata()
        .ok_or("no key metadata")?
        .key_id()
        .to_string();
    let secret = b"attack at dawn";
    let sealed = kms
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(secret.to_vec()))
        .send()
        .await?
        .ciphertext_blob()
        .ok_or("no ciphertext")?
        .clone();
    let opened = kms.decrypt().ciphertext_blob(sealed).send().await?;
    let plain = opened.plaintext().ok_or("no plaintext")?.as_ref();
    if plain != secret {
        return Err("Decrypt did not give the plaintext back".into());
    }
    println!("key {key}: Encrypt and Decrypt round-trip");
    drop(kms);
    drop(sim); // stops the server and removes its data directory
    println!("stopped");
    Ok(())
}

/// Poll DescribeCustomKeyStores until the store is CONNECTED (30 s at most).
async fn wait_connected(kms: &aws_sdk_kms::Client, store: &str) -> Res<()> {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let out = kms
            .describe_custom_key_stores()
            .custom_key_store_id(store)
            .send()
            .await?;
        let state = out
            .custom_key_stores()
            .first()
            .and_then(|s| s.connection_state().cloned());
        match state {
            Some(ConnectionStateType::Connected) => return Ok(()),
            Some(ConnectionStateType::Failed) => return Err("the key store FAILED".into()),
            _ if Instant::now() > end => return Err("the key store did not connect".into()),
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}
