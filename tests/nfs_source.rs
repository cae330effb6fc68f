//! The NFSv3 source against real servers on 127.0.0.1: `nfs3_server`'s MemFs in-process, and a `cargo-nfs3-server`
//! process (killed, stopped and restarted by pid). Every wait is bounded.

mod common;

use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::nfsd::{MemServer, NfsProcess};
use nightfox::error::Error;
use nightfox::sources::local::LocalSource;
use nightfox::sources::nfs::{NfsConfig, NfsSource};
use nightfox::sources::{EntryKind, Source, SourceEntry};

fn source(port: u16, export: &str, timeout: Duration) -> NfsSource {
    NfsSource::new(NfsConfig { host: "127.0.0.1".into(), port, mount_port: None, export: export.into(), timeout })
        .expect("NfsSource::new")
}

fn errno(e: &Error) -> Option<i32> {
    match e {
        Error::Io { source, .. } => source.raw_os_error(),
        _ => None,
    }
}

/// (rel, size) of every file entry, in scan order.
fn files(entries: &[SourceEntry]) -> Vec<(String, u64)> {
    entries
        .iter()
        .filter_map(|e| match e.kind {
            EntryKind::File { size, .. } => Some((e.rel.to_string_lossy().into_owned(), size)),
            _ => None,
        })
        .collect()
}

fn read_all(r: &mut dyn Read) -> Vec<u8> {
    let mut v = Vec::new();
    r.read_to_end(&mut v).expect("read");
    v
}

/// The odd tree of both listing tests: spaces, Unicode, an empty file, a 3 MiB file, nested folders.
fn tree() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("Day 1/Cam A/C0001.MP4", common::data(1, 100_003)),
        ("Day 1/Cam A/C0001M01.XML", b"<NonRealTimeMeta/>".to_vec()),
        ("Día dos – ünïcödé/クリップ 01.mov", common::data(2, 4097)),
        ("big/three MiB.mp4", common::data(3, 3 << 20)),
        ("empty.txt", Vec::new()),
        ("z/deep/er/still/last.wav", common::data(4, 10)),
    ]
}

/// The listing both servers must give for `tree()`: depth-first, sorted by name within each folder.
fn expected_files() -> Vec<(String, u64)> {
    let mut v: Vec<(PathBuf, u64)> = tree().into_iter().map(|(p, d)| (PathBuf::from(p), d.len() as u64)).collect();
    v.sort();
    v.into_iter().map(|(p, n)| (p.to_string_lossy().into_owned(), n)).collect()
}

#[test]
fn source_is_send_sync_and_new_does_no_io() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<NfsSource>();
    // Nothing listens on this port: `new` must still succeed, and the first call fails as a transient refusal.
    let port = common::nfsd::free_port();
    let src = source(port, "/footage", Duration::from_secs(5));
    assert_eq!(src.describe(), format!("nfs://127.0.0.1:{port}/footage"));
    let start = Instant::now();
    let e = src.stat(Path::new("/a.MP4")).expect_err("nothing listens");
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(errno(&e), Some(libc::ECONNREFUSED), "{e}");
    assert!(e.is_transient());
    match &e {
        Error::Io { path, .. } => assert_eq!(path, &PathBuf::from(format!("nfs://127.0.0.1:{port}/footage/a.MP4"))),
        other => panic!("unexpected {other:?}"),
    }
    let cfg = |host: &str| NfsConfig {
        host: host.into(),
        port: 2049,
        mount_port: None,
        export: "/footage".into(),
        timeout: Duration::from_secs(1),
    };
    for host in ["127.0.0.1:2049", "", "nas/x", "a b"] {
        assert!(matches!(NfsSource::new(cfg(host)), Err(Error::Invalid(_))), "host {host:?} accepted");
    }
    // Names are resolved at connect time, not here.
    for host in ["localhost", "nas.local", "::1", "[::1]"] {
        assert!(NfsSource::new(cfg(host)).is_ok(), "host {host:?} refused");
    }
}

