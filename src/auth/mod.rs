//! AWS at the edges (architecture D19, D22): who is calling, and whether they may call now.
//!
//! - [`sigv4`]: the Signature Version 4 algorithm, pure;
//! - [`Authenticator`]: the configured credentials and the verification of one request's
//!   signature against the real clock, giving a [`Caller`];
//! - [`quota`]: the opt-in request-rate quotas (`ThrottlingException`);
//! - [`http`]: the hook the server calls before dispatch, and the errors on each door's wire;
//! - [`sts`]: STS `GetCallerIdentity` (query protocol, XML).
//!
//! `/_sim` and the console are local doors and never pass through here.

pub mod http;
pub mod quota;
pub mod sigv4;
pub mod sts;

use sigv4::{CanonicalInput, Incomplete, SignedParts};
use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// How far a request's time may be from the real clock (AWS: 5 minutes).
pub const MAX_SKEW_SECS: i64 = 300;

/// The access key ID and secret every client of the README uses, mapped to the default account.
pub const DEFAULT_ACCESS_KEY: &str = "test";
/// The secret of [`DEFAULT_ACCESS_KEY`].
pub const DEFAULT_SECRET: &str = "test";

/// `[auth] mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Verify every KMS, cloudhsmv2 and STS request's signature (the default).
    SigV4,
    /// Accept any signature, or none (the caller is the default account).
    None,
}

/// One `[[auth.credentials]]` entry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// Access key ID.
    pub access_key_id: String,
    /// Secret access key (never logged, never echoed).
    pub secret_access_key: String,
    /// The 12-digit account the key belongs to.
    pub account: String,
    /// The IAM user it belongs to; `None`: the account's root user.
    pub user: Option<String>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<hidden>")
            .field("account", &self.account)
            .field("user", &self.user)
            .finish()
    }
}

/// The validated `[auth]` section.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Mode.
    pub mode: AuthMode,
    /// Every credential, the default `test`/`test` pair included unless one of the configured
    /// entries reuses its access key ID.
    pub credentials: Vec<Credential>,
}

/// Who sent a request: the account and user of the signing key, and the region it signed for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The access key that signed (empty with mode `none` and no signature).
    pub access_key: String,
    /// Account ID.
    pub account: String,
    /// Region of the credential scope (the default region with mode `none` and no signature).
    pub region: String,
    /// IAM user name; `None` for the account's root user.
    pub user: Option<String>,
}

/// Why a request was refused before dispatch. Each door renders it in its own words
/// ([`http`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// No `Authorization` header and no presigned query.
    Missing,
    /// A signature that cannot be read.
    Incomplete(String),
    /// An access key ID nobody configured.
    UnknownKey,
    /// The signature does not match.
    BadSignature,
    /// A request time more than 5 minutes from the real clock, or a presigned URL past its
    /// expiry; the message says which.
    Expired(String),
    /// A scope for another service, an unusable region or a date that disagrees with the
    /// request's time.
    BadScope(String),
}

/// One request, as the verification needs it (no HTTP types).
#[derive(Debug)]
pub struct SignedRequest<'a> {
    /// Method.
    pub method: &'a str,
    /// The path as sent (percent-encoded).
    pub raw_path: &'a str,
    /// The query string as sent, without `?`.
    pub raw_query: &'a str,
    /// Every header: lower-case name, value.
    pub headers: &'a [(String, String)],
    /// The body.
    pub body: &'a [u8],
}

impl SignedRequest<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The configured credentials, ready to verify requests.
#[derive(Debug)]
pub struct Authenticator {
    mode: AuthMode,
    by_key: HashMap<String, Credential>,
    default_account: String,
    default_region: String,
}

impl Authenticator {
    /// From the validated settings and the default identity (`[identity]`).
    pub fn new(settings: &AuthSettings, default_account: &str, default_region: &str) -> Self {
        Authenticator {
            mode: settings.mode,
            by_key: settings
                .credentials
                .iter()
                .map(|c| (c.access_key_id.clone(), c.clone()))
                .collect(),
            default_account: default_account.to_string(),
            default_region: default_region.to_string(),
        }
    }

