//! The Signature Version 4 algorithm (`AWS4-HMAC-SHA256`), both ways: the canonical request,
//! the string to sign, the signing key and the signature, plus the parsing of the two forms a
//! signed request comes in (the `Authorization` header and the presigned query string).
//!
//! Pure functions over bytes and strings: no HTTP types, no clock. Checked against vectors of
//! the published SigV4 test suite (see the tests at the bottom).

pub use crate::codec::{hex, hmac_sha256};
use sha2::{Digest, Sha256};

/// The only algorithm AWS's SigV4 services accept on these doors.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Hex SHA-256 of `data` (the payload hash and the canonical request's hash).
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Compare two strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    crate::codec::constant_time_eq(a.as_bytes(), b.as_bytes())
}

/// The credential scope: `<date>/<region>/<service>/aws4_request`, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// `YYYYMMDD`.
    pub date: String,
    /// The region the client signed for.
    pub region: String,
    /// The signing name (`kms`, `cloudhsm`, `sts`).
    pub service: String,
}

impl Scope {
    /// The scope as it appears in the credential and the string to sign.
    pub fn render(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }
}

/// What a signed request says about its own signature, whichever form it came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedParts {
    /// The access key ID of the credential.
    pub access_key: String,
    /// The credential scope.
    pub scope: Scope,
    /// Lower-case names of the signed headers, in the order given.
    pub signed_headers: Vec<String>,
    /// The signature, lower-case hex.
    pub signature: String,
    /// `X-Amz-Date` (`YYYYMMDDTHHMMSSZ`), when the form carries it (the query form always does).
    pub amz_date: Option<String>,
    /// `X-Amz-Expires` of the presigned form, in seconds.
    pub expires: Option<u64>,
}

/// Why a signature could not even be read (AWS's `IncompleteSignature`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incomplete(pub String);

/// Parse `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
pub fn parse_authorization(value: &str) -> Result<SignedParts, Incomplete> {
    let value = value.trim();
    let (alg, rest) = value.split_once(' ').unwrap_or((value, ""));
    if alg != ALGORITHM {
        // No AWS page states this wording for a foreign scheme; it names what is accepted.
        return Err(Incomplete(format!(
            "Unsupported authorization type {alg:?}: expected {ALGORITHM}."
        )));
    }
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let Some((k, v)) = part.trim().split_once('=') else {
            continue;
        };
        match k.trim() {
            "Credential" => credential = Some(v.trim()),
            "SignedHeaders" => signed = Some(v.trim()),
            "Signature" => signature = Some(v.trim()),
            _ => {}
        }
    }
    let mut missing = Vec::new();
    for (name, v) in [
        ("Credential", credential),
        ("Signature", signature),
        ("SignedHeaders", signed),
    ] {
        if v.is_none() {
            missing.push(format!("Authorization header requires '{name}' parameter."));
        }
    }
    if !missing.is_empty() {
        return Err(Incomplete(missing.join(" ")));
    }
    let (access_key, scope) = parse_credential(credential.unwrap_or_default())?;
    Ok(SignedParts {
        access_key,
        scope,
        signed_headers: split_signed_headers(signed.unwrap_or_default()),
        signature: signature.unwrap_or_default().to_ascii_lowercase(),
        amz_date: None,
        expires: None,
    })
}

/// Parse the presigned form's `X-Amz-*` query parameters (already percent-decoded).
/// `None` when the query carries no `X-Amz-Signature` (not the presigned form).
pub fn parse_presigned(params: &[(String, String)]) -> Option<Result<SignedParts, Incomplete>> {
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let signature = get("X-Amz-Signature")?;
    Some((|| {
        if get("X-Amz-Algorithm") != Some(ALGORITHM) {
            return Err(Incomplete(format!("X-Amz-Algorithm must be {ALGORITHM}.")));
        }
        let mut missing = Vec::new();
        for name in ["X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders"] {
            if get(name).is_none() {
                missing.push(format!(
                    "AWS query-string parameters must include '{name}'."
                ));
            }
        }
        if !missing.is_empty() {
            return Err(Incomplete(missing.join(" ")));
        }
        let (access_key, scope) = parse_credential(get("X-Amz-Credential").unwrap_or_default())?;
        let expires = match get("X-Amz-Expires") {
            None => None,
            Some(e) => Some(e.parse::<u64>().map_err(|_| {
                Incomplete(format!(
                    "X-Amz-Expires must be a number of seconds, not {e:?}."
                ))
            })?),
        };
        Ok(SignedParts {
            access_key,
            scope,
            signed_headers: split_signed_headers(get("X-Amz-SignedHeaders").unwrap_or_default()),
            signature: signature.to_ascii_lowercase(),
            amz_date: get("X-Amz-Date").map(str::to_string),
            expires,
        })
    })())
}

