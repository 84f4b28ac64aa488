//! Identifier generation: cluster, HSM, backup, subnet, ENI, security group, key store and
//! key IDs in the formats AWS uses.

const B32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// `n` random bytes from the OS.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    // getrandom only fails when the OS has no entropy source at all; then nothing here works.
    if getrandom::fill(&mut b).is_err() {
        tracing::error!("the operating system refused to provide random bytes");
    }
    b
}

fn base32(n: usize) -> String {
    random_bytes(n)
        .into_iter()
        .map(|b| B32[usize::from(b) % 32] as char)
        .collect()
}

fn hexn(n: usize) -> String {
    random_bytes(n.div_ceil(2))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()[..n]
        .to_string()
}

/// `cluster-` + 11 chars of `[a-z2-7]` (the model's pattern `cluster-[2-7a-zA-Z]{11,16}`).
pub fn cluster_id() -> String {
    format!("cluster-{}", base32(11))
}

/// `hsm-` + 11 chars of `[a-z2-7]`.
pub fn hsm_id() -> String {
    format!("hsm-{}", base32(11))
}

/// `backup-` + 11 chars of `[a-z2-7]`.
pub fn backup_id() -> String {
    format!("backup-{}", base32(11))
}

/// `subnet-` + 17 hex digits.
pub fn subnet_id() -> String {
    format!("subnet-{}", hexn(17))
}

/// `eni-` + 17 hex digits.
pub fn eni_id() -> String {
    format!("eni-{}", hexn(17))
}

/// `sg-` + 17 hex digits.
pub fn sg_id() -> String {
    format!("sg-{}", hexn(17))
}

/// `vpc-` + 17 hex digits.
pub fn vpc_id() -> String {
    format!("vpc-{}", hexn(17))
}

/// `cks-` + 17 lowercase hex digits, as in the KMS documentation's examples.
pub fn key_store_id() -> String {
    format!("cks-{}", hexn(17))
}

/// A random alphanumeric secret of `len` characters (kmsuser passwords, token PINs).
pub fn secret(len: usize) -> String {
    const ALNUM: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    random_bytes(len)
        .into_iter()
        .map(|b| ALNUM[usize::from(b) % ALNUM.len()] as char)
        .collect()
}

/// Whether `s` is a valid cluster ID per the model (`^cluster-[2-7a-zA-Z]{11,16}$`).
pub fn is_cluster_id(s: &str) -> bool {
    s.strip_prefix("cluster-").is_some_and(|r| {
        (11..=16).contains(&r.len())
            && r.bytes()
                .all(|b| b.is_ascii_alphabetic() || (b'2'..=b'7').contains(&b))
    })
}

/// Whether `s` matches `^<prefix>-[2-7a-zA-Z]{11,16}$`.
pub fn is_b32_id(prefix: &str, s: &str) -> bool {
    s.strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('-'))
        .is_some_and(|r| {
            (11..=16).contains(&r.len())
                && r.bytes()
                    .all(|b| b.is_ascii_alphabetic() || (b'2'..=b'7').contains(&b))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        for _ in 0..50 {
            assert!(is_cluster_id(&cluster_id()));
            assert!(is_b32_id("hsm", &hsm_id()));
            let k = key_store_id();
            assert_eq!(k.len(), 21);
            assert!(k[4..].bytes().all(|b| b.is_ascii_hexdigit()));
            assert_eq!(secret(20).len(), 20);
        }
        assert!(!is_cluster_id("cluster-1a23b4cdefg"));
        assert!(is_cluster_id("cluster-234abcdefABC"));
    }
}