    /// The mode.
    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    /// The default account (`[identity] account`).
    pub fn default_account(&self) -> &str {
        &self.default_account
    }

    /// Verify `req`, signed for `service` (`kms`, `cloudhsm`, `sts`), at `now`.
    pub fn verify(
        &self,
        req: &SignedRequest<'_>,
        service: &str,
        now: SystemTime,
    ) -> Result<Caller, AuthError> {
        let query = sigv4::parse_query(req.raw_query, false);
        let parts = match (req.header("authorization"), sigv4::parse_presigned(&query)) {
            (Some(h), _) => sigv4::parse_authorization(h),
            (None, Some(p)) => p,
            (None, None) => {
                return match self.mode {
                    AuthMode::SigV4 => Err(AuthError::Missing),
                    AuthMode::None => Ok(self.anonymous()),
                };
            }
        };
        if self.mode == AuthMode::None {
            // Anything goes; the scope still says which region the client meant.
            return Ok(match parts {
                Ok(p) => self.caller_of(&p, self.by_key.get(&p.access_key)),
                Err(_) => self.anonymous(),
            });
        }
        let parts = parts.map_err(|Incomplete(m)| AuthError::Incomplete(m))?;
        let cred = self
            .by_key
            .get(&parts.access_key)
            .ok_or(AuthError::UnknownKey)?;
        check_scope(&parts, service)?;
        let amz_date = request_time(req, &parts)?;
        check_time(&parts, &amz_date, now)?;
        let expected = expected_signature(req, &query, &parts, &amz_date, cred);
        if !sigv4::constant_time_eq(&expected, &parts.signature) {
            return Err(AuthError::BadSignature);
        }
        Ok(self.caller_of(&parts, Some(cred)))
    }

    fn anonymous(&self) -> Caller {
        Caller {
            access_key: String::new(),
            account: self.default_account.clone(),
            region: self.default_region.clone(),
            user: None,
        }
    }

    fn caller_of(&self, parts: &SignedParts, cred: Option<&Credential>) -> Caller {
        Caller {
            access_key: parts.access_key.clone(),
            account: cred.map_or_else(|| self.default_account.clone(), |c| c.account.clone()),
            region: parts.scope.region.clone(),
            user: cred.and_then(|c| c.user.clone()),
        }
    }
}

/// The service, region and date of the scope, as AWS checks them. The wordings are AWS's as
/// clients report them; no AWS page lists them.
fn check_scope(parts: &SignedParts, service: &str) -> Result<(), AuthError> {
    if parts.scope.service != service {
        return Err(AuthError::BadScope(format!(
            "Credential should be scoped to correct service: '{service}'. "
        )));
    }
    let region = &parts.scope.region;
    if !region
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(AuthError::BadScope(
            "Credential should be scoped to a valid region. ".into(),
        ));
    }
    Ok(())
}

/// `X-Amz-Date` from the query (presigned) or the header.
fn request_time(req: &SignedRequest<'_>, parts: &SignedParts) -> Result<String, AuthError> {
    let date = parts
        .amz_date
        .clone()
        .or_else(|| req.header("x-amz-date").map(str::to_string))
        .ok_or_else(|| {
            AuthError::Incomplete(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' \
                 header."
                    .into(),
            )
        })?;
    if parse_amz_date(&date).is_none() {
        return Err(AuthError::Incomplete(format!(
            "X-Amz-Date must be in the ISO 8601 basic format YYYYMMDD'T'HHMMSS'Z', not {date:?}."
        )));
    }
    if !date.starts_with(&parts.scope.date) {
        return Err(AuthError::BadScope(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
             from HTTP: '{}' != '{}', from '{date}'.",
            parts.scope.date,
            &date[..8]
        )));
    }
    Ok(date)
}

