//! Secrets: network credentials encrypted at rest. AES-256-GCM with a fresh random 96-bit nonce per encryption,
//! stored as nonce + ciphertext; the key is derived with HKDF-SHA256 from `$NIGHTFOX_SECRET` when set, else from
//! a 32-byte key file (`secret.key`, mode 0600) in the archive. A password never appears in clear in the catalog,
//! logs, listings, errors or process arguments: it travels as [`Password`], whose Debug and Display are redacted.
//! A wrong key or a tampered ciphertext is a clear error.
//!
//! ## Wrapped keys (the contract for other key holders, such as the encrypted vault)
//! A module that needs its own 32-byte data key keeps it wrapped by [`Secrets::wrap_key`] (AES-256-GCM under the
//! secrets key, with an AAD distinct from passwords', so a wrapped key and a password never pass for each other) in
//! a file `<archive>/keys/NAME.wrapped` (e.g. `keys/vault.wrapped`, mode 0600), and reads it back with
//! [`Secrets::unwrap_key`]. `nightfox secrets rotate` re-wraps every `<archive>/keys/*.wrapped` file under the new
//! key (each rewritten atomically: temp file, fsync, rename), so a holder must keep its key there and nowhere else.
//! [`Secrets::unwrap_key`] tries every key this process knows (the current one, and during an interrupted rotation
//! the other), so a file wrapped under either still opens.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use aes_gcm::aead::{Aead, Generate, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;

use crate::error::{Error, IoContext, Result};

const KEY_FILE: &str = "secret.key";
const SALT: &[u8] = b"nightfox secrets v1";
const INFO: &[u8] = b"network source credentials";
const AAD: &[u8] = b"nightfox source password";
const WRAP_AAD: &[u8] = b"nightfox wrapped data key v1";
const NONCE_LEN: usize = 12;

/// A password in memory. Its Debug and Display never show it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(s: impl Into<String>) -> Self {
        Password(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl std::fmt::Display for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Creates the archive's key file (32 random bytes, 0600) if it does not exist.
pub fn ensure_key_file(archive_root: &Path) -> Result<()> {
    let path = archive_root.join(KEY_FILE);
    if path.exists() {
        return Ok(());
    }
    let key = Key::<Aes256Gcm>::generate();
    match OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path) {
        Ok(mut f) => {
            f.write_all(key.as_slice()).at(&path)?;
            f.sync_all().at(&path)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::io(&path, e)),
    }
}

/// The cipher for one archive.
pub struct Secrets {
    cipher: Aes256Gcm,
}

impl Secrets {
    /// Loads the key: `$NIGHTFOX_SECRET` if set and non-empty, else the archive's key file (created if missing).
    pub fn load(archive_root: &Path) -> Result<Secrets> {
        let material = match std::env::var("NIGHTFOX_SECRET") {
            Ok(s) if !s.is_empty() => s.into_bytes(),
            _ => {
                ensure_key_file(archive_root)?;
                let path = archive_root.join(KEY_FILE);
                let mut buf = Vec::new();
                fs::File::open(&path).and_then(|mut f| f.read_to_end(&mut buf)).at(&path)?;
                if buf.len() != 32 {
                    return Err(Error::Secret(format!("{path:?} is not a 32-byte key file")));
                }
                buf
            }
        };
        Ok(Secrets::from_material(&material))
    }

    fn from_material(material: &[u8]) -> Secrets {
        let hk = Hkdf::<Sha256>::new(Some(SALT), material);
        let mut okm = [0u8; 32];
        // 32 bytes is always a valid HKDF-SHA256 output length.
        let _ = hk.expand(INFO, &mut okm);
        let key = Key::<Aes256Gcm>::from(okm);
        Secrets { cipher: Aes256Gcm::new(&key) }
    }

