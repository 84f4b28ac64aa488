//! Crash safety: SIGKILL at random points during a burst of mutations, then a restart. Every
//! acknowledged change must be there, nothing half-done visible, and every live key's material
//! on its token.

use crate::common::*;
use serde_json::json;
use std::collections::BTreeMap;

#[test]
fn twenty_kill_restart_cycles_lose_no_acknowledged_write() {
    let mut sim = Sim::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (store, cluster) = rt.block_on(connected_store(&sim, "crash"));
    // key id -> (alias, tag value, disabled) as acknowledged
    let mut acked: BTreeMap<String, (Option<String>, Option<String>, bool)> = BTreeMap::new();
    let mut rng_state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        rng_state
    };
    for cycle in 0..20 {
        let c = sim.control();
        let store2 = store.clone();
        // A burst of mutations in the background; acknowledgements come back over a channel.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let burst = rt.spawn(async move {
            for i in 0..1000u32 {
                let body = if i % 2 == 0 {
                    json!({"Origin": "AWS_CLOUDHSM", "CustomKeyStoreId": store2})
                } else {
                    json!({"Description": format!("cycle {cycle} #{i}")})
                };
                let v = match c.aws("TrentService.CreateKey", body).await {
                    Ok(v) => v,
                    Err(e) => {
                        eprintln!("burst stopped: {e}");
                        return;
                    }
                };
                let id = v["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
                let _ = tx.send((id.clone(), "created", String::new()));
                let alias = format!("alias/c{cycle}-{i}");
                if c.aws(
                    "TrentService.CreateAlias",
                    json!({"AliasName": alias, "TargetKeyId": id}),
                )
                .await
                .is_err()
                {
                    return;
                }
                let _ = tx.send((id.clone(), "alias", alias));
                let tag = format!("v{i}");
                if c.aws(
                    "TrentService.TagResource",
                    json!({"KeyId": id, "Tags": [{"TagKey": "t", "TagValue": tag}]}),
                )
                .await
                .is_err()
                {
                    return;
                }
                let _ = tx.send((id.clone(), "tag", tag));
                if c.aws("TrentService.DisableKey", json!({"KeyId": id}))
                    .await
                    .is_err()
                {
                    return;
                }
                let _ = tx.send((id, "disabled", String::new()));
            }
        });
        // Wait for the burst's first acknowledgement (so every cycle proves something even on
        // a loaded machine), then let it run a random moment longer (0–80 ms) and kill the
        // server mid-flight.
        let first = deadline_poll("the burst's first acknowledgement", 30, || {
            rx.try_recv().ok()
        });
        let wait = next() % 81;
        let until = std::time::Instant::now() + std::time::Duration::from_millis(wait);
        deadline_poll("the kill point", 5, || {
            (std::time::Instant::now() >= until).then_some(())
        });
        sim.kill9();
        rt.block_on(async {
            let _ = burst.await;
        });
        let rest = std::iter::from_fn(|| rx.try_recv().ok());
        for (id, what, val) in std::iter::once(first).chain(rest) {
            let e = acked.entry(id).or_default();
            match what {
                "alias" => e.0 = Some(val),
                "tag" => e.1 = Some(val),
                "disabled" => e.2 = true,
                _ => {}
            }
        }
        sim.respawn();
        rt.block_on(every_token_object_explained(&sim, &cluster, cycle));
        rt.block_on(async {
            wait_state(&sim.kms(), &store, "CONNECTED").await;
            let kms = sim.kms();
            for (id, (alias, tag, disabled)) in &acked {
                let d = kms
                    .describe_key()
                    .key_id(id)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("cycle {cycle}: acknowledged key {id} lost: {e:?}"));
                let m = d.key_metadata().unwrap();
                if *disabled {
                    assert_eq!(
                        m.key_state().unwrap().as_str(),
                        "Disabled",
                        "cycle {cycle}: key {id}"
                    );
                }
                if let Some(a) = alias {
                    let r = kms
                        .describe_key()
                        .key_id(a)
                        .send()
                        .await
                        .unwrap_or_else(|e| panic!("alias {a} lost: {e:?}"));
                    assert_eq!(r.key_metadata().unwrap().key_id(), id);
                }
                if let Some(t) = tag {
                    let tags = kms.list_resource_tags().key_id(id).send().await.unwrap();
                    assert_eq!(tags.tags()[0].tag_value(), t.as_str(), "tag of {id}");
                }
            }
        });
    }
    assert!(
        acked.len() >= 20,
        "the bursts acknowledged too little to prove anything: {}",
        acked.len()
    );
    // Nothing half-done: every key KMS lists in the store has its material on the token, and
    // works.
    rt.block_on(async {
        let kms = sim.kms();
        let objects = sim.inspect_token(&cluster, &token_pin(&sim, &cluster).await);
        let keys = all_key_ids(&sim).await;
        for id in &keys {
            let d = kms.describe_key().key_id(id).send().await.unwrap();
            if d.key_metadata().unwrap().custom_key_store_id().is_some() {
                let n = objects
                    .iter()
                    .filter(|o| o["label"].as_str().unwrap().ends_with(id.as_str()))
                    .count();
                assert_eq!(n, 1, "KMS key {id} without its material");
                kms.enable_key().key_id(id).send().await.unwrap();
                kms.encrypt()
                    .key_id(id)
                    .plaintext(aws_sdk_kms::primitives::Blob::new(
                        b"after the crash".to_vec(),
                    ))
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("key {id} unusable after crashes: {e:?}"));
            }
        }
    });
}

/// After a restart: every object on the cluster's token is a live key's or a recorded orphan
/// (material made for a key whose creation was cut off is found at start-up), and every
/// orphan record names an object that is there.
async fn every_token_object_explained(sim: &Sim, cluster: &str, cycle: u32) {
    let c = sim.control();
    let objects = sim.inspect_token(cluster, &token_pin(sim, cluster).await);
    let keys = all_key_ids(sim).await;
    let orphans = c.call("GET", "/_sim/orphans", None).await.expect("orphans");
    let orphan_ids: Vec<String> = orphans["orphans"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| o["cluster_id"] == cluster)
        .filter_map(|o| o["object_id"].as_str().map(str::to_string))
        .collect();
    for o in &objects {
        let id = o["id"].as_str().unwrap_or("");
        let key = o["label"]
            .as_str()
            .unwrap_or("")
            .rsplit('/')
            .next()
            .unwrap_or("");
        assert!(
            keys.contains(key) || orphan_ids.iter().any(|x| x == id),
            "cycle {cycle}: token object no key or orphan record explains: {o}"
        );
    }
    for id in &orphan_ids {
        assert!(
            objects.iter().any(|o| o["id"] == id.as_str()),
            "cycle {cycle}: orphan record {id} names an object that is gone"
        );
    }
}
