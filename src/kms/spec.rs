//! Key specs and key usages: which combinations `CreateKey` accepts, and which algorithms each
//! key offers (`DescribeKey`'s `EncryptionAlgorithms`, `SigningAlgorithms`, `MacAlgorithms`,
//! `KeyAgreementAlgorithms`).

use crate::hsm::asymmetric::{Capability, Hash, Offers, PairKind};
use serde::{Deserialize, Serialize};

/// A KMS key spec this simulator creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, Hash)]
#[allow(missing_docs)]
pub enum KeySpec {
    #[default]
    #[serde(rename = "SYMMETRIC_DEFAULT")]
    SymmetricDefault,
    #[serde(rename = "RSA_2048")]
    Rsa2048,
    #[serde(rename = "RSA_3072")]
    Rsa3072,
    #[serde(rename = "RSA_4096")]
    Rsa4096,
    #[serde(rename = "ECC_NIST_P256")]
    EccNistP256,
    #[serde(rename = "ECC_NIST_P384")]
    EccNistP384,
    #[serde(rename = "ECC_NIST_P521")]
    EccNistP521,
    #[serde(rename = "ECC_SECG_P256K1")]
    EccSecgP256k1,
    #[serde(rename = "HMAC_224")]
    Hmac224,
    #[serde(rename = "HMAC_256")]
    Hmac256,
    #[serde(rename = "HMAC_384")]
    Hmac384,
    #[serde(rename = "HMAC_512")]
    Hmac512,
}

/// Every spec, in the model's order.
pub const ALL_SPECS: [KeySpec; 12] = [
    KeySpec::Rsa2048,
    KeySpec::Rsa3072,
    KeySpec::Rsa4096,
    KeySpec::EccNistP256,
    KeySpec::EccNistP384,
    KeySpec::EccNistP521,
    KeySpec::EccSecgP256k1,
    KeySpec::SymmetricDefault,
    KeySpec::Hmac224,
    KeySpec::Hmac256,
    KeySpec::Hmac384,
    KeySpec::Hmac512,
];

/// `KeyUsageType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum KeyUsage {
    #[default]
    EncryptDecrypt,
    SignVerify,
    GenerateVerifyMac,
    KeyAgreement,
}

impl KeyUsage {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyUsage::EncryptDecrypt => "ENCRYPT_DECRYPT",
            KeyUsage::SignVerify => "SIGN_VERIFY",
            KeyUsage::GenerateVerifyMac => "GENERATE_VERIFY_MAC",
            KeyUsage::KeyAgreement => "KEY_AGREEMENT",
        }
    }

    /// Parse a wire value.
    pub fn parse(s: &str) -> Option<KeyUsage> {
        [
            KeyUsage::EncryptDecrypt,
            KeyUsage::SignVerify,
            KeyUsage::GenerateVerifyMac,
            KeyUsage::KeyAgreement,
        ]
        .into_iter()
        .find(|u| u.as_str() == s)
    }
}

/// An elliptic curve of a KMS key spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Curve {
    /// DER of the curve's OID (`CKA_EC_PARAMS`, and the SPKI's algorithm parameter).
    pub oid_der: &'static [u8],
    /// Bytes of a field element (and of the ECDH shared secret).
    pub field_len: usize,
}

const P256: Curve = Curve {
    oid_der: &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
    field_len: 32,
};
const P384: Curve = Curve {
    oid_der: &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22],
    field_len: 48,
};
const P521: Curve = Curve {
    oid_der: &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23],
    field_len: 66,
};
const SECP256K1: Curve = Curve {
    oid_der: &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a],
    field_len: 32,
};

