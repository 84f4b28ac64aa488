//! Key pairs and HMAC keys on a token: generation, signatures and MACs, RSA encryption, ECDH,
//! public halves, and extractable session pairs (for data key pairs handed out in plaintext).
//!
//! A KMS key's private half (or HMAC secret) is a token object with `CKA_ID` = the key ID's
//! bytes, held in the token's key index like an AES key; its public half has the same
//! `CKA_ID` and is found by search when an operation needs it (Encrypt, Verify).

use super::error::{HsmError, HsmOp};
use super::token::{ObjectId, Token};
use cryptoki::error::RvError;
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use std::sync::Arc;

/// What kind of key pair to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairKind {
    /// RSA with this modulus size in bits (public exponent 65537).
    Rsa {
        /// Modulus bits.
        bits: u64,
    },
    /// An elliptic-curve pair on the curve named by this DER-encoded OID (`CKA_EC_PARAMS`).
    Ec {
        /// DER of the curve's OID.
        params: Vec<u8>,
    },
}

/// What a key pair's private half may do (one use per KMS key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairUse {
    /// Sign (public half: verify).
    Sign,
    /// Decrypt (public half: encrypt).
    Decrypt,
    /// Derive (ECDH).
    Derive,
}

/// The public half of a pair as the token gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicParts {
    /// RSA modulus and public exponent, big-endian.
    Rsa {
        /// `CKA_MODULUS`.
        modulus: Vec<u8>,
        /// `CKA_PUBLIC_EXPONENT`.
        exponent: Vec<u8>,
    },
    /// `CKA_EC_POINT` as the token gives it (usually a DER OCTET STRING around the point).
    Ec {
        /// `CKA_EC_POINT`.
        point: Vec<u8>,
    },
}

/// The private half of an extractable session pair, read out of the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrivateParts {
    /// RSA CRT components, big-endian, in PKCS#1 order after the version.
    Rsa {
        /// n, e, d, p, q, d mod (p-1), d mod (q-1), q⁻¹ mod p.
        components: [Vec<u8>; 8],
    },
    /// EC private scalar and the public point (`CKA_EC_POINT` as given).
    Ec {
        /// `CKA_VALUE`.
        scalar: Vec<u8>,
        /// `CKA_EC_POINT`.
        point: Vec<u8>,
    },
}

/// A hash function named in a mechanism's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    /// SHA-1.
    Sha1,
    /// SHA-224.
    Sha224,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl Hash {
    fn mechanism(self) -> MechanismType {
        match self {
            Hash::Sha1 => MechanismType::SHA1,
            Hash::Sha224 => MechanismType::SHA224,
            Hash::Sha256 => MechanismType::SHA256,
            Hash::Sha384 => MechanismType::SHA384,
            Hash::Sha512 => MechanismType::SHA512,
        }
    }

    fn mgf1(self) -> PkcsMgfType {
        match self {
            Hash::Sha1 => PkcsMgfType::MGF1_SHA1,
            Hash::Sha224 => PkcsMgfType::MGF1_SHA224,
            Hash::Sha256 => PkcsMgfType::MGF1_SHA256,
            Hash::Sha384 => PkcsMgfType::MGF1_SHA384,
            Hash::Sha512 => PkcsMgfType::MGF1_SHA512,
        }
    }

    /// Output length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Hash::Sha1 => 20,
            Hash::Sha224 => 28,
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
            Hash::Sha512 => 64,
        }
    }
}

/// A signature or MAC mechanism over data the caller already hashed (or, for HMAC, the
/// message itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignMech {
    /// `CKM_RSA_PKCS` over a DigestInfo (PKCS #1 v1.5).
    RsaPkcs1,
    /// `CKM_RSA_PKCS_PSS` over a digest, MGF1 with the same hash, salt = hash length.
    RsaPss(Hash),
    /// `CKM_ECDSA` over a digest; the signature is r ‖ s.
    Ecdsa,
    /// `CKM_SHA*_HMAC` over the message.
    Hmac(Hash),
}

