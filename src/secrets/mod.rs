//! Secrets: network credentials, kept in tiers ([`store`]: the OS keyring, the encrypted catalog, memory) and,
//! in the catalog, encrypted at rest: AES-256-GCM with a fresh random 96-bit nonce per encryption.
//!
//! ## Keys
//! - **A passphrase**, `$NIGHTFOX_SECRET` when set and non-empty (the env file, the same on every seat): always
//!   read as a passphrase, so the key comes from Argon2id (default parameters: 19 MiB, 2 passes) with this
//!   archive's random 16-byte salt (`secret.salt`, made on first use). A ciphertext names its salt (`nfA2`,
//!   salt, nonce, ciphertext), so one written by another seat (whose salt differs) or before a `catalog copy`
//!   still opens. Argon2id is slow by design: a key is derived once per process and salt, then cached.
//!   Ciphertexts of earlier versions (HKDF-SHA256 of the passphrase: nonce, ciphertext) still open and are
//!   re-encrypted by `nightfox secrets rotate`; so are those under `$NIGHTFOX_SECRET_PREVIOUS` (how a
//!   passphrase is changed: set the new one and the old one there, run `secrets rotate`).
//! - **Else a key file**, 32 random bytes, mode 0600: `$NIGHTFOX_KEY_FILE` (or `--key-file`, which sets it;
//!   it may live outside the archive), else `secret.key` in the archive (made when missing, until something is
//!   encrypted under it: then its id is kept in `keys/secret.key.id`, and a missing or other key file is refused
//!   with a clear error instead of silently replaced). The key comes from HKDF-SHA256 (a random key needs no
//!   slow KDF). A key file that group or others may read is refused (`chmod 600`), by every command
//!   ([`check_key_file`]).
//!
//! ## Rotation (`nightfox secrets rotate`, [`rotate`]) and its crash order
//! 1. a new random key is written to `<key file>.new` (temp file, fsync, rename, fsync of the directory); one
//!    left by an interrupted rotation is reused;
//! 2. every ciphertext in the catalog is re-encrypted under it in ONE catalog transaction (each row only if
//!    unchanged since read);
//! 3. every `<archive>/keys/*.wrapped` is re-wrapped under it (each: temp, fsync, rename), then the catalog's
//!    copy of the vault key (`catalog::VAULT_KEY_INFO`), only if it is still as read and opens with the old key;
//! 4. `keys/secret.key.id` names the new key; `<key file>.new` is renamed over the key file (and the directory
//!    fsynced).
//!
//! While `<key file>.new` exists, every process knows both keys (decryption and unwrapping try each; encryption
//! uses the old one) and says that a rotation was interrupted: running `secrets rotate` again finishes it.
//! So a crash at any step loses nothing. Secrets in the OS keyring are not encrypted by this key and stay.
//!
//! A password never appears in clear in the catalog, logs, listings, errors or process arguments: it travels as
//! [`Password`], whose Debug and Display are redacted. A wrong key or a tampered ciphertext is a clear error.
//!
//! ## Wrapped keys (the contract for other key holders, such as the encrypted vault)
//! A module that needs its own 32-byte data key keeps it wrapped by [`Secrets::wrap_key`] (AES-256-GCM under the
//! secrets key, with an AAD distinct from passwords', so a wrapped key and a password never pass for each other) in
//! a file `<archive>/keys/NAME.wrapped` (e.g. `keys/vault.wrapped`, mode 0600), and reads it back with
//! [`Secrets::unwrap_key`]. `nightfox secrets rotate` re-wraps every `<archive>/keys/*.wrapped` file under the new
//! key (each rewritten atomically: temp file, fsync, rename), so a holder must keep its key there and nowhere else.
//! [`Secrets::unwrap_key`] tries every key this process knows (the current one, and during an interrupted rotation
//! the other), so a file wrapped under either still opens.

