//! The SMB source against a real Samba smbd on loopback (tests/common/smbd.rs): scanning and reading a tree with
//! odd names, changing the share, a refused login, and a server that is killed, frozen or gone.

mod common;

use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::smbd::{SmbServer, SHARE, USER};
use nightfox::error::Error;
use nightfox::sources::local::LocalSource;
use nightfox::sources::smb::{SmbConfig, SmbSource};
use nightfox::sources::{EntryKind, Source};

const PASSWORD: &str = "Fox-tr0t pass";

/// libsmbclient serializes every call in the process: the tests run one at a time so that a frozen server in
/// one test cannot eat into another test's timeouts.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn config(srv: &SmbServer, password: &str, timeout: Duration) -> SmbConfig {
    SmbConfig {
        host: "127.0.0.1".into(),
        port: srv.port(),
        share: SHARE.into(),
        username: USER.into(),
        password: password.into(),
        workgroup: String::new(),
        timeout,
    }
}

fn source(srv: &SmbServer, timeout: Duration) -> SmbSource {
    SmbSource::new(config(srv, PASSWORD, timeout)).expect("smb source")
}

fn read_all(src: &SmbSource, path: &str, offset: u64) -> Vec<u8> {
    let mut r = src.open_at(Path::new(path), offset).unwrap_or_else(|e| panic!("open {path}: {e}"));
    let mut v = Vec::new();
    r.read_to_end(&mut v).unwrap_or_else(|e| panic!("read {path}: {e}"));
    v
}

fn errno_of(e: &Error) -> Option<i32> {
    match e {
        Error::Io { source, .. } => source.raw_os_error(),
        _ => None,
    }
}

/// A name of exactly 200 bytes.
fn long_name() -> String {
    let n = format!("{}.MP4", "L".repeat(196));
    assert_eq!(n.len(), 200);
    n
}

#[test]
fn scan_and_read_a_tree_with_odd_names() {
    let _s = serial();
    let srv = SmbServer::start(PASSWORD);
    let share = srv.share_dir();
    // "Café – Zoë" in NFC (precomposed é and ë).
    let unicode = "Caf\u{e9} \u{2013} Zo\u{eb}";
    let files: Vec<(String, Vec<u8>)> = vec![
        ("Day 1/Cam A/C0001.MP4".into(), common::data(1, 150_001)),
        ("Day 1/Cam A/C0001M01.XML".into(), b"<NonRealTimeMeta/>".to_vec()),
        (format!("Day 1/{unicode}/clip 2.mov"), common::data(2, 70_000)),
        (format!("long/{}", long_name()), common::data(3, 4_096)),
        ("empty.bin".into(), Vec::new()),
        ("big/three.MP4".into(), common::data(4, 3 << 20)),
        ("100% done #2 & more+.MP4".into(), common::data(5, 1_000)),
        ("Day 1/Cam A/C0002.MP4".into(), common::data(6, 2 << 20)),
    ];
    for (rel, bytes) in &files {
        common::write(&share.join(rel), bytes);
    }
    srv.chown_share();
    let src = source(&srv, Duration::from_secs(10));
    assert_eq!(src.describe(), format!("smb://{USER}@127.0.0.1:{}/{SHARE}", srv.port()));

    // The whole share against the same tree read locally: same entries, same order, same sizes and mtimes
    // (libsmbclient reports whole seconds).
    let got = src.scan(&[PathBuf::from("/")]).expect("scan /");
    let want = LocalSource::new(std::slice::from_ref(&share)).scan(std::slice::from_ref(&share)).expect("local scan");
    let got_rel: Vec<&Path> = got.iter().map(|e| e.rel.as_path()).collect();
    let want_rel: Vec<&Path> = want.iter().map(|e| e.rel.as_path()).collect();
    assert_eq!(got_rel, want_rel);
    assert_eq!(got.len(), files.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g.path, Path::new("/").join(&g.rel));
        let local = fs::metadata(share.join(&w.rel)).expect("local meta");
        match g.kind {
            EntryKind::File { size, mtime_ns } => {
                assert_eq!(size, local.len(), "{:?}", g.rel);
                assert_eq!(mtime_ns, local.mtime() * 1_000_000_000, "{:?}", g.rel);
            }
            ref k => panic!("{:?}: {k:?}", g.rel),
        }
    }

    // A sub-root: paths stay absolute in the share, rel is below the root.
    let sub = src.scan(&[PathBuf::from("/Day 1")]).expect("scan /Day 1");
    let rels: Vec<String> = sub.iter().map(|e| e.rel.to_string_lossy().into_owned()).collect();
    // Sorted by name within each folder: "Café" before "Cam".
    assert_eq!(
        rels,
        vec![
            format!("{unicode}/clip 2.mov"),
            "Cam A/C0001.MP4".into(),
            "Cam A/C0001M01.XML".into(),
            "Cam A/C0002.MP4".into()
        ]
    );
    assert_eq!(sub[1].path, Path::new("/Day 1/Cam A/C0001.MP4"));
    // A root that is a file.
    let one = src.scan(&[PathBuf::from("/big/three.MP4")]).expect("scan a file");
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].rel, Path::new("three.MP4"));
    assert_eq!(one[0].path, Path::new("/big/three.MP4"));
    assert!(matches!(one[0].kind, EntryKind::File { size, .. } if size == 3 << 20));
    // A missing root is an error, and not a transient one.
    let e = src.scan(&[PathBuf::from("/no such dir")]).expect_err("missing root");
    assert_eq!(errno_of(&e), Some(libc::ENOENT), "{e}");
    assert!(!e.is_transient());
    assert!(e.to_string().contains(&format!("smb://127.0.0.1:{}/{SHARE}/no such dir", srv.port())), "{e}");

    // stat agrees with the scan.
    let m = src.stat(Path::new("/big/three.MP4")).expect("stat");
    assert_eq!(m.size, 3 << 20);

    // Every file reads back exactly, from 0 and from an offset.
    for (rel, bytes) in &files {
        let p = format!("/{rel}");
        assert!(read_all(&src, &p, 0) == *bytes, "{rel} differs");
        let off = bytes.len() as u64 / 3;
        assert!(read_all(&src, &p, off) == bytes[off as usize..], "{rel} from {off} differs");
    }
    let big = &files[5].1;
    assert!(read_all(&src, "/big/three.MP4", 1_234_567) == big[1_234_567..]);
    assert!(read_all(&src, "/big/three.MP4", big.len() as u64).is_empty());
    // Reading in small pieces gives the same bytes.
    let mut r = src.open_at(Path::new("/big/three.MP4"), 5).expect("open");
    let mut piece = [0u8; 4099];
    let mut got = Vec::new();
    loop {
        let n = r.read(&mut piece).expect("read");
        if n == 0 {
            break;
        }
        got.extend_from_slice(&piece[..n]);
    }
    assert!(got == big[5..]);
    drop(r);
    let e = src.open_at(Path::new("/nope.MP4"), 0).err().expect("missing file");
    assert_eq!(errno_of(&e), Some(libc::ENOENT), "{e}");
}

