//! Accounts and regions: keys, aliases, custom key stores and clusters live in the
//! (account, region) of the request's signature; ARNs carry both; nothing crosses over; a
//! restart keeps it all.

use crate::common::{Sim, block_on, code, default_cluster};
use aws_sdk_kms::Client;

const ALICE: &str = r#"
[[auth.credentials]]
access_key_id = "AKIDALICE0000000000A"
secret_access_key = "alice/secret+key"
account = "444455556666"
"#;

fn alice(sim: &Sim, region: &str) -> Client {
    sim.kms_as("AKIDALICE0000000000A", "alice/secret+key", region, None)
}

async fn new_key(c: &Client) -> (String, String) {
    let m = c.create_key().send().await.expect("create key");
    let m = m.key_metadata().expect("metadata");
    (
        m.key_id().to_string(),
        m.arn().unwrap_or_default().to_string(),
    )
}

async fn listed(c: &Client) -> Vec<String> {
    c.list_keys()
        .send()
        .await
        .expect("list keys")
        .keys()
        .iter()
        .filter_map(|k| k.key_id().map(str::to_string))
        .collect()
}

#[test]
fn a_key_lives_in_its_account_and_region_and_its_arn_says_so() {
    let sim = Sim::start_with_config(ALICE);
    block_on(async {
        let home = sim.kms();
        let (id, arn) = new_key(&home).await;
        assert_eq!(arn, format!("arn:aws:kms:us-east-1:111122223333:key/{id}"));
        let (eu_id, eu_arn) = new_key(&sim.kms_as("test", "test", "eu-west-1", None)).await;
        assert_eq!(
            eu_arn,
            format!("arn:aws:kms:eu-west-1:111122223333:key/{eu_id}")
        );
        let (a_id, a_arn) = new_key(&alice(&sim, "us-east-1")).await;
        assert_eq!(
            a_arn,
            format!("arn:aws:kms:us-east-1:444455556666:key/{a_id}")
        );
        let described = alice(&sim, "us-east-1")
            .describe_key()
            .key_id(&a_id)
            .send()
            .await
            .unwrap();
        assert_eq!(
            described.key_metadata().unwrap().aws_account_id(),
            Some("444455556666")
        );

        let eu = sim.kms_as("test", "test", "eu-west-1", None);
        for (who, c) in [
            ("eu-west-1", &eu),
            ("another account", &alice(&sim, "us-east-1")),
        ] {
            let r = c.describe_key().key_id(&id).send().await;
            assert_eq!(code(r), "NotFoundException", "{who} sees the key by ID");
            let r = c.describe_key().key_id(&arn).send().await;
            assert_eq!(code(r), "NotFoundException", "{who} sees the key by ARN");
            let r = c
                .encrypt()
                .key_id(&id)
                .plaintext(aws_sdk_kms::primitives::Blob::new(b"x".to_vec()))
                .send()
                .await;
            assert_eq!(code(r), "NotFoundException", "{who} encrypts with the key");
        }
        assert_eq!(listed(&home).await, vec![id.clone()]);
        assert_eq!(listed(&eu).await, vec![eu_id]);
        assert_eq!(listed(&alice(&sim, "us-east-1")).await, vec![a_id]);

        // A ciphertext made in us-east-1 does not decrypt in eu-west-1.
        let blob = home
            .encrypt()
            .key_id(&id)
            .plaintext(aws_sdk_kms::primitives::Blob::new(b"secret".to_vec()))
            .send()
            .await
            .unwrap()
            .ciphertext_blob()
            .unwrap()
            .clone();
        let r = eu.decrypt().ciphertext_blob(blob.clone()).send().await;
        assert_eq!(code(r), "NotFoundException");
        home.decrypt()
            .ciphertext_blob(blob)
            .send()
            .await
            .expect("at home it does");
    });
}

