//! Imported key material on a token: the RSA wrapping key pair of an import, and turning
//! wrapped material into a sensitive, never-extractable AES key object — with `C_UnwrapKey`
//! where the token can unwrap with the algorithm, else by a raw RSA decryption on the token
//! whose padding the caller removes (see [`Token::raw_rsa_decrypt`]) and `C_CreateObject`.

use super::asymmetric::{Hash, PublicParts};
use super::error::{HsmError, HsmOp};
use super::token::{ObjectId, Token, key_template};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use std::sync::Arc;

/// How the material (or the ephemeral AES key of a two-step wrap) was RSA-encrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RsaUnwrap {
    /// `C_UnwrapKey` with `CKM_RSA_PKCS_OAEP`, this hash for the digest and MGF1.
    Oaep(Hash),
    /// The value is already in the clear (decrypted raw on the token, padding removed by the
    /// caller): `C_CreateObject` with it.
    Value(Vec<u8>),
}

/// Where unwrapped material goes: the token object of a KMS key's material.
#[derive(Debug, Clone)]
pub struct MaterialObject {
    /// `CKA_LABEL` (the key ARN).
    pub label: String,
    /// `CKA_ID`.
    pub id: ObjectId,
}

fn classify(op: HsmOp) -> impl Fn(cryptoki::error::Error) -> HsmError {
    move |e| HsmError::classify(op, e)
}

fn oaep(h: Hash) -> Mechanism<'static> {
    let (hash, mgf) = match h {
        Hash::Sha1 => (
            cryptoki::mechanism::MechanismType::SHA1,
            PkcsMgfType::MGF1_SHA1,
        ),
        _ => (
            cryptoki::mechanism::MechanismType::SHA256,
            PkcsMgfType::MGF1_SHA256,
        ),
    };
    Mechanism::RsaPkcsOaep(PkcsOaepParams::new(hash, mgf, PkcsOaepSource::empty()))
}

/// The template of an AES key made from imported material: the D4 template without
/// `CKA_VALUE_LEN` (the length comes from the material and is checked after).
fn material_template(obj: &MaterialObject) -> Vec<Attribute> {
    key_template(&obj.label, &obj.id)
        .into_iter()
        .filter(|a| a.attribute_type() != AttributeType::ValueLen)
        .collect()
}

/// A session AES key that may only unwrap (the ephemeral key of `RSA_AES_KEY_WRAP_*`).
fn ephemeral_template() -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(false),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Unwrap(true),
    ]
}

/// The private half's handle for `id`, searched on the session (wrapping keys are used once).
fn private_half(s: &Session, id: &ObjectId) -> Result<ObjectHandle, HsmError> {
    s.find_objects(&[
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::Token(true),
        Attribute::Id(id.to_vec()),
    ])
    .map_err(classify(HsmOp::Inspect))?
    .first()
    .copied()
    .ok_or_else(|| HsmError::KeyNotFound {
        id: id.iter().map(|b| format!("{b:02x}")).collect(),
    })
}

/// Make a key object from RSA-wrapped bytes (or from bytes already in the clear).
fn rsa_to_key(
    s: &Session,
    wrapping: &ObjectId,
    how: &RsaUnwrap,
    wrapped: &[u8],
    template: &[Attribute],
) -> Result<ObjectHandle, HsmError> {
    match how {
        RsaUnwrap::Oaep(h) => {
            let unwrapping = private_half(s, wrapping)?;
            // Classified as a decryption: a ciphertext the token refuses is a bad ciphertext.
            let key = s
                .unwrap_key(&oaep(*h), unwrapping, wrapped, template)
                .map_err(classify(HsmOp::Decrypt))?;
            if value_len(s, key)? != 0 {
                return Ok(key);
            }
            // The token does not tell an unwrapped key's length (SoftHSM2): decrypt on the
            // token and create the object from the value instead, so that the length is known.
            let _ = s.destroy_object(key);
            let value = s
                .decrypt(&oaep(*h), unwrapping, wrapped)
                .map_err(classify(HsmOp::Decrypt))?;
            let mut t = template.to_vec();
            t.push(Attribute::Value(value));
            s.create_object(&t).map_err(classify(HsmOp::GenerateKey))
        }
        RsaUnwrap::Value(v) => {
            let mut t = template.to_vec();
            t.push(Attribute::Value(v.clone()));
            s.create_object(&t).map_err(classify(HsmOp::GenerateKey))
        }
    }
}

/// The length in bytes of an AES key object's value.
fn value_len(s: &Session, h: ObjectHandle) -> Result<u64, HsmError> {
    let attrs = s
        .get_attributes(h, &[AttributeType::ValueLen])
        .map_err(classify(HsmOp::Inspect))?;
    Ok(attrs
        .into_iter()
        .find_map(|a| match a {
            Attribute::ValueLen(n) => Some(u64::from(n)),
            _ => None,
        })
        .unwrap_or(0))
}