impl SignMech {
    fn mechanism(self) -> Mechanism<'static> {
        match self {
            SignMech::RsaPkcs1 => Mechanism::RsaPkcs,
            SignMech::RsaPss(h) => Mechanism::RsaPkcsPss(PkcsPssParams {
                hash_alg: h.mechanism(),
                mgf: h.mgf1(),
                s_len: (h.output_len() as u64).into(),
            }),
            SignMech::Ecdsa => Mechanism::Ecdsa,
            SignMech::Hmac(Hash::Sha1) => Mechanism::Sha1Hmac,
            SignMech::Hmac(Hash::Sha224) => Mechanism::Sha224Hmac,
            SignMech::Hmac(Hash::Sha256) => Mechanism::Sha256Hmac,
            SignMech::Hmac(Hash::Sha384) => Mechanism::Sha384Hmac,
            SignMech::Hmac(Hash::Sha512) => Mechanism::Sha512Hmac,
        }
    }
}

/// How RSA encryption runs on the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaCipher {
    /// `CKM_RSA_PKCS_OAEP` with this hash and MGF1 with the same hash, empty label.
    Oaep(Hash),
    /// `CKM_RSA_X_509`: raw RSA; the caller does the padding.
    Raw,
}

impl RsaCipher {
    fn mechanism(self) -> Mechanism<'static> {
        match self {
            RsaCipher::Oaep(h) => Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
                h.mechanism(),
                h.mgf1(),
                PkcsOaepSource::empty(),
            )),
            RsaCipher::Raw => Mechanism::RsaX509,
        }
    }
}

/// What a token offers for key pairs and HMAC keys: its mechanisms, the largest RSA modulus
/// it generates, and the curves (DER OIDs) it generated a key pair on when asked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Offers {
    mechanisms: Vec<MechanismType>,
    rsa_max_bits: u64,
    curves: Vec<Vec<u8>>,
    /// Whether `CKM_RSA_PKCS_OAEP` takes SHA-256 parameters (learnt on first use).
    oaep_sha256: std::sync::OnceLock<bool>,
}

/// A token operation a KMS key kind needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// `CKM_RSA_PKCS` and `CKM_RSA_PKCS_PSS` (RSA signatures).
    RsaSign,
    /// `CKM_RSA_PKCS_OAEP`.
    RsaOaep,
    /// `CKM_RSA_X_509` (raw RSA).
    RsaRaw,
    /// `CKM_ECDSA`.
    Ecdsa,
    /// `CKM_ECDH1_DERIVE`.
    Ecdh,
    /// `CKM_GENERIC_SECRET_KEY_GEN` and the HMAC mechanism of this hash.
    Hmac(Hash),
}

impl Offers {
    fn has(&self, m: MechanismType) -> bool {
        self.mechanisms.contains(&m)
    }

    /// Whether the token has the mechanisms of `cap`.
    pub fn can(&self, cap: Capability) -> bool {
        let all = |ms: &[MechanismType]| ms.iter().all(|m| self.has(*m));
        match cap {
            Capability::RsaSign => all(&[MechanismType::RSA_PKCS, MechanismType::RSA_PKCS_PSS]),
            Capability::RsaOaep => self.has(MechanismType::RSA_PKCS_OAEP),
            Capability::RsaRaw => self.has(MechanismType::RSA_X_509),
            Capability::Ecdsa => self.has(MechanismType::ECDSA),
            Capability::Ecdh => self.has(MechanismType::ECDH1_DERIVE),
            Capability::Hmac(h) => all(&[
                MechanismType::GENERIC_SECRET_KEY_GEN,
                match h {
                    Hash::Sha1 => MechanismType::SHA1_HMAC,
                    Hash::Sha224 => MechanismType::SHA224_HMAC,
                    Hash::Sha256 => MechanismType::SHA256_HMAC,
                    Hash::Sha384 => MechanismType::SHA384_HMAC,
                    Hash::Sha512 => MechanismType::SHA512_HMAC,
                },
            ]),
        }
    }

