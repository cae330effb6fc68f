//! The OS keyring tier (the `keyring` crate: the Secret Service over D-Bus on Linux, behind the `keyring` Cargo
//! feature). Entries are service `nightfox`, user `<catalog id>/source/<source id>`: stable, and one archive's
//! never collide with another's. The keyring's D-Bus calls can block (no answer, a locked collection waiting on
//! a prompt no one sees): each call runs on its own thread and is given up after [`BOUND`]; a failure to reach the
//! keyring (no session bus, no Secret Service, locked, timed out) marks it unavailable for [`RETRY`], so the tier
//! is skipped at once meanwhile, and tried again after (a daemon that met one slow call keeps its keyring), but
//! never while a call given up earlier is still blocked (no pile of stuck threads). Never a prompt, never a hang.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::Password;
use crate::error::{Error, Result};

/// The keyring service name of every entry.
pub const SERVICE: &str = "nightfox";

/// How long one keyring call may take before the tier is given up for [`RETRY`] (within 1 s in all).
pub const BOUND: Duration = Duration::from_millis(900);

/// How long the keyring is skipped after it could not be reached.
pub const RETRY: Duration = Duration::from_secs(60);

/// Until when the keyring is skipped (it could not be reached).
static SKIP_UNTIL: Mutex<Option<Instant>> = Mutex::new(None);

/// True while the thread of a call that was given up is still blocked in it.
static STUCK: AtomicBool = AtomicBool::new(false);

/// True while the keyring is skipped.
fn skipped() -> bool {
    STUCK.load(Ordering::Relaxed) || SKIP_UNTIL.lock().is_some_and(|t| Instant::now() < t)
}

/// What a keyring call found.
#[derive(Debug)]
pub enum Found<T> {
    /// It answered.
    Yes(T),
    /// It answered: no such entry.
    NoEntry,
    /// It could not be reached (why, without a secret); the tier is skipped for [`RETRY`].
    Unavailable(String),
}

/// True when this build has the keyring tier and it was not found unreachable in the last [`RETRY`].
pub fn maybe_available() -> bool {
    cfg!(feature = "keyring") && !skipped()
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
    if skipped() {
        return Ok(Found::Unavailable(why_unavailable().into()));
    }
    let user = user.to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    let given_up = Arc::new(AtomicBool::new(false));
    let mine = given_up.clone();
    let spawned = std::thread::Builder::new().name("keyring".into()).spawn(move || {
        let r = keyring::Entry::new(SERVICE, &user).and_then(|e| f(&e));
        let _ = tx.send(r);
        // Sent first: a caller that gave up before this load sees it cleared here, one that gives up after finds
        // the answer waiting.
        if mine.load(Ordering::SeqCst) {
            STUCK.store(false, Ordering::SeqCst);
        }
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
        // The thread stays blocked in its D-Bus call (until it returns, or with the process); no other call
        // starts meanwhile.
        Err(_) => {
            STUCK.store(true, Ordering::SeqCst);
            given_up.store(true, Ordering::SeqCst);
            if rx.try_recv().is_ok() {
                // It returned just now, before it could see it was given up.
                STUCK.store(false, Ordering::SeqCst);
            }
            Ok(unavailable(format!("the keyring did not answer within {} ms", BOUND.as_millis())))
        }
    }
}

/// Marks the keyring unavailable for [`RETRY`] and says why (at debug level: it is expected on servers).
#[cfg(feature = "keyring")]
fn unavailable<T>(why: String) -> Found<T> {
    *SKIP_UNTIL.lock() = Some(Instant::now() + RETRY);
    tracing::debug!(reason = %why, "the OS keyring is skipped for {} s", RETRY.as_secs());
    Found::Unavailable(why)
}

#[cfg(all(test, feature = "keyring"))]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_keyring_is_skipped_for_a_while_then_tried_again_but_never_while_a_call_is_stuck() {
        *SKIP_UNTIL.lock() = Some(Instant::now() + RETRY);
        assert!(!maybe_available(), "skipped right after a failure");
        *SKIP_UNTIL.lock() = Some(Instant::now() - Duration::from_millis(1));
        assert!(maybe_available(), "tried again once RETRY has passed");
        STUCK.store(true, Ordering::SeqCst);
        assert!(!maybe_available(), "not while an earlier call is still blocked");
        STUCK.store(false, Ordering::SeqCst);
        *SKIP_UNTIL.lock() = None;
    }
}
