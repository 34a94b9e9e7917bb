//! Webhook authentication primitives: HMAC-SHA256 verification and secret equality, both in
//! constant time. Pure: bytes in, a yes or no out.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Whether `signature_hex` is the HMAC-SHA256 of `parts` (concatenated) under `secret`.
/// A signature that is not hex, or of the wrong length, is simply wrong.
pub fn hmac_sha256_hex_matches(secret: &str, parts: &[&[u8]], signature_hex: &str) -> bool {
    let Ok(signature) = hex::decode(signature_hex.trim()) else { return false };
    let Ok(mut mac) = HmacSha256::new_from_slice(secret.as_bytes()) else { return false };
    for part in parts {
        mac.update(part);
    }
    mac.verify_slice(&signature).is_ok()
}

/// Whether `given` equals `secret`, compared in constant time (the length may leak; the
/// content does not).
pub fn secret_equals(secret: &str, given: &str) -> bool {
    secret.as_bytes().ct_eq(given.as_bytes()).into()
}

/// The HMAC-SHA256 of `parts` under `secret`, lowercase hex: what a forge sends (tests and
/// benchmarks sign with it).
pub fn hmac_sha256_hex(secret: &str, parts: &[&[u8]]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    for part in parts {
        mac.update(part);
    }
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_4231_test_case_2_signature_matches_and_a_changed_one_does_not() {
        // RFC 4231, test case 2: key "Jefe", data "what do ya want for nothing?".
        let expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        assert_eq!(hmac_sha256_hex("Jefe", &[b"what do ya want ", b"for nothing?"]), expected);
        assert!(hmac_sha256_hex_matches("Jefe", &[b"what do ya want for nothing?"], expected));
        assert!(!hmac_sha256_hex_matches("Jefe", &[b"what do ya want for nothing!"], expected));
        assert!(!hmac_sha256_hex_matches("jefe", &[b"what do ya want for nothing?"], expected));
        assert!(!hmac_sha256_hex_matches("Jefe", &[b"what do ya want for nothing?"], &expected[..62]));
        assert!(!hmac_sha256_hex_matches("Jefe", &[b"what do ya want for nothing?"], "not hex"));
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(secret_equals("s3cr3t", "s3cr3t"));
        assert!(!secret_equals("s3cr3t", "s3cr3"));
        assert!(!secret_equals("s3cr3t", "S3cr3t"));
        assert!(!secret_equals("s3cr3t", ""));
    }
}