fn split_signed_headers(s: &str) -> Vec<String> {
    s.split(';')
        .filter(|h| !h.is_empty())
        .map(str::to_ascii_lowercase)
        .collect()
}

/// `AKID/20150830/us-east-1/iam/aws4_request` → access key and scope.
fn parse_credential(c: &str) -> Result<(String, Scope), Incomplete> {
    let parts: Vec<&str> = c.split('/').collect();
    match parts.as_slice() {
        [key, date, region, service, "aws4_request"]
            if !key.is_empty() && date.len() == 8 && !region.is_empty() =>
        {
            Ok((
                (*key).to_string(),
                Scope {
                    date: (*date).to_string(),
                    region: (*region).to_string(),
                    service: (*service).to_string(),
                },
            ))
        }
        _ => Err(Incomplete(format!(
            "Credential should be scoped to a valid region, service and date: \
             <access key>/<YYYYMMDD>/<region>/<service>/aws4_request, not {c:?}."
        ))),
    }
}

/// One request as the canonical form needs it.
#[derive(Debug)]
pub struct CanonicalInput<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// The path as sent on the request line (still percent-encoded).
    pub raw_path: &'a str,
    /// The query string as sent (no `?`), with `X-Amz-Signature` already left out for the
    /// presigned form.
    pub query: &'a [(String, String)],
    /// Every header of the request: lower-case name, value.
    pub headers: &'a [(String, String)],
    /// Lower-case names of the signed headers.
    pub signed_headers: &'a [String],
    /// Hex SHA-256 of the payload (or `UNSIGNED-PAYLOAD`).
    pub payload_hash: &'a str,
}

/// The canonical request (task 1 of the algorithm), for services other than S3: the path
/// normalised and each segment encoded again.
pub fn canonical_request(r: &CanonicalInput<'_>) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(r.method);
    out.push('\n');
    out.push_str(&canonical_uri(r.raw_path));
    out.push('\n');
    out.push_str(&canonical_query(r.query));
    out.push('\n');
    for name in r.signed_headers {
        out.push_str(name);
        out.push(':');
        let values: Vec<String> = r
            .headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| trim_header_value(v))
            .collect();
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&r.signed_headers.join(";"));
    out.push('\n');
    out.push_str(r.payload_hash);
    out
}

/// Leading and trailing spaces removed, runs of spaces made one.
fn trim_header_value(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Remove `.` and `..` segments and empty segments (RFC 3986 §5.2.4, as AWS's signers do for
/// every service but S3), then encode each segment again.
fn canonical_uri(raw_path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for seg in raw_path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::from("/");
    out.push_str(
        &segments
            .iter()
            .map(|s| uri_encode(s.as_bytes()))
            .collect::<Vec<_>>()
            .join("/"),
    );
    if segments.is_empty() {
        return out;
    }
    if raw_path.ends_with('/') {
        out.push('/');
    }
    out
}

/// Query parameters encoded AWS's way and sorted by name, then value.
fn canonical_query(params: &[(String, String)]) -> String {
    let mut enc: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (uri_encode(k.as_bytes()), uri_encode(v.as_bytes())))
        .collect();
    enc.sort();
    enc.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encode everything but the unreserved characters `A-Z a-z 0-9 - _ . ~`.
pub fn uri_encode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

/// Decode `%XX` escapes (and `+` as a space when `plus_is_space`, as in a form body).
pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hexval = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(v) = hexval {
                    out.push(v);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' if plus_is_space => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Split `a=1&b=2` into decoded pairs (a name without `=` has an empty value).
pub fn parse_query(q: &str, plus_is_space: bool) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                percent_decode(k, plus_is_space),
                percent_decode(v, plus_is_space),
            )
        })
        .collect()
}

/// The string to sign (task 2).
pub fn string_to_sign(amz_date: &str, scope: &Scope, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{}\n{}",
        scope.render(),
        sha256_hex(canonical_request.as_bytes())
    )
}

/// The signing key (task 3): the secret folded through the scope's date, region and service.
pub fn signing_key(secret: &str, scope: &Scope) -> [u8; 32] {
    let k_date = hmac_sha256(format!("AWS4{secret}").as_bytes(), scope.date.as_bytes());
    let k_region = hmac_sha256(&k_date, scope.region.as_bytes());
    let k_service = hmac_sha256(&k_region, scope.service.as_bytes());
    hmac_sha256(&k_service, b"aws4_request")
}