#[test]
fn an_unreadable_folder_is_recorded_and_the_scan_goes_on() {
    let _s = serial();
    let srv = SmbServer::start(PASSWORD);
    let share = srv.share_dir();
    common::write(&share.join("a/ok.MP4"), b"fine");
    common::write(&share.join("b locked/secret.MP4"), b"hidden");
    common::write(&share.join("c/ok2.MP4"), b"fine too");
    srv.chown_share();
    // Owned by root, mode 000: smbtest cannot list it.
    let locked = share.join("b locked");
    std::os::unix::fs::chown(&locked, Some(0), Some(0)).expect("chown");
    fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o000)).expect("chmod");
    let src = source(&srv, Duration::from_secs(10));
    let got = src.scan(&[PathBuf::from("/")]).expect("scan");
    let summary: Vec<(String, &str)> = got
        .iter()
        .map(|e| {
            let k = match e.kind {
                EntryKind::File { .. } => "file",
                EntryKind::Skipped(_) => "skipped",
                EntryKind::Unreadable(_) => "unreadable",
            };
            (e.rel.to_string_lossy().into_owned(), k)
        })
        .collect();
    assert_eq!(
        summary,
        vec![("a/ok.MP4".to_string(), "file"), ("b locked".into(), "unreadable"), ("c/ok2.MP4".into(), "file")]
    );
    match &got[1].kind {
        EntryKind::Unreadable(why) => assert!(why.contains("denied"), "{why}"),
        k => panic!("{k:?}"),
    }
    assert_eq!(got[1].path, Path::new("/b locked"));
}

