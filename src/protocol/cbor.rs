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
//! * **Responses** ([`encode_response`]): JSON is mapped structurally onto CBOR.
//!   Because JSON carries no type information for timestamps and blobs, the
//!   member *name* decides: members listed in [`TIMESTAMP_MEMBERS`] holding a
//!   number are emitted as tag 1, and members listed in [`BLOB_MEMBERS`] holding
//!   base64 text are emitted as byte strings.
//! * **Errors** ([`encode_error`]): a map with a namespace-qualified `__type`
//!   and a `message`.
//!
//! The encoder is a small hand-written, infallible CBOR writer that always
//! produces definite-length items (the preferred form for `rpc-v2-cbor`).

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

/// Member names that target a timestamp shape anywhere in the cloudhsmv2
/// model.
///
/// Derived by a one-off Python script over
/// `cloudhsmv2-2017-04-28.shapes.json`: for every structure member whose
/// target shape has `"type": "timestamp"`, collect the member name, then sort
/// and deduplicate. (No list or map in the model has a timestamp member/key/
/// value, so member names are sufficient.) Must stay sorted: lookups use
/// binary search.
pub const TIMESTAMP_MEMBERS: &[&str] = &[
    "CopyTimestamp",
    "CreateTimestamp",
    "DeleteTimestamp",
    "HsmTypeRollbackExpiration",
];

/// Member names that target a blob shape anywhere in the cloudhsmv2 model.
///
/// Derived by the same script as [`TIMESTAMP_MEMBERS`] (target shape
/// `"type": "blob"`); the 2017-04-28 model has no blob shapes, so this is
/// empty. Must stay sorted: lookups use binary search.
pub const BLOB_MEMBERS: &[&str] = &[];

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

/// Encode a response JSON object (awsJson1_1 conventions) as an
/// `rpc-v2-cbor` body.
///
/// Members whose *name* is in [`TIMESTAMP_MEMBERS`] and whose value is a
/// number become tag 1 (an integer if the value is integral, otherwise a
/// float). Members named in [`BLOB_MEMBERS`] whose value is valid base64 text
/// become byte strings. Everything else maps structurally: JSON integers
/// become CBOR integers, other numbers become 64-bit floats, `null` members
/// of objects are omitted, and `null` list elements stay CBOR `null`.
pub fn encode_response(value: &Json) -> Vec<u8> {
    let mut out = Vec::new();
    write_value(&mut out, value);
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

const MAJOR_UNSIGNED: u8 = 0;
const MAJOR_NEGATIVE: u8 = 1;
const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;
const MAJOR_MAP: u8 = 5;
const MAJOR_TAG: u8 = 6;

const SIMPLE_FALSE: u8 = 0xf4;
const SIMPLE_TRUE: u8 = 0xf5;
const SIMPLE_NULL: u8 = 0xf6;
const FLOAT64: u8 = 0xfb;

/// `i64::MIN` (-2^63) as an exactly representable `f64`.
const I64_MIN_F64: f64 = i64::MIN as f64;

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

fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_len(out, MAJOR_BYTES, bytes.len());
    out.extend_from_slice(bytes);
}

fn write_f64(out: &mut Vec<u8>, f: f64) {
    out.push(FLOAT64);
    out.extend_from_slice(&f.to_bits().to_be_bytes());
}

fn write_i64(out: &mut Vec<u8>, i: i64) {
    if i >= 0 {
        write_head(out, MAJOR_UNSIGNED, i.unsigned_abs());
    } else {
        // CBOR negative integers encode -1 - n; for n < 0 that is |n| - 1.
        write_head(out, MAJOR_NEGATIVE, i.unsigned_abs() - 1);
    }
}

/// Write a JSON number structurally: integers as CBOR integers, anything else
/// as a 64-bit float.
fn write_number(out: &mut Vec<u8>, n: &Number) {
    if let Some(u) = n.as_u64() {
        write_head(out, MAJOR_UNSIGNED, u);
    } else if let Some(i) = n.as_i64() {
        write_i64(out, i);
    } else if let Some(f) = n.as_f64() {
        write_f64(out, f);
    } else {
        // Only reachable with serde_json's arbitrary_precision feature.
        write_text(out, &n.to_string());
    }
}