    /// Whether the token generates RSA key pairs of `bits`.
    pub fn rsa(&self, bits: u64) -> bool {
        self.has(MechanismType::RSA_PKCS_KEY_PAIR_GEN) && self.rsa_max_bits >= bits
    }

    /// Whether the token generated a key pair on the curve with this DER OID.
    pub fn curve(&self, oid: &[u8]) -> bool {
        self.curves.iter().any(|c| c == oid)
    }
}

/// Ask the token what it offers (blocking): the mechanism list, RSA key sizes, and one
/// throwaway session key pair per curve in `curves`.
fn ask_offers(token: &Token, s: &Session, curves: &[Vec<u8>]) -> Result<Offers, HsmError> {
    let ctx = token.module.ctx();
    let slot = token.pool.slot();
    let mechanisms = ctx
        .get_mechanism_list(slot)
        .map_err(classify(HsmOp::Inspect))?;
    let rsa_max_bits = if mechanisms.contains(&MechanismType::RSA_PKCS_KEY_PAIR_GEN) {
        ctx.get_mechanism_info(slot, MechanismType::RSA_PKCS_KEY_PAIR_GEN)
            .map(|i| i.max_key_size() as u64)
            .unwrap_or(0)
    } else {
        0
    };
    let mut offered = Vec::new();
    if mechanisms.contains(&MechanismType::ECC_KEY_PAIR_GEN) {
        for oid in curves {
            let kind = PairKind::Ec {
                params: oid.clone(),
            };
            let (public, private) =
                pair_templates(&kind, PairUse::Sign, "cks-sim probe", &[0; 16], false);
            if let Ok((a, b)) = s.generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private) {
                let _ = s.destroy_object(a);
                let _ = s.destroy_object(b);
                offered.push(oid.clone());
            }
        }
    }
    Ok(Offers {
        mechanisms,
        rsa_max_bits,
        curves: offered,
        oaep_sha256: std::sync::OnceLock::new(),
    })
}

fn classify(op: HsmOp) -> impl Fn(cryptoki::error::Error) -> HsmError {
    move |e| HsmError::classify(op, e)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The templates of a pair: (public, private).
fn pair_templates(
    kind: &PairKind,
    usage: PairUse,
    label: &str,
    id: &ObjectId,
    token: bool,
) -> (Vec<Attribute>, Vec<Attribute>) {
    let common = |class| {
        vec![
            Attribute::Class(class),
            Attribute::Token(token),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.to_vec()),
        ]
    };
    let mut public = common(ObjectClass::PUBLIC_KEY);
    let mut private = common(ObjectClass::PRIVATE_KEY);
    public.push(Attribute::Private(false));
    private.push(Attribute::Private(true));
    // Token objects are the material KMS keeps: never readable. Session pairs are data key
    // pairs, whose private key is handed out.
    private.push(Attribute::Sensitive(token));
    private.push(Attribute::Extractable(!token));
    match kind {
        PairKind::Rsa { bits } => {
            public.push(Attribute::KeyType(KeyType::RSA));
            public.push(Attribute::ModulusBits((*bits).into()));
            public.push(Attribute::PublicExponent(vec![1, 0, 1]));
            private.push(Attribute::KeyType(KeyType::RSA));
        }
        PairKind::Ec { params } => {
            public.push(Attribute::KeyType(KeyType::EC));
            public.push(Attribute::EcParams(params.clone()));
            private.push(Attribute::KeyType(KeyType::EC));
        }
    }
    match usage {
        PairUse::Sign => {
            public.push(Attribute::Verify(true));
            private.push(Attribute::Sign(true));
        }
        PairUse::Decrypt => {
            public.push(Attribute::Encrypt(true));
            private.push(Attribute::Decrypt(true));
        }
        PairUse::Derive => {
            public.push(Attribute::Derive(true));
            private.push(Attribute::Derive(true));
        }
    }
    (public, private)
}

