//! The simulated CloudHSM side: clusters, HSMs, certificates, users, faults and the
//! cloudhsmv2 API.

pub mod certs;
pub mod model;
