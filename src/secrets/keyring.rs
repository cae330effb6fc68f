//! The OS keyring tier (the `keyring` crate: the Secret Service over D-Bus on Linux, behind the `keyring` Cargo
//! feature). Entries are service `nightfox`, user `<catalog id>/source/<source id>`: stable, and one archive's
//! never collide with another's. The keyring's D-Bus calls can block (no answer, a locked collection waiting on
//! a prompt no one sees): each call runs on its own thread and is given up after [`BOUND`]; the first failure to
//! reach the keyring (no session bus, no Secret Service, locked, timed out) marks it unavailable for the rest of
//! the process, so the tier is skipped at once from then on. Never a prompt, never a hang.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::Password;
use crate::error::{Error, Result};

/// The keyring service name of every entry.
pub const SERVICE: &str = "nightfox";

/// How long one keyring call may take before the tier is given up for the process (within 1 s in all).
pub const BOUND: Duration = Duration::from_millis(900);

/// Set once the keyring could not be reached: skipped from then on.
static UNAVAILABLE: AtomicBool = AtomicBool::new(false);

/// What a keyring call found.
#[derive(Debug)]
pub enum Found<T> {
    /// It answered.
    Yes(T),
    /// It answered: no such entry.
    NoEntry,
    /// It could not be reached (why, without a secret); the tier is skipped for the process from now on.
    Unavailable(String),
}

/// True when this build has the keyring tier and it was not found unreachable in this process.
pub fn maybe_available() -> bool {
    cfg!(feature = "keyring") && !UNAVAILABLE.load(Ordering::Relaxed)
}

/// Why the keyring is skipped, for messages.
pub fn why_unavailable() -> &'static str {
    if cfg!(feature = "keyring") {
        "no Secret Service on the session bus, or it is locked"
    } else {
        "this build has no keyring support (the `keyring` Cargo feature)"
    }
}

/// Stores a password under `user`.
pub fn set(user: &str, password: &Password) -> Result<Found<()>> {
    #[cfg(feature = "keyring")]
    {
        let pw = password.clone();
        call(user, move |e| e.set_password(pw.expose()))
    }
    #[cfg(not(feature = "keyring"))]
    {
        let _ = (user, password);
        Ok(Found::Unavailable(why_unavailable().into()))
    }
}

/// The password stored under `user`.
pub fn get(user: &str) -> Result<Found<Password>> {
    #[cfg(feature = "keyring")]
    {
        Ok(match call(user, |e| e.get_password())? {
            Found::Yes(s) => Found::Yes(Password::new(s)),
            Found::NoEntry => Found::NoEntry,
            Found::Unavailable(w) => Found::Unavailable(w),
        })
    }
    #[cfg(not(feature = "keyring"))]
    {
        let _ = user;
        Ok(Found::Unavailable(why_unavailable().into()))
    }
}

/// Deletes the entry `user` (`NoEntry` when there was none).
pub fn delete(user: &str) -> Result<Found<()>> {
    #[cfg(feature = "keyring")]
    {
        call(user, |e| e.delete_credential())
    }
    #[cfg(not(feature = "keyring"))]
    {
        let _ = user;
        Ok(Found::Unavailable(why_unavailable().into()))
    }
}

#[cfg(feature = "keyring")]
fn call<T: Send + 'static>(
    user: &str,
    f: impl FnOnce(&keyring::Entry) -> keyring::Result<T> + Send + 'static,
) -> Result<Found<T>> {
    if UNAVAILABLE.load(Ordering::Relaxed) {
        return Ok(Found::Unavailable(why_unavailable().into()));
    }
    let user = user.to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new().name("keyring".into()).spawn(move || {
        let r = keyring::Entry::new(SERVICE, &user).and_then(|e| f(&e));
        let _ = tx.send(r);
    });
    if spawned.is_err() {
        return Ok(unavailable("cannot start a thread for the keyring".into()));
    }
    match rx.recv_timeout(BOUND) {
        Ok(Ok(v)) => Ok(Found::Yes(v)),
        Ok(Err(keyring::Error::NoEntry)) => Ok(Found::NoEntry),
        Ok(Err(keyring::Error::PlatformFailure(e))) => Ok(unavailable(format!("the keyring failed: {e}"))),
        Ok(Err(keyring::Error::NoStorageAccess(e))) => Ok(unavailable(format!("the keyring cannot be reached: {e}"))),
        Ok(Err(e)) => Err(Error::Secret(format!("the OS keyring: {e}"))),
        // The thread stays blocked in its D-Bus call; it goes with the process.
        Err(_) => Ok(unavailable(format!("the keyring did not answer within {} ms", BOUND.as_millis()))),
    }
}

/// Marks the keyring unavailable for the process and says why (at debug level: it is expected on servers).
#[cfg(feature = "keyring")]
fn unavailable<T>(why: String) -> Found<T> {
    UNAVAILABLE.store(true, Ordering::Relaxed);
    tracing::debug!(reason = %why, "the OS keyring is skipped for this process");
    Found::Unavailable(why)
}