impl KeySpec {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            KeySpec::SymmetricDefault => "SYMMETRIC_DEFAULT",
            KeySpec::Rsa2048 => "RSA_2048",
            KeySpec::Rsa3072 => "RSA_3072",
            KeySpec::Rsa4096 => "RSA_4096",
            KeySpec::EccNistP256 => "ECC_NIST_P256",
            KeySpec::EccNistP384 => "ECC_NIST_P384",
            KeySpec::EccNistP521 => "ECC_NIST_P521",
            KeySpec::EccSecgP256k1 => "ECC_SECG_P256K1",
            KeySpec::Hmac224 => "HMAC_224",
            KeySpec::Hmac256 => "HMAC_256",
            KeySpec::Hmac384 => "HMAC_384",
            KeySpec::Hmac512 => "HMAC_512",
        }
    }

    /// Parse a wire value (None for specs this simulator does not create: SM2, ML-DSA,
    /// Ed25519).
    pub fn parse(s: &str) -> Option<KeySpec> {
        ALL_SPECS.into_iter().find(|k| k.as_str() == s)
    }

    /// RSA modulus bits.
    pub fn rsa_bits(self) -> Option<u64> {
        match self {
            KeySpec::Rsa2048 => Some(2048),
            KeySpec::Rsa3072 => Some(3072),
            KeySpec::Rsa4096 => Some(4096),
            _ => None,
        }
    }

    /// The curve of an ECC spec.
    pub fn curve(self) -> Option<Curve> {
        match self {
            KeySpec::EccNistP256 => Some(P256),
            KeySpec::EccNistP384 => Some(P384),
            KeySpec::EccNistP521 => Some(P521),
            KeySpec::EccSecgP256k1 => Some(SECP256K1),
            _ => None,
        }
    }

    /// The HMAC hash of an HMAC spec.
    pub fn hmac_hash(self) -> Option<Hash> {
        match self {
            KeySpec::Hmac224 => Some(Hash::Sha224),
            KeySpec::Hmac256 => Some(Hash::Sha256),
            KeySpec::Hmac384 => Some(Hash::Sha384),
            KeySpec::Hmac512 => Some(Hash::Sha512),
            _ => None,
        }
    }

    /// The kind of token key pair of an RSA or ECC spec.
    pub fn pair_kind(self) -> Option<PairKind> {
        if let Some(bits) = self.rsa_bits() {
            return Some(PairKind::Rsa { bits });
        }
        self.curve().map(|c| PairKind::Ec {
            params: c.oid_der.to_vec(),
        })
    }

    /// Whether keys of this spec are asymmetric (have a public key).
    pub fn is_asymmetric(self) -> bool {
        self.rsa_bits().is_some() || self.curve().is_some()
    }

    /// The key usages a key of this spec may have.
    pub fn usages(self) -> &'static [KeyUsage] {
        match self {
            KeySpec::SymmetricDefault => &[KeyUsage::EncryptDecrypt],
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => {
                &[KeyUsage::EncryptDecrypt, KeyUsage::SignVerify]
            }
            KeySpec::EccNistP256 | KeySpec::EccNistP384 | KeySpec::EccNistP521 => {
                &[KeyUsage::SignVerify, KeyUsage::KeyAgreement]
            }
            KeySpec::EccSecgP256k1 => &[KeyUsage::SignVerify],
            KeySpec::Hmac224 | KeySpec::Hmac256 | KeySpec::Hmac384 | KeySpec::Hmac512 => {
                &[KeyUsage::GenerateVerifyMac]
            }
        }
    }

    /// The signing algorithms of a `SIGN_VERIFY` key of this spec.
    pub fn signing_algorithms(self) -> &'static [&'static str] {
        match self {
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => &[
                "RSASSA_PSS_SHA_256",
                "RSASSA_PSS_SHA_384",
                "RSASSA_PSS_SHA_512",
                "RSASSA_PKCS1_V1_5_SHA_256",
                "RSASSA_PKCS1_V1_5_SHA_384",
                "RSASSA_PKCS1_V1_5_SHA_512",
            ],
            KeySpec::EccNistP256 | KeySpec::EccSecgP256k1 => &["ECDSA_SHA_256"],
            KeySpec::EccNistP384 => &["ECDSA_SHA_384"],
            KeySpec::EccNistP521 => &["ECDSA_SHA_512"],
            _ => &[],
        }
    }

    /// The MAC algorithm of an HMAC spec.
    pub fn mac_algorithm(self) -> Option<&'static str> {
        match self {
            KeySpec::Hmac224 => Some("HMAC_SHA_224"),
            KeySpec::Hmac256 => Some("HMAC_SHA_256"),
            KeySpec::Hmac384 => Some("HMAC_SHA_384"),
            KeySpec::Hmac512 => Some("HMAC_SHA_512"),
            _ => None,
        }
    }

    /// The largest plaintext RSAES-OAEP takes with this modulus and hash (k − 2·hLen − 2).
    pub fn oaep_max_plaintext(self, hash: Hash) -> Option<usize> {
        self.rsa_bits()
            .map(|b| (b as usize / 8).saturating_sub(2 * hash.output_len() + 2))
    }
}

