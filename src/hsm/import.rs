//! Imported key material on a token: the RSA wrapping key pair of an import, and turning
//! wrapped material into a sensitive, never-extractable AES key object — with `C_UnwrapKey`
//! where the token can unwrap with the algorithm, else by a raw RSA decryption on the token
//! whose padding the caller removes (see [`Token::raw_rsa_decrypt`]) and `C_CreateObject`.

use super::asymmetric::{Hash, PublicParts};
use super::error::{HsmError, HsmOp};
use super::token::{ObjectId, Token, key_template};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
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

/// A refusal of wrapped bytes: any non-device failure, and `CKR_DEVICE_ERROR` too (kryoptic
/// answers an OAEP padding failure with it), mapped inside the job so the session is kept.
fn refused(e: cryptoki::error::Error) -> HsmError {
    match HsmError::classify(HsmOp::Decrypt, e) {
        HsmError::Device {
            rv: rv @ cryptoki::error::RvError::DeviceError,
            ..
        } => HsmError::CiphertextRejected { rv },
        other => other,
    }
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
        Attribute::Decrypt(true),
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
                .map_err(refused)?;
            if value_len(s, key)? != 0 {
                return Ok(key);
            }
            // The token does not tell an unwrapped key's length (SoftHSM2): decrypt on the
            // token and create the object from the value instead, so that the length is known.
            let _ = s.destroy_object(key);
            let value = s.decrypt(&oaep(*h), unwrapping, wrapped).map_err(refused)?;
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
    /// Whether the token lists mechanism `m` (asked of the token).
    fn offers_mechanism(&self, m: MechanismType) -> Result<bool, HsmError> {
        let list = self
            .module
            .ctx()
            .get_mechanism_list(self.pool.slot())
            .map_err(classify(HsmOp::Inspect))?;
        Ok(list.contains(&m))
    }

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
        let me = Arc::clone(self);
        let handle = self
            .run(HsmOp::Decrypt, 6, move |s| {
                let kwp_pad = me.offers_mechanism(MechanismType::AES_KEY_WRAP_PAD)?;
                let eph = rsa_to_key(s, &wrapping, &how, &rsa_part, &ephemeral_template())?;
                let out = kwp_to_key(s, kwp_pad, eph, &kwp_part, &material_template(&obj), len);
                let _ = s.destroy_object(eph);
                out
            })
            .await?;
        self.remember(id, handle);
        Ok(())
    }
}

/// The material object from RFC 5649 output under the session key `eph`: with the token's
/// `CKM_AES_KEY_WRAP_PAD` when it has one (SoftHSM2), else (kryoptic names RFC 5649
/// `CKM_AES_KEY_WRAP_KWP`, which cryptoki does not offer) by RFC 5649's unwrapping with each
/// block decrypted on the token (`CKM_AES_ECB`) and the object created from the result.
fn kwp_to_key(
    s: &Session,
    kwp_pad: bool,
    eph: ObjectHandle,
    kwp: &[u8],
    template: &[Attribute],
    len: u64,
) -> Result<ObjectHandle, HsmError> {
    if kwp_pad {
        let out = s
            .unwrap_key(&Mechanism::AesKeyWrapPad, eph, kwp, template)
            .map_err(refused)?;
        // A token that reports no length (SoftHSM2) has the length checked from the wrapped
        // size: RFC 5649 pads to 8 bytes and adds 8.
        if value_len(s, out)? == 0 && kwp.len() as u64 == 8 + len.div_ceil(8) * 8 {
            return Ok(out);
        }
        return checked_len(s, out, len);
    }
    let value = kwp_unwrap(kwp, |block| {
        let out = s.decrypt(&Mechanism::AesEcb, eph, block).map_err(refused)?;
        <[u8; 16]>::try_from(out.as_slice()).map_err(|_| HsmError::CiphertextRejected {
            rv: cryptoki::error::RvError::EncryptedDataLenRange,
        })
    })?;
    let mut t = template.to_vec();
    t.push(Attribute::Value(value));
    let out = s.create_object(&t).map_err(classify(HsmOp::GenerateKey))?;
    checked_len(s, out, len)
}

/// RFC 5649 key unwrapping with padding, `decrypt` being one AES block decryption under the
/// key-encryption key. A wrong integrity check is [`HsmError::CiphertextRejected`].
pub fn kwp_unwrap(
    c: &[u8],
    mut decrypt: impl FnMut(&[u8]) -> Result<[u8; 16], HsmError>,
) -> Result<Vec<u8>, HsmError> {
    let bad = || HsmError::CiphertextRejected {
        rv: cryptoki::error::RvError::WrappedKeyInvalid,
    };
    if c.len() < 16 || !c.len().is_multiple_of(8) {
        return Err(bad());
    }
    let n = c.len() / 8 - 1;
    let (a, p) = if n == 1 {
        let b = decrypt(c)?;
        (
            <[u8; 8]>::try_from(&b[..8]).map_err(|_| bad())?,
            b[8..].to_vec(),
        )
    } else {
        let mut a = <[u8; 8]>::try_from(&c[..8]).map_err(|_| bad())?;
        let mut r: Vec<[u8; 8]> = c[8..]
            .chunks(8)
            .map(|x| <[u8; 8]>::try_from(x).unwrap_or_default())
            .collect();
        for j in (0..6u64).rev() {
            for i in (1..=n).rev() {
                let t = (n as u64) * j + i as u64;
                let mut block = [0u8; 16];
                for (k, byte) in a.iter().enumerate() {
                    block[k] = byte ^ t.to_be_bytes()[k];
                }
                block[8..].copy_from_slice(&r[i - 1]);
                let b = decrypt(&block)?;
                a.copy_from_slice(&b[..8]);
                r[i - 1].copy_from_slice(&b[8..]);
            }
        }
        (a, r.concat())
    };
    if a[..4] != [0xA6, 0x59, 0x59, 0xA6] {
        return Err(bad());
    }
    let mli = u32::from_be_bytes([a[4], a[5], a[6], a[7]]) as usize;
    if mli == 0 || mli > p.len() || p.len() - mli >= 8 || p[mli..].iter().any(|b| *b != 0) {
        return Err(bad());
    }
    Ok(p[..mli].to_vec())
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

#[cfg(test)]
mod tests {
    use super::kwp_unwrap;

    /// With the identity as the block cipher, a one-block RFC 5649 output is the AIV and the
    /// padded plaintext, so the integrity checks can be seen without AES.
    #[test]
    fn rfc_5649_checks_the_aiv_the_length_and_the_padding() {
        let identity = |b: &[u8]| Ok(<[u8; 16]>::try_from(b).unwrap());
        let mut c = vec![0xA6, 0x59, 0x59, 0xA6, 0, 0, 0, 5];
        c.extend_from_slice(&[1, 2, 3, 4, 5, 0, 0, 0]);
        assert_eq!(kwp_unwrap(&c, identity).unwrap(), vec![1, 2, 3, 4, 5]);
        let mut bad_aiv = c.clone();
        bad_aiv[0] = 0xA7;
        assert!(kwp_unwrap(&bad_aiv, identity).is_err());
        let mut bad_pad = c.clone();
        bad_pad[15] = 1;
        assert!(kwp_unwrap(&bad_pad, identity).is_err());
        let mut bad_len = c.clone();
        bad_len[7] = 9;
        assert!(kwp_unwrap(&bad_len, identity).is_err());
        assert!(kwp_unwrap(&c[..12], identity).is_err());
    }
}