    /// Encrypts a password: nonce (12 bytes) followed by the ciphertext and tag. An empty password stays empty.
    pub fn encrypt(&self, password: &Password) -> Result<Vec<u8>> {
        if password.is_empty() {
            return Ok(Vec::new());
        }
        let nonce = Nonce::generate();
        let ct = self
            .cipher
            .encrypt(&nonce, Payload { msg: password.expose().as_bytes(), aad: AAD })
            .map_err(|_| Error::Secret("encryption failed".into()))?;
        let mut out = nonce.as_slice().to_vec();
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Wraps a 32-byte data key (see the module doc): nonce (12 bytes) + ciphertext + tag, 60 bytes.
    pub fn wrap_key(&self, key: &[u8; 32]) -> Result<Vec<u8>> {
        let nonce = Nonce::generate();
        let ct = self
            .cipher
            .encrypt(&nonce, Payload { msg: key, aad: WRAP_AAD })
            .map_err(|_| Error::Secret("key wrapping failed".into()))?;
        let mut out = nonce.as_slice().to_vec();
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Unwraps what [`Secrets::wrap_key`] produced; a wrong secrets key or a damaged file is `Error::Secret`.
    pub fn unwrap_key(&self, wrapped: &[u8]) -> Result<[u8; 32]> {
        let bad = || {
            Error::Secret(
                "a wrapped data key cannot be unwrapped: wrong secrets key ($NIGHTFOX_SECRET or the key file) or a \
                 damaged keys/*.wrapped file"
                    .into(),
            )
        };
        if wrapped.len() != NONCE_LEN + 32 + 16 {
            return Err(bad());
        }
        let (n, ct) = wrapped.split_at(NONCE_LEN);
        let nonce = Nonce::try_from(n).map_err(|_| bad())?;
        let pt = self.cipher.decrypt(&nonce, Payload { msg: ct, aad: WRAP_AAD }).map_err(|_| bad())?;
        <[u8; 32]>::try_from(pt.as_slice()).map_err(|_| bad())
    }

    /// Decrypts what [`Secrets::encrypt`] produced.
    pub fn decrypt(&self, stored: &[u8]) -> Result<Password> {
        if stored.is_empty() {
            return Ok(Password::default());
        }
        let bad = || {
            Error::Secret(
                "the stored password cannot be decrypted: wrong key ($NIGHTFOX_SECRET or secret.key) or a damaged \
                 catalog; set the right key or add the source again"
                    .into(),
            )
        };
        if stored.len() < NONCE_LEN + 16 {
            return Err(bad());
        }
        let (n, ct) = stored.split_at(NONCE_LEN);
        let nonce = Nonce::try_from(n).map_err(|_| bad())?;
        let pt = self.cipher.decrypt(&nonce, Payload { msg: ct, aad: AAD }).map_err(|_| bad())?;
        String::from_utf8(pt).map(Password).map_err(|_| bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_fresh_nonces_and_clear_errors() {
        let s = Secrets::from_material(b"k1");
        let pw = Password::new("hunter2 ünïcode");
        let a = s.encrypt(&pw).unwrap();
        let b = s.encrypt(&pw).unwrap();
        assert_ne!(a, b, "a fresh nonce every time");
        assert_eq!(a.len(), 12 + pw.expose().len() + 16);
        assert!(!a.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(s.decrypt(&a).unwrap(), pw);
        // Wrong key, tampered bytes, truncation: errors, not panics.
        assert!(matches!(Secrets::from_material(b"k2").decrypt(&a), Err(Error::Secret(_))));
        let mut t = a.clone();
        t[20] ^= 1;
        assert!(matches!(s.decrypt(&t), Err(Error::Secret(_))));
        assert!(matches!(s.decrypt(&a[..10]), Err(Error::Secret(_))));
        assert!(s.encrypt(&Password::default()).unwrap().is_empty());
        assert_eq!(format!("{pw:?} {pw}"), "Password(<redacted>) <redacted>");
    }

    #[test]
    fn wrapped_keys_round_trip_and_are_not_passwords() {
        let s = Secrets::from_material(b"k1");
        let key = [7u8; 32];
        let w = s.wrap_key(&key).unwrap();
        assert_eq!(w.len(), 60);
        assert_eq!(s.unwrap_key(&w).unwrap(), key);
        assert!(matches!(Secrets::from_material(b"k2").unwrap_key(&w), Err(Error::Secret(_))));
        assert!(s.decrypt(&w).is_err(), "a wrapped key does not decrypt as a password");
        let pw = s.encrypt(&Password::new("x".repeat(32))).unwrap();
        assert!(s.unwrap_key(&pw).is_err(), "a password does not unwrap as a key");
    }

    #[test]
    fn key_file_is_private_and_stable() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let s1 = Secrets::load(d.path()).unwrap();
        let m = fs::metadata(d.path().join(KEY_FILE)).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o600);
        assert_eq!(m.len(), 32);
        let ct = s1.encrypt(&Password::new("pw")).unwrap();
        let s2 = Secrets::load(d.path()).unwrap();
        assert_eq!(s2.decrypt(&ct).unwrap().expose(), "pw");
    }
}