pub mod keyring;
pub mod ops;
pub mod store;

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use aes_gcm::aead::{Aead, Generate, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use hkdf::Hkdf;
use sha2::{Digest, Sha256};

use crate::error::{Error, IoContext, Result};

pub use ops::{migrate, rotate};
pub use store::{password_of, set_ephemeral, Tier};

/// The key file's name in the archive (when `$NIGHTFOX_KEY_FILE` does not name another).
pub const KEY_FILE: &str = "secret.key";
/// Names the key file (set by `--key-file` too).
pub const KEY_FILE_VAR: &str = "NIGHTFOX_KEY_FILE";
/// The passphrase.
pub const SECRET_VAR: &str = "NIGHTFOX_SECRET";
/// The passphrase before a change, while `secrets rotate` re-encrypts under the new one.
pub const PREVIOUS_SECRET_VAR: &str = "NIGHTFOX_SECRET_PREVIOUS";
/// The archive's Argon2id salt.
const SALT_FILE: &str = "secret.salt";
/// Where wrapped data keys live (see the module doc).
pub const KEYS_DIR: &str = "keys";
/// In [`KEYS_DIR`]: the id of the key file's key that this archive's secrets are under (see [`Secrets::load`]).
const KEY_ID_FILE: &str = "secret.key.id";

const SALT: &[u8] = b"nightfox secrets v1";
const INFO: &[u8] = b"network source credentials";
const AAD: &[u8] = b"nightfox source password";
const WRAP_AAD: &[u8] = b"nightfox wrapped data key v1";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// The head of a ciphertext under a passphrase's Argon2id key, followed by the 16-byte salt.
const MAGIC: &[u8; 4] = b"nfA2";
const SALT_LEN: usize = 16;

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

/// The key file of an archive: `$NIGHTFOX_KEY_FILE` when set, else `secret.key` in the archive.
pub fn key_file_path(archive_root: &Path) -> PathBuf {
    match std::env::var_os(KEY_FILE_VAR) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => archive_root.join(KEY_FILE),
    }
}

/// Where a rotation writes the next key: `<key file>.new`.
fn pending_path(key_file: &Path) -> PathBuf {
    let mut s = key_file.as_os_str().to_owned();
    s.push(".new");
    PathBuf::from(s)
}

/// Creates the archive's key file (32 random bytes, 0600) if it does not exist.
pub fn ensure_key_file(archive_root: &Path) -> Result<()> {
    let path = key_file_path(archive_root);
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

/// Refuses a key file (or a pending `.new` one) that group or others may read. Every command calls it; a key
/// file that does not exist yet passes.
pub fn check_key_file(archive_root: &Path) -> Result<()> {
    let path = key_file_path(archive_root);
    for p in [pending_path(&path), path] {
        if let Ok(m) = fs::metadata(&p) {
            refuse_open_mode(&p, m.mode())?;
        }
    }
    Ok(())
}

/// The one-line refusal of a file holding secrets (`what`: "key file", "env file"...) whose `mode` lets group or
/// others read it; `None` when only its owner may. Every such file (key file, env file, `s3.env`, the dashboard's
/// token file) is checked by it, each caller choosing its error.
pub fn readable_by_others(path: &Path, mode: u32, what: &str) -> Option<String> {
    (mode & 0o077 != 0).then(|| {
        format!(
            "the {what} {} has mode {:o}: it holds secrets, so group and others may not read it (chmod 600 {})",
            path.display(),
            mode & 0o777,
            path.display()
        )
    })
}

/// The key file's refusal when group or others may read it.
fn refuse_open_mode(path: &Path, mode: u32) -> Result<()> {
    readable_by_others(path, mode, "key file").map_or(Ok(()), |m| Err(Error::Secret(m)))
}

/// Reads a 32-byte key file, refusing one that group or others may read.
fn read_key_file(path: &Path) -> Result<Vec<u8>> {
    let mut f = fs::File::open(path).at(path)?;
    refuse_open_mode(path, f.metadata().at(path)?.mode())?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).at(path)?;
    if buf.len() != 32 {
        return Err(Error::Secret(format!("{} is not a 32-byte key file", path.display())));
    }
    Ok(buf)
}

