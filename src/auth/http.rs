//! The hook the server calls before dispatch: signature verification and quotas, with each
//! door's refusal on its own wire (awsJson1_1 for KMS and cloudhsmv2, rpc-v2-cbor, the query
//! protocol's XML for STS), and the STS door itself.

use super::quota::{Call, Quotas, THROTTLING_MESSAGE};
use super::{AuthError, Authenticator, Caller, SignedRequest, sts};
use crate::app::App;
use crate::config::Config;
use crate::protocol::error::DoorError;
use crate::protocol::input::Input;
use crate::protocol::response::Cbor;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use std::time::{Instant, SystemTime};

/// The edge's state: who may call, and how often.
#[derive(Debug)]
pub struct Edge {
    /// Credentials and verification.
    pub auth: Authenticator,
    /// Request-rate quotas.
    pub quotas: Quotas,
}

impl Edge {
    /// From the validated configuration.
    pub fn new(config: &Config) -> Self {
        Edge {
            auth: Authenticator::new(&config.auth, &config.account, &config.region),
            quotas: Quotas::new(config.quotas),
        }
    }
}

/// Which door a request came in by: its signing name and the shape of its errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    /// KMS, awsJson1_1 (`kms`).
    Kms,
    /// cloudhsmv2, awsJson1_1 (`cloudhsm`).
    CloudHsmJson,
    /// cloudhsmv2, rpc-v2-cbor (`cloudhsm`).
    CloudHsmCbor,
    /// STS, query protocol (`sts`).
    Sts,
}

impl Door {
    /// The service name in the credential scope.
    pub fn signing_name(self) -> &'static str {
        match self {
            Door::Kms => "kms",
            Door::CloudHsmJson | Door::CloudHsmCbor => "cloudhsm",
            Door::Sts => "sts",
        }
    }
}

const SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match the \
     signature you provided. Check your AWS Secret Access Key and signing method. Consult the \
     service documentation for details.";
const INVALID_TOKEN: &str = "The security token included in the request is invalid.";

/// Verify the request's signature; on failure, the response this door answers with.
pub fn authenticate(
    edge: &Edge,
    door: Door,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Caller, Box<Response>> {
    let header_list: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let req = SignedRequest {
        method: method.as_str(),
        raw_path: uri.path(),
        raw_query: uri.query().unwrap_or(""),
        headers: &header_list,
        body,
    };
    edge.auth
        .verify(&req, door.signing_name(), SystemTime::now())
        .map_err(|e| Box::new(refusal(door, &e)))
}

/// The refusal of `e` on `door`'s wire, with AWS's codes: the JSON services' exception names
/// (`UnrecognizedClientException`, `InvalidSignatureException`, …, HTTP 400) or STS's query
/// codes (`InvalidClientTokenId`, `SignatureDoesNotMatch`, …, HTTP 403).
pub fn refusal(door: Door, e: &AuthError) -> Response {
    let error = match e {
        // AWS's JSON services answer "Missing Authentication Token"; STS "Request is missing
        // Authentication Token" (both as clients report them: no AWS page quotes them).
        AuthError::Missing if door == Door::Sts => {
            DoorError::MissingAuthenticationToken("Request is missing Authentication Token".into())
        }
        AuthError::Missing => {
            DoorError::MissingAuthenticationToken("Missing Authentication Token".into())
        }
        AuthError::Incomplete(m) => DoorError::IncompleteSignature(m.clone()),
        AuthError::UnknownKey => DoorError::UnrecognizedClient(INVALID_TOKEN.into()),
        AuthError::BadSignature => DoorError::InvalidSignature(SIGNATURE_MISMATCH.into()),
        AuthError::Expired(m) | AuthError::BadScope(m) => DoorError::InvalidSignature(m.clone()),
    };
    match door {
        Door::Kms | Door::CloudHsmJson => error.into_response(),
        Door::CloudHsmCbor => Cbor(error).into_response(),
        Door::Sts => xml_response(&sts::error_reply(
            error.query_status(),
            error.query_code(),
            error.message(),
            &new_request_id(),
        )),
    }
}

/// The namespace a request of `caller` lives in: the credential's account and the scope's
/// region with SigV4; the default one with `mode = "none"`, as before namespaces existed.
pub fn namespace_of(edge: &Edge, app: &App, caller: &Caller) -> crate::namespace::Namespace {
    match edge.auth.mode() {
        super::AuthMode::SigV4 => crate::namespace::Namespace {
            account: caller.account.clone(),
            region: caller.region.clone(),
        },
        super::AuthMode::None => crate::namespace::default(app),
    }
}

/// With quotas on, take the KMS request `op` from its quotas; `ThrottlingException` when one
/// is exhausted.
pub fn throttle(
    edge: &Edge,
    app: &App,
    caller: &Caller,
    op: &str,
    input: &Input,
) -> Result<(), Box<Response>> {
    if !edge.quotas.enabled() {
        return Ok(());
    }
    let ns = namespace_of(edge, app, caller);
    let store = crate::namespace::sync_scoped(app, ns, || key_store_of(app, op, input));
    let call = Call {
        account: &caller.account,
        region: &caller.region,
        op,
        key_store: store.as_deref(),
    };
    if edge.quotas.admit(call, Instant::now()) {
        Ok(())
    } else {
        Err(Box::new(
            DoorError::Throttling(THROTTLING_MESSAGE.into()).into_response(),
        ))
    }
}

/// The CloudHSM key store a cryptographic request's key is in: from `KeyId` (or
/// `DestinationKeyId`), the key named inside `CiphertextBlob`, or `CustomKeyStoreId`.
/// A key that does not resolve has no store (the operation itself will say why).
fn key_store_of(app: &App, op: &str, input: &Input) -> Option<String> {
    if !super::quota::is_symmetric_crypto(op) {
        return None;
    }
    if let Ok(Some(store)) = input.opt_str("CustomKeyStoreId") {
        return Some(store.to_string());
    }
    let world = app.world();
    let named = ["KeyId", "DestinationKeyId"]
        .iter()
        .find_map(|m| input.opt_str(m).ok().flatten());
    let key = match named {
        Some(raw) => crate::kms::resolve_key(app, &world, raw, crate::kms::KeyRef::AnyName).ok(),
        None => {
            let blob = input.opt_blob("CiphertextBlob", 1, 6144).ok().flatten()?;
            let parsed = crate::kms::crypto::Blob::decode(&blob)?;
            let id = uuid::Uuid::from_bytes(parsed.key_id).to_string();
            world.key(&id).cloned()
        }
    };
    key.and_then(|k| k.store_id.as_ref().map(ToString::to_string))
}

/// Whether a `POST /` without `X-Amz-Target` is an STS query-protocol request.
pub fn is_query_protocol(headers: &HeaderMap) -> bool {
    headers.get("x-amz-target").is_none()
        && headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// The STS door: verify, then answer from the form body (POST) or the query (GET).
pub fn sts_door(
    edge: &Edge,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let caller = match authenticate(edge, Door::Sts, method, uri, headers, body) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let mut params = super::sigv4::parse_query(uri.query().unwrap_or(""), true);
    params.extend(super::sigv4::parse_query(
        &String::from_utf8_lossy(body),
        true,
    ));
    xml_response(&sts::handle(&params, &caller, &new_request_id()))
}

fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn xml_response(reply: &sts::XmlReply) -> Response {
    let mut r = (
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::BAD_REQUEST),
        reply.body.clone(),
    )
        .into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    r
}