fn generation_mechanism(kind: &PairKind) -> Mechanism<'static> {
    match kind {
        PairKind::Rsa { .. } => Mechanism::RsaPkcsKeyPairGen,
        PairKind::Ec { .. } => Mechanism::EccKeyPairGen,
    }
}

fn read_public(s: &Session, h: ObjectHandle, kind: &PairKind) -> Result<PublicParts, HsmError> {
    let wanted: &[AttributeType] = match kind {
        PairKind::Rsa { .. } => &[AttributeType::Modulus, AttributeType::PublicExponent],
        PairKind::Ec { .. } => &[AttributeType::EcPoint],
    };
    let attrs = s
        .get_attributes(h, wanted)
        .map_err(classify(HsmOp::Inspect))?;
    let (mut modulus, mut exponent, mut point) = (None, None, None);
    for a in attrs {
        match a {
            Attribute::Modulus(v) => modulus = Some(v),
            Attribute::PublicExponent(v) => exponent = Some(v),
            Attribute::EcPoint(v) => point = Some(v),
            _ => {}
        }
    }
    let missing = || HsmError::Pkcs11 {
        op: HsmOp::Inspect,
        detail: "the token did not give the public key's attributes".into(),
    };
    Ok(match kind {
        PairKind::Rsa { .. } => PublicParts::Rsa {
            modulus: modulus.ok_or_else(missing)?,
            exponent: exponent.ok_or_else(missing)?,
        },
        PairKind::Ec { .. } => PublicParts::Ec {
            point: point.ok_or_else(missing)?,
        },
    })
}

fn read_private(s: &Session, h: ObjectHandle, kind: &PairKind) -> Result<Vec<Vec<u8>>, HsmError> {
    let wanted: &[AttributeType] = match kind {
        PairKind::Rsa { .. } => &[
            AttributeType::Modulus,
            AttributeType::PublicExponent,
            AttributeType::PrivateExponent,
            AttributeType::Prime1,
            AttributeType::Prime2,
            AttributeType::Exponent1,
            AttributeType::Exponent2,
            AttributeType::Coefficient,
        ],
        PairKind::Ec { .. } => &[AttributeType::Value],
    };
    let attrs = s
        .get_attributes(h, wanted)
        .map_err(classify(HsmOp::Inspect))?;
    let values: Vec<Vec<u8>> = attrs
        .into_iter()
        .filter_map(|a| match a {
            Attribute::Modulus(v)
            | Attribute::PublicExponent(v)
            | Attribute::PrivateExponent(v)
            | Attribute::Prime1(v)
            | Attribute::Prime2(v)
            | Attribute::Exponent1(v)
            | Attribute::Exponent2(v)
            | Attribute::Coefficient(v)
            | Attribute::Value(v) => Some(v),
            _ => None,
        })
        .collect();
    if values.len() != wanted.len() {
        return Err(HsmError::Pkcs11 {
            op: HsmOp::Inspect,
            detail: "the token did not give the private key's components".into(),
        });
    }
    Ok(values)
}

impl Token {
    /// Generate a key pair as token objects: the private half private, sensitive and never
    /// extractable, allowed only `usage`; both halves labelled `label` with `CKA_ID` = `id`.
    /// Returns the public half's attributes.
    pub async fn generate_key_pair(
        self: &Arc<Self>,
        label: &str,
        id: ObjectId,
        kind: PairKind,
        usage: PairUse,
    ) -> Result<PublicParts, HsmError> {
        if self.has_key(&id) {
            return Err(HsmError::Pkcs11 {
                op: HsmOp::GenerateKeyPair,
                detail: format!("a key object with id {} exists already", hex(&id)),
            });
        }
        let (public, private) = pair_templates(&kind, usage, label, &id, true);
        let (parts, handle) = self
            .run(HsmOp::GenerateKeyPair, 2, move |s| {
                let (pubh, privh) = s
                    .generate_key_pair(&generation_mechanism(&kind), &public, &private)
                    .map_err(classify(HsmOp::GenerateKeyPair))?;
                Ok((read_public(s, pubh, &kind)?, privh))
            })
            .await?;
        self.remember(id, handle);
        Ok(parts)
    }