#[test]
fn remove_rename_and_create_dir_all_change_the_share() {
    let _s = serial();
    let srv = SmbServer::start(PASSWORD);
    let share = srv.share_dir();
    common::write(&share.join("in/a.MP4"), b"clip a");
    common::write(&share.join("in/b.MP4"), b"clip b");
    srv.chown_share();
    let src = source(&srv, Duration::from_secs(10));

    src.create_dir_all(Path::new("/done/2025-06-14/Caf\u{e9} 1")).expect("create_dir_all");
    src.create_dir_all(Path::new("/done/2025-06-14/Caf\u{e9} 1")).expect("create_dir_all again");
    let dest = share.join("done/2025-06-14/Caf\u{e9} 1");
    assert!(dest.is_dir());
    src.rename(Path::new("/in/a.MP4"), Path::new("/done/2025-06-14/Caf\u{e9} 1/a.MP4")).expect("rename");
    assert!(!share.join("in/a.MP4").exists());
    assert_eq!(fs::read(dest.join("a.MP4")).expect("moved file"), b"clip a");
    src.remove(Path::new("/in/b.MP4")).expect("remove");
    assert!(!share.join("in/b.MP4").exists());
    assert!(share.join("in").is_dir());

    let e = src.remove(Path::new("/in/b.MP4")).expect_err("remove twice");
    assert_eq!(errno_of(&e), Some(libc::ENOENT), "{e}");
    assert!(!e.is_transient());
    // A file in the way of a folder.
    common::write(&share.join("plain"), b"x");
    srv.chown_share();
    let e = src.create_dir_all(Path::new("/plain/sub")).expect_err("file in the way");
    assert!(!e.is_transient(), "{e}");
}

#[test]
fn a_wrong_password_is_a_permanent_eacces_that_never_shows_the_password() {
    let _s = serial();
    let srv = SmbServer::start(PASSWORD);
    common::write(&srv.share_dir().join("a.MP4"), b"a");
    srv.chown_share();
    let wrong = "Wr0ng-pa55word!";
    let cfg = config(&srv, wrong, Duration::from_secs(10));
    assert!(!format!("{cfg:?}").contains(wrong));
    let src = SmbSource::new(cfg).expect("source");
    assert!(!src.describe().contains(wrong));
    assert!(!format!("{src:?}").contains(wrong));
    let errors = vec![
        src.stat(Path::new("/a.MP4")).expect_err("stat"),
        src.scan(&[PathBuf::from("/")]).expect_err("scan"),
        src.open_at(Path::new("/a.MP4"), 0).err().expect("open"),
    ];
    for e in &errors {
        assert_eq!(errno_of(e), Some(libc::EACCES), "{e}");
        assert!(!e.is_transient(), "{e}");
        let Error::Io { source, .. } = e else { panic!("{e:?}") };
        for text in [e.to_string(), format!("{e:?}"), source.to_string(), format!("{source:?}")] {
            assert!(!text.contains(wrong), "{text}");
            assert!(!text.contains(PASSWORD), "{text}");
        }
    }
    // The right password works on the same server.
    let ok = source(&srv, Duration::from_secs(10));
    assert_eq!(ok.stat(Path::new("/a.MP4")).expect("stat").size, 1);
}

#[test]
fn a_server_killed_mid_read_gives_a_transient_error_and_the_read_resumes() {
    let _s = serial();
    let mut srv = SmbServer::start(PASSWORD);
    let path = srv.share_dir().join("clips/C0001.MP4");
    let len: u64 = 64 << 20;
    common::write_big(&path, len, 7);
    srv.chown_share();
    let want = common::b3_file(&path);
    let src = source(&srv, Duration::from_secs(5));

    // Throughput of a whole read with BLAKE3 in the loop (1 MiB reads, as the import does).
    let start = Instant::now();
    let mut r = src.open_at(Path::new("/clips/C0001.MP4"), 0).expect("open");
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = r.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        total += n as u64;
    }
    drop(r);
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(total, len);
    assert_eq!(h.finalize().to_hex().to_string(), want);
    eprintln!("smb read: {} MiB in {secs:.3} s = {:.0} MB/s", len >> 20, len as f64 / secs / 1e6);

    // Now read part of it, and kill the server under the reader.
    let mut r = src.open_at(Path::new("/clips/C0001.MP4"), 0).expect("open");
    let mut h = blake3::Hasher::new();
    let mut done = 0u64;
    while done < 16 << 20 {
        let n = r.read(&mut buf).expect("read before kill");
        assert!(n > 0);
        h.update(&buf[..n]);
        done += n as u64;
    }
    srv.kill();
    let killed = Instant::now();
    let err = loop {
        match r.read(&mut buf) {
            Ok(0) => panic!("EOF at {done} after the server was killed"),
            Ok(n) => {
                h.update(&buf[..n]);
                done += n as u64;
            }
            Err(e) => break e,
        }
        assert!(killed.elapsed() < Duration::from_secs(15), "reads went on after the kill");
    };
    let took = killed.elapsed();
    assert!(took < Duration::from_secs(8), "the error took {took:?}");
    assert!(nightfox::error::io_is_transient(&err), "{err} ({:?})", err.raw_os_error());
    eprintln!("after kill: {err} ({:?}) after {took:?}, {done} bytes read", err.raw_os_error());
    assert!(done < len);
    drop(r);
    // While the server is down, calls fail fast and transient.
    let t = Instant::now();
    let e = src.stat(Path::new("/clips/C0001.MP4")).expect_err("stat while down");
    assert!(e.is_transient(), "{e}");
    assert!(t.elapsed() < Duration::from_secs(8));

    srv.restart();
    src.reconnect();
    let mut r = src.open_at(Path::new("/clips/C0001.MP4"), done).expect("reopen at offset");
    let mut rest = 0u64;
    loop {
        let n = r.read(&mut buf).expect("read after restart");
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        rest += n as u64;
    }
    assert_eq!(done + rest, len);
    assert_eq!(h.finalize().to_hex().to_string(), want);
}

