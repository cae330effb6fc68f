//! Encrypted archives (`init --encrypt`, `blobs::vault`) through the real binary and a real FUSE mount: a card
//! imports, the blobs on disk hold no plaintext and the data key is nowhere in the catalog or `archive.toml`, the
//! mount serves the exact bytes (copy path, sequential and random ranges), `verify` passes, `export` copies
//! identical files with an MHL history that checks; a flipped byte in one chunk of a blob is EIO for the reads
//! that touch that chunk only and `verify` reports the blob; a wrong `NIGHTFOX_SECRET` is a clear one-line error.
//! A sealed object copied over another blob's name is refused (EIO) and reported, never served; a copy staged
//! sealed and killed mid-way resumes into the right blob, never leaving plaintext in `tmp/`.

mod common;

use std::fs;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use common::*;
use nightfox::blobs::vault::{sealed_len, CHUNK, HEADER, MAGIC, WRAPPED_KEY};

fn encrypted_env() -> Env {
    let dir = tempfile::Builder::new().prefix("nightfox-vault-").tempdir_in(test_root()).expect("tempdir");
    let archive = dir.path().join("archive");
    let env = Env { dir, archive };
    let out = env.ok(&["init", "--encrypt"]);
    assert!(out.contains("encrypted") && out.contains("vault.wrapped"), "{out}");
    env
}

