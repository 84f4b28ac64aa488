//! One operation from a decoded JSON object to its answer: decode the typed request (every
//! constraint of the model checked), then run it in its domain. The API doors, the console and
//! the benches all come through here.

use super::input::Input;
use crate::api::{cloudhsmv2, kms};
use crate::app::App;
use crate::cluster::error::CloudHsmError;
use crate::kms::error::KmsError;
use std::sync::Arc;

/// Run KMS operation `op` on `input`. `Ok(None)`: no such operation.
pub async fn kms(
    app: &Arc<App>,
    op: &str,
    input: Input,
) -> Result<Option<kms::Response>, KmsError> {
    let body = serde_json::Value::Object(input.0);
    let req = match super::decode::kms::decode_request(op, &body) {
        None => return Ok(None),
        Some(req) => req.map_err(crate::kms::input_err)?,
    };
    crate::kms::handle(app, req).await
}

/// Run cloudhsmv2 operation `op` on `input`. `Ok(None)`: no such operation (or one cks-sim
/// does not serve).
pub async fn cloudhsm(
    app: &Arc<App>,
    op: &str,
    input: Input,
) -> Result<Option<cloudhsmv2::Response>, CloudHsmError> {
    let body = serde_json::Value::Object(input.0);
    let req = match super::decode::cloudhsmv2::decode_request(op, &body) {
        None => return Ok(None),
        Some(req) => req?,
    };
    crate::cluster::ops::handle(app, req).await
}
