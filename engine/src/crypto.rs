//! Secrets at rest (kubeconfigs, broker passwords): sealed with ChaCha20-Poly1305 (ring)
//! under a 32-byte key from the configuration (`secret_key`, e.g. `SWELL_SECRET_KEY`, 64 hex
//! characters). A sealed blob is `version byte ‖ 12-byte random nonce ‖ ciphertext+tag`; the
//! purpose (e.g. `cluster:east`) is bound in as associated data, so a blob cannot be moved to
//! another row.

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use crate::{Error, Result};

const VERSION: u8 = 1;

pub struct Sealer {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(***)")
    }
}

impl Sealer {
    /// From 64 hex characters (`openssl rand -hex 32` makes one).
    pub fn from_hex(hex: &str) -> Result<Sealer> {
        let hex = hex.trim();
        let bytes: Option<Vec<u8>> =
            (hex.len() == 64 && hex.is_ascii()).then(|| (0..32).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()).collect()).flatten();
        let bytes = bytes.ok_or_else(|| Error::invalid("secret_key", "must be 64 hex characters (32 bytes); make one with `openssl rand -hex 32`"))?;
        let key = UnboundKey::new(&CHACHA20_POLY1305, &bytes).map_err(|_| Error::invalid("secret_key", "is not a usable key"))?;
        Ok(Sealer { key: LessSafeKey::new(key), rng: SystemRandom::new() })
    }

    pub fn seal(&self, purpose: &str, plain: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| Error::invalid("secret_key", "no randomness for a nonce"))?;
        let mut buf = plain.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(purpose.as_bytes()), &mut buf)
            .map_err(|_| Error::invalid("secret_key", "sealing failed"))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + buf.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        Ok(out)
    }

    pub fn open(&self, purpose: &str, sealed: &[u8]) -> Result<Vec<u8>> {
        let wrong = || Error::invalid("secret_key", format!("cannot open the stored secret of {purpose}: wrong key or damaged data"));
        if sealed.len() < 1 + NONCE_LEN || sealed[0] != VERSION {
            return Err(wrong());
        }
        let nonce = Nonce::try_assume_unique_for_key(&sealed[1..1 + NONCE_LEN]).map_err(|_| wrong())?;
        let mut buf = sealed[1 + NONCE_LEN..].to_vec();
        let plain = self.key.open_in_place(nonce, Aad::from(purpose.as_bytes()), &mut buf).map_err(|_| wrong())?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn round_trip_and_tamper_detection() {
        let s = Sealer::from_hex(KEY).unwrap();
        let sealed = s.seal("cluster:east", b"token: hunter2").unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"), "plaintext visible in the sealed blob");
        assert_eq!(s.open("cluster:east", &sealed).unwrap(), b"token: hunter2");
        // Another row's purpose, a flipped bit, another key: all refused.
        assert!(s.open("cluster:west", &sealed).is_err());
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(s.open("cluster:east", &flipped).is_err());
        let other = Sealer::from_hex(&KEY.replace("00", "ff")).unwrap();
        let err = other.open("cluster:east", &sealed).unwrap_err().to_string();
        assert!(err.starts_with("secret_key") && !err.contains("hunter2"), "{err}");
        // Two seals of the same text differ (random nonce).
        assert_ne!(s.seal("p", b"x").unwrap(), s.seal("p", b"x").unwrap());
    }

    #[test]
    fn bad_keys_name_the_setting() {
        for bad in ["", "abc", &"zz".repeat(32), &"0".repeat(63)] {
            let err = Sealer::from_hex(bad).unwrap_err().to_string();
            assert!(err.starts_with("secret_key: must be 64 hex"), "{bad:?}: {err}");
        }
    }
}

/// `bytes` random bytes from the system's secure generator, as hex (for new secrets).
pub fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    SystemRandom::new().fill(&mut buf).map_err(|_| Error::invalid("secret", "no randomness available"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Checks `signature` (hex) as HMAC-SHA256 of `message` under `key`, in constant time.
pub fn verify_hmac_sha256(key: &[u8], message: &[u8], signature_hex: &str) -> bool {
    let sig: Option<Vec<u8>> = (signature_hex.len() == 64 && signature_hex.is_ascii())
        .then(|| (0..32).map(|i| u8::from_str_radix(&signature_hex[2 * i..2 * i + 2], 16).ok()).collect())
        .flatten();
    let Some(sig) = sig else { return false };
    ring::hmac::verify(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key), message, &sig).is_ok()
}

/// HMAC-SHA256 of `message` under `key`, as hex (what a webhook sender computes).
pub fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key), message).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}