/// The object file of a blob.
fn object(env: &Env, hash: &str) -> PathBuf {
    env.archive.join("objects").join(&hash[0..2]).join(&hash[2..4]).join(hash)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Every file of the archive directory but the objects (the catalog and its journals, the config, the keys).
fn archive_files_but_objects(env: &Env) -> Vec<PathBuf> {
    let mut all = Vec::new();
    walk_files(&env.archive, &mut all);
    all.into_iter().filter(|p| !p.starts_with(env.archive.join("objects"))).collect()
}

#[test]
fn an_encrypted_archive_imports_mounts_verifies_and_exports() {
    let env = encrypted_env();
    let toml = fs::read_to_string(env.archive.join("archive.toml")).unwrap();
    assert!(toml.contains("encrypt = true"), "{toml}");
    let couple = env.couple("Ada Lin", "2025-06-01");
    let card = env.path("card");
    let big = card.join("C0001.MP4");
    write_big(&big, (8 << 20) + 4099, 21);
    write(&card.join("C0002.MP4"), &data(22, 3 * CHUNK as usize));
    write(&card.join("NOTES.TXT"), b"a small sidecar, under 64 KiB, sealed like the rest");
    write(&card.join("EMPTY.BIN"), b"");
    env.ok(&["import", "--couple", &couple, card.to_str().unwrap()]);

    // On disk: every blob sealed (its stored length is the vault's), no plaintext in it.
    let mut sources = Vec::new();
    walk_files(&card, &mut sources);
    sources.sort();
    for src in &sources {
        let bytes = fs::read(src).unwrap();
        let stored = fs::read(object(&env, &b3(&bytes))).unwrap();
        assert_eq!(stored.len() as u64, sealed_len(bytes.len() as u64), "{src:?}");
        assert_eq!(&stored[..5], MAGIC);
        for at in [0usize, 1 << 16, 5 << 20] {
            if bytes.len() >= at + 48 {
                assert!(!contains(&stored, &bytes[at..at + 48]), "{src:?}: plaintext at {at} in the stored blob");
            }
        }
    }

    // The data key (unwrapped here with the archive secret) is in no file but its wrapped form, in neither form.
    let wrapped = fs::read(env.archive.join(WRAPPED_KEY)).unwrap();
    let raw = nightfox::secrets::Secrets::load(&env.archive).unwrap().unwrap_key(&wrapped).unwrap();
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let files = archive_files_but_objects(&env);
    assert!(files.iter().any(|p| p.ends_with("catalog.db")), "{files:?}");
    for p in &files {
        let b = fs::read(p).unwrap();
        assert!(!contains(&b, &raw) && !contains(&b, hex.as_bytes()), "the data key is in {p:?}");
    }

    // The mount decrypts on the copy path (passthrough would hand the kernel ciphertext).
    let mp = env.path("mnt");
    let dir = mp.join(&couple).join("source/modern/unknown");
    {
        let _m = Mount::start(&env, &mp, &[]);
        for src in &sources {
            let got = fs::read(dir.join(src.file_name().unwrap())).unwrap();
            assert!(got == fs::read(src).unwrap(), "{src:?} through the mount");
        }
        let want = fs::read(&big).unwrap();
        let f = fs::File::open(dir.join("C0001.MP4")).unwrap();
        let mut x = 0x9E37_79B9u64;
        for _ in 0..200 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = [4096usize, 65536, 1 << 20, 17, 70_000][(x % 5) as usize];
            let off = (x >> 8) as usize % want.len();
            let mut buf = vec![0u8; len];
            let n = f.read_at(&mut buf, off as u64).unwrap();
            let end = (off + len).min(want.len());
            assert_eq!(n, end - off);
            assert!(buf[..n] == want[off..end], "bytes at {off}+{len}");
        }
    }

    let out = env.ok(&["verify"]);
    assert!(out.contains("verified 4 blobs") && out.contains(": 0 problem"), "{out}");
    assert!(env.tmp_entries().is_empty(), "{:?}", env.tmp_entries());

    // Export: the same bytes, an MHL history that checks.
    let dest = env.path("dest");
    let out = env.ok(&["export", &couple, dest.to_str().unwrap(), "--layout", "original"]);
    assert!(out.contains("exported 4 files") && out.contains("0 failed"), "{out}");
    for src in &sources {
        let rel = src.strip_prefix(&card).unwrap();
        assert_eq!(b3_file(src), b3_file(&dest.join(rel)), "{rel:?}");
    }
    env.ok(&["mhl", "check", dest.to_str().unwrap()]);

    // A wrong secret: one clear line, nothing served.
    let out = env.cmd().arg("status").env("NIGHTFOX_SECRET", "not the archive's secret").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("vault key") && err.contains("NIGHTFOX_SECRET"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// `verify` exits 1 with one problem, and the catalog records one unhealthy blob.
fn verify_finds_one_damaged_blob(env: &Env) {
    let out = env.run(&["verify"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("1 problem"), "{text}");
    let damaged = env.catalog().unhealthy_blobs().unwrap();
    assert_eq!(damaged.len(), 1, "{damaged:?}");
}

/// Reads `len` bytes at `off` of a file on the mount; the errno on failure.
fn read_range(p: &Path, off: u64, len: usize) -> Result<Vec<u8>, i32> {
    let f = fs::File::open(p).map_err(|e| e.raw_os_error().unwrap_or(0))?;
    let mut buf = vec![0u8; len];
    let n = f.read_at(&mut buf, off).map_err(|e| e.raw_os_error().unwrap_or(0))?;
    buf.truncate(n);
    Ok(buf)
}

#[test]
fn a_tampered_chunk_is_eio_for_its_range_only_and_verify_finds_it() {
    let env = encrypted_env();
    let couple = env.couple("Tamper Test", "2025-06-02");
    let card = env.path("card");
    let clip = card.join("C0001.MP4");
    write_big(&clip, 16 << 20, 31);
    env.ok(&["import", "--couple", &couple, card.to_str().unwrap()]);
    let want = fs::read(&clip).unwrap();
    let obj = object(&env, &b3(&want));
    // One byte inside chunk 128 (plaintext bytes 8 MiB .. 8 MiB + 64 KiB).
    let bad = 128u64;
    let _ = std::process::Command::new("chmod").arg("u+w").arg(&obj).status();
    flip_byte(&obj, HEADER + bad * (CHUNK + 16) + 1000);

    let mp = env.path("mnt");
    let mut m = Mount::start(&env, &mp, &[]);
    let stderr = m.child.as_mut().unwrap().stderr.take().unwrap();
    let p = mp.join(&couple).join("source/modern/unknown/C0001.MP4");
    let at = bad * CHUNK;
    for (off, len) in [(0u64, 65536usize), (at - (2 << 20), 4096), (at + CHUNK, 4096), (15 << 20, 1 << 20)] {
        let got = read_range(&p, off, len).unwrap_or_else(|e| panic!("read at {off}: errno {e}"));
        assert!(got == want[off as usize..off as usize + len], "bytes at {off}");
    }
    for (off, len) in [(at + 10, 100usize), (at, 4096), (at + CHUNK - 1, 2)] {
        assert_eq!(read_range(&p, off, len), Err(libc::EIO), "a read touching the tampered chunk at {off}");
    }
    // A read that starts before the chunk: EIO, or the bytes before it (a short read), never a byte of it.
    match read_range(&p, at - 100, 4096) {
        Err(e) => assert_eq!(e, libc::EIO),
        Ok(got) => assert!(got == want[at as usize - 100..at as usize], "{} bytes", got.len()),
    }
    // The others still read after the failure.
    let got = read_range(&p, 12 << 20, 4096).unwrap();
    assert!(got == want[12 << 20..(12 << 20) + 4096]);
    m.stop();
    let mut log = String::new();
    let _ = { stderr }.read_to_string(&mut log);
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("does not authenticate")).collect();
    assert!(!lines.is_empty() && lines.iter().all(|l| l.contains("chunk 128")), "{log}");

    verify_finds_one_damaged_blob(&env);
}

#[test]
fn a_file_copied_into_ingest_reads_back_there_after_its_commit() {
    let env = encrypted_env();
    let c = env.couple("Ingest Vault", "2026-02-02");
    let mp = env.path("mnt");
    let bytes = data(21, 300_000);
    {
        let _m = Mount::start(&env, &mp, &[]);
        fs::write(mp.join("ingest").join(&c).join("C0001.MP4"), &bytes).unwrap();
        wait_until("the commit", std::time::Duration::from_secs(60), || env.catalog().files(None).unwrap().len() == 1);
    }
    // A new mount: nothing of the written file is in the kernel's cache; the committed file reads from its blob.
    let _m = Mount::start(&env, &mp, &[]);
    let p = mp.join("ingest").join(&c).join("C0001.MP4");
    assert_eq!(fs::read(&p).expect("read back through /ingest"), bytes);
}

#[test]
fn gc_deletes_an_orphan_object_of_an_encrypted_archive() {
    let env = encrypted_env();
    let c = env.couple("Orphan Vault", "2026-03-03");
    let card = env.path("card");
    write(&card.join("DCIM/100/IMG_0001.JPG"), &data(31, 5000));
    env.ok(&["import", "--couple", &c, card.to_str().unwrap()]);
    // An object no blob row names (a landing whose process died before cataloguing it).
    let orphan_hash = b3(b"never catalogued");
    let orphan = object(&env, &orphan_hash);
    fs::create_dir_all(orphan.parent().unwrap()).unwrap();
    fs::write(&orphan, b"sealed bytes of a blob nobody catalogued").unwrap();
    let out = env.ok(&["gc", "--yes", "--json"]);
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["orphans_freed"].as_u64(), Some(1), "{r}");
    assert!(!orphan.exists(), "the orphan object is deleted");
    // The catalogued blob is untouched and still verifies.
    env.ok(&["verify"]);
}

#[test]
fn an_encrypted_archives_catalog_keeps_its_key_wrapped_never_in_clear() {
    // What a seat joining a shared catalog (or `catalog copy`) gets the key from: the wrapped bytes, as hex.
    let env = encrypted_env();
    let wrapped = fs::read(env.archive.join(WRAPPED_KEY)).unwrap();
    let kept = env.catalog().info(nightfox::catalog::VAULT_KEY_INFO).unwrap().expect("the catalog keeps the key");
    assert_eq!(nightfox::blobs::vault::from_hex(&kept).as_deref(), Some(&wrapped[..]));
    let raw = nightfox::secrets::Secrets::load(&env.archive).unwrap().unwrap_key(&wrapped).unwrap();
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    assert!(!kept.contains(&hex), "the key in clear in the catalog");
    // Encryption is not joined onto a shared catalog that cannot be reached: one line, nothing written.
    let dir = tempfile::Builder::new().prefix("nightfox-vault-").tempdir_in(test_root()).expect("tempdir");
    let archive = dir.path().join("seat");
    let out = std::process::Command::new(BIN)
        .args(["--archive", archive.to_str().unwrap(), "init", "--encrypt", "--catalog"])
        .arg("postgres://nightfox_app@127.0.0.1:1/nightfox")
        .env_remove("NIGHTFOX_ARCHIVE")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!archive.exists());
}

