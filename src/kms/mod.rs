//! The KMS domain: custom key stores, keys, aliases, key states, cryptography.

pub mod error;
pub mod model;
