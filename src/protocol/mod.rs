//! Wire framing only: awsJson1_1 and rpc-v2-cbor. No domain logic lives here.

pub mod cbor;
pub mod input;
