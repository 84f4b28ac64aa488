//! X.509 certificate handling for simulated CloudHSM cluster initialization.
//!
//! A new CloudHSM cluster starts `UNINITIALIZED` and exposes a certificate
//! signing request (`ClusterCsr`). The customer signs that CSR with their own
//! issuing CA and calls `InitializeCluster` with the signed certificate and the
//! CA's self-signed root (the *trust anchor*). This module provides:
//!
//! * [`new_cluster_csr`]: a fresh P-256 key pair and CSR for a cluster;
//! * [`verify_initialization`]: the checks `InitializeCluster` performs, using
//!   real X.509 parsing and signature verification;
//! * [`new_customer_ca`] / [`sign_csr`]: the customer's side (issuing CA and
//!   CSR signing), used by the simulator's default seed and by tests;
//! * [`same_certificate`] / [`der_fingerprint`]: PEM-insensitive comparison and
//!   identification of certificates.
//!
//! PEM input is accepted with surrounding whitespace and with either LF or
//! CRLF line endings, but must contain exactly one PEM block of the expected
//! type.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SerialNumber,
};
use sha2::{Digest, Sha256};
use x509_parser::certificate::X509Certificate;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::pem::parse_x509_pem;
use x509_parser::prelude::FromDer;
use x509_parser::x509::X509Name;

/// PEM label of an X.509 certificate.
const CERTIFICATE_LABEL: &str = "CERTIFICATE";
/// PEM labels accepted for a PKCS #10 certificate signing request.
const CSR_LABELS: &[&str] = &["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"];
/// Organization placed in every cluster CSR subject.
const CLUSTER_CSR_ORGANIZATION: &str = "AWS CloudHSM simulator";
/// Validity period of generated certificates (about ten years).
const VALIDITY: Duration = Duration::from_secs(3650 * 24 * 60 * 60);
/// How far in the past `notBefore` is set, to tolerate clock skew.
const BACKDATE: Duration = Duration::from_secs(60 * 60);

/// Errors from parsing, verifying or generating certificates.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CertError {
    /// An input is not a single valid PEM-encoded object of the expected type.
    #[error(
        "the {what} is not valid: {reason}; provide exactly one PEM-encoded block \
         (-----BEGIN ...----- / -----END ...-----)"
    )]
    InvalidPem {
        /// Which input was rejected ("SignedCert", "TrustAnchor", "CSR", ...).
        what: &'static str,
        /// What exactly is wrong with it.
        reason: String,
    },
    /// The trust anchor is not a self-signed (root) certificate.
    #[error(
        "the trust anchor is not self-signed: {0}; provide the self-signed root certificate \
         of the CA that issued the signed cluster certificate"
    )]
    TrustAnchorNotSelfSigned(String),
    /// The trust anchor lacks `basicConstraints` with `cA = TRUE`.
    #[error(
        "the trust anchor is not a CA certificate: it has no basicConstraints extension \
         with cA=TRUE; provide your issuing CA's root certificate, not an end-entity certificate"
    )]
    TrustAnchorNotCa,
    /// The signed cluster certificate was not issued by the trust anchor.
    #[error(
        "the signed cluster certificate was not issued by the trust anchor: {0}; sign the \
         cluster CSR with the CA whose root certificate you pass as the trust anchor"
    )]
    NotSignedByTrustAnchor(String),
    /// The signed certificate certifies a different key than the cluster CSR.
    #[error(
        "the signed cluster certificate's public key does not match the public key in the \
         cluster CSR; sign the CSR returned by DescribeClusters for this cluster"
    )]
    PublicKeyMismatch,
    /// Key or certificate generation failed.
    #[error("certificate generation failed: {0}")]
    Generation(String),
}

/// A cluster's key pair and its certificate signing request (what CloudHSM
/// gives a new `UNINITIALIZED` cluster as `ClusterCsr`).
#[derive(Debug, Clone)]
pub struct ClusterCsr {
    /// The cluster's private key, PKCS #8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub private_key_pem: String,
    /// The PKCS #10 CSR, PEM (`-----BEGIN CERTIFICATE REQUEST-----`).
    pub csr_pem: String,
}

