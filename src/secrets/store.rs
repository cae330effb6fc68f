//! The credential tiers, tried in order for every store, get and delete, stopping at the first that works:
//! 1. **the OS keyring** ([`super::keyring`]): the catalog keeps only a reference, `credential_key =
//!    keyring:HOST:CATALOG-ID/source/ID` (HOST: the seat whose keyring holds it);
//! 2. **the encrypted catalog** (`password_enc`, [`super::Secrets`]), `credential_key` NULL;
//! 3. **memory**, only with `--ephemeral-secrets` (tests, demos): `credential_key = memory:HOST:PID/source/ID`,
//!    nothing persistent is written, and the password goes with the process.
//!
//! New passwords go to the keyring first when the catalog is SQLite (one machine). A Postgres catalog is shared
//! by seats on several machines while a keyring belongs to one machine, so there the default stays the catalog
//! (every seat reads it with the shared `$NIGHTFOX_SECRET`); `secrets migrate --to keyring` may still move them,
//! and a seat that cannot read another seat's keyring says which seat holds the password.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use serde::Serialize;

use super::keyring::{self as kr, Found};
use super::{Password, Secrets};
use crate::catalog::{CredentialChange, NetworkSource};
use crate::error::{Error, Result};

/// Where a source's password lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Keyring,
    Catalog,
    Memory,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Keyring => "keyring",
            Tier::Catalog => "catalog",
            Tier::Memory => "memory",
        }
    }

    pub fn parse(s: &str) -> Result<Tier> {
        match s {
            "keyring" => Ok(Tier::Keyring),
            "catalog" => Ok(Tier::Catalog),
            "memory" => Ok(Tier::Memory),
            other => Err(Error::Invalid(format!("{other:?} is not a secrets tier (keyring, catalog)"))),
        }
    }

    /// The tier holding a source's password; None when it has none.
    pub fn of(row: &NetworkSource) -> Option<Tier> {
        match row.credential_key.as_deref().map(Reference::parse) {
            Some(Some(r)) => Some(r.tier),
            // A reference this build cannot read: shown as the catalog's (whose error says more).
            Some(None) => Some(Tier::Catalog),
            None if row.password_enc.is_empty() => None,
            None => Some(Tier::Catalog),
        }
    }
}

/// `--ephemeral-secrets`: new passwords are kept in this process's memory only.
static EPHEMERAL: AtomicBool = AtomicBool::new(false);

/// Passwords of the memory tier, by reference.
static MEMORY: Mutex<Option<HashMap<String, Password>>> = Mutex::new(None);

/// Turns the memory tier on (`--ephemeral-secrets`) for this process.
pub fn set_ephemeral(on: bool) {
    EPHEMERAL.store(on, Ordering::Relaxed);
}

pub fn ephemeral() -> bool {
    EPHEMERAL.load(Ordering::Relaxed)
}

/// A parsed `credential_key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    pub tier: Tier,
    /// The machine whose keyring (or process) holds it.
    pub host: String,
    /// The keyring user (`CATALOG-ID/source/ID`) or the memory key (`PID/source/ID`).
    pub name: String,
}

impl Reference {
    pub fn parse(s: &str) -> Option<Reference> {
        let (tier, rest) = s.split_once(':')?;
        let tier = match tier {
            "keyring" => Tier::Keyring,
            "memory" => Tier::Memory,
            _ => return None,
        };
        let (host, name) = rest.split_once(':')?;
        Some(Reference { tier, host: host.into(), name: name.into() })
    }

    fn render(&self) -> String {
        format!("{}:{}:{}", self.tier.as_str(), self.host, self.name)
    }
}

/// Where a password was put: what the catalog row keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    pub password_enc: Vec<u8>,
    pub credential_key: Option<String>,
    /// None: no password.
    pub tier: Option<Tier>,
}

/// The tiers a new password is tried in: memory alone with `--ephemeral-secrets`; else the keyring, then the
/// catalog, for a SQLite catalog; the catalog alone for a shared (Postgres) one.
pub fn default_tiers(shared_catalog: bool) -> Vec<Tier> {
    if ephemeral() {
        vec![Tier::Memory]
    } else if shared_catalog {
        vec![Tier::Catalog]
    } else {
        vec![Tier::Keyring, Tier::Catalog]
    }
}

/// Puts source `id`'s password in the first of `tiers` that works (an unavailable keyring is skipped at once).
/// Writes nothing to the catalog: the caller records the returned [`Stored`].
pub fn put(secrets: &Secrets, catalog_id: &str, id: i64, password: &Password, tiers: &[Tier]) -> Result<Stored> {
    if password.is_empty() {
        return Ok(Stored { password_enc: Vec::new(), credential_key: None, tier: None });
    }
    let mut skipped = Vec::new();
    for &tier in tiers {
        match tier {
            Tier::Keyring => {
                let r = Reference { tier, host: crate::jobs::hostname(), name: format!("{catalog_id}/source/{id}") };
                match kr::set(&r.name, password)? {
                    Found::Yes(()) | Found::NoEntry => {
                        return Ok(Stored {
                            password_enc: Vec::new(),
                            credential_key: Some(r.render()),
                            tier: Some(tier),
                        })
                    }
                    Found::Unavailable(why) => skipped.push(format!("keyring: {why}")),
                }
            }
            Tier::Catalog => {
                return Ok(Stored { password_enc: secrets.encrypt(password)?, credential_key: None, tier: Some(tier) })
            }
            Tier::Memory => {
                let r = Reference {
                    tier,
                    host: crate::jobs::hostname(),
                    name: format!("{}/source/{id}", std::process::id()),
                };
                MEMORY
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_or_insert_with(HashMap::new)
                    .insert(r.render(), password.clone());
                return Ok(Stored { password_enc: Vec::new(), credential_key: Some(r.render()), tier: Some(tier) });
            }
        }
    }
    Err(Error::Secret(format!("no secrets tier could keep the password of source {id} ({})", skipped.join("; "))))
}