/// Write a timestamp (epoch seconds) as tag 1, keeping integral values as
/// integers and everything else as a float.
fn write_timestamp(out: &mut Vec<u8>, n: &Number) {
    write_head(out, MAJOR_TAG, TAG_EPOCH_TIME);
    if n.is_u64() || n.is_i64() {
        write_number(out, n);
        return;
    }
    match n.as_f64() {
        // The range [-2^63, 2^63) keeps the `as` conversion exact (no
        // saturation); both bounds are exactly representable as f64.
        Some(f) if f.fract() == 0.0 && (I64_MIN_F64..-I64_MIN_F64).contains(&f) => {
            write_i64(out, f as i64);
        }
        Some(f) => write_f64(out, f),
        None => write_number(out, n),
    }
}

fn write_value(out: &mut Vec<u8>, value: &Json) {
    match value {
        Json::Null => out.push(SIMPLE_NULL),
        Json::Bool(false) => out.push(SIMPLE_FALSE),
        Json::Bool(true) => out.push(SIMPLE_TRUE),
        Json::Number(n) => write_number(out, n),
        Json::String(s) => write_text(out, s),
        Json::Array(items) => {
            write_len(out, MAJOR_ARRAY, items.len());
            for item in items {
                write_value(out, item);
            }
        }
        Json::Object(members) => {
            let present = members.values().filter(|v| !v.is_null()).count();
            write_len(out, MAJOR_MAP, present);
            for (name, member) in members.iter().filter(|(_, v)| !v.is_null()) {
                write_text(out, name);
                write_member(out, name, member);
            }
        }
    }
}

