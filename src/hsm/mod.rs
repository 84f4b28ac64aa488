//! The PKCS#11 layer: the only code that uses `cryptoki`.
//!
//! - [`module`]: find, load and initialize the module once per process;
//! - [`token`]: one token in domain words (AES-256 keys, AES-GCM, random, inspection);
//! - [`asymmetric`]: key pairs and HMAC keys on a token (signatures, MACs, RSA, ECDH);
//! - [`import`]: imported key material (wrapping pairs, unwrapping into key objects);
//! - [`pool`]: the session pool that keeps every call on the token's own threads (D7), queued
//!   through `workers`;
//! - [`provision`]: token creation for soft tokens, and each soft token's configuration
//!   (SoftHSM2, kryoptic) — the only module-specific code;
//! - [`error`]: `HsmError`, the one classification of PKCS#11 return values.
//!
//! Nothing here knows about KMS, clusters, HTTP or SQL.

pub mod asymmetric;
pub mod error;
pub mod import;
pub mod module;
pub mod pool;
pub mod provision;
pub mod token;
mod workers;

pub use error::{HsmError, HsmOp};
pub use module::Module;
pub use provision::{Provisioner, SoftToken};
pub use token::{KeyAttributes, ObjectId, ObjectInfo, PinTemplate, Sealed, Token};
