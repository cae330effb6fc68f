//! Same-pass checksums (issue 17, chain of custody): every import path records each blob's xxh64 and XXH3-128
//! with its BLAKE3, and `info` shows them as ASC MHL and `xxhsum` write them. Expected values are computed here
//! independently (xxhash-rust over the source bytes, and `xxhsum` where Debian's `xxhash` is installed).

mod common;

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::nfsd::NfsProcess;
use common::*;

/// (xxh64, xxh128) of a file as `xxhsum -H1` / `-H2` print them: lowercase, big-endian, zero-padded.
fn expected(p: &Path) -> (String, String) {
    let bytes = fs::read(p).unwrap();
    (format!("{:016x}", xxhash_rust::xxh64::xxh64(&bytes, 0)), format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&bytes)))
}

/// What `xxhsum -H<n>` prints for a file, when it is installed.
fn xxhsum(p: &Path, algo: &str) -> Option<String> {
    let out = Command::new("xxhsum").arg(format!("-H{algo}")).arg(p).output().ok()?;
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    out.status.success().then(|| line.split_whitespace().next().unwrap_or_default().to_string())
}

/// `info --json` of every catalogued file: (original path, blake3, xxh64, xxh128).
fn infos(env: &Env) -> Vec<(String, String, serde_json::Value, serde_json::Value)> {
    let cat = env.catalog();
    let mut out = Vec::new();
    for f in cat.files(None).unwrap() {
        let couple = cat.couple_by_id(f.couple_id).unwrap().folder_name;
        let cam = f.camera_id.and_then(|id| cat.camera_by_id(id).unwrap()).map(|c| c.slug);
        let path = nightfox::fs::tree_path(&couple, cam.as_deref(), &f);
        let v: serde_json::Value = serde_json::from_str(&env.ok(&["info", "--json", &path])).unwrap();
        out.push((
            String::from_utf8_lossy(&f.original_path).into_owned(),
            v["blake3"].as_str().unwrap().to_string(),
            v["xxh64"].clone(),
            v["xxh128"].clone(),
        ));
    }
    out
}

/// Every file under `src` is catalogued with the checksums of its bytes (matched by BLAKE3).
fn assert_sums(env: &Env, src: &Path) {
    let infos = infos(env);
    let mut files = Vec::new();
    walk_files(src, &mut files);
    assert!(!files.is_empty());
    for f in &files {
        let h = b3_file(f);
        let (x64, x128) = expected(f);
        let hits: Vec<_> = infos.iter().filter(|i| i.1 == h).collect();
        assert!(!hits.is_empty(), "{f:?} not catalogued");
        for (orig, _, a, b) in hits {
            assert_eq!(a.as_str(), Some(x64.as_str()), "xxh64 of {orig}");
            assert_eq!(b.as_str(), Some(x128.as_str()), "xxh128 of {orig}");
        }
    }
}

/// A card of clips, sidecars, an empty file and one file larger than a copy chunk (hashed on two cores).
fn card(root: &Path) -> Vec<PathBuf> {
    let mut v = sony_card(root, 2, 17);
    for (n, len) in [("DCIM/100MEDIA/IMG_0001.JPG", 70_001usize), ("DCIM/100MEDIA/EMPTY.JPG", 0), ("big.MP4", 9 << 20)]
    {
        let p = root.join(n);
        write(&p, &data(len as u64 + 3, len));
        v.push(p);
    }
    v
}

/// Sets every blob's checksums to NULL, as for blobs stored before they were kept.
fn forget_sums(env: &Env) {
    let c = rusqlite::Connection::open(env.archive.join("catalog.db")).unwrap();
    c.execute("UPDATE blobs SET xxh64 = NULL, xxh128 = NULL", []).unwrap();
}

fn null_sums(env: &Env) -> usize {
    env.catalog().blobs(None).unwrap().iter().filter(|b| b.xxh64.is_none() || b.xxh128.is_none()).count()
}

#[test]
fn a_card_import_records_the_checksums_of_the_source_bytes() {
    let env = Env::new();
    let c = env.couple("Ana & Tom", "2025-06-14");
    let src = env.path("card");
    let files = card(&src);
    env.ok(&["import", "--couple", &c, src.to_str().unwrap()]);
    assert_sums(&env, &src);
    assert_eq!(null_sums(&env), 0);
    // The formatting is what the reference tools print.
    let big = src.join("big.MP4");
    if let (Some(h1), Some(h2)) = (xxhsum(&big, "1"), xxhsum(&big, "2")) {
        assert_eq!((h1, h2), expected(&big));
    }
    // The text form shows them too.
    let f = env.catalog().files(None).unwrap().into_iter().find(|f| f.display_name == b"big.MP4").unwrap();
    let couple = env.catalog().couple_by_id(f.couple_id).unwrap().folder_name;
    let text = env.ok(&["info", &nightfox::fs::tree_path(&couple, None, &f)]);
    let (x64, x128) = expected(&big);
    assert!(
        text.contains(&format!("xxh64          {x64}")) && text.contains(&format!("xxh128         {x128}")),
        "{text}"
    );
    assert_eq!(files.len(), env.catalog().files(None).unwrap().len());
}

