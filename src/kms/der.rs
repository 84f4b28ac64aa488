//! The little DER that KMS's formats need: SubjectPublicKeyInfo for `GetPublicKey`, PKCS #8
//! for a data key pair's private key, ECDSA signatures (`SEQUENCE { r, s }`) both ways, and the
//! raw point inside an EC public key.

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OCTET_STRING: u8 = 0x04;
const NULL: [u8; 2] = [0x05, 0x00];
/// rsaEncryption, 1.2.840.113549.1.1.1.
const RSA_ENCRYPTION: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
];
/// id-ecPublicKey, 1.2.840.10045.2.1.
const EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

/// One TLV.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(SEQUENCE, &parts.concat())
}

/// A non-negative INTEGER from big-endian magnitude bytes.
pub fn uint(bytes: &[u8]) -> Vec<u8> {
    let trimmed: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    let mut v = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
        v.push(0);
    }
    v.extend(trimmed);
    tlv(INTEGER, &v)
}

fn bits(content: &[u8]) -> Vec<u8> {
    let mut v = vec![0];
    v.extend_from_slice(content);
    tlv(BIT_STRING, &v)
}

/// SubjectPublicKeyInfo of an RSA key.
pub fn rsa_spki(modulus: &[u8], exponent: &[u8]) -> Vec<u8> {
    let alg = seq(&[RSA_ENCRYPTION, &NULL]);
    let key = seq(&[&uint(modulus), &uint(exponent)]);
    seq(&[&alg, &bits(&key)])
}

/// SubjectPublicKeyInfo of an EC key (`point`: the raw uncompressed point).
pub fn ec_spki(curve_oid: &[u8], point: &[u8]) -> Vec<u8> {
    let alg = seq(&[EC_PUBLIC_KEY, curve_oid]);
    seq(&[&alg, &bits(point)])
}

/// PKCS #8 PrivateKeyInfo of an RSA key: `components` are n, e, d, p, q, dp, dq, qinv.
pub fn rsa_pkcs8(components: &[Vec<u8>; 8]) -> Vec<u8> {
    let mut key = uint(&[0]);
    for c in components {
        key.extend(uint(c));
    }
    let alg = seq(&[RSA_ENCRYPTION, &NULL]);
    seq(&[&uint(&[0]), &alg, &tlv(OCTET_STRING, &tlv(SEQUENCE, &key))])
}

/// PKCS #8 PrivateKeyInfo of an EC key (RFC 5915 ECPrivateKey inside, with the public key).
pub fn ec_pkcs8(curve_oid: &[u8], field_len: usize, scalar: &[u8], point: &[u8]) -> Vec<u8> {
    let d = left_pad(scalar, field_len);
    let ec_key = seq(&[
        &uint(&[1]),
        &tlv(OCTET_STRING, &d),
        &tlv(0xa1, &bits(point)),
    ]);
    let alg = seq(&[EC_PUBLIC_KEY, curve_oid]);
    seq(&[&uint(&[0]), &alg, &tlv(OCTET_STRING, &ec_key)])
}

fn left_pad(b: &[u8], len: usize) -> Vec<u8> {
    let b: Vec<u8> = b.iter().copied().skip_while(|x| *x == 0).collect();
    let mut v = vec![0; len.saturating_sub(b.len())];
    v.extend(b);
    v
}

/// ECDSA: r ‖ s (each `field_len` bytes, as PKCS #11 gives it) to DER `SEQUENCE { r, s }`.
pub fn ecdsa_to_der(raw: &[u8]) -> Vec<u8> {
    let (r, s) = raw.split_at(raw.len() / 2);
    seq(&[&uint(r), &uint(s)])
}

