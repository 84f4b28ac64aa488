//! The framing every answer shares: the awsJson1_1 and rpc-v2-cbor content types and an
//! AWS-shaped request ID; and the one path from an error to its response: each error type
//! (`KmsError`, `CloudHsmError`, [`DoorError`]) turns itself into the response its wire
//! expects (`IntoResponse` for JSON, [`Cbor`] for rpc-v2-cbor). Used by every door (KMS,
//! cloudhsmv2, STS errors, `/_sim`), so it lives here and no door imports another.

use super::error::DoorError;
use crate::cluster::error::CloudHsmError;
use crate::kms::error::KmsError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

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

/// A typed response as the JSON document an awsJson1_1 door sends.
pub fn to_json<T: serde::Serialize>(t: &T) -> Value {
    serde_json::to_value(t).expect("a typed response serializes")
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

/// An error on the awsJson1_1 wire: `__type`, and `message` unless the error carries none
/// (AWS sends some exceptions without a message).
pub fn json_error(status: u16, type_name: &str, message: &str) -> Response {
    let body = if message.is_empty() {
        json!({"__type": type_name})
    } else {
        json!({"__type": type_name, "message": message})
    };
    json_response(status, &body, Some(type_name))
}

/// An rpc-v2-cbor response: the CBOR content type, the `smithy-protocol` header and a request
/// ID.
pub fn cbor_response(status: u16, body: Vec<u8>) -> Response {
    let mut r = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body,
    )
        .into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/cbor"),
    );
    h.insert("smithy-protocol", HeaderValue::from_static("rpc-v2-cbor"));
    if let Ok(v) = HeaderValue::from_str(&request_id()) {
        h.insert("x-amzn-RequestId", v);
    }
    r
}

/// An error on the rpc-v2-cbor wire.
pub fn cbor_error(status: u16, type_name: &str, message: &str) -> Response {
    cbor_response(status, super::cbor::encode_error(type_name, message))
}

impl IntoResponse for KmsError {
    fn into_response(self) -> Response {
        json_error(self.status(), self.type_name(), &self.message)
    }
}

impl IntoResponse for CloudHsmError {
    /// cloudhsmv2's JSON errors carry the message twice, as `Message` and `message`.
    fn into_response(self) -> Response {
        json_response(
            self.status(),
            &json!({"__type": self.type_name(), "Message": self.message, "message": self.message}),
            Some(self.type_name()),
        )
    }
}

impl IntoResponse for DoorError {
    fn into_response(self) -> Response {
        json_error(self.status(), self.type_name(), self.message())
    }
}

/// An error answered on the rpc-v2-cbor wire.
#[derive(Debug)]
pub struct Cbor<E>(pub E);

impl IntoResponse for Cbor<CloudHsmError> {
    fn into_response(self) -> Response {
        cbor_error(self.0.status(), self.0.type_name(), &self.0.message)
    }
}

impl IntoResponse for Cbor<DoorError> {
    fn into_response(self) -> Response {
        cbor_error(self.0.status(), self.0.type_name(), self.0.message())
    }
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