/// The signature (task 4), lower-case hex.
pub fn signature(signing_key: &[u8; 32], string_to_sign: &str) -> String {
    hex(&hmac_sha256(signing_key, string_to_sign.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn suite_scope() -> Scope {
        Scope {
            date: "20150830".into(),
            region: "us-east-1".into(),
            service: "service".into(),
        }
    }

    fn sign(
        method: &str,
        path: &str,
        query: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (String, String) {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect();
        let mut signed: Vec<String> = headers.iter().map(|(k, _)| k.clone()).collect();
        signed.sort();
        signed.dedup();
        let query = parse_query(query, false);
        let creq = canonical_request(&CanonicalInput {
            method,
            raw_path: path,
            query: &query,
            headers: &headers,
            signed_headers: &signed,
            payload_hash: &sha256_hex(body),
        });
        let sts = string_to_sign("20150830T123600Z", &suite_scope(), &creq);
        (creq, signature(&signing_key(SECRET, &suite_scope()), &sts))
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn signing_key_matches_the_published_derivation_example() {
        // The worked example of the signing-key derivation (secret, 20120215, us-east-1, iam).
        let scope = Scope {
            date: "20120215".into(),
            region: "us-east-1".into(),
            service: "iam".into(),
        };
        assert_eq!(
            hex(&signing_key(
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                &scope
            )),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }

    #[test]
    fn suite_get_vanilla() {
        let (creq, sig) = sign(
            "GET",
            "/",
            "",
            &[
                ("Host", "example.amazonaws.com"),
                ("X-Amz-Date", "20150830T123600Z"),
            ],
            b"",
        );
        assert_eq!(
            creq,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n\
             host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sig,
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn suite_get_vanilla_query_order_key_case() {
        let (_, sig) = sign(
            "GET",
            "/",
            "Param2=value2&Param1=value1",
            &[
                ("Host", "example.amazonaws.com"),
                ("X-Amz-Date", "20150830T123600Z"),
            ],
            b"",
        );
        assert_eq!(
            sig,
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
        );
    }

    #[test]
    fn suite_post_x_www_form_urlencoded() {
        let (_, sig) = sign(
            "POST",
            "/",
            "",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Host", "example.amazonaws.com"),
                ("X-Amz-Date", "20150830T123600Z"),
            ],
            b"Param1=value1",
        );
        assert_eq!(
            sig,
            "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"
        );
    }

    #[test]
    fn suite_get_header_value_trim_and_relative_path() {
        let (_, sig) = sign(
            "GET",
            "/example1/example2/../..",
            "",
            &[
                ("Host", "example.amazonaws.com"),
                ("X-Amz-Date", "20150830T123600Z"),
            ],
            b"",
        );
        assert_eq!(
            sig, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            "get-relative-relative normalises to get-vanilla"
        );
        let (_, sig) = sign(
            "GET",
            "/",
            "",
            &[
                ("Host", "example.amazonaws.com"),
                ("My-Header1", " value1"),
                ("My-Header2", " \"a   b   c\""),
                ("X-Amz-Date", "20150830T123600Z"),
            ],
            b"",
        );
        assert_eq!(
            sig,
            "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"
        );
    }

    #[test]
    fn authorization_header_is_parsed_and_gaps_are_named() {
        let p = parse_authorization(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/kms/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=ABCD",
        )
        .unwrap();
        assert_eq!(p.access_key, "AKIDEXAMPLE");
        assert_eq!(p.scope.region, "us-east-1");
        assert_eq!(p.scope.service, "kms");
        assert_eq!(p.signed_headers, ["host", "x-amz-date"]);
        assert_eq!(p.signature, "abcd");
        let e = parse_authorization("AWS4-HMAC-SHA256 Credential=a/20150830/r/s/aws4_request")
            .unwrap_err();
        assert!(
            e.0.contains("'Signature'") && e.0.contains("'SignedHeaders'"),
            "{e:?}"
        );
        assert!(parse_authorization("Basic abc").is_err());
        assert!(
            parse_authorization("AWS4-HMAC-SHA256 Credential=a/b, SignedHeaders=h, Signature=s")
                .is_err()
        );
    }

    #[test]
    fn form_decoding_handles_plus_and_escapes() {
        assert_eq!(
            parse_query(
                "Action=GetCallerIdentity&Version=2011-06-15&x=a+b%2Fc%",
                true
            ),
            vec![
                ("Action".to_string(), "GetCallerIdentity".to_string()),
                ("Version".to_string(), "2011-06-15".to_string()),
                ("x".to_string(), "a b/c%".to_string()),
            ]
        );
    }
}
