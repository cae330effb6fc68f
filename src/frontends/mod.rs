//! Front ends: what serves the filesystem core ([`crate::fs::ArchiveFs`]) to clients. Each only translates
//! requests and replies of its protocol (`fuse`: the kernel mount; `nfs`: an NFSv3 export; `http`: the dashboard,
//! which serves the daemon's state and buttons rather than files) and keeps what is specific to it (open-file
//! tables, kernel caches); routing, permissions, EROFS and the change feed are the core's. [`serve`] runs one or
//! more of them over one `ArchiveFs` until SIGINT/SIGTERM or until one ends by itself (an external unmount).

pub mod fuse;
pub mod http;
#[cfg(feature = "nfs-export")]
pub mod nfs;

use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use tracing::{info, warn};

use crate::archive::Archive;
use crate::error::{Error, Result};
use crate::fs::{ArchiveFs, FsOptions};

/// The stop request shared by every front end of one [`serve`]: set once (a signal, or a front end that ended),
/// waited on without polling.
#[derive(Default)]
pub struct Stop {
    set: Mutex<bool>,
    cv: Condvar,
}

impl Stop {
    /// Asks every front end to stop; wakes every waiter.
    pub fn stop(&self) {
        *self.set.lock() = true;
        self.cv.notify_all();
    }

    /// True once a stop was asked.
    pub fn is_stopped(&self) -> bool {
        *self.set.lock()
    }

    /// Blocks until a stop is asked.
    pub fn wait(&self) {
        let mut set = self.set.lock();
        while !*set {
            self.cv.wait(&mut set);
        }
    }
}

/// A way of serving the archive's filesystem.
pub trait FrontEnd: Send {
    /// What it serves on, for messages: `fuse:/mnt/nightfox`, `nfs:127.0.0.1:2049`.
    fn describe(&self) -> String;

    /// Checks made before the archive is opened (a mount point that exists; a stale mount cleaned up).
    fn check(&self) -> Result<()> {
        Ok(())
    }

    /// Starts serving `fs` (mounts, binds) without blocking. An error here means nothing was served.
    fn start(&mut self, fs: &Arc<ArchiveFs>) -> Result<()>;

    /// Serves until `stop` is set or the front end ends by itself (an external unmount).
    fn run(self: Box<Self>, fs: Arc<ArchiveFs>, stop: Arc<Stop>) -> Result<()>;
}

/// Serves the archive through `front_ends` until SIGINT/SIGTERM, or until one of them ends by itself (then the
/// others are stopped too).
///
/// `started` runs once every front end has started (mounted, bound), before any runs; never when one fails to
/// start. `unmounted` runs once every front end has ended and `/ingest` has finished its commits, before the rest is torn
/// down (threads joined, catalogs closed, which can wait on the disk): the caller releases the archive's daemon
/// lock there, so that `fusermount3 -u M && nightfox mount M` finds the archive free. It is dropped unrun when a
/// front end fails to start.
pub fn serve(
    archive: Archive,
    front_ends: Vec<Box<dyn FrontEnd>>,
    started: impl FnOnce(),
    unmounted: impl FnOnce(),
) -> Result<()> {
    serve_with(archive, FsOptions::default(), front_ends, started, unmounted)
}

/// [`serve`] with options of the filesystem core (verified reads).
pub fn serve_with(
    archive: Archive,
    options: FsOptions,
    mut front_ends: Vec<Box<dyn FrontEnd>>,
    started: impl FnOnce(),
    unmounted: impl FnOnce(),
) -> Result<()> {
    if front_ends.is_empty() {
        return Err(Error::Invalid("nothing to serve the archive on".into()));
    }
    for f in &front_ends {
        f.check()?;
    }
    let fs = Arc::new(ArchiveFs::with_options(&archive, options)?);
    fs.start();
    for f in front_ends.iter_mut() {
        f.start(&fs)?;
    }
    started();
    let stop = Arc::new(Stop::default());
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM])
        .map_err(|e| Error::Invalid(format!("cannot install the handler of SIGINT/SIGTERM: {e}")))?;
    let sig_handle = signals.handle();
    let sig_stop = Arc::clone(&stop);
    let sig_thread = std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            info!(signal = sig, "unmounting");
            sig_stop.stop();
        }
    });
    // The first front end runs on this thread (a FUSE session wants the main thread as before), any others
    // beside it; whichever ends first stops the rest.
    let first = front_ends.remove(0);
    let others: Vec<_> = front_ends
        .into_iter()
        .map(|f| {
            let (fs, stop) = (Arc::clone(&fs), Arc::clone(&stop));
            let name = f.describe();
            let handle = std::thread::spawn(move || {
                let r = f.run(fs, Arc::clone(&stop));
                stop.stop();
                r
            });
            (name, handle)
        })
        .collect();
    let mut result = first.run(Arc::clone(&fs), Arc::clone(&stop));
    stop.stop();
    for (name, h) in others {
        let r = h.join().unwrap_or_else(|_| Err(Error::Invalid(format!("{name} panicked"))));
        if let Err(e) = &r {
            warn!("{name}: {e}");
        }
        if result.is_ok() {
            result = r;
        }
    }
    // Everything is unmounted. Commits in flight finish first (the next daemon discards staging it finds), then
    // the archive is free for the next daemon while this one winds down.
    fs.shutdown();
    unmounted();
    sig_handle.close();
    let _ = sig_thread.join();
    fs.close();
    result
}