/// Source `row`'s password, from the tier its row names: the keyring (falling through to a catalog ciphertext
/// kept beside it, if any), the catalog, or this process's memory.
pub fn get(secrets: &dyn Fn() -> Result<Secrets>, row: &NetworkSource) -> Result<Password> {
    let id = row.id;
    let Some(key) = row.credential_key.as_deref() else {
        return if row.password_enc.is_empty() {
            Ok(Password::default())
        } else {
            secrets()?.decrypt(&row.password_enc)
        };
    };
    let Some(r) = Reference::parse(key) else {
        return Err(Error::Secret(format!(
            "source {id}'s password is kept where this build cannot read it ({key:?}); set it again with `nightfox \
             source set-password {id}`"
        )));
    };
    match r.tier {
        Tier::Keyring => {
            let here = crate::jobs::hostname();
            let other_seat = if r.host != here {
                format!(
                    " (the keyring of seat {}, not of this one, {here}: run `nightfox secrets migrate --to catalog` on \
                     {} so that every seat can read it)",
                    r.host, r.host
                )
            } else {
                String::new()
            };
            match kr::get(&r.name)? {
                Found::Yes(pw) => Ok(pw),
                _ if !row.password_enc.is_empty() => secrets()?.decrypt(&row.password_enc),
                Found::NoEntry => Err(Error::Secret(format!(
                    "source {id}'s password is not in this OS keyring (entry {}/{}){other_seat}; set it again with \
                     `nightfox source set-password {id}`",
                    kr::SERVICE,
                    r.name
                ))),
                Found::Unavailable(why) => Err(Error::Secret(format!(
                    "source {id}'s password is in the OS keyring of seat {} (entry {}/{}), which this process cannot \
                     reach ({why}){other_seat}",
                    r.host,
                    kr::SERVICE,
                    r.name
                ))),
            }
        }
        Tier::Memory => {
            MEMORY.lock().unwrap_or_else(|e| e.into_inner()).as_ref().and_then(|m| m.get(key).cloned()).ok_or_else(
                || {
                    Error::Secret(format!(
                    "source {id}'s password was kept in memory only (--ephemeral-secrets, process {}) and went with \
                     that process; set it again with `nightfox source set-password {id}`",
                    r.name.split('/').next().unwrap_or("?")
                ))
                },
            )
        }
        Tier::Catalog => secrets()?.decrypt(&row.password_enc),
    }
}

/// Deletes what a `credential_key` refers to (nothing for the catalog's own). Returns a warning to show when the
/// entry could not be deleted (it stays in that keyring), never an error: the row goes regardless.
pub fn delete(credential_key: Option<&str>) -> Option<String> {
    let r = Reference::parse(credential_key?)?;
    match r.tier {
        Tier::Memory => {
            if let Some(m) = MEMORY.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                m.remove(&r.render());
            }
            None
        }
        Tier::Keyring => match kr::delete(&r.name) {
            Ok(Found::Yes(())) | Ok(Found::NoEntry) => None,
            Ok(Found::Unavailable(why)) => Some(format!(
                "the keyring entry {}/{} stays in the OS keyring of seat {} ({why}): delete it there (secret-tool \
                 clear service {} username {})",
                kr::SERVICE,
                r.name,
                r.host,
                kr::SERVICE,
                r.name
            )),
            Err(e) => Some(e.to_string()),
        },
        Tier::Catalog => None,
    }
}

/// Source `row`'s password, for a process that reads it (the daemon, an import, `source test`).
pub fn password_of(archive_root: &Path, row: &NetworkSource) -> Result<Password> {
    get(&|| Secrets::load(archive_root), row)
}

/// Replaces source `id`'s password, put in the first of the default tiers that works; the old one (in another
/// tier) is deleted once the catalog records the new. Returns the tier (None for an empty password) and a
/// warning to show, if any.
pub fn set_password(
    archive_root: &Path,
    cat: &dyn crate::catalog::CatalogConn,
    shared_catalog: bool,
    id: i64,
    password: &Password,
) -> Result<(Option<Tier>, Option<String>)> {
    let row = cat.source(id)?;
    let secrets = Secrets::load(archive_root)?;
    let stored = put(&secrets, &cat.catalog_id()?, id, password, &default_tiers(shared_catalog))?;
    let change = CredentialChange {
        id,
        old_password_enc: row.password_enc.clone(),
        old_credential_key: row.credential_key.clone(),
        password_enc: stored.password_enc.clone(),
        credential_key: stored.credential_key.clone(),
    };
    if let Err(e) = cat.replace_source_credentials(&[change]) {
        if stored.credential_key != row.credential_key {
            delete(stored.credential_key.as_deref());
        }
        return Err(e);
    }
    let warning =
        if row.credential_key != stored.credential_key { delete(row.credential_key.as_deref()) } else { None };
    Ok((stored.tier, warning))
}