#[test]
fn memfs_scan_and_read() {
    let tree = tree();
    let mut served: Vec<(String, Vec<u8>)> = tree.iter().map(|(p, d)| (format!("/footage/{p}"), d.clone())).collect();
    served.push(("/elsewhere/not-exported.MP4".into(), b"x".to_vec()));
    let refs: Vec<(&str, &[u8])> = served.iter().map(|(p, d)| (p.as_str(), d.as_slice())).collect();
    let server = MemServer::start(&refs);
    let src = source(server.port, "/footage", Duration::from_secs(10));

    let entries = src.scan(&[PathBuf::from("/")]).expect("scan");
    assert_eq!(files(&entries), expected_files());
    assert_eq!(entries.len(), tree.len(), "{entries:?}");
    let big = entries.iter().find(|e| e.rel == Path::new("big/three MiB.mp4")).expect("big file listed");
    assert_eq!(big.path, Path::new("/big/three MiB.mp4"));

    // A subfolder root: paths stay absolute in the export, rel is below the root.
    let sub = src.scan(&[PathBuf::from("/Day 1")]).expect("scan subfolder");
    let got: Vec<_> = sub.iter().map(|e| (e.path.clone(), e.rel.clone())).collect();
    assert_eq!(
        got,
        vec![
            (PathBuf::from("/Day 1/Cam A/C0001.MP4"), PathBuf::from("Cam A/C0001.MP4")),
            (PathBuf::from("/Day 1/Cam A/C0001M01.XML"), PathBuf::from("Cam A/C0001M01.XML")),
        ]
    );
    // A root that is a file.
    let one = src.scan(&[PathBuf::from("/Día dos – ünïcödé/クリップ 01.mov")]).expect("scan a file");
    assert_eq!(files(&one), vec![("クリップ 01.mov".to_string(), 4097)]);
    // A missing root is an error, and not a transient one.
    let e = src.scan(&[PathBuf::from("/Day 9")]).expect_err("missing root");
    assert_eq!(errno(&e), Some(libc::ENOENT), "{e}");
    assert!(!e.is_transient());

    for (rel, data) in &tree {
        let p = PathBuf::from(format!("/{rel}"));
        let meta = src.stat(&p).expect("stat");
        assert_eq!(meta.size, data.len() as u64);
        assert_eq!(&read_all(&mut *src.open_at(&p, 0).expect("open")), data, "{rel}");
    }
    let p = Path::new("/big/three MiB.mp4");
    let data = &tree[3].1;
    for offset in [1, 1_500_000, (1 << 20) - 1, 1 << 20, (3 << 20) - 7, 3 << 20, (3 << 20) + 100] {
        let got = read_all(&mut *src.open_at(p, offset).expect("open at offset"));
        let want = &data[(offset as usize).min(data.len())..];
        assert_eq!(got.len(), want.len(), "offset {offset}");
        assert!(got == want, "bytes differ at offset {offset}");
    }
    // Small reads through the 1 MiB buffer.
    let mut r = src.open_at(p, 10).expect("open");
    let mut small = [0u8; 7];
    r.read_exact(&mut small).expect("read_exact");
    assert_eq!(&small, &data[10..17]);
    assert!(src.open_at(Path::new("/Day 1"), 0).is_err_and(|e| errno(&e) == Some(libc::EISDIR)));
}