/// Read one TLV at the start of `b`: (tag, content, rest).
fn read_tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = b.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |a, b| (a << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// ECDSA: DER `SEQUENCE { r, s }` to r ‖ s with each `field_len` bytes; None if it is not one.
pub fn ecdsa_from_der(der: &[u8], field_len: usize) -> Option<Vec<u8>> {
    let (tag, body, rest) = read_tlv(der)?;
    if tag != SEQUENCE || !rest.is_empty() {
        return None;
    }
    let (t1, r, body) = read_tlv(body)?;
    let (t2, s, body) = read_tlv(body)?;
    if t1 != INTEGER || t2 != INTEGER || !body.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(2 * field_len);
    for n in [r, s] {
        let n: Vec<u8> = n.iter().copied().skip_while(|b| *b == 0).collect();
        if n.len() > field_len {
            return None;
        }
        out.extend(left_pad(&n, field_len));
    }
    Some(out)
}

/// The raw uncompressed point of a `CKA_EC_POINT` value: tokens give a DER OCTET STRING
/// around it (some the bare point).
pub fn ec_point_raw(value: &[u8], field_len: usize) -> Vec<u8> {
    let raw_len = 2 * field_len + 1;
    if value.len() == raw_len {
        return value.to_vec();
    }
    match read_tlv(value) {
        Some((OCTET_STRING, inner, [])) if inner.len() == raw_len => inner.to_vec(),
        _ => value.to_vec(),
    }
}

/// The curve OID (DER) and the raw point of an EC SubjectPublicKeyInfo; None for anything
/// else (another algorithm, trailing bytes, unused bits).
pub fn ec_spki_parts(spki: &[u8]) -> Option<(&[u8], &[u8])> {
    let (tag, body, rest) = read_tlv(spki)?;
    if tag != SEQUENCE || !rest.is_empty() {
        return None;
    }
    let (alg_tag, alg, body) = read_tlv(body)?;
    let (bits_tag, bits, body) = read_tlv(body)?;
    if alg_tag != SEQUENCE || bits_tag != BIT_STRING || !body.is_empty() {
        return None;
    }
    let oid_len = alg.len() - read_tlv(alg)?.2.len();
    let (oid, params) = alg.split_at(oid_len);
    let (0x06, _, []) = read_tlv(params)? else {
        return None;
    };
    match bits.split_first() {
        Some((0, point)) if oid == EC_PUBLIC_KEY => Some((params, point)),
        _ => None,
    }
}

/// The DigestInfo prefix of PKCS #1 v1.5 signatures for a SHA-2 digest of `len` bytes.
pub fn digest_info_prefix(len: usize) -> &'static [u8] {
    match len {
        48 => &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x02, 0x05, 0x00, 0x04, 0x30,
        ],
        64 => &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x03, 0x05, 0x00, 0x04, 0x40,
        ],
        _ => &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_use_long_form_past_127() {
        assert_eq!(tlv(0x04, &[0; 3])[..2], [0x04, 3]);
        assert_eq!(tlv(0x04, &[0; 200])[..3], [0x04, 0x81, 200]);
        assert_eq!(tlv(0x04, &[0; 300])[..4], [0x04, 0x82, 0x01, 0x2c]);
    }

    #[test]
    fn integers_are_minimal_and_positive() {
        assert_eq!(uint(&[0, 0, 5]), vec![0x02, 1, 5]);
        assert_eq!(uint(&[0x80]), vec![0x02, 2, 0, 0x80]);
        assert_eq!(uint(&[]), vec![0x02, 1, 0]);
    }

    #[test]
    fn ecdsa_signatures_round_trip() {
        let mut raw = vec![0u8; 64];
        raw[0] = 0x80;
        raw[31] = 1;
        raw[63] = 7;
        let der = ecdsa_to_der(&raw);
        assert_eq!(ecdsa_from_der(&der, 32), Some(raw));
        assert_eq!(ecdsa_from_der(&der[..der.len() - 1], 32), None);
        assert_eq!(ecdsa_from_der(b"not der", 32), None);
    }

    #[test]
    fn ec_spki_parts_read_back_what_ec_spki_writes() {
        let curve = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
        let point = [vec![4u8], vec![3; 96]].concat();
        let spki = ec_spki(&curve, &point);
        assert_eq!(ec_spki_parts(&spki), Some((&curve[..], &point[..])));
        assert_eq!(ec_spki_parts(&rsa_spki(&[0xc5; 256], &[1, 0, 1])), None);
        assert_eq!(ec_spki_parts(&spki[..spki.len() - 1]), None);
    }

    #[test]
    fn ec_points_are_unwrapped() {
        let point = [vec![4u8], vec![9; 64]].concat();
        assert_eq!(ec_point_raw(&tlv(0x04, &point), 32), point);
        assert_eq!(ec_point_raw(&point, 32), point);
    }
}