/// More than 5 minutes from `now` (either way), or a presigned URL past `X-Amz-Expires`.
fn check_time(parts: &SignedParts, amz_date: &str, now: SystemTime) -> Result<(), AuthError> {
    let t = parse_amz_date(amz_date).unwrap_or_default();
    let now_s = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    if t > now_s + MAX_SKEW_SECS {
        return Err(AuthError::Expired(format!(
            "Signature not yet current: {amz_date} is still later than {} ({} + 5 min.)",
            format_amz_date(now_s + MAX_SKEW_SECS),
            format_amz_date(now_s)
        )));
    }
    let (window, label) = match parts.expires {
        // AWS's text for an expired presigned URL was not found; this follows the header
        // form's, with the URL's own lifetime.
        Some(e) => (i64::try_from(e).unwrap_or(i64::MAX), format!("{e} sec.")),
        None => (MAX_SKEW_SECS, "5 min.".to_string()),
    };
    if t < now_s.saturating_sub(window) {
        return Err(AuthError::Expired(format!(
            "Signature expired: {amz_date} is now earlier than {} ({} - {label})",
            format_amz_date(now_s.saturating_sub(window)),
            format_amz_date(now_s)
        )));
    }
    Ok(())
}

fn expected_signature(
    req: &SignedRequest<'_>,
    query: &[(String, String)],
    parts: &SignedParts,
    amz_date: &str,
    cred: &Credential,
) -> String {
    let query: Vec<(String, String)> = query
        .iter()
        .filter(|(k, _)| k != "X-Amz-Signature")
        .cloned()
        .collect();
    let payload_hash = match req.header("x-amz-content-sha256") {
        Some("UNSIGNED-PAYLOAD") => "UNSIGNED-PAYLOAD".to_string(),
        _ => sigv4::sha256_hex(req.body),
    };
    let creq = sigv4::canonical_request(&CanonicalInput {
        method: req.method,
        raw_path: req.raw_path,
        query: &query,
        headers: req.headers,
        signed_headers: &parts.signed_headers,
        payload_hash: &payload_hash,
    });
    let sts = sigv4::string_to_sign(amz_date, &parts.scope, &creq);
    sigv4::signature(
        &sigv4::signing_key(&cred.secret_access_key, &parts.scope),
        &sts,
    )
}

/// `YYYYMMDDTHHMMSSZ` → Unix seconds.
pub fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let year = i32::try_from(num(0..4)?).ok()?;
    let month = time::Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(year, month, u8::try_from(num(6..8)?).ok()?).ok()?;
    let clock = time::Time::from_hms(
        u8::try_from(num(9..11)?).ok()?,
        u8::try_from(num(11..13)?).ok()?,
        u8::try_from(num(13..15)?).ok()?,
    )
    .ok()?;
    Some(
        time::PrimitiveDateTime::new(date, clock)
            .assume_utc()
            .unix_timestamp(),
    )
}