#[test]
fn a_sealed_object_copied_over_another_blobs_name_is_eio_and_verify_reports_it() {
    let env = encrypted_env();
    let c = env.couple("Swap Test", "2025-06-03");
    let card = env.path("card");
    // The same length: only what binds an object to its blob can tell them apart.
    let (a, b) = (data(41, 3 * CHUNK as usize + 500), data(42, 3 * CHUNK as usize + 500));
    write(&card.join("A001.MP4"), &a);
    write(&card.join("B001.MP4"), &b);
    env.ok(&["import", "--couple", &c, card.to_str().unwrap()]);
    let (oa, ob) = (object(&env, &b3(&a)), object(&env, &b3(&b)));
    let _ = std::process::Command::new("chmod").arg("u+w").arg(&ob).status();
    fs::copy(&oa, &ob).unwrap();

    let mp = env.path("mnt");
    let dir = mp.join(&c).join("source/modern/unknown");
    {
        let _m = Mount::start(&env, &mp, &[]);
        for (off, len) in [(0u64, 4096usize), (CHUNK, 100), (3 * CHUNK, 500)] {
            assert_eq!(
                read_range(&dir.join("B001.MP4"), off, len),
                Err(libc::EIO),
                "B's name serves A's bytes at {off}"
            );
        }
        assert!(fs::read(dir.join("A001.MP4")).unwrap() == a, "A itself still reads");
    }
    verify_finds_one_damaged_blob(&env);
}

