//! Conversion between the Smithy `rpc-v2-cbor` wire protocol and the
//! awsJson1_1-style [`serde_json::Value`] documents spoken by the domain layer.
//!
//! The cloudhsmv2 service (`BaldrApiService`) is served both as awsJson1_1 and
//! as `smithy-rpc-v2-cbor`. The domain layer only understands JSON values in
//! awsJson1_1 conventions, so this module translates bodies at the edge:
//!
//! * **Requests** ([`decode_request`]): a CBOR map is turned into a JSON object.
//!   Tag-1 timestamps become JSON numbers of epoch seconds, byte strings become
//!   standard base64 text, `null` members are dropped (absent), and anything
//!   that is not a well-formed CBOR map with text keys is rejected as
//!   [`CborError::Malformed`].
//! * **Responses** ([`encode_typed`]): the typed response shapes of
//!   [`crate::api::cloudhsmv2`] are serialized straight to CBOR: their
//!   timestamps know to be tag 1 and their blobs byte strings.
//! * **Errors** ([`encode_error`]): a map with a namespace-qualified `__type`
//!   and a `message`.
//!
//! Every length written is definite (the preferred form for `rpc-v2-cbor`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Number, Value as Json};

/// Smithy namespace used to qualify error shape names in `__type`.
const ERROR_NAMESPACE: &str = "com.amazonaws.cloudhsmv2";

/// Maximum nesting depth of maps and arrays accepted in a request body; the
/// top-level map counts as depth 1.
const MAX_DEPTH: usize = 64;

/// Recursion budget handed to ciborium while parsing. It is larger than
/// [`MAX_DEPTH`] because tags also consume budget there; the exact container
/// depth limit is enforced during conversion. It bounds stack usage either way.
const PARSER_RECURSION_LIMIT: usize = 2 * MAX_DEPTH;

/// CBOR tag for epoch-based date/time (RFC 8949 §3.4.2).
const TAG_EPOCH_TIME: u64 = 1;

/// CBOR "self-described CBOR" tag (RFC 8949 §3.4.6), tolerated at top level.
const TAG_SELF_DESCRIBED: u64 = 55_799;

/// Errors produced while decoding an `rpc-v2-cbor` request body.
#[derive(Debug, thiserror::Error)]
pub enum CborError {
    /// The body is not valid CBOR, is not a single top-level map, or contains
    /// something that cannot be represented in the domain's JSON model.
    #[error("malformed rpc-v2-cbor request body: {0}")]
    Malformed(String),
}

impl CborError {
    fn malformed(msg: impl Into<String>) -> Self {
        Self::Malformed(msg.into())
    }
}

/// Decode a request body into the awsJson1_1-style JSON object the domain
/// expects.
///
/// * tag-1 timestamps become JSON numbers of epoch seconds (integer or float);
/// * byte strings become standard base64 text;
/// * integers and floats become JSON numbers, text becomes strings;
/// * `null` (and `undefined`) map members are dropped as absent;
/// * an empty body decodes to `{}`.
///
/// Non-text map keys, nesting deeper than 64 maps/arrays, trailing bytes, a
/// top-level item that is not a map, non-finite floats and integers outside
/// the `i64`/`u64` range are rejected with [`CborError::Malformed`]. Duplicate
/// keys are tolerated; the last occurrence wins.
pub fn decode_request(body: &[u8]) -> Result<Json, CborError> {
    if body.is_empty() {
        return Ok(Json::Object(Map::new()));
    }
    if super::bounds::cbor_exceeds(body, super::bounds::MAX_ITEMS) {
        return Err(CborError::Malformed(format!(
            "the request holds more than {} CBOR items",
            super::bounds::MAX_ITEMS
        )));
    }

    let mut reader = body;
    let parsed: ciborium::Value =
        ciborium::de::from_reader_with_recursion_limit(&mut reader, PARSER_RECURSION_LIMIT)
            .map_err(describe_parse_error)?;
    if !reader.is_empty() {
        return Err(CborError::Malformed(format!(
            "{} trailing byte(s) after the top-level CBOR item",
            reader.len()
        )));
    }

    let mut top = parsed;
    while let ciborium::Value::Tag(TAG_SELF_DESCRIBED, inner) = top {
        top = *inner;
    }
    match top {
        ciborium::Value::Map(entries) => convert_map(entries, 1),
        other => Err(CborError::Malformed(format!(
            "top-level CBOR item must be a map, found {}",
            kind(&other)
        ))),
    }
}

