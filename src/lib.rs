//! cks-sim: a simulator of AWS KMS *AWS CloudHSM key stores* with key material on a real
//! PKCS#11 token.
//!
//! Layers, one direction (architecture §2):
//!
//! - [`server`] (axum) and [`protocol`] (awsJson1_1 / rpc-v2-cbor framing) call
//! - [`kms`] (key stores, keys, aliases, key states, crypto, deletion sweeper), which calls
//! - [`cluster`] (clusters, HSMs, certificates, users, faults, the cloudhsmv2 API), which calls
//! - [`hsm`] (the only `cryptoki` user) and [`store`] (the only SQL).
//!
//! [`app::App`] is the one shared handle, built once from a [`config::Config`];
//! [`control`] is the `/_sim` door used by the `cks-sim` CLI, [`cli`] (the CloudHSM CLI
//! look-alike) and tests; [`console`] is the HTML console for a browser.

pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod codec;
pub mod config;
pub mod console;
pub mod control;
pub mod failpoint;
pub mod hsm;
pub mod ids;
pub mod kms;
pub mod listener;
pub mod names;
pub mod namespace;
pub mod paging;
pub mod protocol;
pub mod server;
pub mod store;
pub mod tags;
#[cfg(feature = "testing")]
pub mod testing;

use std::sync::Arc;

/// Bring a freshly opened app to life: the internal token, persisted token faults, seeds,
/// key stores that were connected, due deletions and the background sweeper.
pub async fn start(app: &Arc<app::App>) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    app.start_internal_token().await?;
    cluster::seed::check_bound_tokens(app).await?;
    cluster::faults::reapply_token_faults(app).await?;
    cluster::users::settle_all_pin_changes(app).await;
    if app.config.default_seed {
        cluster::seed::apply_default(app).await?;
    }
    kms::key_store::resume(app).await;
    if let Some(seed) = app.config.seed.clone() {
        cluster::seed::apply_file(app, &seed).await?;
        kms::seed::apply_file(app, &seed).await?;
    }
    kms::sweep::sweep_if_due(app).await;
    kms::reconcile::reconcile(app).await;
    kms::sweep::spawn_sweeper(app);
    Ok(())
}