/// A customer's self-signed issuing CA (what the customer saves as
/// `customerCA.crt`). Used by the simulator's default seed and by tests.
#[derive(Debug, Clone)]
pub struct CustomerCa {
    /// The CA's self-signed certificate, PEM (`-----BEGIN CERTIFICATE-----`).
    pub cert_pem: String,
    /// The CA's private key, PKCS #8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub private_key_pem: String,
}

/// Make a fresh ECDSA P-256 key pair and a CSR whose subject CN is the cluster
/// id (plus O = "AWS CloudHSM simulator").
///
/// # Errors
///
/// [`CertError::Generation`] if `cluster_id` is empty or key/CSR generation fails.
pub fn new_cluster_csr(cluster_id: &str) -> Result<ClusterCsr, CertError> {
    if cluster_id.is_empty() {
        return Err(CertError::Generation(
            "the cluster id used as the CSR common name must not be empty".to_string(),
        ));
    }
    let key_pair = KeyPair::generate().map_err(generation)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cluster_id);
    dn.push(DnType::OrganizationName, CLUSTER_CSR_ORGANIZATION);
    params.distinguished_name = dn;
    let csr_pem = params
        .serialize_request(&key_pair)
        .map_err(generation)?
        .pem()
        .map_err(generation)?;
    Ok(ClusterCsr {
        private_key_pem: key_pair.serialize_pem(),
        csr_pem,
    })
}

/// The checks of cloudhsmv2 `InitializeCluster`, with real X.509 parsing:
///
///  - `trust_anchor_pem` parses as exactly one PEM certificate (surrounding
///    whitespace / CRLF ignored), is self-signed (issuer == subject AND its
///    signature verifies with its own public key), and is a CA
///    (basicConstraints cA = true);
///  - `signed_cert_pem` parses, its issuer == the trust anchor's subject and its
///    signature verifies with the trust anchor's public key;
///  - the signed cert's SubjectPublicKeyInfo equals the CSR's public key.
///
/// The CSR's own signature is verified too. Validity periods are not checked.
///
/// # Errors
///
/// [`CertError::InvalidPem`] (with `what` = `"TrustAnchor"`, `"SignedCert"` or
/// `"CSR"`) for unparsable input, then the first failing check as
/// [`CertError::TrustAnchorNotSelfSigned`], [`CertError::TrustAnchorNotCa`],
/// [`CertError::NotSignedByTrustAnchor`] or [`CertError::PublicKeyMismatch`].
pub fn verify_initialization(
    csr_pem: &str,
    signed_cert_pem: &str,
    trust_anchor_pem: &str,
) -> Result<(), CertError> {
    let anchor_der = decode_single_pem(trust_anchor_pem, "TrustAnchor", &[CERTIFICATE_LABEL])?;
    let anchor = parse_certificate(&anchor_der, "TrustAnchor")?;
    let signed_der = decode_single_pem(signed_cert_pem, "SignedCert", &[CERTIFICATE_LABEL])?;
    let signed = parse_certificate(&signed_der, "SignedCert")?;
    let csr_der = decode_single_pem(csr_pem, "CSR", CSR_LABELS)?;
    let csr = parse_csr(&csr_der, "CSR")?;

    // The trust anchor must be a self-signed root CA.
    if !names_match(anchor.issuer(), anchor.subject()) {
        return Err(CertError::TrustAnchorNotSelfSigned(format!(
            "its issuer differs from its subject (issuer: {}, subject: {})",
            anchor.issuer(),
            anchor.subject()
        )));
    }
    if let Err(e) = anchor.verify_signature(None) {
        return Err(CertError::TrustAnchorNotSelfSigned(format!(
            "its signature does not verify with its own public key ({e})"
        )));
    }
    let is_ca = anchor
        .basic_constraints()
        .map_err(|e| CertError::InvalidPem {
            what: "TrustAnchor",
            reason: format!("its basicConstraints extension is malformed ({e})"),
        })?
        .is_some_and(|bc| bc.value.ca);
    if !is_ca {
        return Err(CertError::TrustAnchorNotCa);
    }

    // The signed certificate must be issued by the trust anchor.
    if !names_match(signed.issuer(), anchor.subject()) {
        return Err(CertError::NotSignedByTrustAnchor(format!(
            "its issuer differs from the trust anchor's subject (issuer: {}, trust anchor subject: {})",
            signed.issuer(),
            anchor.subject()
        )));
    }
    if let Err(e) = signed.verify_signature(Some(anchor.public_key())) {
        return Err(CertError::NotSignedByTrustAnchor(format!(
            "its signature does not verify with the trust anchor's public key ({e})"
        )));
    }

    // And it must certify the cluster's key.
    if signed.public_key().raw != csr.certification_request_info.subject_pki.raw {
        return Err(CertError::PublicKeyMismatch);
    }
    Ok(())
}

