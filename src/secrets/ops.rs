//! `nightfox secrets migrate` and `nightfox secrets rotate` (see the module doc of [`super`] for the rotation's
//! crash order).

use std::path::Path;

use aes_gcm::aead::Generate;

use super::store::{self, Tier};
use super::{pending_path, write_atomically, KeySource, Secrets, KEYS_DIR};
use crate::catalog::{CatalogConn, CredentialChange};
use crate::error::{Error, IoContext, Result};

/// What a migration or rotation did, one line per source or file, for the CLI to print.
#[derive(Debug, Default)]
pub struct Report {
    pub lines: Vec<String>,
    /// Sources whose password could not be read (left as they were).
    pub failed: usize,
}

/// Moves every source's password to the `to` tier (keyring or catalog): each read from where it is and put in
/// `to`, then the catalog rows changed in one transaction; only after it commits are the old keyring entries
/// deleted (a keyring entry written for a transaction that failed is deleted again).
pub fn migrate(archive_root: &Path, cat: &dyn CatalogConn, to: Tier) -> Result<Report> {
    if to == Tier::Memory {
        return Err(Error::Invalid("secrets migrate moves to the keyring or the catalog".into()));
    }
    let secrets = Secrets::load(archive_root)?;
    let catalog_id = cat.catalog_id()?;
    let mut report = Report::default();
    let mut changes = Vec::new();
    for row in cat.sources()? {
        let Some(from) = Tier::of(&row) else { continue };
        if from == to {
            report.lines.push(format!("source {}: {} already", row.id, to.as_str()));
            continue;
        }
        let pw = match store::get(&|| Secrets::load(archive_root), &row) {
            Ok(pw) => pw,
            Err(e) => {
                report.failed += 1;
                report.lines.push(format!("source {}: left in the {}: {e}", row.id, from.as_str()));
                continue;
            }
        };
        let stored = store::put(&secrets, &catalog_id, row.id, &pw, &[to]).map_err(|e| match to {
            Tier::Keyring => Error::Secret(format!(
                "the OS keyring cannot be reached ({}); nothing was moved",
                super::keyring::why_unavailable()
            )),
            _ => e,
        });
        let stored = match stored {
            Ok(s) => s,
            Err(e) => {
                undo(&changes);
                return Err(e);
            }
        };
        report.lines.push(format!("source {}: {} -> {}", row.id, from.as_str(), to.as_str()));
        changes.push(CredentialChange {
            id: row.id,
            old_password_enc: row.password_enc,
            old_credential_key: row.credential_key,
            password_enc: stored.password_enc,
            credential_key: stored.credential_key,
        });
    }
    if let Err(e) = cat.replace_source_credentials(&changes) {
        undo(&changes);
        return Err(e);
    }
    for c in &changes {
        if c.old_credential_key != c.credential_key {
            if let Some(w) = store::delete(c.old_credential_key.as_deref()) {
                report.lines.push(w);
            }
        }
    }
    Ok(report)
}

/// Deletes the new entries of changes that were not recorded.
fn undo(changes: &[CredentialChange]) {
    for c in changes {
        if c.old_credential_key != c.credential_key {
            store::delete(c.credential_key.as_deref());
        }
    }
}

