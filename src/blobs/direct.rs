//! Direct I/O and the read/hash/write pipeline under the store's copies and re-hashes. Reading a source and
//! writing a copy through the page cache costs two memory copies per byte on the CPU; with `O_DIRECT` the device
//! moves the bytes into and out of our (page-aligned) buffers and the CPU only hashes them. It also makes the
//! validating re-read come from the medium by construction, not just after `posix_fadvise(DONTNEED)`. Every use
//! falls back to buffered I/O where a filesystem refuses `O_DIRECT` (or an offset or length is not aligned), so
//! behaviour never depends on it, only speed. [`pipeline`] overlaps the reading of one chunk with the hashing and
//! writing of the one before.

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Read};
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::sync::mpsc;

use super::staging::COPY_CHUNK;

/// Alignment of buffers, offsets and lengths for direct I/O (the page size; enough for any logical block size).
pub const ALIGN: usize = 4096;

/// Buffers kept per thread between files.
const POOL_MAX: usize = 3;

/// Chunks in flight between the two stages of a [`pipeline`].
const DEPTH: usize = 2;

/// A [`COPY_CHUNK`]-sized heap buffer whose bytes start on an [`ALIGN`] boundary.
pub struct AlignedBuf {
    raw: Vec<u8>,
    off: usize,
}

impl AlignedBuf {
    fn new() -> AlignedBuf {
        let raw = vec![0u8; COPY_CHUNK + ALIGN];
        let off = raw.as_ptr().align_offset(ALIGN);
        AlignedBuf { raw, off }
    }
}

impl Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.raw[self.off..self.off + COPY_CHUNK]
    }
}

impl DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.raw[self.off..self.off + COPY_CHUNK]
    }
}

thread_local! {
    /// Buffers reused by this thread: allocating and zeroing 4 MiB per file dominated small-file imports.
    static POOL: RefCell<Vec<AlignedBuf>> = const { RefCell::new(Vec::new()) };
}

/// A buffer from this thread's pool, or a new one.
pub fn take_buf() -> AlignedBuf {
    POOL.with(|p| p.borrow_mut().pop()).unwrap_or_else(AlignedBuf::new)
}

/// Returns a buffer to this thread's pool (dropped when the pool is full).
pub fn give_buf(b: AlignedBuf) {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < POOL_MAX {
            p.push(b);
        }
    });
}

/// Turns `O_DIRECT` on or off for an open file. Returns whether it is now on (false when the filesystem refuses).
pub fn set_direct(f: &File, on: bool) -> bool {
    use rustix::fs::OFlags;
    let Ok(flags) = rustix::fs::fcntl_getfl(f) else { return false };
    let want = if on { flags | OFlags::DIRECT } else { flags - OFlags::DIRECT };
    rustix::fs::fcntl_setfl(f, want).is_ok() && on
}

/// Opens a file for reading: with `O_DIRECT` when it is at least a chunk long and the filesystem allows, else
/// buffered (a small file is one read either way, and buffered reads can be started ahead, see
/// [`super::staging::read_ahead`]).
pub fn open_read(path: &Path) -> io::Result<DirectReader> {
    let file = File::open(path)?;
    let direct = reads_direct(file.metadata()?.len()) && set_direct(&file, true);
    Ok(DirectReader { file, direct })
}

/// Whether [`open_read`] reads a file of this length with `O_DIRECT` (where allowed): at least a chunk.
pub fn reads_direct(len: u64) -> bool {
    len >= COPY_CHUNK as u64
}

/// A file read with `O_DIRECT` while every read is aligned, and buffered from the first one that is not (the
/// last, short chunk of a file) or that the filesystem refuses.
pub struct DirectReader {
    file: File,
    direct: bool,
}

impl DirectReader {
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Reads buffered from now on (before seeking to an unaligned offset, say).
    pub fn buffered(&mut self) {
        if self.direct {
            set_direct(&self.file, false);
            self.direct = false;
        }
    }
}

impl Read for DirectReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.direct && (buf.as_ptr() as usize % ALIGN != 0 || buf.len() % ALIGN != 0) {
            self.buffered();
        }
        match self.file.read(buf) {
            Err(e) if self.direct && e.raw_os_error() == Some(libc::EINVAL) => {
                self.buffered();
                self.file.read(buf)
            }
            r => r,
        }
    }
}