/// Encode a typed response: timestamps as tag 1, blobs as byte strings (their `Serialize`
/// knows CBOR from JSON), members in declaration order, every length definite.
pub fn encode_typed<T: serde::Serialize>(t: &T) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(t, &mut out).expect("a typed response encodes to a Vec");
    out
}

/// Encode an error body:
/// `{"__type": "com.amazonaws.cloudhsmv2#<shape_name>", "message": message}`.
///
/// A `shape_name` that is already namespace-qualified (contains `#`) is used
/// verbatim.
pub fn encode_error(shape_name: &str, message: &str) -> Vec<u8> {
    let qualified = if shape_name.contains('#') {
        shape_name.to_owned()
    } else {
        format!("{ERROR_NAMESPACE}#{shape_name}")
    };
    let mut out = Vec::new();
    write_head(&mut out, MAJOR_MAP, 2);
    write_text(&mut out, "__type");
    write_text(&mut out, &qualified);
    write_text(&mut out, "message");
    write_text(&mut out, message);
    out
}

// ---------------------------------------------------------------------------
// Decoding helpers
// ---------------------------------------------------------------------------

fn describe_parse_error(err: ciborium::de::Error<std::io::Error>) -> CborError {
    use ciborium::de::Error;
    match err {
        Error::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            CborError::malformed("unexpected end of input")
        }
        Error::Io(e) => CborError::Malformed(format!("read error: {e}")),
        Error::Syntax(offset) => {
            CborError::Malformed(format!("invalid CBOR syntax at byte offset {offset}"))
        }
        Error::Semantic(Some(offset), msg) => {
            CborError::Malformed(format!("invalid CBOR at byte offset {offset}: {msg}"))
        }
        Error::Semantic(None, msg) => CborError::Malformed(format!("invalid CBOR: {msg}")),
        Error::RecursionLimitExceeded => CborError::Malformed(format!(
            "CBOR nesting exceeds the maximum depth of {MAX_DEPTH}"
        )),
    }
}

fn kind(value: &ciborium::Value) -> &'static str {
    match value {
        ciborium::Value::Integer(_) => "an integer",
        ciborium::Value::Bytes(_) => "a byte string",
        ciborium::Value::Float(_) => "a float",
        ciborium::Value::Text(_) => "a text string",
        ciborium::Value::Bool(_) => "a boolean",
        ciborium::Value::Null => "null",
        ciborium::Value::Tag(..) => "a tagged item",
        ciborium::Value::Array(_) => "an array",
        ciborium::Value::Map(_) => "a map",
        _ => "an unsupported item",
    }
}

fn check_depth(depth: usize) -> Result<(), CborError> {
    if depth > MAX_DEPTH {
        Err(CborError::Malformed(format!(
            "CBOR nesting exceeds the maximum depth of {MAX_DEPTH}"
        )))
    } else {
        Ok(())
    }
}

/// Convert a map found at nesting `depth` (top-level map = 1).
fn convert_map(
    entries: Vec<(ciborium::Value, ciborium::Value)>,
    depth: usize,
) -> Result<Json, CborError> {
    check_depth(depth)?;
    let mut object = Map::new();
    for (key, value) in entries {
        let key = match key {
            ciborium::Value::Text(text) => text,
            other => {
                return Err(CborError::Malformed(format!(
                    "map keys must be text strings, found {}",
                    kind(&other)
                )));
            }
        };
        let converted = convert(value, depth)?;
        if converted.is_null() {
            // Null means "absent" for structure members.
            object.remove(&key);
        } else {
            object.insert(key, converted);
        }
    }
    Ok(Json::Object(object))
}