/// Semantic certificate equality: decode both PEMs to DER and compare bytes (so
/// CRLF / trailing newlines don't matter). Returns false if either does not parse.
pub fn same_certificate(a_pem: &str, b_pem: &str) -> bool {
    match (
        certificate_der(a_pem, "Certificate"),
        certificate_der(b_pem, "Certificate"),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Lowercase hex SHA-256 of the certificate's DER, or an InvalidPem error.
///
/// # Errors
///
/// [`CertError::InvalidPem`] with `what` = `"Certificate"` if `pem` is not
/// exactly one parsable PEM certificate.
pub fn der_fingerprint(pem: &str) -> Result<String, CertError> {
    let der = certificate_der(pem, "Certificate")?;
    Ok(to_hex(&Sha256::digest(&der)))
}

/// Make a self-signed CA certificate (P-256, basicConstraints CA, keyCertSign,
/// valid ~10 years from now) whose subject is `CN = common_name`.
///
/// # Errors
///
/// [`CertError::Generation`] if `common_name` is empty or generation fails.
pub fn new_customer_ca(common_name: &str) -> Result<CustomerCa, CertError> {
    if common_name.is_empty() {
        return Err(CertError::Generation(
            "the CA common name must not be empty".to_string(),
        ));
    }
    let key_pair = KeyPair::generate().map_err(generation)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params);
    params.serial_number = Some(fresh_serial(&key_pair.subject_public_key_info()));
    let cert = params.self_signed(&key_pair).map_err(generation)?;
    Ok(CustomerCa {
        cert_pem: cert.pem(),
        private_key_pem: key_pair.serialize_pem(),
    })
}

/// Sign a CSR with the CA (the customer's step between CreateCluster and
/// InitializeCluster); returns the signed cert PEM.
///
/// The signed certificate carries the CSR's public key and subject, has
/// issuer = the CA's subject, basicConstraints cA = false, is valid ~10 years
/// from now and has a fresh serial number. Extensions requested in the CSR
/// other than its subject alternative names are not copied.
///
/// # Errors
///
/// [`CertError::InvalidPem`] with `what` = `"CSR"`, `"CA certificate"` or
/// `"CA private key"` for unparsable input; [`CertError::Generation`] if the CA
/// key does not belong to the CA certificate or signing fails.
pub fn sign_csr(ca: &CustomerCa, csr_pem: &str) -> Result<String, CertError> {
    let csr_der = decode_single_pem(csr_pem, "CSR", CSR_LABELS)?;
    let mut csr =
        CertificateSigningRequestParams::from_der(&csr_der.as_slice().into()).map_err(|e| {
            CertError::InvalidPem {
                what: "CSR",
                reason: e.to_string(),
            }
        })?;

    let ca_der = decode_single_pem(&ca.cert_pem, "CA certificate", &[CERTIFICATE_LABEL])?;
    let ca_cert = parse_certificate(&ca_der, "CA certificate")?;
    let ca_key =
        KeyPair::from_pem(ca.private_key_pem.trim()).map_err(|e| CertError::InvalidPem {
            what: "CA private key",
            reason: e.to_string(),
        })?;
    if ca_key.subject_public_key_info() != ca_cert.public_key().raw {
        return Err(CertError::Generation(
            "the CA private key does not belong to the CA certificate".to_string(),
        ));
    }
    let issuer = Issuer::from_ca_cert_der(&ca_der.as_slice().into(), ca_key).map_err(|e| {
        CertError::InvalidPem {
            what: "CA certificate",
            reason: e.to_string(),
        }
    })?;

    let subject_spki = {
        let parsed = parse_csr(&csr_der, "CSR")?;
        parsed.certification_request_info.subject_pki.raw.to_vec()
    };
    let params = &mut csr.params;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages.clear();
    params.use_authority_key_identifier_extension = true;
    set_validity(params);
    params.serial_number = Some(fresh_serial(&subject_spki));
    let cert = csr.signed_by(&issuer).map_err(generation)?;
    Ok(cert.pem())
}

/// Maps an rcgen error to [`CertError::Generation`].
fn generation(e: rcgen::Error) -> CertError {
    CertError::Generation(e.to_string())
}

/// Decodes `input` as exactly one PEM block whose label is one of `labels`,
/// returning the DER contents. Only whitespace may surround the block.
fn decode_single_pem(
    input: &str,
    what: &'static str,
    labels: &[&str],
) -> Result<Vec<u8>, CertError> {
    let invalid = |reason: String| CertError::InvalidPem { what, reason };
    let expected = labels.first().copied().unwrap_or(CERTIFICATE_LABEL);
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(invalid("it is empty".to_string()));
    }
    if !trimmed.starts_with("-----BEGIN ") {
        return Err(invalid(format!(
            "it does not start with a -----BEGIN {expected}----- line"
        )));
    }
    let blocks = trimmed.matches("-----BEGIN ").count();
    if blocks != 1 {
        return Err(invalid(format!(
            "it contains {blocks} PEM blocks, expected exactly one"
        )));
    }
    let (rest, pem) = parse_x509_pem(trimmed.as_bytes())
        .map_err(|e| invalid(format!("the PEM encoding is malformed ({e})")))?;
    if !labels.contains(&pem.label.as_str()) {
        return Err(invalid(format!(
            "it is a {} PEM block, expected {expected}",
            pem.label
        )));
    }
    let end_line = format!("-----END {}-----", pem.label);
    if !trimmed.ends_with(&end_line) || rest.iter().any(|b| !b.is_ascii_whitespace()) {
        return Err(invalid(format!(
            "it does not end with a matching {end_line} line"
        )));
    }
    if pem.contents.is_empty() {
        return Err(invalid("the PEM block has no content".to_string()));
    }
    Ok(pem.contents)
}

