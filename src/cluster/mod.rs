//! The simulated CloudHSM side: clusters, HSMs, certificates, users, faults and the
//! cloudhsmv2 API.
//!
//! - [`model`]: the plain records (clusters, HSMs, users, backups);
//! - [`certs`]: CSRs, customer CAs and the `InitializeCluster` certificate checks;
//! - [`api`]: the cloudhsmv2 operations (`BaldrApiService`);
//! - [`users`]: the CloudHSM CLI's user management and the kmsuser ↔ token PIN rule (D3);
//! - [`cli_users`]: the CloudHSM CLI's role-checked login and admin user commands;
//! - [`objects`]: keys on a cluster's token as the CloudHSM CLI sees them (owners, shares,
//!   filters, the crypto user's key commands);
//! - [`faults`]: fault injection (D14);
//! - [`seed`]: the default cluster and seed files (D15);
//! - [`error`]: `CloudHsmError`, the one home of the cloudhsmv2 exception names.

pub mod api;
pub mod certs;
pub mod cli_users;
pub mod error;
pub mod faults;
pub mod model;
pub mod objects;
pub mod ops;
pub mod seed;
pub mod users;