#[test]
fn a_sealed_copy_killed_mid_way_resumes_into_the_right_blob_with_no_plaintext_staged() {
    let env = encrypted_env();
    let c = env.couple("Resume Vault", "2025-06-04");
    let card = env.path("card");
    let clip = card.join("C0001.MP4");
    // Large enough to be checkpointed (256 MiB and up, every 64 MiB); killed after two checkpoints.
    write_big(&clip, (320 << 20) + 12345, 51);
    env.import_killed_mid_copy(&c, &card, 150 << 20);
    let want = fs::read(&clip).unwrap();
    let staged = env.tmp_entries();
    assert_eq!(staged.len(), 1, "{staged:?}");
    let partial = fs::read(&staged[0]).unwrap();
    assert_eq!(&partial[..5], MAGIC, "the copy is staged sealed");
    for at in [0usize, 1 << 20, 100 << 20] {
        assert!(!contains(&partial, &want[at..at + 64]), "plaintext at {at} in the staged copy");
    }
    drop(partial);
    let out = env.cmd().args(["resume", "1"]).env("RUST_LOG", "nightfox=info").output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && stdout.contains("1 imported"), "{stdout}{stderr}");
    // It went on from the kept (sealed, checkpointed) prefix rather than copying from the start.
    assert!(stderr.contains("resuming the copy after its kept prefix"), "{stderr}");
    assert!(!stderr.contains("from the start"), "{stderr}");
    let files = env.catalog().files(None).unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].blob_hash, b3(&want));
    let stored = fs::read(object(&env, &b3(&want))).unwrap();
    assert_eq!(stored.len() as u64, sealed_len(want.len() as u64));
    assert!(env.tmp_entries().is_empty(), "{:?}", env.tmp_entries());
    let out = env.ok(&["verify"]);
    assert!(out.contains("verified 1 blob") && out.contains(": 0 problem"), "{out}");
    let mp = env.path("mnt");
    let _m = Mount::start(&env, &mp, &[]);
    let got = fs::read(mp.join(&c).join("source/modern/unknown/C0001.MP4")).unwrap();
    assert!(got == want, "the resumed blob reads back as the clip");
}