/// Parses DER as exactly one X.509 certificate.
fn parse_certificate<'a>(
    der: &'a [u8],
    what: &'static str,
) -> Result<X509Certificate<'a>, CertError> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(CertError::InvalidPem {
            what,
            reason: "the certificate is followed by unexpected extra bytes".to_string(),
        }),
        Err(e) => Err(CertError::InvalidPem {
            what,
            reason: format!("the content is not a valid X.509 certificate ({e})"),
        }),
    }
}

/// Parses DER as exactly one PKCS #10 CSR and verifies its self-signature.
fn parse_csr<'a>(
    der: &'a [u8],
    what: &'static str,
) -> Result<X509CertificationRequest<'a>, CertError> {
    let csr = match X509CertificationRequest::from_der(der) {
        Ok(([], csr)) => csr,
        Ok(_) => {
            return Err(CertError::InvalidPem {
                what,
                reason: "the request is followed by unexpected extra bytes".to_string(),
            });
        }
        Err(e) => {
            return Err(CertError::InvalidPem {
                what,
                reason: format!("the content is not a valid PKCS #10 request ({e})"),
            });
        }
    };
    csr.verify_signature().map_err(|e| CertError::InvalidPem {
        what,
        reason: format!("its signature does not verify with its own public key ({e})"),
    })?;
    Ok(csr)
}

/// Decodes and parses a single PEM certificate, returning its DER.
fn certificate_der(pem: &str, what: &'static str) -> Result<Vec<u8>, CertError> {
    let der = decode_single_pem(pem, what, &[CERTIFICATE_LABEL])?;
    parse_certificate(&der, what)?;
    Ok(der)
}