/// A copy killed inside a large file resumes after its kept prefix; the checksums continue over it.
#[test]
fn a_resume_inside_a_file_keeps_the_checksums_whole() {
    let env = Env::new();
    let c = env.couple("Resume", "2025-06-14");
    let src = env.path("card");
    write_big(&src.join("CLIP/C0099.MP4"), 300 << 20, 99);
    env.import_killed_mid_copy(&c, &src, 100 << 20);
    env.ok(&["resume", "1"]);
    assert_sums(&env, &src);
}

/// Blobs stored before the checksums were kept get them when the same content is read again: by another
/// couple's import (at finalize) and by the duplicate check of the same couple (hashed in place, never copied).
#[test]
fn reading_a_duplicate_fills_in_missing_checksums_and_never_overwrites() {
    let env = Env::new();
    let a = env.couple("A", "2025-06-14");
    let b = env.couple("B", "2025-06-15");
    let src = env.path("card");
    card(&src);
    env.ok(&["import", "--couple", &a, src.to_str().unwrap()]);
    forget_sums(&env);
    assert!(null_sums(&env) > 0);
    env.ok(&["import", "--couple", &b, src.to_str().unwrap()]);
    assert_eq!(null_sums(&env), 0, "another couple's import of the same content fills them in");
    assert_sums(&env, &src);
    forget_sums(&env);
    let out = env.ok(&["import", "--couple", &a, "--json", src.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    // Every file but the empty one (never a duplicate by content) is found a duplicate without a copy.
    assert_eq!(v["files_imported"], 1, "{out}");
    // The clips are hashed in place and get their sums back; their sidecars are duplicates with them, unread.
    let cat = env.catalog();
    let sidecars: Vec<String> = cat
        .files(None)
        .unwrap()
        .into_iter()
        .filter(|f| f.original_path.ends_with(b".XML"))
        .map(|f| f.blob_hash)
        .collect();
    let missing: Vec<_> = cat.blobs(None).unwrap().into_iter().filter(|b| b.xxh64.is_none()).collect();
    assert!(!missing.is_empty() && missing.iter().all(|b| sidecars.contains(&b.hash)), "{missing:?}");
    assert_sums_where_known(&env, &src);
    // Recorded sums are never replaced.
    let c = rusqlite::Connection::open(env.archive.join("catalog.db")).unwrap();
    c.execute("UPDATE blobs SET xxh64 = '0000000000000000' WHERE size > 0", []).unwrap();
    env.ok(&["import", "--couple", &a, src.to_str().unwrap()]);
    assert!(env
        .catalog()
        .blobs(None)
        .unwrap()
        .iter()
        .filter(|b| b.size > 0)
        .all(|b| b.xxh64.as_deref() == Some("0000000000000000")));
}

/// [`assert_sums`] for the blobs that have sums (the others must be null, not wrong).
fn assert_sums_where_known(env: &Env, src: &Path) {
    let mut files = Vec::new();
    walk_files(src, &mut files);
    let cat = env.catalog();
    for f in &files {
        let b = cat.blob(&b3_file(f)).unwrap().expect("catalogued");
        if let Some(x) = &b.xxh64 {
            assert_eq!((x.clone(), b.xxh128.clone().unwrap()), expected(f), "{f:?}");
        }
    }
}

/// Files written through the mount's `/ingest`: in order (hashed as the writes come) and out of order (the
/// checksums then come from the commit's read from disk).
#[test]
fn ingest_writes_through_the_mount_record_the_checksums() {
    let env = Env::new();
    let c = env.couple("Ingest", "2025-06-14");
    let mp = env.path("mnt");
    let _m = Mount::start(&env, &mp, &[]);
    let src = env.path("written");
    let dest = mp.join("ingest").join(&c);
    let seq = data(41, 5 << 20);
    write(&src.join("SEQ.MP4"), &seq);
    fs::write(dest.join("SEQ.MP4"), &seq).unwrap();
    // Second half first, then the first half.
    let ooo = data(42, 3 << 20);
    write(&src.join("OOO.MP4"), &ooo);
    let f = fs::File::create(dest.join("OOO.MP4")).unwrap();
    let half = ooo.len() / 2;
    f.write_all_at(&ooo[half..], half as u64).unwrap();
    f.write_all_at(&ooo[..half], 0).unwrap();
    drop(f);
    wait_until("both files catalogued", Duration::from_secs(90), || env.catalog().files(None).unwrap().len() >= 2);
    assert_sums(&env, &src);
}

/// An NFS export (a real `cargo-nfs3-server` process): the checksums of what came over the network.
#[test]
fn an_nfs_import_records_the_checksums() {
    let root = tempfile::Builder::new().prefix("nfs-sums-").tempdir_in(test_root()).unwrap();
    let dir = root.path().join("card");
    card(&dir);
    let srv = NfsProcess::start(root.path(), true);
    let env = Env::new();
    let c = env.couple("Nfs", "2025-06-14");
    let url = format!("nfs://127.0.0.1:{}/card?export=/", srv.port);
    let id = env.ok(&["source", "add", &url, "--couple", &c]).trim().to_string();
    env.ok(&["source", "test", &id]);
    env.ok(&["source", "import", &id]);
    assert_sums(&env, &dir);
    assert_eq!(null_sums(&env), 0);
}
