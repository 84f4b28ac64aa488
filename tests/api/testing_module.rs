//! `cks_sim::testing::Simulator`: the in-process simulator users start from their own tests.

use crate::common::*;

/// This process's threads whose names start with one of `prefixes` (names as the kernel
/// keeps them: 15 bytes at most).
fn threads_named(prefixes: &[&str]) -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|n| n.trim().to_string())
        .filter(|n| prefixes.iter().any(|p| n.starts_with(p)))
        .collect()
}

#[test]
fn in_process_simulator_serves_a_key_store_and_leaves_nothing_behind() {
    // The module's configuration for this process (kryoptic: its slots), as other
    // in-process tests get it.
    soft_token_conf();
    let sim = cks_sim::testing::Simulator::start().expect("start");
    let data = sim.data_dir();
    let endpoint = sim.endpoint().to_string();
    block_on(async {
        let kms = aws_sdk_kms::Client::from_conf(sim.kms_config());
        let store = kms
            .create_custom_key_store()
            .custom_key_store_name("in-process")
            .cloud_hsm_cluster_id(sim.cluster_id())
            .trust_anchor_certificate(sim.trust_anchor())
            .key_store_password(sim.kmsuser_password())
            .send()
            .await
            .expect("CreateCustomKeyStore with the simulator's cluster, anchor and password");
        let id = store.custom_key_store_id().expect("id");
        kms.connect_custom_key_store()
            .custom_key_store_id(id)
            .send()
            .await
            .expect("connect");
        wait_state(&kms, id, "CONNECTED").await;
    });
    assert!(data.join("cks-sim.sqlite").exists());
    assert!(!threads_named(&["cks-sim-testing", "pkcs11-"]).is_empty());
    drop(sim);
    assert!(!data.exists(), "the data directory is removed");
    assert_eq!(
        threads_named(&["cks-sim-testing", "pkcs11-"]),
        Vec::<String>::new(),
        "the runtime's and the token's threads are gone"
    );
    let addr = endpoint.trim_start_matches("http://");
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "nothing listens on {addr} any more"
    );
}