/// Name equality: identical DER encoding, or identical RFC 4514 rendering
/// (tolerates e.g. PrintableString vs UTF8String encodings of the same text).
fn names_match(a: &X509Name<'_>, b: &X509Name<'_>) -> bool {
    a.as_raw() == b.as_raw() || a.to_string() == b.to_string()
}

/// Sets `notBefore` slightly in the past and `notAfter` ~10 years ahead.
fn set_validity(params: &mut CertificateParams) {
    let now = SystemTime::now();
    params.not_before = now.checked_sub(BACKDATE).unwrap_or(now).into();
    params.not_after = now.checked_add(VALIDITY).unwrap_or(now).into();
}

/// A 20-byte positive serial number derived from the key, the clock and a
/// process-wide counter, so re-signing the same key yields distinct serials.
fn fresh_serial(spki: &[u8]) -> SerialNumber {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut hasher = Sha256::new();
    hasher.update(spki);
    hasher.update(nanos.to_be_bytes());
    hasher.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    let mut serial = hasher.finalize()[..20].to_vec();
    if let Some(first) = serial.first_mut() {
        // Positive, and never a leading zero byte (keeps the length at 20).
        *first = (*first & 0x7f) | 0x01;
    }
    SerialNumber::from_slice(&serial)
}

/// Lowercase hex encoding.
fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::pem::parse_x509_pem;

    /// A CA certificate plus its issuer, built directly with rcgen.
    fn ca_params(cn: &str) -> CertificateParams {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params
    }

    /// An intermediate CA signed by `root`, returned as a [`CustomerCa`].
    fn intermediate_ca(root: &CustomerCa, cn: &str) -> CustomerCa {
        let root_key = KeyPair::from_pem(&root.private_key_pem).unwrap();
        let root_issuer = Issuer::from_ca_cert_pem(&root.cert_pem, root_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = ca_params(cn);
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &root_issuer).unwrap();
        CustomerCa {
            cert_pem: cert.pem(),
            private_key_pem: key.serialize_pem(),
        }
    }

    fn crlf(s: &str) -> String {
        s.replace("\r\n", "\n").replace('\n', "\r\n")
    }

    #[test]
    fn happy_path_verifies() {
        let csr = new_cluster_csr("cluster-abc123").unwrap();
        let ca = new_customer_ca("Customer Root CA").unwrap();
        let signed = sign_csr(&ca, &csr.csr_pem).unwrap();
        assert_eq!(
            verify_initialization(&csr.csr_pem, &signed, &ca.cert_pem),
            Ok(())
        );
    }

    #[test]
    fn happy_path_tolerates_crlf_and_whitespace() {
        let csr = new_cluster_csr("cluster-abc123").unwrap();
        let ca = new_customer_ca("Customer Root CA").unwrap();
        let signed = sign_csr(&ca, &crlf(&csr.csr_pem)).unwrap();
        assert_eq!(
            verify_initialization(
                &format!("\r\n  {}\r\n\r\n", crlf(&csr.csr_pem)),
                &format!("{}\n\n", crlf(&signed)),
                &format!("\n{}", ca.cert_pem.trim_end()),
            ),
            Ok(())
        );
    }

    #[test]
    fn generated_csr_has_expected_subject_and_key() {
        let csr = new_cluster_csr("cluster-xyz").unwrap();
        let (_, pem) = parse_x509_pem(csr.csr_pem.as_bytes()).unwrap();
        assert_eq!(pem.label, "CERTIFICATE REQUEST");
        let (_, req) = X509CertificationRequest::from_der(&pem.contents).unwrap();
        req.verify_signature().unwrap();
        let subject = req.certification_request_info.subject.to_string();
        assert!(subject.contains("CN=cluster-xyz"), "{subject}");
        assert!(subject.contains("O=AWS CloudHSM simulator"), "{subject}");
        let key = KeyPair::from_pem(&csr.private_key_pem).unwrap();
        assert_eq!(
            key.subject_public_key_info(),
            req.certification_request_info.subject_pki.raw
        );
        assert!(matches!(new_cluster_csr(""), Err(CertError::Generation(_))));
    }

    #[test]
    fn customer_ca_and_signed_cert_have_expected_shape() {
        let csr = new_cluster_csr("cluster-shape").unwrap();
        let ca = new_customer_ca("Shape Root CA").unwrap();
        let signed = sign_csr(&ca, &csr.csr_pem).unwrap();

        let (_, ca_pem) = parse_x509_pem(ca.cert_pem.as_bytes()).unwrap();
        let ca_cert = ca_pem.parse_x509().unwrap();
        assert!(ca_cert.is_ca());
        assert_eq!(ca_cert.issuer(), ca_cert.subject());
        assert!(ca_cert.key_usage().unwrap().unwrap().value.key_cert_sign());
        ca_cert.verify_signature(None).unwrap();
        let years = ca_cert
            .validity()
            .time_to_expiration()
            .unwrap()
            .whole_days()
            / 365;
        assert!((9..=10).contains(&years), "{years}");

        let (_, signed_pem) = parse_x509_pem(signed.as_bytes()).unwrap();
        let cert = signed_pem.parse_x509().unwrap();
        assert!(!cert.is_ca());
        assert!(cert.validity().is_valid());
        assert_eq!(cert.issuer().as_raw(), ca_cert.subject().as_raw());
        assert!(cert.subject().to_string().contains("CN=cluster-shape"));
        cert.verify_signature(Some(ca_cert.public_key())).unwrap();
        let key = KeyPair::from_pem(&csr.private_key_pem).unwrap();
        assert_eq!(key.subject_public_key_info(), cert.public_key().raw);

        // Re-signing the same CSR yields a distinct certificate (fresh serial).
        let again = sign_csr(&ca, &csr.csr_pem).unwrap();
        assert!(!same_certificate(&signed, &again));
    }

    #[test]
    fn intermediate_as_trust_anchor_is_not_self_signed() {
        let root = new_customer_ca("Root CA").unwrap();
        let intermediate = intermediate_ca(&root, "Intermediate CA");
        let csr = new_cluster_csr("cluster-1").unwrap();
        let signed = sign_csr(&intermediate, &csr.csr_pem).unwrap();
        let err = verify_initialization(&csr.csr_pem, &signed, &intermediate.cert_pem).unwrap_err();
        assert!(
            matches!(err, CertError::TrustAnchorNotSelfSigned(ref m) if m.contains("issuer")),
            "{err:?}"
        );
        assert!(
            err.to_string().starts_with(
                "the trust anchor is not self-signed: its issuer differs from its subject \
                 (issuer: CN=Root CA, subject: CN=Intermediate CA)"
            ),
            "{err}"
        );
        // The chain root is fine as an anchor only if it issued the cert directly.
        assert!(matches!(
            verify_initialization(&csr.csr_pem, &signed, &root.cert_pem),
            Err(CertError::NotSignedByTrustAnchor(_))
        ));
    }

    #[test]
    fn leaf_as_trust_anchor_is_rejected() {
        let ca = new_customer_ca("Root CA").unwrap();
        let csr = new_cluster_csr("cluster-1").unwrap();
        let signed = sign_csr(&ca, &csr.csr_pem).unwrap();
        let err = verify_initialization(&csr.csr_pem, &signed, &signed).unwrap_err();
        assert!(
            matches!(
                err,
                CertError::TrustAnchorNotSelfSigned(_) | CertError::TrustAnchorNotCa
            ),
            "{err:?}"
        );
    }

    #[test]
    fn anchor_with_issuer_equal_subject_but_foreign_signature_is_not_self_signed() {
        // Subject == issuer == "CN=Fake Root", but signed by an unrelated key.
        let params = ca_params("Fake Root");
        let own_key = KeyPair::generate().unwrap();
        let other_key = KeyPair::generate().unwrap();
        let forger = Issuer::new(params.clone(), other_key);
        let fake = params.signed_by(&own_key, &forger).unwrap();
        let fake_ca = CustomerCa {
            cert_pem: fake.pem(),
            private_key_pem: own_key.serialize_pem(),
        };
        let csr = new_cluster_csr("cluster-1").unwrap();
        let signed = sign_csr(&fake_ca, &csr.csr_pem).unwrap();
        let err = verify_initialization(&csr.csr_pem, &signed, &fake_ca.cert_pem).unwrap_err();
        assert!(
            matches!(err, CertError::TrustAnchorNotSelfSigned(ref m) if m.contains("signature")),
            "{err:?}"
        );
    }

    #[test]
    fn self_signed_non_ca_anchor_is_not_ca() {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "Not A CA");
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        let cert = params.self_signed(&key).unwrap();
        let not_ca = CustomerCa {
            cert_pem: cert.pem(),
            private_key_pem: key.serialize_pem(),
        };
        let csr = new_cluster_csr("cluster-1").unwrap();
        let signed = sign_csr(&not_ca, &csr.csr_pem).unwrap();
        let err = verify_initialization(&csr.csr_pem, &signed, &not_ca.cert_pem).unwrap_err();
        assert_eq!(err, CertError::TrustAnchorNotCa);

        // Also without any basicConstraints extension at all.
        params.is_ca = IsCa::NoCa;
        let bare = params.self_signed(&key).unwrap().pem();
        assert_eq!(
            verify_initialization(&csr.csr_pem, &signed, &bare),
            Err(CertError::TrustAnchorNotCa)
        );
    }

    #[test]
    fn cert_from_a_different_ca_is_rejected() {
        let ca1 = new_customer_ca("Customer Root CA").unwrap();
        let ca2 = new_customer_ca("Other Root CA").unwrap();
        let csr = new_cluster_csr("cluster-1").unwrap();
        let signed = sign_csr(&ca2, &csr.csr_pem).unwrap();
        let err = verify_initialization(&csr.csr_pem, &signed, &ca1.cert_pem).unwrap_err();
        assert!(
            matches!(err, CertError::NotSignedByTrustAnchor(ref m) if m.contains("issuer")),
            "{err:?}"
        );

        // Same subject name, different key: caught by signature verification.
        let twin = new_customer_ca("Customer Root CA").unwrap();
        let signed = sign_csr(&twin, &csr.csr_pem).unwrap();
        let err = verify_initialization(&csr.csr_pem, &signed, &ca1.cert_pem).unwrap_err();
        assert!(
            matches!(err, CertError::NotSignedByTrustAnchor(ref m) if m.contains("signature")),
            "{err:?}"
        );
    }

    #[test]
    fn cert_for_another_csr_is_public_key_mismatch() {
        let ca = new_customer_ca("Customer Root CA").unwrap();
        let csr1 = new_cluster_csr("cluster-1").unwrap();
        let csr2 = new_cluster_csr("cluster-1").unwrap();
        let signed_for_2 = sign_csr(&ca, &csr2.csr_pem).unwrap();
        assert_eq!(
            verify_initialization(&csr1.csr_pem, &signed_for_2, &ca.cert_pem),
            Err(CertError::PublicKeyMismatch)
        );
    }

    #[test]
    fn garbage_pem_names_the_input() {
        let ca = new_customer_ca("Customer Root CA").unwrap();
        let csr = new_cluster_csr("cluster-1").unwrap();
        let signed = sign_csr(&ca, &csr.csr_pem).unwrap();
        let garbage = "not a certificate";
        let bad_base64 = "-----BEGIN CERTIFICATE-----\n@@@@\n-----END CERTIFICATE-----\n";
        let not_der = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";

        let what = |r: Result<(), CertError>| match r {
            Err(CertError::InvalidPem { what, .. }) => what,
            other => panic!("expected InvalidPem, got {other:?}"),
        };
        for bad in [garbage, "", bad_base64, not_der] {
            assert_eq!(
                what(verify_initialization(&csr.csr_pem, &signed, bad)),
                "TrustAnchor"
            );
            assert_eq!(
                what(verify_initialization(&csr.csr_pem, bad, &ca.cert_pem)),
                "SignedCert"
            );
        }
        assert_eq!(
            what(verify_initialization(garbage, &signed, &ca.cert_pem)),
            "CSR"
        );
        // A certificate where a CSR is expected, and vice versa.
        assert_eq!(
            what(verify_initialization(&signed, &signed, &ca.cert_pem)),
            "CSR"
        );
        assert_eq!(
            what(verify_initialization(
                &csr.csr_pem,
                &csr.csr_pem,
                &ca.cert_pem
            )),
            "SignedCert"
        );
        // Two certificates in the trust anchor (a bundle) is not exactly one.
        let bundle = format!("{}{}", ca.cert_pem, signed);
        let err = verify_initialization(&csr.csr_pem, &signed, &bundle).unwrap_err();
        assert!(
            matches!(err, CertError::InvalidPem { what: "TrustAnchor", ref reason } if reason.contains("2 PEM blocks")),
            "{err:?}"
        );
        // Text outside the block is rejected.
        let trailing = format!("{}junk\n", ca.cert_pem);
        assert_eq!(
            what(verify_initialization(&csr.csr_pem, &signed, &trailing)),
            "TrustAnchor"
        );
        // Errors render as readable sentences naming the input.
        let msg = verify_initialization(&csr.csr_pem, &signed, garbage)
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("the TrustAnchor is not valid: "), "{msg}");
    }

    #[test]
    fn sign_csr_rejects_bad_input() {
        let ca = new_customer_ca("Customer Root CA").unwrap();
        let other = new_customer_ca("Other Root CA").unwrap();
        let csr = new_cluster_csr("cluster-1").unwrap();
        assert!(matches!(
            sign_csr(&ca, "garbage"),
            Err(CertError::InvalidPem { what: "CSR", .. })
        ));
        let mismatched = CustomerCa {
            cert_pem: ca.cert_pem.clone(),
            private_key_pem: other.private_key_pem.clone(),
        };
        assert!(matches!(
            sign_csr(&mismatched, &csr.csr_pem),
            Err(CertError::Generation(_))
        ));
        let bad_key = CustomerCa {
            cert_pem: ca.cert_pem.clone(),
            private_key_pem: "nope".to_string(),
        };
        assert!(matches!(
            sign_csr(&bad_key, &csr.csr_pem),
            Err(CertError::InvalidPem {
                what: "CA private key",
                ..
            })
        ));
    }

    #[test]
    fn same_certificate_ignores_line_endings() {
        let ca = new_customer_ca("Customer Root CA").unwrap();
        let other = new_customer_ca("Customer Root CA").unwrap();
        let pem = &ca.cert_pem;
        assert!(same_certificate(pem, pem));
        assert!(same_certificate(pem, &crlf(pem)));
        assert!(same_certificate(pem, pem.trim_end()));
        assert!(same_certificate(
            &format!("{pem}\n\n"),
            &format!("\r\n{}", crlf(pem))
        ));
        assert!(!same_certificate(pem, &other.cert_pem));
        assert!(!same_certificate(pem, "garbage"));
        assert!(!same_certificate("garbage", "garbage"));
    }

    #[test]
    fn fingerprint_is_stable_lowercase_hex() {
        let ca = new_customer_ca("Customer Root CA").unwrap();
        let fp = der_fingerprint(&ca.cert_pem).unwrap();
        assert_eq!(fp.len(), 64);
        assert!(
            fp.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        );
        assert_eq!(der_fingerprint(&crlf(&ca.cert_pem)).unwrap(), fp);
        let (_, pem) = parse_x509_pem(ca.cert_pem.as_bytes()).unwrap();
        assert_eq!(to_hex(&Sha256::digest(&pem.contents)), fp);
        let other = new_customer_ca("Customer Root CA").unwrap();
        assert_ne!(der_fingerprint(&other.cert_pem).unwrap(), fp);
        assert!(matches!(
            der_fingerprint("garbage"),
            Err(CertError::InvalidPem {
                what: "Certificate",
                ..
            })
        ));
    }

    #[test]
    fn error_messages_are_readable() {
        let e = CertError::TrustAnchorNotSelfSigned("its issuer differs from its subject".into());
        assert!(e.to_string().starts_with(
            "the trust anchor is not self-signed: its issuer differs from its subject"
        ));
        assert!(CertError::TrustAnchorNotCa.to_string().contains("cA=TRUE"));
        assert!(CertError::PublicKeyMismatch.to_string().contains("CSR"));
    }
}