/// Re-encrypts every password kept in the catalog, and re-wraps every `<archive>/keys/*.wrapped`, under a new
/// key: with a key file, a new random one (finishing an interrupted rotation if `<key file>.new` exists); with
/// `$NIGHTFOX_SECRET`, the passphrase's current key (what was under an earlier version's key or
/// `$NIGHTFOX_SECRET_PREVIOUS` moves under it).
pub fn rotate(archive_root: &Path, cat: &dyn CatalogConn) -> Result<Report> {
    let old = Secrets::load(archive_root)?;
    let mut report = Report::default();
    let (new, key_file) = match old.source().clone() {
        KeySource::Passphrase => (Secrets::load(archive_root)?, None),
        KeySource::KeyFile { path, pending } => {
            let next = pending_path(&path);
            if pending {
                report.lines.push(format!("finishing the rotation that {} was left by", next.display()));
            } else {
                let key = aes_gcm::Key::<aes_gcm::Aes256Gcm>::generate();
                if !super::write_new_exclusively(&next, key.as_slice())? {
                    return Err(Error::Secret(format!(
                        "{} appeared meanwhile: another `nightfox secrets rotate` is running (or was interrupted: \
                         run it again once it has ended)",
                        next.display()
                    )));
                }
            }
            let bytes = super::read_key_file(&next)?;
            (Secrets::from_material(&bytes), Some((path, next)))
        }
    };
    // 2: one transaction, each row only if unchanged since read.
    let mut changes = Vec::new();
    for row in cat.sources()? {
        if row.password_enc.is_empty() {
            continue;
        }
        if key_file.is_none() && new.is_current(&row.password_enc) {
            report.lines.push(format!("source {}: under the current key already", row.id));
            continue;
        }
        let pw = match old.decrypt(&row.password_enc) {
            Ok(pw) => pw,
            Err(e) => {
                report.failed += 1;
                report.lines.push(format!("source {}: left as it is: {e}", row.id));
                continue;
            }
        };
        changes.push(CredentialChange {
            id: row.id,
            old_password_enc: row.password_enc.clone(),
            old_credential_key: row.credential_key.clone(),
            password_enc: new.encrypt(&pw)?,
            credential_key: row.credential_key.clone(),
        });
        report.lines.push(format!("source {}: re-encrypted", row.id));
    }
    if report.failed > 0 && key_file.is_some() {
        return Err(Error::Secret(format!(
            "{} stored password(s) cannot be decrypted with the current key, so the key is not replaced (they \
             would be lost): set them again with `nightfox source set-password`, then rotate",
            report.failed
        )));
    }
    cat.replace_source_credentials(&changes)?;
    // 3: the wrapped data keys.
    let dir = archive_root.join(KEYS_DIR);
    if dir.is_dir() {
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .at(&dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "wrapped"))
            .collect();
        files.sort();
        for f in files {
            let wrapped = std::fs::read(&f).at(&f)?;
            let key = old.unwrap_key(&wrapped)?;
            write_atomically(&f, &new.wrap_key(&key)?)?;
            report.lines.push(format!("{}: re-wrapped", f.display()));
        }
    }
    // 3b: the catalog's copy of the vault key (how seats joining a shared catalog get it), only as read and only
    // when it was under a key this seat knows (another seat's key file is left as it is): interrupted anywhere,
    // the next run still opens it.
    if let Some(hex) = cat.info(crate::catalog::VAULT_KEY_INFO)? {
        use crate::blobs::vault::{from_hex, to_hex};
        match from_hex(&hex).and_then(|w| old.unwrap_key(&w).ok()) {
            Some(key) => {
                let rewrapped = to_hex(&new.wrap_key(&key)?);
                if cat.set_info(crate::catalog::VAULT_KEY_INFO, &rewrapped, Some(&hex))? {
                    report.lines.push("the catalog's vault key: re-wrapped".into());
                } else {
                    report.lines.push("the catalog's vault key: changed meanwhile by another seat, left".into());
                }
            }
            None => report.lines.push("the catalog's vault key: not under this seat's key, left as it is".into()),
        }
    }
    // 4: the new key file replaces the old.
    if let Some((path, next)) = key_file {
        // The archive's key id moves first: until the rename, the pending key it names is known to every process.
        super::record_key_id(&super::key_id_path(archive_root), &super::key_id(&super::read_key_file(&next)?))?;
        std::fs::rename(&next, &path).at(&path)?;
        super::sync_dir(&path)?;
        report.lines.push(format!("{}: a new key", path.display()));
    }
    Ok(report)
}