impl Token {
    /// Generate the RSA wrapping key pair of an import (token objects, the private half
    /// sensitive, never extractable, decrypt and unwrap only), labelled `label` with `CKA_ID`
    /// `id`. Returns the public half's modulus and exponent.
    pub async fn generate_wrapping_pair(
        self: &Arc<Self>,
        label: &str,
        id: ObjectId,
        bits: u64,
    ) -> Result<PublicParts, HsmError> {
        let common = |class| {
            vec![
                Attribute::Class(class),
                Attribute::Token(true),
                Attribute::KeyType(KeyType::RSA),
                Attribute::Label(label.as_bytes().to_vec()),
                Attribute::Id(id.to_vec()),
            ]
        };
        let mut public = common(ObjectClass::PUBLIC_KEY);
        public.extend([
            Attribute::Private(false),
            Attribute::ModulusBits(bits.into()),
            Attribute::PublicExponent(vec![1, 0, 1]),
            Attribute::Encrypt(true),
            Attribute::Wrap(true),
        ]);
        let mut private = common(ObjectClass::PRIVATE_KEY);
        private.extend([
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Decrypt(true),
            Attribute::Unwrap(true),
        ]);
        self.run(HsmOp::GenerateKeyPair, 3, move |s| {
            let (pubh, _) = s
                .generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private)
                .map_err(classify(HsmOp::GenerateKeyPair))?;
            let attrs = s
                .get_attributes(
                    pubh,
                    &[AttributeType::Modulus, AttributeType::PublicExponent],
                )
                .map_err(classify(HsmOp::Inspect))?;
            let (mut modulus, mut exponent) = (Vec::new(), Vec::new());
            for a in attrs {
                match a {
                    Attribute::Modulus(m) => modulus = m,
                    Attribute::PublicExponent(e) => exponent = e,
                    _ => {}
                }
            }
            Ok(PublicParts::Rsa { modulus, exponent })
        })
        .await
    }

    /// Raw RSA (`CKM_RSA_X_509`) decryption with the private half of wrapping pair `id`: the
    /// padded block, for a caller that removes the padding itself (a token without OAEP with
    /// SHA-256). A refused block is [`HsmError::CiphertextRejected`].
    pub async fn raw_rsa_decrypt(
        self: &Arc<Self>,
        id: ObjectId,
        data: Vec<u8>,
    ) -> Result<Vec<u8>, HsmError> {
        self.run(HsmOp::Decrypt, 2, move |s| {
            let h = private_half(s, &id)?;
            s.decrypt(&Mechanism::RsaX509, h, &data)
                .map_err(classify(HsmOp::Decrypt))
        })
        .await
    }

    /// Unwrap material RSA-wrapped for pair `wrapping` into a new AES key object `obj`, which
    /// must come out `len` bytes long (else it is destroyed and the ciphertext refused).
    pub async fn import_rsa_wrapped(
        self: &Arc<Self>,
        wrapping: ObjectId,
        how: RsaUnwrap,
        wrapped: Vec<u8>,
        obj: MaterialObject,
        len: u64,
    ) -> Result<(), HsmError> {
        let id = obj.id;
        let handle = self
            .run(HsmOp::Decrypt, 3, move |s| {
                let h = rsa_to_key(s, &wrapping, &how, &wrapped, &material_template(&obj))?;
                checked_len(s, h, len)
            })
            .await?;
        self.remember(id, handle);
        Ok(())
    }

    /// The two-step `RSA_AES_KEY_WRAP_*` import: `rsa_part` carries an ephemeral AES key
    /// (RSA-unwrapped as `how` says into a session key), `kwp_part` the material wrapped with
    /// it by AES key wrap with padding (RFC 5649, `CKM_AES_KEY_WRAP_PAD`).
    pub async fn import_aes_wrapped(
        self: &Arc<Self>,
        wrapping: ObjectId,
        how: RsaUnwrap,
        rsa_part: Vec<u8>,
        kwp_part: Vec<u8>,
        obj: MaterialObject,
        len: u64,
    ) -> Result<(), HsmError> {
        let id = obj.id;
        let handle = self
            .run(HsmOp::Decrypt, 5, move |s| {
                let eph = rsa_to_key(s, &wrapping, &how, &rsa_part, &ephemeral_template())?;
                let out = s
                    .unwrap_key(
                        &Mechanism::AesKeyWrapPad,
                        eph,
                        &kwp_part,
                        &material_template(&obj),
                    )
                    .map_err(classify(HsmOp::Decrypt));
                let _ = s.destroy_object(eph);
                let out = out?;
                // A token that reports no length (SoftHSM2) has the length checked from the
                // wrapped size: RFC 5649 pads to 8 bytes and adds 8.
                if value_len(s, out)? == 0 && kwp_part.len() as u64 == 8 + len.div_ceil(8) * 8 {
                    return Ok(out);
                }
                checked_len(s, out, len)
            })
            .await?;
        self.remember(id, handle);
        Ok(())
    }
}

/// Keep `h` only if its value is `len` bytes; otherwise destroy it and refuse the ciphertext.
/// (A token that ignores `CKA_VALUE_LEN` in an unwrap template and reports none is trusted
/// to have honoured it: nothing else tells the length of a sensitive key.)
fn checked_len(s: &Session, h: ObjectHandle, len: u64) -> Result<ObjectHandle, HsmError> {
    let got = value_len(s, h)?;
    tracing::debug!(got, "unwrapped value length");
    if got == len {
        return Ok(h);
    }
    let _ = s.destroy_object(h);
    Err(HsmError::CiphertextRejected {
        rv: cryptoki::error::RvError::WrappedKeyInvalid,
    })
}
