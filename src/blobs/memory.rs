//! An in-memory blob store with fault injection, for tests and simulations: pipeline decisions (pause on a full
//! store, fail an item, resume) are checked without a disk under the blobs, and the deferred-durability contract
//! is checked by [`MemoryBlobs::crash`], which forgets every landing not yet made durable by `sync`.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::staging::remove_if_exists;
use super::{BlobReader, BlobStore, Durability, HashHex};
use crate::error::{Error, IoContext, Result};

/// A fault to inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The store is full (`ENOSPC`): a pipeline pauses its session.
    NoSpace,
    /// The medium fails (`EIO`).
    Io,
    /// A network hiccup (`ETIMEDOUT`): transient, worth a retry.
    Timeout,
}

impl Fault {
    fn error(self, what: &str) -> Error {
        let errno = match self {
            Fault::NoSpace => libc::ENOSPC,
            Fault::Io => libc::EIO,
            Fault::Timeout => libc::ETIMEDOUT,
        };
        Error::io(format!("memory:{what}"), io::Error::from_raw_os_error(errno))
    }
}

#[derive(Default)]
struct Faults {
    /// Fail the next `n` landings (and replacements) with the fault.
    land: Option<(Fault, u32)>,
    /// Fail every read and re-hash with the fault.
    read: Option<Fault>,
    /// Sleep this long in every call (a slow store).
    delay: Duration,
}

/// Blobs in memory. Cheap to clone: clones share the same blobs and faults.
#[derive(Clone, Default)]
pub struct MemoryBlobs {
    blobs: Arc<Mutex<HashMap<String, Arc<Vec<u8>>>>>,
    unsynced: Arc<Mutex<HashSet<String>>>,
    faults: Arc<Mutex<Faults>>,
    landings: Arc<Mutex<u64>>,
}

impl MemoryBlobs {
    pub fn new() -> MemoryBlobs {
        MemoryBlobs::default()
    }

    /// Fails the next `times` landings with `fault`.
    pub fn fail_lands(&self, fault: Fault, times: u32) {
        self.faults.lock().land = Some((fault, times));
    }

    /// Fails every read, open and re-hash with `fault` (`None` heals).
    pub fn fail_reads(&self, fault: Option<Fault>) {
        self.faults.lock().read = fault;
    }

    /// Makes every call take at least `delay`.
    pub fn set_delay(&self, delay: Duration) {
        self.faults.lock().delay = delay;
    }

    /// Removes every injected fault and delay.
    pub fn clear_faults(&self) {
        *self.faults.lock() = Faults::default();
    }

    /// Flips one byte of a stored blob (rot), as `verify` must find.
    pub fn corrupt(&self, hash: &str) {
        let mut blobs = self.blobs.lock();
        if let Some(b) = blobs.get_mut(hash) {
            let mut v = b.as_ref().clone();
            if let Some(x) = v.get_mut(0) {
                *x ^= 0x01;
            }
            *b = Arc::new(v);
        }
    }

    /// Forgets every deferred landing not made durable by `sync` since, as a power cut would.
    pub fn crash(&self) {
        let mut unsynced = self.unsynced.lock();
        let mut blobs = self.blobs.lock();
        for h in unsynced.drain() {
            blobs.remove(&h);
        }
    }

    /// How many blobs are stored.
    pub fn count(&self) -> usize {
        self.blobs.lock().len()
    }

    /// How many landings succeeded (including those of blobs already stored).
    pub fn landings(&self) -> u64 {
        *self.landings.lock()
    }

    fn delay(&self) {
        let d = self.faults.lock().delay;
        if !d.is_zero() {
            std::thread::sleep(d);
        }
    }

    fn land_fault(&self) -> Option<Fault> {
        let mut f = self.faults.lock();
        let (fault, left) = f.land?;
        f.land = (left > 1).then_some((fault, left - 1));
        Some(fault)
    }

    fn read_fault(&self, hash: &str) -> Result<()> {
        match self.faults.lock().read {
            Some(f) => Err(f.error(hash)),
            None => Ok(()),
        }
    }

    fn blob(&self, hash: &str) -> Result<Arc<Vec<u8>>> {
        self.blobs.lock().get(hash).cloned().ok_or_else(|| {
            Error::io(format!("memory:{hash}"), io::Error::new(io::ErrorKind::NotFound, "blob not stored"))
        })
    }

    fn take(&self, staged: &Path, hash: &str, durability: Durability, replace: bool) -> Result<()> {
        self.delay();
        if let Some(f) = self.land_fault() {
            return Err(f.error(hash));
        }
        if replace || !self.blobs.lock().contains_key(hash) {
            let bytes = std::fs::read(staged).at(staged)?;
            self.blobs.lock().insert(hash.to_string(), Arc::new(bytes));
            if durability == Durability::Deferred {
                self.unsynced.lock().insert(hash.to_string());
            } else {
                self.unsynced.lock().remove(hash);
            }
        }
        remove_if_exists(staged)?;
        *self.landings.lock() += 1;
        Ok(())
    }
}

impl BlobStore for MemoryBlobs {
    fn describe(&self) -> String {
        "memory:".into()
    }

    fn contains(&self, hash: &str) -> Result<bool> {
        self.delay();
        Ok(self.blobs.lock().contains_key(hash))
    }

    fn size(&self, hash: &str) -> Result<Option<u64>> {
        self.delay();
        Ok(self.blobs.lock().get(hash).map(|b| b.len() as u64))
    }

    fn land(&self, staged: &Path, hash: &str, durability: Durability) -> Result<()> {
        self.take(staged, hash, durability, false)
    }

    fn replace(&self, staged: &Path, hash: &str) -> Result<()> {
        self.take(staged, hash, Durability::Now, true)
    }

    fn remove(&self, hash: &str) -> Result<()> {
        self.delay();
        self.blobs.lock().remove(hash);
        self.unsynced.lock().remove(hash);
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        self.delay();
        self.unsynced.lock().clear();
        Ok(())
    }

    fn open(&self, hash: &str) -> Result<Box<dyn BlobReader>> {
        self.delay();
        self.read_fault(hash)?;
        Ok(Box::new(MemoryReader { bytes: self.blob(hash)? }))
    }

    fn rehash(&self, hash: &str) -> Result<HashHex> {
        self.delay();
        self.read_fault(hash)?;
        Ok(blake3::hash(&self.blob(hash)?).to_hex().to_string())
    }
}

struct MemoryReader {
    bytes: Arc<Vec<u8>>,
}

impl BlobReader for MemoryReader {
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(self.bytes.len());
        let n = buf.len().min(self.bytes.len() - start);
        buf[..n].copy_from_slice(&self.bytes[start..start + n]);
        Ok(n)
    }
}