/// Write a structure member's value, applying the name-based timestamp and
/// blob rules.
fn write_member(out: &mut Vec<u8>, name: &str, value: &Json) {
    match value {
        Json::Number(n) if TIMESTAMP_MEMBERS.binary_search(&name).is_ok() => {
            write_timestamp(out, n);
        }
        Json::String(s) if BLOB_MEMBERS.binary_search(&name).is_ok() => match BASE64.decode(s) {
            Ok(bytes) => write_bytes(out, &bytes),
            Err(_) => write_text(out, s),
        },
        other => write_value(out, other),
    }
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

    #[test]
    fn member_lists_are_sorted_and_unique() {
        assert!(TIMESTAMP_MEMBERS.windows(2).all(|w| w[0] < w[1]));
        assert!(BLOB_MEMBERS.windows(2).all(|w| w[0] < w[1]));
        assert!(TIMESTAMP_MEMBERS.contains(&"CreateTimestamp"));
    }

    #[test]
    fn describe_clusters_round_trip() {
        let response = json!({
            "Clusters": [{
                "BackupPolicy": "DEFAULT",
                "BackupRetentionPolicy": {"Type": "DAYS", "Value": "90"},
                "Certificates": {"ClusterCsr": "-----BEGIN CSR-----"},
                "ClusterId": "cluster-igklspoyj5v",
                "CreateTimestamp": 1_499_288_695.918,
                "HsmType": "hsm1.medium",
                "Hsms": [{
                    "AvailabilityZone": "us-east-1a",
                    "EniIp": "10.0.0.12",
                    "HsmId": "hsm-ted36yp5b2x",
                    "State": "ACTIVE"
                }],
                "SecurityGroup": "sg-02b0f7e8",
                "State": "UNINITIALIZED",
                "StateMessage": null,
                "SubnetMapping": {"us-east-1a": "subnet-fd54af9b"},
                "TagList": [{"Key": "env", "Value": "test"}],
                "VpcId": "vpc-a4a3fd2c"
            }, {
                "ClusterId": "cluster-2",
                "CreateTimestamp": 1_499_288_695,
                "Hsms": [],
                "SubnetMapping": {}
            }],
            "NextToken": "abc"
        });

        let bytes = encode_response(&response);
        let wire = parse(&bytes);

        let clusters = get(&wire, "Clusters").as_array().unwrap();
        assert_eq!(clusters.len(), 2);
        match get(&clusters[0], "CreateTimestamp") {
            Cbor::Tag(1, inner) => assert_eq!(**inner, Cbor::Float(1_499_288_695.918)),
            other => panic!("expected tag 1, got {other:?}"),
        }
        match get(&clusters[1], "CreateTimestamp") {
            Cbor::Tag(1, inner) => {
                assert_eq!(**inner, Cbor::Integer(1_499_288_695_u32.into()));
            }
            other => panic!("expected tag 1, got {other:?}"),
        }
        // Null members are omitted from the wire.
        assert!(
            !clusters[0]
                .as_map()
                .unwrap()
                .iter()
                .any(|(k, _)| k.as_text() == Some("StateMessage"))
        );
        let hsms = get(&clusters[0], "Hsms").as_array().unwrap();
        assert_eq!(get(&hsms[0], "State"), &text("ACTIVE"));
        assert_eq!(
            get(get(&clusters[0], "SubnetMapping"), "us-east-1a"),
            &text("subnet-fd54af9b")
        );

        // Decoding the wire form gives back the JSON, minus the null member.
        let mut expected = response.clone();
        expected["Clusters"][0]
            .as_object_mut()
            .unwrap()
            .remove("StateMessage");
        assert_eq!(decode_request(&bytes).unwrap(), expected);
    }

    #[test]
    fn integral_float_timestamp_is_encoded_as_integer() {
        let bytes = encode_response(&json!({"DeleteTimestamp": 1_600_000_000.0}));
        match get(&parse(&bytes), "DeleteTimestamp") {
            Cbor::Tag(1, inner) => assert_eq!(**inner, Cbor::Integer(1_600_000_000_u32.into())),
            other => panic!("expected tag 1, got {other:?}"),
        }
    }

    #[test]
    fn timestamp_edge_values() {
        let bytes = encode_response(&json!({
            "CopyTimestamp": -1.0,
            "CreateTimestamp": 1e19,
            "DeleteTimestamp": -2.5
        }));
        let wire = parse(&bytes);
        let inner = |name: &str| match get(&wire, name) {
            Cbor::Tag(1, inner) => (**inner).clone(),
            other => panic!("expected tag 1, got {other:?}"),
        };
        assert_eq!(inner("CopyTimestamp"), Cbor::Integer((-1_i64).into()));
        // Integral but outside the i64 range: stays a float.
        assert_eq!(inner("CreateTimestamp"), Cbor::Float(1e19));
        assert_eq!(inner("DeleteTimestamp"), Cbor::Float(-2.5));
    }

    #[test]
    fn structural_encoding_of_scalars() {
        let bytes = encode_response(&json!({
            "Big": u64::MAX,
            "Flag": true,
            "Neg": -5,
            "Min": i64::MIN,
            "Ratio": 2.0,
            "Timestamps": "CreateTimestamp",
            "CreateTimestamp": "not-a-number",
            "List": [1, null, "x"]
        }));
        let wire = parse(&bytes);
        assert_eq!(get(&wire, "Big"), &Cbor::Integer(u64::MAX.into()));
        assert_eq!(get(&wire, "Flag"), &Cbor::Bool(true));
        assert_eq!(get(&wire, "Neg"), &Cbor::Integer((-5_i64).into()));
        assert_eq!(get(&wire, "Min"), &Cbor::Integer(i64::MIN.into()));
        // Non-timestamp floats stay floats even when integral.
        assert_eq!(get(&wire, "Ratio"), &Cbor::Float(2.0));
        // A timestamp-named member without a numeric value is left alone.
        assert_eq!(get(&wire, "CreateTimestamp"), &text("not-a-number"));
        assert_eq!(
            get(&wire, "List"),
            &Cbor::Array(vec![Cbor::Integer(1.into()), Cbor::Null, text("x")])
        );
    }

    #[test]
    fn exact_bytes_for_small_map() {
        assert_eq!(
            encode_response(&json!({"a": 1})),
            vec![0xa1, 0x61, b'a', 0x01]
        );
        assert_eq!(encode_response(&json!({})), vec![0xa0]);
        assert_eq!(
            encode_response(&json!({"CopyTimestamp": 0})),
            [&[0xa1, 0x6d][..], b"CopyTimestamp", &[0xc1, 0x00]].concat()
        );
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