#[test]
fn a_frozen_server_times_out_within_the_bound() {
    let _s = serial();
    let srv = SmbServer::start(PASSWORD);
    common::write(&srv.share_dir().join("a.MP4"), &common::data(9, 3 << 20));
    srv.chown_share();
    let timeout = Duration::from_secs(2);
    let src = source(&srv, timeout);
    src.stat(Path::new("/a.MP4")).expect("stat before");
    let mut r = src.open_at(Path::new("/a.MP4"), 0).expect("open before");
    let mut buf = vec![0u8; 1 << 20];
    assert!(r.read(&mut buf).expect("first read") > 0);

    srv.stop_signal();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // On the connection made before the freeze.
        let t = Instant::now();
        let e = src.stat(Path::new("/a.MP4")).expect_err("stat on a frozen server");
        let took = t.elapsed();
        eprintln!("frozen stat: {e} after {took:?}");
        assert_eq!(errno_of(&e), Some(libc::ETIMEDOUT), "{e}");
        assert!(e.is_transient());
        assert!(took < Duration::from_secs(10), "took {took:?}");
        // A reader opened before the freeze fails too, within the bound.
        let t = Instant::now();
        let mut err = None;
        for _ in 0..8 {
            if let Err(e) = r.read(&mut buf) {
                err = Some(e);
                break;
            }
        }
        let e = err.expect("reads on a frozen server must fail");
        assert!(nightfox::error::io_is_transient(&e), "{e}");
        assert!(t.elapsed() < Duration::from_secs(10), "took {:?}", t.elapsed());
        // A fresh connection to the frozen server (TCP still accepts, nothing answers).
        src.reconnect();
        let t = Instant::now();
        let e = src.scan(&[PathBuf::from("/")]).expect_err("scan on a frozen server");
        assert!(e.is_transient(), "{e}");
        assert!(t.elapsed() < Duration::from_secs(10), "took {:?}", t.elapsed());
    }));
    srv.cont_signal();
    if let Err(p) = outcome {
        std::panic::resume_unwind(p);
    }
    drop(r);
    // Thawed: a reconnect brings it back.
    src.reconnect();
    let t = Instant::now();
    loop {
        match src.stat(Path::new("/a.MP4")) {
            Ok(m) => {
                assert_eq!(m.size, 3 << 20);
                break;
            }
            Err(e) => assert!(t.elapsed() < Duration::from_secs(20), "no recovery after SIGCONT: {e}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_server_gone_for_good_fails_fast_and_transient() {
    let _s = serial();
    let mut srv = SmbServer::start(PASSWORD);
    common::write(&srv.share_dir().join("a.MP4"), b"a");
    srv.chown_share();
    let src = source(&srv, Duration::from_secs(5));
    src.stat(Path::new("/a.MP4")).expect("stat before");
    srv.kill();
    for _ in 0..2 {
        let t = Instant::now();
        let e = src.stat(Path::new("/a.MP4")).expect_err("stat with no server");
        eprintln!("server gone: {e} ({:?}) after {:?}", errno_of(&e), t.elapsed());
        assert!(e.is_transient(), "{e}");
        assert!(t.elapsed() < Duration::from_secs(3), "took {:?}", t.elapsed());
    }
    // A source that never reached it: connection refused.
    let fresh = source(&srv, Duration::from_secs(5));
    let t = Instant::now();
    let e = fresh.stat(Path::new("/a.MP4")).expect_err("stat with no server");
    assert_eq!(errno_of(&e), Some(libc::ECONNREFUSED), "{e}");
    assert!(e.is_transient());
    assert!(t.elapsed() < Duration::from_secs(3), "took {:?}", t.elapsed());
}
