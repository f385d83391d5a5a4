//! Secrets at rest (kubeconfigs, broker passwords): sealed with ChaCha20-Poly1305 (ring)
//! under a 32-byte key from the configuration (`secret_key`, e.g. `SWELL_SECRET_KEY`, 64 hex
//! characters). A sealed blob is `version ‖ key id ‖ 12-byte random nonce ‖ ciphertext+tag`;
//! the purpose (e.g. `cluster:east`) is bound in as associated data, so a blob cannot be moved
//! to another row. Rotation: the new key becomes `secret_key`, the old one goes to
//! `previous_secret_keys`, `swell secrets rotate` re-seals everything, then the old is retired.

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use crate::{Error, Result};

/// Blobs sealed before keys had ids: `1 ‖ nonce ‖ ciphertext+tag`, opened by trying each key.
const V1: u8 = 1;
/// `2 ‖ 4-byte key id ‖ nonce ‖ ciphertext+tag`.
const V2: u8 = 2;
const KEY_ID_LEN: usize = 4;

struct Key {
    id: [u8; KEY_ID_LEN],
    key: LessSafeKey,
}

/// Seals under the current key (`secret_key`) and opens under it or any previous key
/// (`previous_secret_keys`), chosen by the id each blob carries.
pub struct Sealer {
    current: Key,
    previous: Vec<Key>,
    rng: SystemRandom,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(***)")
    }
}

fn parse_key(field: &str, hex: &str) -> Result<Key> {
    let hex = hex.trim();
    let bytes: Option<Vec<u8>> =
        (hex.len() == 64 && hex.is_ascii()).then(|| (0..32).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()).collect()).flatten();
    let bytes = bytes.ok_or_else(|| Error::invalid(field, "must be 64 hex characters (32 bytes); make one with `openssl rand -hex 32`"))?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(b"swell secret key id\0");
    ctx.update(&bytes);
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&ctx.finish().as_ref()[..KEY_ID_LEN]);
    let key = UnboundKey::new(&CHACHA20_POLY1305, &bytes).map_err(|_| Error::invalid(field, "is not a usable key"))?;
    Ok(Key { id, key: LessSafeKey::new(key) })
}

fn hex_id(id: &[u8]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

impl Sealer {
    /// From 64 hex characters (`openssl rand -hex 32` makes one).
    pub fn from_hex(hex: &str) -> Result<Sealer> {
        Ok(Sealer { current: parse_key("secret_key", hex)?, previous: Vec::new(), rng: SystemRandom::new() })
    }

    /// Adds keys that still open what they sealed until they are retired (left out).
    pub fn with_previous(mut self, hexes: &[String]) -> Result<Sealer> {
        for (i, h) in hexes.iter().enumerate() {
            let k = parse_key(&format!("previous_secret_keys[{i}]"), h)?;
            if k.id != self.current.id {
                self.previous.push(k);
            }
        }
        Ok(self)
    }

    /// The current key's id (8 hex characters), as `swell secrets rotate` reports it.
    pub fn key_id(&self) -> String {
        hex_id(&self.current.id)
    }

    pub fn seal(&self, purpose: &str, plain: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| Error::invalid("secret_key", "no randomness for a nonce"))?;
        let mut buf = plain.to_vec();
        self.current
            .key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(purpose.as_bytes()), &mut buf)
            .map_err(|_| Error::invalid("secret_key", "sealing failed"))?;
        let mut out = Vec::with_capacity(1 + KEY_ID_LEN + NONCE_LEN + buf.len());
        out.push(V2);
        out.extend_from_slice(&self.current.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        Ok(out)
    }

    pub fn open(&self, purpose: &str, sealed: &[u8]) -> Result<Vec<u8>> {
        let wrong = || Error::invalid("secret_key", format!("cannot open the stored secret of {purpose}: wrong key or damaged data"));
        let keys = || std::iter::once(&self.current).chain(&self.previous);
        let (candidates, body): (Vec<&Key>, &[u8]) = match sealed.first() {
            Some(&V2) if sealed.len() >= 1 + KEY_ID_LEN + NONCE_LEN => {
                let id = &sealed[1..1 + KEY_ID_LEN];
                let Some(k) = keys().find(|k| k.id == id) else {
                    return Err(Error::invalid(
                        "secret_key",
                        format!(
                            "the stored secret of {purpose} is sealed under key {}, which is retired (neither secret_key nor one of previous_secret_keys); put that key back in previous_secret_keys and run `swell secrets rotate`, or store the secret again",
                            hex_id(id)
                        ),
                    ));
                };
                (vec![k], &sealed[1 + KEY_ID_LEN..])
            }
            Some(&V1) if sealed.len() >= 1 + NONCE_LEN => (keys().collect(), &sealed[1..]),
            _ => return Err(wrong()),
        };
        for k in candidates {
            let nonce = Nonce::try_assume_unique_for_key(&body[..NONCE_LEN]).map_err(|_| wrong())?;
            let mut buf = body[NONCE_LEN..].to_vec();
            if let Ok(plain) = k.key.open_in_place(nonce, Aad::from(purpose.as_bytes()), &mut buf) {
                return Ok(plain.to_vec());
            }
        }
        Err(wrong())
    }

    /// Whether a blob is sealed under anything but the current key.
    pub fn is_stale(&self, sealed: &[u8]) -> bool {
        !(sealed.first() == Some(&V2) && sealed.get(1..1 + KEY_ID_LEN) == Some(&self.current.id[..]))
    }

    /// Opens a blob and seals it again under the current key.
    pub fn reseal(&self, purpose: &str, sealed: &[u8]) -> Result<Vec<u8>> {
        self.seal(purpose, &self.open(purpose, sealed)?)
    }
}

/// What each kind of sealed secret is bound to (the associated data).
pub mod purpose {
    pub fn cluster(name: &str) -> String {
        format!("cluster:{name}")
    }

    pub fn webhook(tenant: &str, source: &str) -> String {
        format!("webhook:{tenant}/{source}")
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
    fn rotation_keeps_old_blobs_readable_until_the_key_is_retired() {
        let old = Sealer::from_hex(KEY).unwrap();
        let blob = old.seal("p", b"pw").unwrap();
        let new_key = KEY.replace("00", "aa");
        let rotated = Sealer::from_hex(&new_key).unwrap().with_previous(&[KEY.to_string()]).unwrap();
        assert!(rotated.is_stale(&blob));
        assert_eq!(rotated.open("p", &blob).unwrap(), b"pw");
        let resealed = rotated.reseal("p", &blob).unwrap();
        assert!(!rotated.is_stale(&resealed));
        // Once the old key is retired: the resealed blob opens, the old one is a clear error.
        let retired = Sealer::from_hex(&new_key).unwrap();
        assert_eq!(retired.open("p", &resealed).unwrap(), b"pw");
        let err = retired.open("p", &blob).unwrap_err().to_string();
        assert!(err.contains(&format!("sealed under key {}", old.key_id())) && err.contains("retired"), "{err}");
        assert!(!err.contains("pw\""));
        // A legacy blob (version 1, no key id) still opens with whichever key made it.
        let mut legacy = vec![1u8];
        legacy.extend_from_slice(&blob[5..]);
        assert_eq!(rotated.open("p", &legacy).unwrap(), b"pw");
        assert!(retired.open("p", &legacy).is_err());
        let bad = Sealer::from_hex(KEY).unwrap().with_previous(&["nope".into()]).unwrap_err().to_string();
        assert!(bad.starts_with("previous_secret_keys[0]: must be 64 hex"), "{bad}");
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