impl std::io::Seek for DirectReader {
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        let at = self.file.seek(pos)?;
        if at % ALIGN as u64 != 0 {
            self.buffered();
        }
        Ok(at)
    }
}

/// Runs `fill` on this thread and `drain` on a helper, over a few chunk buffers: `fill` puts the next chunk into a
/// buffer and returns its length (0 at the end; short only at the end), `drain` takes the filled chunks in order.
/// The first error from either side ends both. Input that fits in one chunk is drained here, with no helper.
pub fn pipeline<E: Send>(
    mut fill: impl FnMut(&mut [u8]) -> Result<usize, E>,
    mut drain: impl FnMut(&[u8]) -> Result<(), E> + Send,
) -> Result<(), E> {
    let mut buf = take_buf();
    let n = match fill(&mut buf) {
        Ok(n) => n,
        Err(e) => {
            give_buf(buf);
            return Err(e);
        }
    };
    if n < buf.len() {
        let r = if n == 0 { Ok(()) } else { drain(&buf[..n]) };
        give_buf(buf);
        return r;
    }
    std::thread::scope(|s| {
        let (full_tx, full_rx) = mpsc::sync_channel::<(AlignedBuf, usize)>(DEPTH);
        let (empty_tx, empty_rx) = mpsc::channel::<AlignedBuf>();
        let helper = s.spawn(move || -> Result<(), E> {
            for (b, n) in full_rx {
                let r = drain(&b[..n]);
                let _ = empty_tx.send(b);
                r?;
            }
            Ok(())
        });
        let mut allocated = 1;
        let mut pending = Some((buf, n));
        let mut result = Ok(());
        while let Some(chunk) = pending.take() {
            if full_tx.send(chunk).is_err() {
                break; // the helper stopped on an error; it is returned below
            }
            let mut b = match empty_rx.try_recv() {
                Ok(b) => b,
                Err(_) if allocated <= DEPTH => {
                    allocated += 1;
                    take_buf()
                }
                Err(_) => match empty_rx.recv() {
                    Ok(b) => b,
                    Err(_) => break,
                },
            };
            match fill(&mut b) {
                Ok(0) => give_buf(b),
                Ok(n) => pending = Some((b, n)),
                Err(e) => {
                    give_buf(b);
                    result = Err(e);
                }
            }
        }
        drop(full_tx);
        let drained = match helper.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        for b in empty_rx.try_iter() {
            give_buf(b);
        }
        result.and(drained)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_aligned() {
        let b = take_buf();
        assert_eq!(b.as_ptr() as usize % ALIGN, 0);
        assert_eq!(b.len(), COPY_CHUNK);
        give_buf(b);
    }

    #[test]
    fn the_pipeline_keeps_order_and_reports_both_sides_errors() {
        for chunks in [0usize, 1, 2, 7] {
            let mut made = 0usize;
            let mut seen = Vec::new();
            let r: Result<(), String> = pipeline(
                |b| {
                    if made == chunks {
                        return Ok(0);
                    }
                    b.fill(made as u8);
                    made += 1;
                    Ok(b.len())
                },
                |c| {
                    seen.push(c[0]);
                    Ok(())
                },
            );
            assert!(r.is_ok());
            assert_eq!(seen, (0..chunks as u8).collect::<Vec<_>>());
        }
        let mut made = 0;
        let r: Result<(), String> = pipeline(
            |b| {
                made += 1;
                if made == 4 {
                    return Err("fill failed".into());
                }
                Ok(b.len())
            },
            |_| Ok(()),
        );
        assert_eq!(r, Err("fill failed".to_string()));
        let r: Result<(), String> = pipeline(|b| Ok(b.len()), |_| Err("drain failed".into()));
        assert_eq!(r, Err("drain failed".to_string()));
    }

    #[test]
    fn a_direct_reader_reads_a_file_whose_length_is_not_aligned() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let data: Vec<u8> = (0..COPY_CHUNK + 12345).map(|i| (i % 251) as u8).collect();
        std::fs::write(&p, &data).unwrap();
        let mut r = open_read(&p).unwrap();
        assert!(r.direct || !set_direct(r.file(), true), "a file of more than a chunk is read direct where allowed");
        let mut out = Vec::new();
        let mut b = take_buf();
        loop {
            let n = super::super::staging::read_full(&mut r, &mut b).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&b[..n]);
        }
        assert_eq!(out, data);
    }
}