#[test]
fn process_server_listing_and_changes() {
    let dir = tempfile::Builder::new().prefix("nfs-src-").tempdir_in(common::test_root()).expect("tempdir");
    let root = dir.path().join("share");
    for (rel, data) in tree() {
        common::write(&root.join(rel), &data);
    }
    std::os::unix::fs::symlink("big/three MiB.mp4", root.join("link.mp4")).expect("symlink");
    let mut server = NfsProcess::start(&root, false);
    let src = source(server.port, "/", Duration::from_secs(10));
    assert_eq!(src.describe(), format!("nfs://127.0.0.1:{}/", server.port));

    // The same listing as the local source over the same folder: rel, size, mtime (ns) and the skipped link.
    let entries = src.scan(&[PathBuf::from("/")]).expect("scan");
    assert_eq!(files(&entries), expected_files());
    let local = LocalSource::new(std::slice::from_ref(&root)).scan(std::slice::from_ref(&root)).expect("local scan");
    assert_eq!(entries.len(), local.len());
    for (n, l) in entries.iter().zip(&local) {
        assert_eq!(n.rel, l.rel);
        assert_eq!(n.path, Path::new("/").join(&n.rel));
        match (&n.kind, &l.kind) {
            (EntryKind::File { size: a, mtime_ns: b }, EntryKind::File { size: c, mtime_ns: d }) => {
                assert_eq!((a, b), (c, d), "{:?}", n.rel)
            }
            (EntryKind::Skipped(a), EntryKind::Skipped(b)) => assert_eq!(a, b),
            other => panic!("kinds differ for {:?}: {other:?}", n.rel),
        }
    }
    let m = fs::metadata(root.join("Day 1/Cam A/C0001.MP4")).expect("metadata");
    let s = src.stat(Path::new("/Day 1/Cam A/C0001.MP4")).expect("stat");
    assert_eq!(s.mtime_ns, m.mtime() * 1_000_000_000 + m.mtime_nsec());

    // Export convention: the export is `/`, not the host directory path.
    let by_path = source(server.port, &root.to_string_lossy(), Duration::from_secs(10));
    let e = by_path.stat(Path::new("/")).expect_err("host path is not an export");
    assert_eq!(errno(&e), Some(libc::ENOENT), "{e}");

    // remove
    src.remove(Path::new("/empty.txt")).expect("remove");
    assert!(!root.join("empty.txt").exists());
    let e = src.stat(Path::new("/empty.txt")).expect_err("removed");
    assert_eq!(errno(&e), Some(libc::ENOENT));
    assert!(!e.is_transient(), "NOENT must not be transient");
    let e = src.remove(Path::new("/empty.txt")).expect_err("already removed");
    assert_eq!(errno(&e), Some(libc::ENOENT));

    // create_dir_all (idempotent) then rename into it.
    src.create_dir_all(Path::new("/done/2024/Cam A")).expect("create_dir_all");
    src.create_dir_all(Path::new("/done/2024/Cam A")).expect("create_dir_all again");
    assert!(root.join("done/2024/Cam A").is_dir());
    let e = src.create_dir_all(Path::new("/big/three MiB.mp4/x")).expect_err("a file in the way");
    assert_eq!(errno(&e), Some(libc::ENOTDIR), "{e}");
    src.rename(Path::new("/big/three MiB.mp4"), Path::new("/done/2024/Cam A/three MiB.mp4")).expect("rename");
    assert!(!root.join("big/three MiB.mp4").exists());
    assert_eq!(fs::read(root.join("done/2024/Cam A/three MiB.mp4")).expect("moved file"), tree()[3].1);
    // Renaming a folder, then reading through its new name (the handle cache must follow).
    src.rename(Path::new("/done/2024"), Path::new("/done/2025")).expect("rename folder");
    let got = read_all(&mut *src.open_at(Path::new("/done/2025/Cam A/three MiB.mp4"), 0).expect("open moved"));
    assert!(got == tree()[3].1);
    assert_eq!(errno(&src.stat(Path::new("/done/2024/Cam A")).expect_err("old name")), Some(libc::ENOENT));

    // A read-only server refuses changes with EROFS.
    server.kill();
    let ro = NfsProcess::start(&root, true);
    let src = source(ro.port, "/", Duration::from_secs(10));
    let e = src.remove(Path::new("/Day 1/Cam A/C0001M01.XML")).expect_err("read-only");
    assert_eq!(errno(&e), Some(libc::EROFS), "{e}");
    assert!(root.join("Day 1/Cam A/C0001M01.XML").exists());
}

/// Reads up to `limit` bytes into the hasher; returns how many were read.
fn read_into(r: &mut dyn Read, h: &mut blake3::Hasher, limit: u64) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    while done < limit {
        let want = buf.len().min((limit - done) as usize);
        let n = r.read(&mut buf[..want])?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        done += n as u64;
    }
    Ok(done)
}

#[test]
fn killed_mid_read_then_resume() {
    const SIZE: u64 = 64 << 20;
    let dir = tempfile::Builder::new().prefix("nfs-kill-").tempdir_in(common::test_root()).expect("tempdir");
    let root = dir.path().join("share");
    let file = root.join("card/C0001.MP4");
    common::write_big(&file, SIZE, 7);
    let want = common::b3_file(&file);
    let mut server = NfsProcess::start(&root, true);
    let src = source(server.port, "/", Duration::from_secs(5));
    let p = Path::new("/card/C0001.MP4");

    // A whole read with BLAKE3 in the loop, for the throughput figure.
    let start = Instant::now();
    let mut h = blake3::Hasher::new();
    let n = read_into(&mut *src.open_at(p, 0).expect("open"), &mut h, u64::MAX).expect("read whole");
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(n, SIZE);
    assert_eq!(h.finalize().to_hex().to_string(), want);
    eprintln!("NFS read of 64 MiB with BLAKE3: {:.0} MB/s ({secs:.2} s)", SIZE as f64 / secs / 1e6);

    // Killed mid-read: a prompt, transient error (no spinning on the dead socket).
    let mut h = blake3::Hasher::new();
    let mut r = src.open_at(p, 0).expect("open");
    let mut done = read_into(&mut *r, &mut h, 20 << 20).expect("first part");
    assert_eq!(done, 20 << 20);
    server.kill();
    let start = Instant::now();
    let err = loop {
        let mut buf = vec![0u8; 1 << 20];
        match r.read(&mut buf) {
            Ok(0) => panic!("EOF at {done} of a killed server's {SIZE}-byte file"),
            Ok(n) => {
                h.update(&buf[..n]);
                done += n as u64;
            }
            Err(e) => break e,
        }
        assert!(start.elapsed() < Duration::from_secs(10), "still reading 10 s after the kill");
    };
    assert!(start.elapsed() < Duration::from_secs(10), "error took {:?}", start.elapsed());
    eprintln!("killed at {} MiB: {err} after {:?}", done >> 20, start.elapsed());
    assert!(nightfox::error::io_is_transient(&err), "not transient: {err:?}");
    drop(r);
    let e = src.stat(p).expect_err("server is down");
    assert!(e.is_transient(), "{e}");

    // Back up on the same port: reconnect, resume where the read stopped, and the whole file hashes right.
    server.restart();
    src.reconnect();
    let rest = read_into(&mut *src.open_at(p, done).expect("reopen at offset"), &mut h, u64::MAX).expect("rest");
    assert_eq!(done + rest, SIZE);
    assert_eq!(h.finalize().to_hex().to_string(), want);
}

