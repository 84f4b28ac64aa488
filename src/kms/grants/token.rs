//! Grant IDs and grant tokens.
//!
//! A grant ID is 64 hex digits, as AWS's are. A grant token is opaque to its holder and
//! checkable by the simulator: base64url of `version | key ID length (1) | key ID | grant id
//! (32) | nonce (16) | HMAC-SHA256 of all that`, under a key kept in the data directory
//! (`grant-token-key`). The key ID is text (a UUID, or a multi-Region key's `mrk-…`). It
//! names its grant without a lookup, every CreateGrant mints a new one (the nonce), and no
//! secret is in it.

use crate::codec::{constant_time_eq, hex, hmac_sha256};
use base64::Engine;

const VERSION: u8 = 2;
const MAC: usize = 32;
const TAIL: usize = 32 + 16;

/// What a valid grant token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaim {
    /// The key's ID (UUID text).
    pub key_id: String,
    /// The grant's ID (64 hex digits).
    pub grant_id: String,
}

/// A new grant ID: 64 random hex digits.
pub fn new_grant_id() -> String {
    hex(&crate::ids::random_bytes(32))
}

/// Whether `id` has the form of a grant ID (64 hex digits).
pub fn is_grant_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A new token for grant `grant_id` on key `key_id`, signed with `secret`.
pub fn mint(secret: &[u8], key_id: &str, grant_id: &str) -> Option<String> {
    let grant = unhex(grant_id)?;
    let key_len = u8::try_from(key_id.len()).ok()?;
    let mut b = Vec::with_capacity(2 + key_id.len() + TAIL + MAC);
    b.push(VERSION);
    b.push(key_len);
    b.extend_from_slice(key_id.as_bytes());
    b.extend_from_slice(&grant);
    b.extend_from_slice(&crate::ids::random_bytes(16));
    let mac = hmac_sha256(secret, &b);
    b.extend_from_slice(&mac);
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

/// The grant a token names, if `secret` made it.
pub fn verify(secret: &[u8], token: &str) -> Option<TokenClaim> {
    let b = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    let key_len = usize::from(*b.get(1)?);
    if b[0] != VERSION || b.len() != 2 + key_len + TAIL + MAC {
        return None;
    }
    let (body, mac) = b.split_at(b.len() - MAC);
    if !constant_time_eq(&hmac_sha256(secret, body), mac) {
        return None;
    }
    let key_id = std::str::from_utf8(&body[2..2 + key_len]).ok()?;
    Some(TokenClaim {
        key_id: key_id.to_string(),
        grant_id: hex(&body[2 + key_len..2 + key_len + 32]),
    })
}

/// The bytes of a grant ID (64 lower-case hex digits); `None` for anything else.
fn unhex(s: &str) -> Option<Vec<u8>> {
    if !is_grant_id(s) {
        return None;
    }
    crate::codec::unhex(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";

    #[test]
    fn hmac_matches_the_rfc_4231_test_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_token_names_its_grant_and_every_token_differs() {
        let id = new_grant_id();
        assert!(is_grant_id(&id));
        let a = mint(b"secret", KEY, &id).unwrap();
        let b = mint(b"secret", KEY, &id).unwrap();
        assert_ne!(a, b);
        let claim = verify(b"secret", &a).unwrap();
        assert_eq!(claim.key_id, KEY);
        assert_eq!(claim.grant_id, id);
    }

    #[test]
    fn a_token_carries_any_key_id_form() {
        let id = new_grant_id();
        let mrk = "mrk-1234abcd12ab34cd56ef1234567890ab";
        let t = mint(b"secret", mrk, &id).unwrap();
        assert_eq!(verify(b"secret", &t).unwrap().key_id, mrk);
    }

    #[test]
    fn a_token_under_another_secret_or_altered_is_refused() {
        let t = mint(b"secret", KEY, &new_grant_id()).unwrap();
        assert!(verify(b"other", &t).is_none());
        let mut altered = t.into_bytes();
        altered[10] = if altered[10] == b'A' { b'B' } else { b'A' };
        assert!(verify(b"secret", &String::from_utf8(altered).unwrap()).is_none());
        assert!(verify(b"secret", "not a token").is_none());
    }
}
