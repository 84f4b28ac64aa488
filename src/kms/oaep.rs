//! RSAES-OAEP with SHA-256 and MGF1-SHA-256, empty label (RFC 8017 §7.1), for tokens that do
//! raw RSA (`CKM_RSA_X_509`) but not OAEP with SHA-256 (SoftHSM2 2.6): the padding is done
//! here, the RSA operation with the key on the token.

use sha2::{Digest, Sha256};

const H_LEN: usize = 32;

fn mgf1(seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + H_LEN);
    let mut counter: u32 = 0;
    while out.len() < len {
        let mut h = Sha256::new();
        h.update(seed);
        h.update(counter.to_be_bytes());
        out.extend_from_slice(&h.finalize());
        counter += 1;
    }
    out.truncate(len);
    out
}

fn xor_into(dst: &mut [u8], mask: &[u8]) {
    for (d, m) in dst.iter_mut().zip(mask) {
        *d ^= m;
    }
}

/// Encode `message` into a `k`-byte block (`k`: the modulus length); `seed` is `H_LEN` random
/// bytes. None when the message is longer than `k − 2·hLen − 2`.
pub fn encode(message: &[u8], k: usize, seed: &[u8; H_LEN]) -> Option<Vec<u8>> {
    if k < 2 * H_LEN + 2 || message.len() > k - 2 * H_LEN - 2 {
        return None;
    }
    let db_len = k - H_LEN - 1;
    let mut db = Vec::with_capacity(db_len);
    db.extend_from_slice(&Sha256::digest(b""));
    db.resize(db_len - message.len() - 1, 0);
    db.push(1);
    db.extend_from_slice(message);
    xor_into(&mut db, &mgf1(seed, db_len));
    let mut masked_seed = *seed;
    xor_into(&mut masked_seed, &mgf1(&db, H_LEN));
    let mut em = Vec::with_capacity(k);
    em.push(0);
    em.extend_from_slice(&masked_seed);
    em.extend_from_slice(&db);
    Some(em)
}

/// Decode a `k`-byte block made by [`encode`]; None for anything else. Every check is done
/// before the answer is given, so no step's outcome is told apart from another's.
pub fn decode(em: &[u8], k: usize) -> Option<Vec<u8>> {
    if k < 2 * H_LEN + 2 || em.len() != k {
        return None;
    }
    let (y, rest) = em.split_at(1);
    let (masked_seed, masked_db) = rest.split_at(H_LEN);
    let mut seed = masked_seed.to_vec();
    xor_into(&mut seed, &mgf1(masked_db, H_LEN));
    let mut db = masked_db.to_vec();
    let db_mask = mgf1(&seed, db.len());
    xor_into(&mut db, &db_mask);
    let l_hash = Sha256::digest(b"");
    let mut bad = y[0];
    for (a, b) in db[..H_LEN].iter().zip(l_hash.iter()) {
        bad |= a ^ b;
    }
    // Find the 0x01 after the zero padding without an early exit.
    let mut separator: Option<usize> = None;
    let mut nonzero_before = false;
    for (i, b) in db.iter().enumerate().skip(H_LEN) {
        if separator.is_none() {
            if *b == 1 {
                separator = Some(i);
            } else if *b != 0 {
                nonzero_before = true;
            }
        }
    }
    match separator {
        Some(i) if bad == 0 && !nonzero_before => Some(db[i + 1..].to_vec()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_up_to_the_limit() {
        let k = 256;
        for len in [0, 1, 100, 190] {
            let m = vec![0xab; len];
            let em = encode(&m, k, &[7; 32]).unwrap();
            assert_eq!(em.len(), k);
            assert_eq!(decode(&em, k), Some(m));
        }
        assert_eq!(encode(&[0; 191], k, &[7; 32]), None);
    }

    #[test]
    fn damaged_blocks_are_refused() {
        let em = encode(b"hello", 256, &[1; 32]).unwrap();
        for i in [0, 5, 40, 255] {
            let mut bad = em.clone();
            bad[i] ^= 1;
            assert_eq!(decode(&bad, 256), None, "byte {i}");
        }
    }
}
