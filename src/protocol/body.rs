//! Reading a request body with a size limit, for every door.
//!
//! A body over the limit is refused without being kept: what is past the limit is read and
//! discarded (up to [`DRAIN_CAP`]) so the client, still sending, receives the answer instead of
//! a reset connection. Memory use per request is bounded by the limit whatever the client sends.

use axum::body::{Body, Bytes};
use http_body_util::BodyExt;

/// How much of an oversized body is read (and thrown away) before the connection is given up.
pub const DRAIN_CAP: usize = 64 << 20;

/// The body was larger than the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge {
    /// The limit, in bytes.
    pub limit: usize,
}

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "The request body is larger than {} bytes.", self.limit)
    }
}

/// Read `body` whole if it holds at most `limit` bytes.
pub async fn read_limited(body: Body, limit: usize) -> Result<Bytes, TooLarge> {
    let mut body = body;
    let mut buf = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        if let Ok(data) = frame.into_data() {
            seen = seen.saturating_add(data.len());
            if seen <= limit {
                buf.extend_from_slice(&data);
            } else {
                buf = bytes::BytesMut::new();
                if seen > DRAIN_CAP {
                    break;
                }
            }
        }
    }
    if seen > limit {
        return Err(TooLarge { limit });
    }
    Ok(buf.freeze())
}
