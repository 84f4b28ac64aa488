//! The framing every JSON answer shares: the awsJson1_1 content type and an AWS-shaped
//! request ID. Used by every door (KMS, cloudhsmv2, STS errors, `/_sim`), so it lives here and
//! no door imports another.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

const AMZ_JSON: &str = "application/x-amz-json-1.1";

/// A request ID shaped like AWS's (a version-4 UUID): a random per-process base with a counter
/// folded in, so IDs are unique without a `getrandom` system call per request.
pub fn request_id() -> String {
    static BASE: std::sync::OnceLock<u128> = std::sync::OnceLock::new();
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let base = *BASE.get_or_init(|| uuid::Uuid::new_v4().as_u128());
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // The counter goes into the 48-bit node field and the low bits of the clock sequence, which
    // a version-4 UUID leaves random; the version and variant bits stay as they are.
    let mixed = base ^ u128::from(n & 0x0fff_ffff_ffff_ffff);
    uuid::Builder::from_u128(mixed)
        .with_version(uuid::Version::Random)
        .with_variant(uuid::Variant::RFC4122)
        .into_uuid()
        .to_string()
}

/// A JSON response with the awsJson1_1 content type and a request ID.
pub fn json_response(status: u16, body: &Value, error_type: Option<&str>) -> Response {
    let mut r = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        serde_json::to_vec(body).unwrap_or_default(),
    )
        .into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(AMZ_JSON));
    if let Ok(v) = HeaderValue::from_str(&request_id()) {
        h.insert("x-amzn-RequestId", v);
    }
    if let Some(t) = error_type.and_then(|t| HeaderValue::from_str(t).ok()) {
        h.insert("x-amzn-ErrorType", t);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::request_id;

    #[test]
    fn request_ids_are_distinct_version_4_uuids() {
        let ids: Vec<String> = (0..1000).map(|_| request_id()).collect();
        let unique: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        for id in &ids {
            let u = uuid::Uuid::parse_str(id).expect("a UUID");
            assert_eq!(u.get_version(), Some(uuid::Version::Random), "{id}");
            assert_eq!(u.get_variant(), uuid::Variant::RFC4122, "{id}");
        }
    }
}
