//! Wire framing only: awsJson1_1 and rpc-v2-cbor. No domain logic lives here.

pub mod body;
pub mod bounds;
pub mod cbor;
pub mod decode;
pub mod dispatch;
pub mod error;
pub mod host;
pub mod input;
pub mod response;
