//! Reading a request body with a size limit and a shared memory budget, for every door.
//!
//! A body over the limit is refused without being kept: what is past the limit is read and
//! discarded (up to [`DRAIN_CAP`]) so the client, still sending, receives the answer instead of
//! a reset connection.
//!
//! The bytes of every body being read or handled come out of one budget (`[server]
//! max_body_bytes_in_flight`), taken as they arrive and given back when the request ends. A body
//! that finds the budget spent is refused at once as a throttle (the SDKs retry it), never made
//! to wait: a request never waits holding part of the budget, so requests cannot deadlock each
//! other, and the memory that bodies hold stays within the budget however many clients send.

use axum::body::{Body, Bytes};
use http_body_util::BodyExt;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How much of an oversized body is read (and thrown away) before the connection is given up.
pub const DRAIN_CAP: usize = 64 << 20;

/// The budget is counted in units of this many bytes.
pub const BUDGET_UNIT: usize = 1024;

/// Why a body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// The body was larger than the limit (in bytes).
    TooLarge(usize),
    /// The bodies in flight hold the whole budget.
    Busy,
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::TooLarge(limit) => {
                write!(f, "The request body is larger than {limit} bytes.")
            }
            BodyError::Busy => write!(
                f,
                "The simulator is receiving as many request bodies as it holds at once \
                 (server.max_body_bytes_in_flight); try again."
            ),
        }
    }
}

/// A body read whole, with its share of the budget (given back when this is dropped).
#[derive(Debug)]
pub struct Received {
    /// The body.
    pub bytes: Bytes,
    _share: Option<OwnedSemaphorePermit>,
}

/// Read `body` whole if it holds at most `limit` bytes, taking its bytes from `budget`.
pub async fn read_limited(
    body: Body,
    limit: usize,
    budget: &Arc<Semaphore>,
) -> Result<Received, BodyError> {
    let mut body = body;
    let mut buf = bytes::BytesMut::new();
    let mut share: Option<OwnedSemaphorePermit> = None;
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        if seen > limit {
            share = None;
            buf = bytes::BytesMut::new();
            if seen > DRAIN_CAP {
                break;
            }
            continue;
        }
        take_share(&mut share, budget, seen)?;
        buf.extend_from_slice(&data);
    }
    if seen > limit {
        return Err(BodyError::TooLarge(limit));
    }
    Ok(Received {
        bytes: buf.freeze(),
        _share: share,
    })
}

/// Grow `share` to cover `bytes` (in whole units), without waiting.
fn take_share(
    share: &mut Option<OwnedSemaphorePermit>,
    budget: &Arc<Semaphore>,
    bytes: usize,
) -> Result<(), BodyError> {
    let want = bytes.div_ceil(BUDGET_UNIT);
    let held = share.as_ref().map_or(0, OwnedSemaphorePermit::num_permits);
    if want <= held {
        return Ok(());
    }
    let more = u32::try_from(want - held).map_err(|_| BodyError::Busy)?;
    let extra = Arc::clone(budget)
        .try_acquire_many_owned(more)
        .map_err(|_| BodyError::Busy)?;
    match share {
        Some(s) => s.merge(extra),
        None => *share = Some(extra),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_body_takes_its_bytes_from_the_budget_and_gives_them_back() {
        let budget = Arc::new(Semaphore::new(8));
        let r = read_limited(Body::from(vec![0u8; 3000]), 1 << 20, &budget)
            .await
            .expect("read");
        assert_eq!(r.bytes.len(), 3000);
        assert_eq!(budget.available_permits(), 5);
        drop(r);
        assert_eq!(budget.available_permits(), 8);
    }

    #[tokio::test]
    async fn a_body_beyond_the_budget_is_busy_and_one_beyond_the_limit_too_large() {
        let budget = Arc::new(Semaphore::new(2));
        let busy = read_limited(Body::from(vec![0u8; 4000]), 1 << 20, &budget).await;
        assert_eq!(busy.unwrap_err(), BodyError::Busy);
        assert_eq!(budget.available_permits(), 2);
        let big = read_limited(Body::from(vec![0u8; 5000]), 4096, &budget).await;
        assert_eq!(big.unwrap_err(), BodyError::TooLarge(4096));
    }
}