/// Unix seconds → `YYYYMMDDTHHMMSSZ`.
pub fn format_amz_date(secs: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Sign a request with the header form, for clients of this crate (the CLI's raw calls, the
/// tests): returns the `x-amz-date` and `authorization` headers to add. `headers` must hold
/// every header to be signed (lower-case names), `host` included.
pub fn sign_headers(
    cred: (&str, &str),
    scope: &sigv4::Scope,
    amz_date: &str,
    req: &SignedRequest<'_>,
) -> [(String, String); 2] {
    let mut headers: Vec<(String, String)> = req.headers.to_vec();
    headers.push(("x-amz-date".into(), amz_date.to_string()));
    let mut signed: Vec<String> = headers.iter().map(|(k, _)| k.clone()).collect();
    signed.sort();
    signed.dedup();
    let query = sigv4::parse_query(req.raw_query, false);
    let creq = sigv4::canonical_request(&CanonicalInput {
        method: req.method,
        raw_path: req.raw_path,
        query: &query,
        headers: &headers,
        signed_headers: &signed,
        payload_hash: &sigv4::sha256_hex(req.body),
    });
    let sts = sigv4::string_to_sign(amz_date, scope, &creq);
    let sig = sigv4::signature(&sigv4::signing_key(cred.1, scope), &sts);
    [
        ("x-amz-date".into(), amz_date.to_string()),
        (
            "authorization".into(),
            format!(
                "{} Credential={}/{}, SignedHeaders={}, Signature={sig}",
                sigv4::ALGORITHM,
                cred.0,
                scope.render(),
                signed.join(";")
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const NOW: i64 = 1_440_938_160; // 2015-08-30T12:36:00Z

    fn authenticator(mode: AuthMode) -> Authenticator {
        let settings = AuthSettings {
            mode,
            credentials: vec![
                Credential {
                    access_key_id: "test".into(),
                    secret_access_key: "test".into(),
                    account: "111122223333".into(),
                    user: None,
                },
                Credential {
                    access_key_id: "AKIDALICE".into(),
                    secret_access_key: "alice-secret".into(),
                    account: "444455556666".into(),
                    user: Some("alice".into()),
                },
            ],
        };
        Authenticator::new(&settings, "111122223333", "us-east-1")
    }

    fn at(secs: i64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap())
    }

    /// Headers of a KMS request signed by `key`/`secret` for `region` at `when`.
    fn signed(
        key: &str,
        secret: &str,
        region: &str,
        when: i64,
        body: &[u8],
    ) -> Vec<(String, String)> {
        let base = vec![
            ("host".to_string(), "127.0.0.1:4599".to_string()),
            (
                "x-amz-target".to_string(),
                "TrentService.ListKeys".to_string(),
            ),
        ];
        let date = format_amz_date(when);
        let scope = sigv4::Scope {
            date: date[..8].into(),
            region: region.into(),
            service: "kms".into(),
        };
        let req = SignedRequest {
            method: "POST",
            raw_path: "/",
            raw_query: "",
            headers: &base,
            body,
        };
        let mut all = base.clone();
        all.extend(sign_headers((key, secret), &scope, &date, &req));
        all
    }

    fn verify(
        a: &Authenticator,
        headers: &[(String, String)],
        body: &[u8],
        now: i64,
    ) -> Result<Caller, AuthError> {
        let req = SignedRequest {
            method: "POST",
            raw_path: "/",
            raw_query: "",
            headers,
            body,
        };
        a.verify(&req, "kms", at(now))
    }

    #[test]
    fn a_correct_signature_names_the_account_user_and_region() {
        let a = authenticator(AuthMode::SigV4);
        let h = signed("AKIDALICE", "alice-secret", "eu-west-1", NOW, b"{}");
        let c = verify(&a, &h, b"{}", NOW + 60).unwrap();
        assert_eq!(
            (c.account.as_str(), c.region.as_str(), c.user.as_deref()),
            ("444455556666", "eu-west-1", Some("alice"))
        );
    }

    #[test]
    fn a_wrong_secret_or_a_changed_body_is_a_bad_signature() {
        let a = authenticator(AuthMode::SigV4);
        let h = signed("test", "wrong", "us-east-1", NOW, b"{}");
        assert_eq!(verify(&a, &h, b"{}", NOW), Err(AuthError::BadSignature));
        let h = signed("test", "test", "us-east-1", NOW, b"{}");
        assert_eq!(
            verify(&a, &h, b"{\"Limit\":1}", NOW),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn an_unknown_key_and_a_missing_signature_are_named() {
        let a = authenticator(AuthMode::SigV4);
        let h = signed("AKIDNOBODY", "x", "us-east-1", NOW, b"{}");
        assert_eq!(verify(&a, &h, b"{}", NOW), Err(AuthError::UnknownKey));
        let h = vec![("host".to_string(), "h".to_string())];
        assert_eq!(verify(&a, &h, b"{}", NOW), Err(AuthError::Missing));
    }

    #[test]
    fn more_than_five_minutes_either_way_is_expired_in_aws_words() {
        let a = authenticator(AuthMode::SigV4);
        let h = signed("test", "test", "us-east-1", NOW, b"{}");
        assert!(verify(&a, &h, b"{}", NOW + 300).is_ok());
        match verify(&a, &h, b"{}", NOW + 301) {
            Err(AuthError::Expired(m)) => assert_eq!(
                m,
                "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z \
                 (20150830T124101Z - 5 min.)"
            ),
            other => panic!("{other:?}"),
        }
        match verify(&a, &h, b"{}", NOW - 301) {
            Err(AuthError::Expired(m)) => {
                assert!(
                    m.starts_with("Signature not yet current: 20150830T123600Z"),
                    "{m}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_scope_for_another_service_is_refused() {
        let a = authenticator(AuthMode::SigV4);
        let h = signed("test", "test", "us-east-1", NOW, b"{}");
        let req = SignedRequest {
            method: "POST",
            raw_path: "/",
            raw_query: "",
            headers: &h,
            body: b"{}",
        };
        assert!(matches!(
            a.verify(&req, "cloudhsm", at(NOW)),
            Err(AuthError::BadScope(m)) if m.contains("'cloudhsm'")
        ));
    }

    #[test]
    fn mode_none_accepts_anything_and_keeps_the_region() {
        let a = authenticator(AuthMode::None);
        let h = signed("whoever", "whatever", "eu-west-1", NOW - 86_400, b"{}");
        let c = verify(&a, &h, b"{}", NOW).unwrap();
        assert_eq!(
            (c.account.as_str(), c.region.as_str()),
            ("111122223333", "eu-west-1")
        );
        let c = verify(&a, &[], b"{}", NOW).unwrap();
        assert_eq!(c.region, "us-east-1");
    }

    /// A presigned `GET /?Action=GetCallerIdentity…` query, signed by `test`/`test` at `when`.
    fn presigned_query(when: i64, expires: u64) -> String {
        let date = format_amz_date(when);
        let scope = sigv4::Scope {
            date: date[..8].into(),
            region: "us-east-1".into(),
            service: "sts".into(),
        };
        let params: Vec<(String, String)> = [
            ("Action", "GetCallerIdentity".to_string()),
            ("Version", "2011-06-15".to_string()),
            ("X-Amz-Algorithm", sigv4::ALGORITHM.to_string()),
            ("X-Amz-Credential", format!("test/{}", scope.render())),
            ("X-Amz-Date", date.clone()),
            ("X-Amz-Expires", expires.to_string()),
            ("X-Amz-SignedHeaders", "host".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let headers = [("host".to_string(), "h".to_string())];
        let creq = sigv4::canonical_request(&CanonicalInput {
            method: "GET",
            raw_path: "/",
            query: &params,
            headers: &headers,
            signed_headers: &["host".to_string()],
            payload_hash: &sigv4::sha256_hex(b""),
        });
        let sig = sigv4::signature(
            &sigv4::signing_key("test", &scope),
            &sigv4::string_to_sign(&date, &scope, &creq),
        );
        let mut q: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}={}", sigv4::uri_encode(v.as_bytes())))
            .collect();
        q.push(format!("X-Amz-Signature={sig}"));
        q.join("&")
    }

    #[test]
    fn a_presigned_url_works_until_it_expires() {
        let a = authenticator(AuthMode::SigV4);
        let query = presigned_query(NOW, 60);
        let headers = [("host".to_string(), "h".to_string())];
        let req = SignedRequest {
            method: "GET",
            raw_path: "/",
            raw_query: &query,
            headers: &headers,
            body: b"",
        };
        let c = a
            .verify(&req, "sts", at(NOW + 59))
            .expect("within its lifetime");
        assert_eq!(c.account, "111122223333");
        assert!(matches!(
            a.verify(&req, "sts", at(NOW + 61)),
            Err(AuthError::Expired(m)) if m.starts_with("Signature expired: ")
        ));
        let longer = query.replace("X-Amz-Expires=60", "X-Amz-Expires=6000");
        let req = SignedRequest {
            raw_query: &longer,
            ..req
        };
        assert_eq!(
            a.verify(&req, "sts", at(NOW + 61)),
            Err(AuthError::BadSignature),
            "a lifetime changed after signing"
        );
    }

    #[test]
    fn amz_dates_round_trip() {
        assert_eq!(format_amz_date(NOW), "20150830T123600Z");
        assert_eq!(parse_amz_date("20150830T123600Z"), Some(NOW));
        assert_eq!(parse_amz_date("20151330T123600Z"), None);
        assert_eq!(parse_amz_date("2015-08-30T12:36:00Z"), None);
    }
}