/// The DER OIDs of every curve of a KMS key spec (what a token is asked about).
pub fn all_curves() -> Vec<Vec<u8>> {
    ALL_SPECS
        .iter()
        .filter_map(|s| s.curve())
        .map(|c| c.oid_der.to_vec())
        .collect()
}

/// Whether a token with `offers` serves keys of `spec` and `usage`: it generates the key and
/// has the mechanisms every algorithm of the key needs.
pub fn offered(spec: KeySpec, usage: KeyUsage, offers: &Offers) -> bool {
    if let Some(bits) = spec.rsa_bits() {
        return offers.rsa(bits)
            && offers.can(match usage {
                KeyUsage::SignVerify => Capability::RsaSign,
                _ => Capability::RsaOaep,
            });
    }
    if let Some(curve) = spec.curve() {
        return offers.curve(curve.oid_der)
            && offers.can(match usage {
                KeyUsage::KeyAgreement => Capability::Ecdh,
                _ => Capability::Ecdsa,
            });
    }
    spec.hmac_hash()
        .is_none_or(|h| offers.can(Capability::Hmac(h)))
}

/// Every (spec, usage) a token with `offers` serves.
pub fn offered_kinds(offers: &Offers) -> Vec<(KeySpec, KeyUsage)> {
    ALL_SPECS
        .iter()
        .flat_map(|s| s.usages().iter().map(move |u| (*s, *u)))
        .filter(|(s, u)| offered(*s, *u, offers))
        .collect()
}

/// The algorithm lists of a key's metadata, by member name (only the members that apply).
pub fn algorithm_members(spec: KeySpec, usage: KeyUsage) -> Vec<(&'static str, Vec<&'static str>)> {
    match (spec, usage) {
        (KeySpec::SymmetricDefault, _) => {
            vec![("EncryptionAlgorithms", vec!["SYMMETRIC_DEFAULT"])]
        }
        (_, KeyUsage::EncryptDecrypt) => vec![(
            "EncryptionAlgorithms",
            vec!["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"],
        )],
        (_, KeyUsage::SignVerify) => {
            vec![("SigningAlgorithms", spec.signing_algorithms().to_vec())]
        }
        (_, KeyUsage::GenerateVerifyMac) => {
            vec![("MacAlgorithms", spec.mac_algorithm().into_iter().collect())]
        }
        (_, KeyUsage::KeyAgreement) => vec![("KeyAgreementAlgorithms", vec!["ECDH"])],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip() {
        for s in ALL_SPECS {
            assert_eq!(KeySpec::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::json!(s.as_str())
            );
        }
        assert_eq!(KeySpec::parse("SM2"), None);
    }

    #[test]
    fn oaep_limits_are_awss() {
        assert_eq!(KeySpec::Rsa2048.oaep_max_plaintext(Hash::Sha1), Some(214));
        assert_eq!(KeySpec::Rsa2048.oaep_max_plaintext(Hash::Sha256), Some(190));
        assert_eq!(KeySpec::Rsa3072.oaep_max_plaintext(Hash::Sha256), Some(318));
        assert_eq!(KeySpec::Rsa4096.oaep_max_plaintext(Hash::Sha1), Some(470));
    }
}