#[test]
fn aliases_with_the_same_name_live_side_by_side() {
    let sim = Sim::start_with_config(ALICE);
    block_on(async {
        let home = sim.kms();
        let other = alice(&sim, "us-east-1");
        let (id, _) = new_key(&home).await;
        let (a_id, _) = new_key(&other).await;
        for (c, target) in [(&home, &id), (&other, &a_id)] {
            c.create_alias()
                .alias_name("alias/app")
                .target_key_id(target)
                .send()
                .await
                .expect("the same alias name in each account");
        }
        let d = other
            .describe_key()
            .key_id("alias/app")
            .send()
            .await
            .unwrap();
        assert_eq!(d.key_metadata().unwrap().key_id(), a_id);
        let aliases = other.list_aliases().send().await.unwrap();
        let arns: Vec<&str> = aliases
            .aliases()
            .iter()
            .filter_map(|a| a.alias_arn())
            .collect();
        assert_eq!(arns, ["arn:aws:kms:us-east-1:444455556666:alias/app"]);
        // One account's alias cannot point at the other's key.
        let r = other
            .update_alias()
            .alias_name("alias/app")
            .target_key_id(&id)
            .send()
            .await;
        assert_eq!(code(r), "NotFoundException");
        other
            .delete_alias()
            .alias_name("alias/app")
            .send()
            .await
            .unwrap();
        let d = home
            .describe_key()
            .key_id("alias/app")
            .send()
            .await
            .unwrap();
        assert_eq!(
            d.key_metadata().unwrap().key_id(),
            id,
            "home's alias is untouched"
        );
    });
}

#[test]
fn clusters_and_key_stores_belong_to_their_account_and_region() {
    let sim = Sim::start();
    block_on(async {
        let cluster = default_cluster(&sim).await;
        let eu = sim.kms_as("test", "test", "eu-west-1", None);
        let r = eu
            .create_custom_key_store()
            .custom_key_store_name("eu-store")
            .cloud_hsm_cluster_id(&cluster)
            .trust_anchor_certificate(sim.trust_anchor())
            .key_store_password(sim.kmsuser_password())
            .send()
            .await;
        assert_eq!(code(r), "CloudHsmClusterNotFoundException");
        let store =
            crate::common::create_store(&sim, "home-store", &cluster, &sim.kmsuser_password())
                .await;
        let r = eu
            .describe_custom_key_stores()
            .custom_key_store_id(&store)
            .send()
            .await;
        assert_eq!(code(r), "CustomKeyStoreNotFoundException");
        let all = eu.describe_custom_key_stores().send().await.unwrap();
        assert!(all.custom_key_stores().is_empty());

        // cloudhsmv2 signed for eu-west-1 sees no cluster; us-east-1 sees the default one.
        let c = sim
            .control()
            .with_signing(Some(("test", "test", "eu-west-1")));
        let v = c
            .aws("BaldrApiService.DescribeClusters", serde_json::json!({}))
            .await
            .unwrap();
        assert_eq!(v["Clusters"].as_array().map(Vec::len), Some(0), "{v}");
        let v = sim
            .control()
            .aws("BaldrApiService.DescribeClusters", serde_json::json!({}))
            .await
            .unwrap();
        assert_eq!(v["Clusters"][0]["ClusterId"], cluster.as_str(), "{v}");
        // The local door sees every namespace.
        let v = sim
            .control()
            .call("GET", "/_sim/clusters", None)
            .await
            .unwrap();
        assert!(v.to_string().contains(&cluster));
    });
}

#[test]
fn a_restart_keeps_every_namespace() {
    let mut sim = Sim::start_with_config(ALICE);
    let (id, a_id) = block_on(async {
        let (id, _) = new_key(&sim.kms()).await;
        let (a_id, _) = new_key(&alice(&sim, "ap-southeast-2")).await;
        alice(&sim, "ap-southeast-2")
            .create_alias()
            .alias_name("alias/kept")
            .target_key_id(&a_id)
            .send()
            .await
            .unwrap();
        (id, a_id)
    });
    sim.restart();
    block_on(async {
        let a = alice(&sim, "ap-southeast-2");
        assert_eq!(listed(&a).await, vec![a_id.clone()]);
        let d = a.describe_key().key_id("alias/kept").send().await.unwrap();
        assert_eq!(
            d.key_metadata().unwrap().arn(),
            Some(format!("arn:aws:kms:ap-southeast-2:444455556666:key/{a_id}").as_str())
        );
        assert_eq!(listed(&sim.kms()).await, vec![id]);
        let r = sim.kms().describe_key().key_id("alias/kept").send().await;
        assert_eq!(code(r), "NotFoundException");
    });
}

#[test]
fn mode_none_keeps_everything_in_the_default_namespace_as_before() {
    let sim = Sim::start_with_config("[auth]\nmode = \"none\"\n");
    block_on(async {
        let (id, arn) = new_key(&sim.kms_as("anyone", "x", "eu-west-1", None)).await;
        assert_eq!(arn, format!("arn:aws:kms:us-east-1:111122223333:key/{id}"));
        sim.kms()
            .describe_key()
            .key_id(&id)
            .send()
            .await
            .expect("seen from us-east-1");
    });
}