/// Writes `bytes` to `path` atomically (0600): a temp file beside it, fsync, rename, fsync of the directory.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = write_temp_beside(path, bytes)?;
    fs::rename(&tmp, path).at(path)?;
    sync_dir(path)
}

/// `bytes` written (0600) and fsynced into a temp file beside `path`, whose path is returned.
fn write_temp_beside(path: &Path, bytes: &[u8]) -> Result<PathBuf> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let _ = fs::remove_file(&tmp);
    let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).at(&tmp)?;
    f.write_all(bytes).at(&tmp)?;
    f.sync_all().at(&tmp)?;
    Ok(tmp)
}

/// Writes `bytes` (0600) as a new file at `path`, durably and whole; `false` (nothing written) when `path` exists
/// already: a hard link of a fully written temp file, so two writers cannot replace each other's file.
pub(crate) fn write_new_exclusively(path: &Path, bytes: &[u8]) -> Result<bool> {
    let tmp = write_temp_beside(path, bytes)?;
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => sync_dir(path).map(|()| true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Fsyncs the directory holding `path` (a rename in it is durable then).
pub(crate) fn sync_dir(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fs::File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

/// Argon2id's memory (KiB), passes and lanes: part of the stored format (the `nfA2` ciphertexts do not record them).
const ARGON2_M_KIB: u32 = 19 * 1024;
const ARGON2_T: u32 = 2;
const ARGON2_P: u32 = 1;

/// Argon2id keys derived in this process, by (SHA-256 of the passphrase, salt): derived once, not per decrypt.
type DerivedKeys = HashMap<([u8; 32], [u8; SALT_LEN]), [u8; 32]>;
static DERIVED: Mutex<Option<DerivedKeys>> = Mutex::new(None);

/// The Argon2id key of a passphrase and salt (cached for the process).
fn argon2_key(passphrase: &[u8], salt: &[u8; SALT_LEN]) -> Result<[u8; 32]> {
    let id: [u8; 32] = Sha256::digest(passphrase).into();
    let mut cache = DERIVED.lock().unwrap_or_else(|e| e.into_inner());
    let map = cache.get_or_insert_with(HashMap::new);
    if let Some(k) = map.get(&(id, *salt)) {
        return Ok(*k);
    }
    let mut out = [0u8; 32];
    // Pinned, not the crate's defaults: a later argon2 release with other defaults must still open every
    // ciphertext and wrapped key made with these (19 MiB, 2 passes, 1 lane: the OWASP minimum for Argon2id).
    let params = argon2::Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, Some(32))
        .map_err(|e| Error::Secret(format!("argon2id parameters: {e}")))?;
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into(passphrase, salt, &mut out)
        .map_err(|e| Error::Secret(format!("argon2id: {e}")))?;
    map.insert((id, *salt), out);
    Ok(out)
}

/// The archive's Argon2id salt, made (16 random bytes) on first use.
fn archive_salt(archive_root: &Path) -> Result<[u8; SALT_LEN]> {
    let path = archive_root.join(SALT_FILE);
    match fs::read(&path) {
        Ok(b) => <[u8; SALT_LEN]>::try_from(b.as_slice())
            .map_err(|_| Error::Secret(format!("{} is not a 16-byte salt file", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let salt: [u8; SALT_LEN] = {
                let k = Key::<Aes256Gcm>::generate();
                let mut s = [0u8; SALT_LEN];
                s.copy_from_slice(&k.as_slice()[..SALT_LEN]);
                s
            };
            match OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path) {
                Ok(mut f) => {
                    f.write_all(&salt).at(&path)?;
                    f.sync_all().at(&path)?;
                    Ok(salt)
                }
                // Another process made it first: use its salt.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => archive_salt(archive_root),
                Err(e) => Err(Error::io(&path, e)),
            }
        }
        Err(e) => Err(Error::io(&path, e)),
    }
}

fn hkdf_cipher(material: &[u8]) -> Aes256Gcm {
    let hk = Hkdf::<Sha256>::new(Some(SALT), material);
    let mut okm = [0u8; 32];
    // 32 bytes is always a valid HKDF-SHA256 output length.
    let _ = hk.expand(INFO, &mut okm);
    Aes256Gcm::new(&Key::<Aes256Gcm>::from(okm))
}

/// Opens nonce + ciphertext + tag with one key.
fn open_with(c: &Aes256Gcm, body: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
    if body.len() < NONCE_LEN + TAG_LEN {
        return None;
    }
    let (n, ct) = body.split_at(NONCE_LEN);
    let nonce = Nonce::try_from(n).ok()?;
    c.decrypt(&nonce, Payload { msg: ct, aad }).ok()
}

/// Where this process's key comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// `$NIGHTFOX_SECRET`.
    Passphrase,
    /// A key file (with a `.new` one beside it while a rotation is unfinished).
    KeyFile { path: PathBuf, pending: bool },
}

/// The cipher for one archive: the key encryption uses, and every key decryption may try.
pub struct Secrets {
    source: KeySource,
    /// What encryption uses; with a passphrase, ciphertexts name `salt`.
    primary: Aes256Gcm,
    salt: Option<[u8; SALT_LEN]>,
    /// Passphrases whose Argon2id keys decryption tries (`$NIGHTFOX_SECRET`, `$NIGHTFOX_SECRET_PREVIOUS`).
    passphrases: Vec<Vec<u8>>,
    /// HKDF keys of the plain format (nonce, ciphertext) decryption tries: the key file (and the pending one), or
    /// the passphrases' keys of earlier versions.
    plain: Vec<Aes256Gcm>,
    /// With a key file: where the archive records which key its secrets are under, and the id of `primary`
    /// (written at the first encryption under it).
    key_id: Option<(PathBuf, String)>,
}

/// A key file's public id: 16 bytes of a BLAKE3 key derivation from it, in hex (it tells keys apart, and reveals
/// nothing of the key).
fn key_id(key: &[u8]) -> String {
    let d = blake3::derive_key("nightfox secrets key id v1", key);
    crate::blobs::vault::to_hex(&d[..16])
}

/// Where an archive records the id of the key its secrets are under.
fn key_id_path(archive_root: &Path) -> PathBuf {
    archive_root.join(KEYS_DIR).join(KEY_ID_FILE)
}

/// Records `id` as the key this archive's secrets are under (unless it is already).
fn record_key_id(marker: &Path, id: &str) -> Result<()> {
    if fs::read_to_string(marker).is_ok_and(|s| s.trim() == id) {
        return Ok(());
    }
    if let Some(dir) = marker.parent() {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).at(dir)?;
    }
    write_atomically(marker, format!("{id}\n").as_bytes())
}

fn env_nonempty(name: &str) -> Option<Vec<u8>> {
    std::env::var(name).ok().filter(|s| !s.is_empty()).map(String::into_bytes)
}

impl Secrets {
    /// Loads the key: `$NIGHTFOX_SECRET` if set and non-empty (a passphrase: Argon2id), else the key file
    /// (refused when group or others may read it). A missing key file is created only while nothing of the
    /// archive is encrypted under a key file yet: the first encryption records the key's id in
    /// `keys/secret.key.id`, and from then on a missing key file, or one holding another key (a wrong
    /// `--key-file`), is a clear error rather than a fresh key that opens nothing.
    pub fn load(archive_root: &Path) -> Result<Secrets> {
        if let Some(pass) = env_nonempty(SECRET_VAR) {
            let salt = archive_salt(archive_root)?;
            let primary = Aes256Gcm::new(&Key::<Aes256Gcm>::from(argon2_key(&pass, &salt)?));
            let mut passphrases = vec![pass];
            passphrases.extend(env_nonempty(PREVIOUS_SECRET_VAR));
            let plain = passphrases.iter().map(|p| hkdf_cipher(p)).collect();
            return Ok(Secrets {
                source: KeySource::Passphrase,
                primary,
                salt: Some(salt),
                passphrases,
                plain,
                key_id: None,
            });
        }
        let path = key_file_path(archive_root);
        let marker = key_id_path(archive_root);
        let recorded = fs::read_to_string(&marker).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        if let (Some(id), false) = (&recorded, path.exists()) {
            return Err(Error::Secret(format!(
                "the key file {} does not exist, but this archive's stored secrets are under key {id}: restore \
                 that key file, or point --key-file (NIGHTFOX_KEY_FILE) at it",
                path.display()
            )));
        }
        ensure_key_file(archive_root)?;
        let current_bytes = read_key_file(&path)?;
        let mut primary_id = key_id(&current_bytes);
        let current = hkdf_cipher(&current_bytes);
        let mut plain = vec![current.clone()];
        let next = pending_path(&path);
        let pending = next.exists();
        // While a rotation is pending, what is encrypted goes under the key that will stay (a password set between
        // the rotation's transaction and its rename would otherwise be under the key it throws away).
        let mut primary = current;
        let mut ids = vec![primary_id.clone()];
        if pending {
            let pending_bytes = read_key_file(&next)?;
            primary_id = key_id(&pending_bytes);
            ids.push(primary_id.clone());
            let pending_key = hkdf_cipher(&pending_bytes);
            primary = pending_key.clone();
            plain.push(pending_key);
            tracing::warn!(
                key_file = %path.display(),
                "a key rotation was interrupted ({} exists): run `nightfox secrets rotate` to finish it",
                next.display()
            );
        }
        if let Some(id) = recorded.filter(|id| !ids.contains(id)) {
            return Err(Error::Secret(format!(
                "the key file {} holds key {}, but this archive's stored secrets are under key {id}: wrong \
                 --key-file (NIGHTFOX_KEY_FILE)?",
                path.display(),
                ids[0]
            )));
        }
        Ok(Secrets {
            source: KeySource::KeyFile { path, pending },
            primary,
            salt: None,
            passphrases: vec![],
            plain,
            key_id: Some((marker, primary_id)),
        })
    }

    /// Unwraps `wrapped` with the keys this process would have for `archive_root` (the passphrases, else the key
    /// file and a pending one), writing nothing (no salt, no new key file): how a seat joining a shared catalog
    /// checks, before it creates anything, that its secrets open the archive's vault key. `Error::Secret` when
    /// none does (a key file that does not exist opens nothing).
    pub fn unwrap_key_unwritten(archive_root: &Path, wrapped: &[u8]) -> Result<[u8; 32]> {
        let (source, passphrases, plain) = match env_nonempty(SECRET_VAR) {
            Some(pass) => {
                let mut passphrases = vec![pass];
                passphrases.extend(env_nonempty(PREVIOUS_SECRET_VAR));
                let plain: Vec<Aes256Gcm> = passphrases.iter().map(|p| hkdf_cipher(p)).collect();
                (KeySource::Passphrase, passphrases, plain)
            }
            None => {
                let path = key_file_path(archive_root);
                let next = pending_path(&path);
                let mut plain = Vec::new();
                for p in [&path, &next] {
                    if p.exists() {
                        plain.push(hkdf_cipher(&read_key_file(p)?));
                    }
                }
                (KeySource::KeyFile { pending: next.exists(), path }, vec![], plain)
            }
        };
        let Some(primary) = plain.first().cloned() else {
            return Err(Error::Secret("no secrets key ($NIGHTFOX_SECRET or a key file) to unwrap a data key".into()));
        };
        Secrets { source, primary, salt: None, passphrases, plain, key_id: None }.unwrap_key(wrapped)
    }

    /// A key-file style cipher from raw key material (HKDF-SHA256).
    fn from_material(material: &[u8]) -> Secrets {
        let c = hkdf_cipher(material);
        Secrets {
            source: KeySource::KeyFile { path: PathBuf::new(), pending: false },
            primary: c.clone(),
            salt: None,
            passphrases: vec![],
            plain: vec![c],
            key_id: None,
        }
    }

    /// Where the key comes from.
    pub fn source(&self) -> &KeySource {
        &self.source
    }

    fn seal(&self, msg: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        if let Some((marker, id)) = &self.key_id {
            record_key_id(marker, id)?;
        }
        let nonce = Nonce::generate();
        let ct = self
            .primary
            .encrypt(&nonce, Payload { msg, aad })
            .map_err(|_| Error::Secret("encryption failed".into()))?;
        let mut out = Vec::with_capacity(MAGIC.len() + SALT_LEN + NONCE_LEN + ct.len());
        if let Some(salt) = &self.salt {
            out.extend_from_slice(MAGIC);
            out.extend_from_slice(salt);
        }
        out.extend_from_slice(nonce.as_slice());
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Opens what some key this process knows sealed; None when none does.
    fn open(&self, stored: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        if stored.len() >= MAGIC.len() + SALT_LEN + NONCE_LEN + TAG_LEN && stored.starts_with(MAGIC) {
            let (head, body) = stored.split_at(MAGIC.len() + SALT_LEN);
            if let Ok(salt) = <[u8; SALT_LEN]>::try_from(&head[MAGIC.len()..]) {
                for p in &self.passphrases {
                    let Ok(k) = argon2_key(p, &salt) else { continue };
                    if let Some(pt) = open_with(&Aes256Gcm::new(&Key::<Aes256Gcm>::from(k)), body, aad) {
                        return Some(pt);
                    }
                }
            }
        }
        self.plain.iter().find_map(|c| open_with(c, stored, aad))
    }

    /// True when `stored` opens with the key encryption uses now (`secrets rotate` leaves it as it is).
    pub fn is_current(&self, stored: &[u8]) -> bool {
        let body = match &self.salt {
            Some(salt) => {
                let head = MAGIC.len() + SALT_LEN;
                if stored.len() < head || !stored.starts_with(MAGIC) || stored[MAGIC.len()..head] != salt[..] {
                    return false;
                }
                &stored[head..]
            }
            None => stored,
        };
        open_with(&self.primary, body, AAD).is_some()
    }

    /// Encrypts a password: (with a passphrase: `nfA2` and the salt, then) nonce (12 bytes), ciphertext and tag.
    /// An empty password stays empty.
    pub fn encrypt(&self, password: &Password) -> Result<Vec<u8>> {
        if password.is_empty() {
            return Ok(Vec::new());
        }
        self.seal(password.expose().as_bytes(), AAD)
    }

    /// Wraps a 32-byte data key (see the module doc).
    pub fn wrap_key(&self, key: &[u8; 32]) -> Result<Vec<u8>> {
        self.seal(key, WRAP_AAD)
    }

    /// Unwraps what [`Secrets::wrap_key`] produced (under any key this process knows); a wrong secrets key or a
    /// damaged file is `Error::Secret`.
    pub fn unwrap_key(&self, wrapped: &[u8]) -> Result<[u8; 32]> {
        self.open(wrapped, WRAP_AAD).and_then(|pt| <[u8; 32]>::try_from(pt.as_slice()).ok()).ok_or_else(|| {
            Error::Secret(
                "a wrapped data key cannot be unwrapped: wrong secrets key ($NIGHTFOX_SECRET or the key file) or a \
                 damaged keys/*.wrapped file"
                    .into(),
            )
        })
    }

    /// Decrypts what [`Secrets::encrypt`] produced (under any key this process knows).
    pub fn decrypt(&self, stored: &[u8]) -> Result<Password> {
        if stored.is_empty() {
            return Ok(Password::default());
        }
        self.open(stored, AAD).and_then(|pt| String::from_utf8(pt).ok()).map(Password).ok_or_else(|| {
            Error::Secret(
                "the stored password cannot be decrypted: wrong key ($NIGHTFOX_SECRET or the key file) or a damaged \
                 catalog; set the right key or add the source again"
                    .into(),
            )
        })
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
    fn a_passphrase_goes_through_argon2id_and_older_ciphertexts_still_open() {
        let d = tempfile::tempdir().unwrap();
        let salt = archive_salt(d.path()).unwrap();
        assert_eq!(archive_salt(d.path()).unwrap(), salt, "the archive's salt is kept");
        let k = argon2_key(b"correct horse", &salt).unwrap();
        let s = Secrets {
            source: KeySource::Passphrase,
            primary: Aes256Gcm::new(&Key::<Aes256Gcm>::from(k)),
            salt: Some(salt),
            passphrases: vec![b"correct horse".to_vec(), b"old horse".to_vec()],
            plain: vec![hkdf_cipher(b"correct horse"), hkdf_cipher(b"old horse")],
            key_id: None,
        };
        let ct = s.encrypt(&Password::new("pw")).unwrap();
        assert!(ct.starts_with(MAGIC) && ct[4..20] == salt[..], "names its salt");
        assert!(s.is_current(&ct));
        assert_eq!(s.decrypt(&ct).unwrap().expose(), "pw");
        // Before this version: HKDF of the passphrase, no head.
        let legacy = Secrets::from_material(b"correct horse").encrypt(&Password::new("old")).unwrap();
        assert_eq!(s.decrypt(&legacy).unwrap().expose(), "old");
        assert!(!s.is_current(&legacy), "rotate re-encrypts it");
        // Another seat's salt still opens (the salt travels with the ciphertext).
        let other = argon2_key(b"old horse", &[1; SALT_LEN]).unwrap();
        let mut theirs = MAGIC.to_vec();
        theirs.extend_from_slice(&[1; SALT_LEN]);
        let o = Secrets {
            primary: Aes256Gcm::new(&Key::<Aes256Gcm>::from(other)),
            salt: None,
            ..Secrets::from_material(b"x")
        };
        theirs.extend_from_slice(&o.encrypt(&Password::new("prev")).unwrap());
        assert_eq!(s.decrypt(&theirs).unwrap().expose(), "prev", "under $NIGHTFOX_SECRET_PREVIOUS");
        assert!(Secrets::from_material(b"correct horse").decrypt(&ct).is_err());
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

    #[test]
    fn a_missing_or_other_key_file_is_refused_once_something_is_encrypted_under_it() {
        let d = tempfile::tempdir().unwrap();
        let key = d.path().join(KEY_FILE);
        Secrets::load(d.path()).unwrap();
        fs::remove_file(&key).unwrap();
        Secrets::load(d.path()).expect("nothing encrypted yet: a new key is fine");
        let ct = Secrets::load(d.path()).unwrap().encrypt(&Password::new("pw")).unwrap();
        let kept = fs::read(&key).unwrap();
        fs::remove_file(&key).unwrap();
        let e = Secrets::load(d.path()).err().expect("a missing key file is refused").to_string();
        assert!(e.contains("does not exist") && e.contains("--key-file"), "{e}");
        assert!(!key.exists(), "no new key made in its place");
        write_atomically(&key, &[5u8; 32]).unwrap();
        let e = Secrets::load(d.path()).err().expect("another key is refused").to_string();
        assert!(e.contains("wrong --key-file"), "{e}");
        write_atomically(&key, &kept).unwrap();
        assert_eq!(Secrets::load(d.path()).unwrap().decrypt(&ct).unwrap().expose(), "pw");
    }

    #[test]
    fn a_pending_rotation_encrypts_under_the_key_that_stays_and_is_never_replaced() {
        let d = tempfile::tempdir().unwrap();
        let before = Secrets::load(d.path()).unwrap();
        let old_ct = before.encrypt(&Password::new("old")).unwrap();
        let next = pending_path(&d.path().join(KEY_FILE));
        assert!(write_new_exclusively(&next, &[7u8; 32]).unwrap());
        assert!(!write_new_exclusively(&next, &[9u8; 32]).unwrap(), "a pending key is never replaced");
        assert_eq!(fs::read(&next).unwrap(), vec![7u8; 32]);
        let during = Secrets::load(d.path()).unwrap();
        let ct = during.encrypt(&Password::new("set meanwhile")).unwrap();
        assert_eq!(Secrets::from_material(&[7u8; 32]).decrypt(&ct).unwrap().expose(), "set meanwhile");
        assert_eq!(during.decrypt(&old_ct).unwrap().expose(), "old", "the old key still opens what it sealed");
    }
}
