//! HTTP API tests: a real `cks-sim serve` process on 127.0.0.1:0, a real SoftHSM2 token, a
//! real SQLite file, driven by `aws-sdk-kms` and raw HTTP.

#[path = "../common/mod.rs"]
mod common;

mod auth;
mod bad_input;
mod cloudhsm_cli;
mod cluster;
mod crash;
mod edges;
mod failpoints;
mod framing;
mod grants;
mod import;
mod key_crypto;
mod key_management;
mod key_rules;
mod key_specs;
mod key_store_rules;
mod key_stores;
mod keys;
mod multi_region;
mod namespaces;
mod own_token;
mod rotation;
mod state_machine;
mod testing_module;
mod users;
mod wording;