/// Convert an item contained in a container at nesting `parent_depth`.
fn convert(value: ciborium::Value, parent_depth: usize) -> Result<Json, CborError> {
    match value {
        ciborium::Value::Integer(i) => integer_to_json(i),
        ciborium::Value::Float(f) => float_to_json(f),
        ciborium::Value::Bytes(bytes) => Ok(Json::String(BASE64.encode(bytes))),
        ciborium::Value::Text(text) => Ok(Json::String(text)),
        ciborium::Value::Bool(b) => Ok(Json::Bool(b)),
        ciborium::Value::Null => Ok(Json::Null),
        ciborium::Value::Tag(TAG_EPOCH_TIME, inner) => match *inner {
            ciborium::Value::Integer(i) => integer_to_json(i),
            ciborium::Value::Float(f) => float_to_json(f),
            other => Err(CborError::Malformed(format!(
                "tag 1 (epoch timestamp) must wrap an integer or float, found {}",
                kind(&other)
            ))),
        },
        // Other tags carry no meaning for this protocol: use the tagged item.
        ciborium::Value::Tag(_, inner) => convert(*inner, parent_depth),
        ciborium::Value::Array(items) => {
            let depth = parent_depth + 1;
            check_depth(depth)?;
            items
                .into_iter()
                .map(|item| convert(item, depth))
                .collect::<Result<Vec<_>, _>>()
                .map(Json::Array)
        }
        ciborium::Value::Map(entries) => convert_map(entries, parent_depth + 1),
        other => Err(CborError::Malformed(format!(
            "unsupported CBOR item: {}",
            kind(&other)
        ))),
    }
}

fn integer_to_json(i: ciborium::value::Integer) -> Result<Json, CborError> {
    let wide = i128::from(i);
    if let Ok(u) = u64::try_from(wide) {
        Ok(Json::Number(Number::from(u)))
    } else if let Ok(s) = i64::try_from(wide) {
        Ok(Json::Number(Number::from(s)))
    } else {
        Err(CborError::Malformed(format!(
            "integer {wide} is outside the supported 64-bit range"
        )))
    }
}

fn float_to_json(f: f64) -> Result<Json, CborError> {
    Number::from_f64(f)
        .map(Json::Number)
        .ok_or_else(|| CborError::Malformed(format!("non-finite float {f} is not supported")))
}

// ---------------------------------------------------------------------------
// Encoding helpers
// ---------------------------------------------------------------------------

const MAJOR_TEXT: u8 = 3;
const MAJOR_MAP: u8 = 5;

/// Write an item head (major type + argument) in its shortest form.
fn write_head(out: &mut Vec<u8>, major: u8, arg: u64) {
    let initial = major << 5;
    if let Ok(small) = u8::try_from(arg) {
        if small < 24 {
            out.push(initial | small);
        } else {
            out.push(initial | 24);
            out.push(small);
        }
    } else if let Ok(v) = u16::try_from(arg) {
        out.push(initial | 25);
        out.extend_from_slice(&v.to_be_bytes());
    } else if let Ok(v) = u32::try_from(arg) {
        out.push(initial | 26);
        out.extend_from_slice(&v.to_be_bytes());
    } else {
        out.push(initial | 27);
        out.extend_from_slice(&arg.to_be_bytes());
    }
}

fn write_len(out: &mut Vec<u8>, major: u8, len: usize) {
    write_head(out, major, u64::try_from(len).unwrap_or(u64::MAX));
}