#[test]
fn stopped_server_times_out() {
    let dir = tempfile::Builder::new().prefix("nfs-stop-").tempdir_in(common::test_root()).expect("tempdir");
    let root = dir.path().join("share");
    common::write_big(&root.join("a.MP4"), 8 << 20, 3);
    let server = NfsProcess::start(&root, true);
    let src = source(server.port, "/", Duration::from_secs(2));
    let p = Path::new("/a.MP4");
    assert_eq!(src.stat(p).expect("stat").size, 8 << 20);
    let mut r = src.open_at(p, 0).expect("open");
    let mut buf = vec![0u8; 1 << 20];
    r.read_exact(&mut buf).expect("first MiB");

    server.stop_signal();
    let start = Instant::now();
    let e = src.stat(p).expect_err("hung server");
    let took = start.elapsed();
    assert_eq!(errno(&e), Some(libc::ETIMEDOUT), "{e}");
    assert!(e.is_transient());
    assert!(took < Duration::from_secs(10), "took {took:?}");
    eprintln!("SIGSTOP: {e} after {took:?}");
    // The next call mounts afresh, and times out the same way.
    let start = Instant::now();
    let e = src.stat(p).expect_err("still hung");
    assert_eq!(errno(&e), Some(libc::ETIMEDOUT), "{e}");
    assert!(start.elapsed() < Duration::from_secs(10));
    // A reader times out too.
    let start = Instant::now();
    let e = r.read_exact(&mut buf).expect_err("hung read");
    assert_eq!(e.raw_os_error(), Some(libc::ETIMEDOUT), "{e}");
    assert!(start.elapsed() < Duration::from_secs(10));

    server.cont_signal();
    src.reconnect();
    assert_eq!(src.stat(p).expect("stat after SIGCONT").size, 8 << 20);
    let data = read_all(&mut *src.open_at(p, 0).expect("open after SIGCONT"));
    assert_eq!(data.len(), 8 << 20);
    assert!(data == fs::read(root.join("a.MP4")).expect("local"));
}

#[test]
fn server_down_for_good() {
    let dir = tempfile::Builder::new().prefix("nfs-down-").tempdir_in(common::test_root()).expect("tempdir");
    let root = dir.path().join("share");
    common::write(&root.join("a.MP4"), b"abc");
    let mut server = NfsProcess::start(&root, true);
    let src = source(server.port, "/", Duration::from_secs(5));
    let p = Path::new("/a.MP4");
    assert_eq!(src.stat(p).expect("stat").size, 3);
    server.kill();

    // On the old connection: EOF or reset; then refused on every new mount. All quick and transient.
    for i in 0..3 {
        let start = Instant::now();
        let e = src.stat(p).expect_err("server is gone");
        assert!(start.elapsed() < Duration::from_secs(3), "call {i} took {:?}", start.elapsed());
        assert!(e.is_transient(), "call {i}: {e}");
        if i > 0 {
            assert_eq!(errno(&e), Some(libc::ECONNREFUSED), "call {i}: {e}");
        }
    }
    src.reconnect();
    let e = src.scan(&[PathBuf::from("/")]).expect_err("scan with the server gone");
    assert_eq!(errno(&e), Some(libc::ECONNREFUSED), "{e}");
    assert!(src.open_at(p, 0).is_err_and(|e| e.is_transient()));
}
