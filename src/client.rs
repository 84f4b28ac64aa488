//! A small HTTP/1.1 client for the CLI's subcommands (and tests): JSON to the control door.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// A control-door client for one endpoint.
#[derive(Clone, Debug)]
pub struct ControlClient {
    endpoint: String,
    http: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    /// Access key ID, secret and region that sign requests to the AWS doors (`/` and
    /// `/service/…`); `None`: sent unsigned.
    signing: Option<(String, String, String)>,
}

/// What went wrong talking to the simulator.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No connection.
    #[error(
        "cannot reach cks-sim at {endpoint}: {reason} (is `cks-sim serve` running? set --endpoint or CKS_SIM_ENDPOINT)"
    )]
    Connect {
        /// The endpoint.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// The simulator answered with an error.
    #[error("{type_name}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// `__type`.
        type_name: String,
        /// `message`.
        message: String,
    },
    /// Bad URL or body.
    #[error("{0}")]
    Other(String),
}

impl ControlClient {
    /// A client for `endpoint` (e.g. `http://127.0.0.1:4599`).
    pub fn new(endpoint: &str) -> Self {
        ControlClient {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            http: Client::builder(TokioExecutor::new()).build_http(),
            signing: Some((
                crate::auth::DEFAULT_ACCESS_KEY.into(),
                crate::auth::DEFAULT_SECRET.into(),
                "us-east-1".into(),
            )),
        }
    }

    /// The same client signing its AWS-door requests with `access_key`/`secret` for `region`
    /// (`None`: unsigned). Requests that already carry an `authorization` header are sent as
    /// they are.
    pub fn with_signing(mut self, signing: Option<(&str, &str, &str)>) -> Self {
        self.signing = signing.map(|(k, s, r)| (k.into(), s.into(), r.into()));
        self
    }

    /// The SigV4 headers (`host`, `x-amz-date`, `authorization`) for a request to an AWS door,
    /// or none (a `/_sim` request, signing off, or an `authorization` header already given).
    fn signature_headers(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Vec<(String, String)> {
        let Some((key, secret, region)) = &self.signing else {
            return Vec::new();
        };
        let aws_door = path == "/" || path.starts_with("/?") || path.starts_with("/service/");
        if !aws_door
            || headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        {
            return Vec::new();
        }
        let host = self
            .endpoint
            .split_once("://")
            .map_or(self.endpoint.as_str(), |(_, h)| h)
            .to_string();
        let mut list: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), (*v).to_string()))
            .collect();
        list.push(("host".into(), host.clone()));
        let target = list
            .iter()
            .find(|(k, _)| k == "x-amz-target")
            .map_or("", |(_, v)| v.as_str());
        let form = list.iter().any(|(k, v)| {
            k == "content-type" && v.starts_with("application/x-www-form-urlencoded")
        });
        let service = if path.starts_with("/service/") || target.starts_with("BaldrApiService.") {
            "cloudhsm"
        } else if target.is_empty() && (form || method == "GET") {
            "sts"
        } else {
            "kms"
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
        let amz_date = crate::auth::format_amz_date(now);
        let scope = crate::auth::sigv4::Scope {
            date: amz_date[..8].to_string(),
            region: region.clone(),
            service: service.into(),
        };
        let (raw_path, raw_query) = path.split_once('?').unwrap_or((path, ""));
        let req = crate::auth::SignedRequest {
            method,
            raw_path,
            raw_query,
            headers: &list,
            body,
        };
        let mut out = vec![("host".to_string(), host)];
        out.extend(crate::auth::sign_headers(
            (key, secret),
            &scope,
            &amz_date,
            &req,
        ));
        out
    }

    /// Send `method path` with an optional JSON body and extra headers; return the status and
    /// the parsed JSON body.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<(u16, Value), ClientError> {
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.endpoint));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        for (k, v) in self.signature_headers(method, path, headers, &body) {
            req = req.header(k, v);
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ClientError::Other(e.to_string()))?;
        let resp = self
            .http
            .request(req)
            .await
            .map_err(|e| ClientError::Connect {
                endpoint: self.endpoint.clone(),
                reason: e.to_string(),
            })?;
        let status = resp.status().as_u16();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| ClientError::Other(e.to_string()))?
            .to_bytes();
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Ok((status, v))
    }

    /// A control-door call: 2xx → the JSON body, else `ClientError::Api`.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, ClientError> {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let (status, v) = self
            .raw(method, path, &[("content-type", "application/json")], bytes)
            .await?;
        api_result(status, v)
    }

    /// A KMS (`TrentService`) or cloudhsmv2 (`BaldrApiService`) awsJson1_1 call.
    pub async fn aws(&self, target: &str, body: Value) -> Result<Value, ClientError> {
        let (status, v) = self
            .raw(
                "POST",
                "/",
                &[
                    ("content-type", "application/x-amz-json-1.1"),
                    ("x-amz-target", target),
                ],
                body.to_string().into_bytes(),
            )
            .await?;
        api_result(status, v)
    }
}

fn api_result(status: u16, v: Value) -> Result<Value, ClientError> {
    if (200..300).contains(&status) {
        return Ok(v);
    }
    let type_name = v
        .get("__type")
        .and_then(Value::as_str)
        .unwrap_or("HttpError")
        .to_string();
    let message = v
        .get("message")
        .or_else(|| v.get("Message"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("HTTP {status}"));
    Err(ClientError::Api {
        status,
        type_name,
        message,
    })
}