fn write_text(out: &mut Vec<u8>, text: &str) {
    write_len(out, MAJOR_TEXT, text.len());
    out.extend_from_slice(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use ciborium::Value as Cbor;
    use serde_json::json;

    fn cbor_bytes(value: &Cbor) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::ser::into_writer(value, &mut out).unwrap();
        out
    }

    fn parse(bytes: &[u8]) -> Cbor {
        ciborium::de::from_reader(bytes).unwrap()
    }

    fn text(s: &str) -> Cbor {
        Cbor::Text(s.to_owned())
    }

    /// Look up a text-keyed member of a CBOR map.
    fn get<'a>(map: &'a Cbor, key: &str) -> &'a Cbor {
        map.as_map()
            .unwrap()
            .iter()
            .find(|(k, _)| k.as_text() == Some(key))
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("missing key {key}"))
    }

    fn assert_malformed(result: Result<Json, CborError>, needle: &str) {
        match result {
            Err(CborError::Malformed(msg)) => {
                assert!(msg.contains(needle), "message {msg:?} lacks {needle:?}");
            }
            Ok(v) => panic!("expected Malformed, got {v}"),
        }
    }

    fn cluster(id: &str, created: f64) -> crate::api::cloudhsmv2::Cluster {
        crate::api::cloudhsmv2::Cluster {
            cluster_id: Some(id.into()),
            create_timestamp: Some(crate::api::Timestamp(created)),
            hsm_type: Some("hsm2m.medium".into()),
            ..Default::default()
        }
    }

    fn created(c: &Cbor) -> Cbor {
        match get(c, "CreateTimestamp") {
            Cbor::Tag(1, inner) => (**inner).clone(),
            other => panic!("expected tag 1, got {other:?}"),
        }
    }

    #[test]
    fn a_typed_responses_timestamps_are_tag_1_integral_ones_as_integers() {
        let r = crate::api::cloudhsmv2::DescribeClustersResponse {
            clusters: Some(vec![
                cluster("cluster-a", 1_499_288_695.918),
                cluster("cluster-b", 1_499_288_695.0),
            ]),
            next_token: None,
        };
        let wire = parse(&encode_typed(&r));
        let clusters = get(&wire, "Clusters").as_array().unwrap().clone();
        assert_eq!(created(&clusters[0]), Cbor::Float(1_499_288_695.918));
        assert_eq!(
            created(&clusters[1]),
            Cbor::Integer(1_499_288_695_u32.into())
        );
    }

    #[test]
    fn a_typed_response_omits_absent_members_and_decodes_back_to_its_json() {
        let r = crate::api::cloudhsmv2::DescribeClustersResponse {
            clusters: Some(vec![cluster("cluster-a", 1.5)]),
            next_token: None,
        };
        let bytes = encode_typed(&r);
        let wire = parse(&bytes);
        assert!(
            !wire
                .as_map()
                .unwrap()
                .iter()
                .any(|(k, _)| k.as_text() == Some("NextToken"))
        );
        assert_eq!(
            decode_request(&bytes).unwrap(),
            serde_json::to_value(&r).unwrap()
        );
    }

    #[test]
    fn exact_bytes_for_a_small_typed_response() {
        let r = crate::api::cloudhsmv2::DeleteHsmResponse {
            hsm_id: Some("h".into()),
        };
        assert_eq!(
            encode_typed(&r),
            [&[0xa1, 0x65][..], b"HsmId", &[0x61, b'h']].concat()
        );
        let r = crate::api::cloudhsmv2::DeleteHsmResponse { hsm_id: None };
        assert_eq!(encode_typed(&r), vec![0xa0]);
    }

    #[test]
    fn decode_request_converts_tags_bytes_arrays_and_nulls() {
        let body = cbor_bytes(&Cbor::Map(vec![
            (text("ClusterId"), text("cluster-1")),
            (
                text("CreateTimestamp"),
                Cbor::Tag(1, Box::new(Cbor::Integer(1_499_288_695_u32.into()))),
            ),
            (
                text("CopyTimestamp"),
                Cbor::Tag(1, Box::new(Cbor::Float(1.5))),
            ),
            (text("Blob"), Cbor::Bytes(b"hello".to_vec())),
            (text("Nothing"), Cbor::Null),
            (text("MaxResults"), Cbor::Integer((-3_i64).into())),
            (text("Enabled"), Cbor::Bool(false)),
            (
                text("Filters"),
                Cbor::Map(vec![(
                    text("states"),
                    Cbor::Array(vec![
                        text("ACTIVE"),
                        Cbor::Array(vec![Cbor::Integer(7.into())]),
                    ]),
                )]),
            ),
            (text("Sparse"), Cbor::Array(vec![Cbor::Null, text("y")])),
        ]));
        let decoded = decode_request(&body).unwrap();
        assert_eq!(
            decoded,
            json!({
                "ClusterId": "cluster-1",
                "CreateTimestamp": 1_499_288_695,
                "CopyTimestamp": 1.5,
                "Blob": "aGVsbG8=",
                "MaxResults": -3,
                "Enabled": false,
                "Filters": {"states": ["ACTIVE", [7]]},
                "Sparse": [null, "y"]
            })
        );
        assert!(decoded.get("Nothing").is_none());
    }

    #[test]
    fn decode_request_accepts_indefinite_lengths_and_half_floats() {
        // {_ "a": [_ 1, 2], "b": 1(1.5 as half-float)}
        let body = [
            0xbf, 0x61, b'a', 0x9f, 0x01, 0x02, 0xff, 0x61, b'b', 0xc1, 0xf9, 0x3e, 0x00, 0xff,
        ];
        assert_eq!(
            decode_request(&body).unwrap(),
            json!({"a": [1, 2], "b": 1.5})
        );
    }

    #[test]
    fn decode_request_accepts_self_described_prefix() {
        let body = [0xd9, 0xd9, 0xf7, 0xa1, 0x61, b'a', 0x01];
        assert_eq!(decode_request(&body).unwrap(), json!({"a": 1}));
    }

    #[test]
    fn empty_body_is_empty_object() {
        assert_eq!(decode_request(&[]).unwrap(), json!({}));
        assert_eq!(decode_request(&[0xa0]).unwrap(), json!({}));
    }

    #[test]
    fn garbage_is_malformed() {
        assert_malformed(decode_request(&[0xff, 0x00, 0x13]), "");
        assert_malformed(decode_request(b"{\"json\": true}"), "");
        // Truncated: map of one entry whose key claims 1 byte but has none.
        assert_malformed(decode_request(&[0xa1, 0x61]), "end of input");
        // Valid map followed by trailing bytes.
        assert_malformed(decode_request(&[0xa0, 0x00]), "trailing");
    }

    #[test]
    fn top_level_non_map_is_malformed() {
        let body = cbor_bytes(&Cbor::Array(vec![Cbor::Integer(1.into())]));
        assert_malformed(decode_request(&body), "top-level CBOR item must be a map");
        assert_malformed(decode_request(&[0xf6]), "must be a map, found null");
    }

    #[test]
    fn non_string_key_is_malformed() {
        let body = cbor_bytes(&Cbor::Map(vec![(Cbor::Integer(1.into()), text("x"))]));
        assert_malformed(decode_request(&body), "map keys must be text strings");
        let nested = cbor_bytes(&Cbor::Map(vec![(
            text("outer"),
            Cbor::Map(vec![(Cbor::Bytes(vec![1]), text("x"))]),
        )]));
        assert_malformed(decode_request(&nested), "map keys must be text strings");
    }

    #[test]
    fn bad_tag_one_payload_is_malformed() {
        let body = cbor_bytes(&Cbor::Map(vec![(
            text("CreateTimestamp"),
            Cbor::Tag(1, Box::new(text("2017-07-05"))),
        )]));
        assert_malformed(decode_request(&body), "tag 1");
    }

    #[test]
    fn non_finite_float_is_malformed() {
        let body = cbor_bytes(&Cbor::Map(vec![(text("x"), Cbor::Float(f64::NAN))]));
        assert_malformed(decode_request(&body), "non-finite");
    }

    /// Build `{"k": [[...[]...]]}` with `arrays` nested arrays (total depth
    /// `arrays + 1`).
    fn nested_body(arrays: usize) -> Vec<u8> {
        let mut inner = Cbor::Array(Vec::new());
        for _ in 1..arrays {
            inner = Cbor::Array(vec![inner]);
        }
        cbor_bytes(&Cbor::Map(vec![(text("k"), inner)]))
    }

    #[test]
    fn nesting_limit() {
        assert!(decode_request(&nested_body(MAX_DEPTH - 1)).is_ok());
        assert_malformed(decode_request(&nested_body(MAX_DEPTH)), "maximum depth");
        // Far beyond the limit (within the item bound): rejected by the parser without deep
        // recursion. Deeper still is more than the items a request may hold (protocol::bounds).
        let mut deep = vec![0xa1, 0x61, b'k'];
        deep.extend(std::iter::repeat_n(0x81, 9_000));
        deep.push(0x80);
        assert_malformed(decode_request(&deep), "maximum depth");
    }

    #[test]
    fn encode_error_contents() {
        let bytes = encode_error("CloudHsmInvalidRequestException", "bad \"input\"");
        let wire = parse(&bytes);
        assert_eq!(wire.as_map().unwrap().len(), 2);
        assert_eq!(
            get(&wire, "__type"),
            &text("com.amazonaws.cloudhsmv2#CloudHsmInvalidRequestException")
        );
        assert_eq!(get(&wire, "message"), &text("bad \"input\""));

        let already = parse(&encode_error(
            "com.amazonaws.cloudhsmv2#CloudHsmResourceNotFoundException",
            "",
        ));
        assert_eq!(
            get(&already, "__type"),
            &text("com.amazonaws.cloudhsmv2#CloudHsmResourceNotFoundException")
        );
        assert_eq!(get(&already, "message"), &text(""));
    }

    #[test]
    fn error_display_is_clear() {
        let err = CborError::malformed("oops");
        assert_eq!(err.to_string(), "malformed rpc-v2-cbor request body: oops");
    }
}
