//! Bounds on what a request document may hold, checked by a linear scan of its bytes before
//! it is decoded. A body of 1 MiB can hold half a million tiny JSON values or a million tiny
//! CBOR items, and decoding such a body into a tree costs dozens of bytes per item; no KMS or
//! CloudHSM request needs more than a few hundred values (50 tags, a handful of filters). So
//! a document with more than [`MAX_ITEMS`] values is refused before any tree is built, and
//! memory per request stays within a small multiple of its body.

/// The most values (scalars, arrays, objects) a request document may hold.
pub const MAX_ITEMS: usize = 10_000;

/// Whether a JSON document holds more than `max` values: counts the openings of arrays and
/// objects and the separators between members, outside strings.
pub fn json_exceeds(body: &[u8], max: usize) -> bool {
    let (mut count, mut in_string, mut escaped) = (0usize, false, false);
    for &b in body {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' | b',' => count += 1,
            _ => continue,
        }
        if count > max {
            return true;
        }
    }
    false
}

/// Whether a CBOR document holds more than `max` items: every item starts with a header, so
/// counting headers (and stepping over the bytes of definite-length strings) counts items.
/// A truncated document is left to the decoder to describe.
pub fn cbor_exceeds(body: &[u8], max: usize) -> bool {
    let mut at = 0usize;
    let mut count = 0usize;
    while at < body.len() {
        count += 1;
        if count > max {
            return true;
        }
        let major = body[at] >> 5;
        let info = body[at] & 0x1f;
        at += 1;
        let argument = match info {
            0..=23 => u64::from(info),
            24..=27 => {
                let width = 1usize << (info - 24);
                let Some(bytes) = body.get(at..at + width) else {
                    return false;
                };
                at += width;
                bytes.iter().fold(0u64, |n, &b| (n << 8) | u64::from(b))
            }
            _ => 0, // indefinite length or break: no argument
        };
        if (major == 2 || major == 3) && info < 31 {
            let Ok(len) = usize::try_from(argument) else {
                return false;
            };
            at = at.saturating_add(len);
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_array_of_many_tiny_values_exceeds_and_strings_do_not_count() {
        let many = format!("{{\"a\":[{}0]}}", "0,".repeat(MAX_ITEMS));
        assert!(json_exceeds(many.as_bytes(), MAX_ITEMS));
        let text = format!("{{\"a\":\"{}\"}}", ",[{".repeat(MAX_ITEMS));
        assert!(!json_exceeds(text.as_bytes(), MAX_ITEMS));
        let escaped = format!("{{\"a\":\"\\\"{}\"}}", ",".repeat(MAX_ITEMS + 5));
        assert!(!json_exceeds(escaped.as_bytes(), MAX_ITEMS));
    }

    #[test]
    fn a_cbor_array_of_many_tiny_items_exceeds_and_string_bytes_do_not_count() {
        let n = MAX_ITEMS + 1;
        let mut many = vec![0xa1, 0x61, b'a', 0x9a];
        many.extend_from_slice(&(n as u32).to_be_bytes());
        many.extend(std::iter::repeat_n(0x00, n));
        assert!(cbor_exceeds(&many, MAX_ITEMS));
        let mut text = vec![0xa1, 0x61, b'a', 0x7a];
        text.extend_from_slice(&(n as u32).to_be_bytes());
        text.extend(std::iter::repeat_n(0x00, n));
        assert!(!cbor_exceeds(&text, MAX_ITEMS));
    }
}