    /// Generate a generic secret of `len` bytes for HMAC (token, private, sensitive, never
    /// extractable, sign/verify), labelled `label` with `CKA_ID` = `id`.
    pub async fn generate_hmac_key(
        self: &Arc<Self>,
        label: &str,
        id: ObjectId,
        len: u64,
    ) -> Result<(), HsmError> {
        if self.has_key(&id) {
            return Err(HsmError::Pkcs11 {
                op: HsmOp::GenerateKey,
                detail: format!("a key object with id {} exists already", hex(&id)),
            });
        }
        let template = vec![
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::ValueLen(len.into()),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Verify(true),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.to_vec()),
        ];
        let handle = self
            .run(HsmOp::GenerateKey, 1, move |s| {
                s.generate_key(&Mechanism::GenericSecretKeyGen, &template)
                    .map_err(classify(HsmOp::GenerateKey))
            })
            .await?;
        self.remember(id, handle);
        Ok(())
    }

    /// Sign `data` (a digest, a DigestInfo, or for HMAC the message) with key `id`'s private
    /// half or secret.
    pub async fn sign(
        self: &Arc<Self>,
        id: ObjectId,
        mech: SignMech,
        data: Vec<u8>,
    ) -> Result<Vec<u8>, HsmError> {
        let h = self.working_handle(id).await?;
        let res = self
            .run(HsmOp::Sign, 1, move |s| {
                s.sign(&mech.mechanism(), h, &data)
                    .map_err(classify(HsmOp::Sign))
            })
            .await;
        self.forget_if_gone(&id, res)
    }

    /// Verify `signature` over `data` with key `id`'s public half (pairs) or secret (HMAC).
    /// A signature that does not verify is [`HsmError::SignatureRejected`].
    pub async fn verify(
        self: &Arc<Self>,
        id: ObjectId,
        mech: SignMech,
        data: Vec<u8>,
        signature: Vec<u8>,
    ) -> Result<(), HsmError> {
        let h = match mech {
            SignMech::Hmac(_) => self.working_handle(id).await?,
            _ => self.public_half(id).await?,
        };
        let res = self
            .run(HsmOp::Verify, 1, move |s| {
                s.verify(&mech.mechanism(), h, &data, &signature)
                    .map_err(classify(HsmOp::Verify))
            })
            .await;
        self.forget_if_gone(&id, res)
    }

    /// Encrypt with key `id`'s public half.
    pub async fn public_encrypt(
        self: &Arc<Self>,
        id: ObjectId,
        cipher: RsaCipher,
        data: Vec<u8>,
    ) -> Result<Vec<u8>, HsmError> {
        let h = self.public_half(id).await?;
        self.run(HsmOp::Encrypt, 1, move |s| {
            s.encrypt(&cipher.mechanism(), h, &data)
                .map_err(classify(HsmOp::Encrypt))
        })
        .await
    }

    /// Decrypt with key `id`'s private half; any refusal of the ciphertext is
    /// [`HsmError::CiphertextRejected`]. So is `CKR_DEVICE_ERROR` here: kryoptic answers an
    /// OAEP padding failure with it (a real device failure then reads as a bad ciphertext, and
    /// shows on the next call).
    pub async fn private_decrypt(
        self: &Arc<Self>,
        id: ObjectId,
        cipher: RsaCipher,
        data: Vec<u8>,
    ) -> Result<Vec<u8>, HsmError> {
        let h = self.working_handle(id).await?;
        let res = self
            .run(HsmOp::Decrypt, 1, move |s| {
                // Mapped inside the job, so that the pool keeps its sessions and the module
                // is not re-initialized for a client's bad ciphertext.
                s.decrypt(&cipher.mechanism(), h, &data).map_err(|e| {
                    match classify(HsmOp::Decrypt)(e) {
                        HsmError::Device {
                            rv: rv @ RvError::DeviceError,
                            ..
                        } => HsmError::CiphertextRejected { rv },
                        other => other,
                    }
                })
            })
            .await;
        self.forget_if_gone(&id, res)
    }

    /// ECDH (`CKM_ECDH1_DERIVE`, no KDF) of key `id`'s private half with the peer's raw
    /// uncompressed point: the shared x-coordinate, `len` bytes, read from a session object
    /// that is destroyed right after. A refused point is `HsmError::Pkcs11` with op
    /// `Derive`, also when the token says `CKR_DEVICE_ERROR` (kryoptic does for a point off
    /// the curve).
    pub async fn derive_ecdh(
        self: &Arc<Self>,
        id: ObjectId,
        peer_point: Vec<u8>,
        len: u64,
    ) -> Result<Vec<u8>, HsmError> {
        let h = self.working_handle(id).await?;
        let res = self
            .run(HsmOp::Derive, 3, move |s| {
                let params = Ecdh1DeriveParams::new(EcKdf::null(), &peer_point);
                let template = [
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::GENERIC_SECRET),
                    Attribute::ValueLen(len.into()),
                    Attribute::Token(false),
                    Attribute::Sensitive(false),
                    Attribute::Extractable(true),
                ];
                // A refused point is the client's mistake: mapped inside the job, so that the
                // pool keeps its sessions and the module is not re-initialized.
                let secret = s
                    .derive_key(&Mechanism::Ecdh1Derive(params), h, &template)
                    .map_err(|e| match classify(HsmOp::Derive)(e) {
                        HsmError::Device {
                            rv: rv @ RvError::DeviceError,
                            ..
                        } => HsmError::Pkcs11 {
                            op: HsmOp::Derive,
                            detail: format!("the token refused the peer's point ({rv:?})"),
                        },
                        other => other,
                    })?;
                let value = s.get_attributes(secret, &[AttributeType::Value]);
                let _ = s.destroy_object(secret);
                let value = value.map_err(classify(HsmOp::Derive))?;
                value
                    .into_iter()
                    .find_map(|a| match a {
                        Attribute::Value(v) => Some(v),
                        _ => None,
                    })
                    .ok_or_else(|| HsmError::Pkcs11 {
                        op: HsmOp::Derive,
                        detail: "the derived secret has no value".into(),
                    })
            })
            .await;
        self.forget_if_gone(&id, res)
    }

    /// Generate a pair as session objects whose private half may be read, read both halves
    /// and destroy them: a data key pair, which KMS hands out.
    pub async fn extractable_pair(
        self: &Arc<Self>,
        kind: PairKind,
    ) -> Result<PrivateParts, HsmError> {
        let (public, private) = pair_templates(
            &kind,
            PairUse::Sign,
            "cks-sim data key pair",
            &[0; 16],
            false,
        );
        self.run(HsmOp::GenerateKeyPair, 4, move |s| {
            let (pubh, privh) = s
                .generate_key_pair(&generation_mechanism(&kind), &public, &private)
                .map_err(classify(HsmOp::GenerateKeyPair))?;
            let parts =
                read_private(s, privh, &kind).and_then(|p| Ok((p, read_public(s, pubh, &kind)?)));
            let _ = s.destroy_object(privh);
            let _ = s.destroy_object(pubh);
            let (private, public) = parts?;
            Ok(match public {
                PublicParts::Ec { point } => PrivateParts::Ec {
                    scalar: private.into_iter().next().unwrap_or_default(),
                    point,
                },
                PublicParts::Rsa { .. } => {
                    let components: [Vec<u8>; 8] =
                        private.try_into().map_err(|_| HsmError::Pkcs11 {
                            op: HsmOp::Inspect,
                            detail: "RSA components missing".into(),
                        })?;
                    PrivateParts::Rsa { components }
                }
            })
        })
        .await
    }

    /// What this token offers for key pairs and HMAC keys (asked on first use, then kept);
    /// `curves` are the DER OIDs of the curves to try.
    pub async fn offers(self: &Arc<Self>, curves: Vec<Vec<u8>>) -> Result<Arc<Offers>, HsmError> {
        if let Some(o) = self.offers.get() {
            return Ok(Arc::clone(o));
        }
        let me = Arc::clone(self);
        let calls = 2 + 3 * curves.len() as u64;
        let asked = self
            .run(HsmOp::Inspect, calls, move |s| ask_offers(&me, s, &curves))
            .await?;
        Ok(Arc::clone(self.offers.get_or_init(|| Arc::new(asked))))
    }

    /// Whether RSAES-OAEP with SHA-256 runs as the token's own `CKM_RSA_PKCS_OAEP`: learnt
    /// once by encrypting nothing with key `id`'s public half (SoftHSM2 2.6 refuses SHA-256
    /// parameters; kryoptic takes them, and its raw RSA encryption fails). A token without raw
    /// RSA has only the native way.
    pub async fn oaep_sha256_native(
        self: &Arc<Self>,
        offers: &Offers,
        id: ObjectId,
    ) -> Result<bool, HsmError> {
        if let Some(known) = offers.oaep_sha256.get() {
            return Ok(*known);
        }
        if !offers.can(Capability::RsaRaw) {
            return Ok(true);
        }
        let native = match self
            .public_encrypt(id, RsaCipher::Oaep(Hash::Sha256), Vec::new())
            .await
        {
            Ok(_) => true,
            Err(HsmError::Pkcs11 { .. }) => false,
            Err(other) => return Err(other),
        };
        tracing::debug!(token = %self.label(), native, "RSAES-OAEP with SHA-256 on the token's own OAEP");
        Ok(*offers.oaep_sha256.get_or_init(|| native))
    }

    /// The public halves with `CKA_ID` = `id` (none for AES and HMAC keys).
    async fn public_halves(self: &Arc<Self>, id: ObjectId) -> Result<Vec<ObjectHandle>, HsmError> {
        self.run(HsmOp::Inspect, 1, move |s| {
            s.find_objects(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::Token(true),
                Attribute::Id(id.to_vec()),
            ])
            .map_err(classify(HsmOp::Inspect))
        })
        .await
    }

    async fn public_half(self: &Arc<Self>, id: ObjectId) -> Result<ObjectHandle, HsmError> {
        self.public_halves(id)
            .await?
            .first()
            .copied()
            .ok_or_else(|| HsmError::KeyNotFound { id: hex(&id) })
    }

    /// Destroy the public halves with `CKA_ID` = `id` (a key pair's deletion; nothing for
    /// secret keys).
    pub(super) async fn destroy_public_halves(
        self: &Arc<Self>,
        id: ObjectId,
    ) -> Result<(), HsmError> {
        let found = self.public_halves(id).await?;
        if found.is_empty() {
            return Ok(());
        }
        self.run(HsmOp::Destroy, found.len() as u64, move |s| {
            for h in found {
                s.destroy_object(h).map_err(classify(HsmOp::Destroy))?;
            }
            Ok(())
        })
        .await
    }

    /// After a call on key `id`: if its handle proved stale, forget it so the next call
    /// searches again.
    fn forget_if_gone<T>(&self, id: &ObjectId, res: Result<T, HsmError>) -> Result<T, HsmError> {
        if let Err(HsmError::KeyNotFound { .. }) = res {
            self.forget_handle(id);
            return Err(HsmError::KeyNotFound { id: hex(id) });
        }
        res
    }
}
