//! Letting go (issue 18): `couple remove`, `file remove` and `session undo` move rows to the trash (gone from
//! `info`, the listings and `export` at once), `trash restore` puts them back exactly, and `gc` purges what outlived
//! its retention (a faked clock, `NIGHTFOX_NOW`) and frees exactly the blobs nothing references; never a blob an
//! import running beside it needs, and `kill -9` at any moment leaves the catalog consistent. All through the
//! real binary.

mod common;

use std::collections::{HashMap, HashSet};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

const DAY: i64 = 86_400;

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// `nightfox ARGS` at the archive's clock `at`; asserts success, returns stdout.
fn ok_at(env: &Env, at: i64, args: &[&str]) -> String {
    let out = env.cmd().env("NIGHTFOX_NOW", at.to_string()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "nightfox {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not json ({e}): {s}"))
}

/// The tree paths (`couple/source/type/camera/name`) of a couple's live files, with their file ids.
fn tree_paths(env: &Env, folder: &str) -> Vec<(String, i64)> {
    let cat = env.catalog();
    let c = cat.couple_by_folder(folder).unwrap();
    let slugs: HashMap<i64, String> = cat.cameras().unwrap().into_iter().map(|c| (c.id, c.slug)).collect();
    let mut out: Vec<(String, i64)> = cat
        .files(Some(c.id))
        .unwrap()
        .iter()
        .map(|f| {
            (nightfox::fs::tree_path(folder, f.camera_id.and_then(|id| slugs.get(&id)).map(String::as_str), f), f.id)
        })
        .collect();
    out.sort();
    out
}

/// What `export` writes for a couple: the relative paths below DEST (the MHL history aside).
fn exported(env: &Env, what: &str, name: &str) -> Vec<String> {
    let dest = env.path(name);
    env.ok(&["export", what, dest.to_str().unwrap()]);
    let mut files = Vec::new();
    walk_files(&dest, &mut files);
    let mut rel: Vec<String> = files
        .iter()
        .map(|p| p.strip_prefix(&dest).unwrap().to_string_lossy().into_owned())
        .filter(|p| !p.starts_with("ascmhl"))
        .collect();
    rel.sort();
    rel
}

/// The catalog agrees with itself and the store: each live couple's totals are its live files, every live file's
/// blob row and object are there (and the object hashes to its name), and `verify` of the blobs passes.
fn assert_catalog_consistent(env: &Env) {
    let cat = env.catalog();
    for c in cat.couples().unwrap() {
        let files = cat.files(Some(c.id)).unwrap();
        let bytes: u64 = files.iter().map(|f| f.size).sum();
        assert_eq!((c.file_count, c.total_bytes), (files.len() as i64, bytes as i64), "totals of {}", c.folder_name);
    }
    for e in cat.trash().unwrap() {
        assert!(e.files >= 0 && e.bytes >= 0);
    }
    let objects: HashMap<String, std::path::PathBuf> = env.object_files().into_iter().collect();
    for f in cat.files(None).unwrap() {
        assert!(cat.blob(&f.blob_hash).unwrap().is_some(), "the blob row of file {}", f.id);
        let p = objects.get(&f.blob_hash).unwrap_or_else(|| panic!("the object of file {} ({})", f.id, f.blob_hash));
        assert_eq!(b3_file(p), f.blob_hash);
    }
    let camera_files: i64 = cat.camera_listing().unwrap().iter().map(|l| l.file_count).sum();
    let live_with_camera = cat.files(None).unwrap().iter().filter(|f| f.camera_id.is_some()).count() as i64;
    assert_eq!(camera_files, live_with_camera, "camera totals are the live files");
}

#[test]
fn remove_hides_at_once_and_restore_puts_back_exactly() {
    let env = Env::new();
    let folder = env.couple("Ana & Bo", "2026-06-01");
    let card = env.path("card");
    sony_card(&card, 2, 1);
    write(&card.join("extra.mov"), &data(9, 20_000));
    env.ok(&["import", "--couple", &folder, card.to_str().unwrap()]);
    let before = tree_paths(&env, &folder);
    assert_eq!(before.len(), 5, "{before:?}");
    let all_exported = exported(&env, &folder, "out1");
    assert_eq!(all_exported.len(), 5);

    let clip = before.iter().find(|(p, _)| p.ends_with("C0001.MP4")).unwrap().0.clone();
    let sidecar = before.iter().find(|(p, _)| p.ends_with("C0001M01.XML")).unwrap().0.clone();
    // A sidecar alone is refused (its clip takes it along).
    let out = env.run(&["file", "remove", &sidecar, "--yes"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("clip") && err.trim().lines().count() == 1, "{err}");

    let said = env.ok(&["file", "remove", &clip, "--yes"]);
    assert!(said.contains("trash entry 1") && said.contains("2 files"), "{said}");
    for p in [&clip, &sidecar] {
        let out = env.run(&["info", p]);
        assert!(!out.status.success(), "{p} is gone from info");
    }
    let listed = json(&env.ok(&["couple", "list", "--json"]));
    assert_eq!(listed[0]["file_count"], 3, "{listed}");
    let now_exported = exported(&env, &folder, "out2");
    assert_eq!(now_exported.len(), 3, "{now_exported:?}");
    assert!(!now_exported.iter().any(|p| p.contains("C0001")), "{now_exported:?}");
    let trash = json(&env.ok(&["trash", "list", "--json"]));
    assert_eq!(trash.as_array().unwrap().len(), 1);
    assert_eq!((trash[0]["kind"].as_str(), trash[0]["files"].as_i64()), (Some("file"), Some(2)));
    assert_eq!(trash[0]["label"].as_str(), Some(clip.as_str()));

    env.ok(&["trash", "restore", "1"]);
    assert_eq!(tree_paths(&env, &folder), before, "same paths, same file ids");
    env.ok(&["info", &clip]);
    assert!(env.ok(&["trash", "list"]).trim().is_empty());

    // The whole couple.
    let said = env.ok(&["couple", "remove", &folder, "--yes"]);
    assert!(said.contains("5 files"), "{said}");
    assert!(env.ok(&["couple", "list"]).trim().is_empty(), "no couple listed");
    assert!(!env.run(&["info", &clip]).status.success());
    assert!(!env.run(&["export", &folder, env.path("out3").to_str().unwrap()]).status.success());
    let out = env.run(&["import", "--couple", &folder, card.to_str().unwrap()]);
    assert!(!out.status.success(), "no import into a removed couple");
    let out = env.run(&["resume", "1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("no couple"), "no resume into a removed couple: {err}");
    env.ok(&["trash", "restore", "2"]);
    assert_eq!(tree_paths(&env, &folder), before);
    assert_eq!(exported(&env, &folder, "out4"), all_exported);
    assert_catalog_consistent(&env);
    let log = env.ok(&["log"]);
    for action in ["file.remove", "couple.remove", "trash.restore"] {
        assert!(log.contains(action), "{action}: {log}");
    }
}

#[test]
fn destructive_commands_off_a_terminal_need_yes() {
    let env = Env::new();
    let folder = env.couple("Cy & Di", "2026-07-01");
    let card = env.path("card");
    write(&card.join("A001.MOV"), &data(1, 10_000));
    env.ok(&["import", "--couple", &folder, card.to_str().unwrap()]);
    let path = tree_paths(&env, &folder)[0].0.clone();
    for args in [
        vec!["file", "remove", path.as_str()],
        vec!["couple", "remove", folder.as_str()],
        vec!["session", "undo", "1"],
        vec!["gc"],
    ] {
        let out = env.run(&args); // stdin is not a terminal
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--yes") && err.trim().lines().count() == 1, "{args:?}: {err}");
    }
    assert_eq!(tree_paths(&env, &folder).len(), 1, "nothing removed");
    assert!(env.catalog().trash().unwrap().is_empty());
    for args in [vec!["trash", "restore", "7"], vec!["file", "remove", "nope/source/modern/unknown/x", "--yes"]] {
        let out = env.run(&args);
        assert!(!out.status.success(), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr).trim().lines().count(), 1);
    }
    env.ok(&["gc", "--dry-run"]);
}

#[test]
fn gc_after_the_retention_frees_exactly_the_unreferenced_blobs() {
    let env = Env::new();
    let a = env.couple("Ed & Flo", "2026-08-01");
    let b = env.couple("Gil & Hal", "2026-08-02");
    let (own, shared, kept) = (data(11, 30_000), data(12, 40_000), data(13, 50_000));
    let card_a = env.path("card-a");
    write(&card_a.join("own.mov"), &own);
    write(&card_a.join("shared.mov"), &shared);
    let card_b = env.path("card-b");
    write(&card_b.join("shared-too.mov"), &shared);
    write(&card_b.join("kept.mov"), &kept);
    env.ok(&["import", "--couple", &a, card_a.to_str().unwrap()]);
    env.ok(&["import", "--couple", &b, card_b.to_str().unwrap()]);
    let objects = |env: &Env| env.object_files().into_iter().map(|(n, _)| n).collect::<HashSet<_>>();
    assert_eq!(objects(&env).len(), 3);

    let t0 = now();
    ok_at(&env, t0, &["couple", "remove", &a, "--yes"]);
    // A session undone, then restored: an entry that must not be purged once restored.
    ok_at(&env, t0, &["session", "undo", "2", "--yes"]);
    ok_at(&env, t0, &["trash", "restore", "2"]);
    // Within the retention: nothing is purged or freed (the removed couple's blobs are still referenced).
    let r = json(&ok_at(&env, t0 + DAY, &["gc", "--yes", "--json"]));
    assert_eq!((r["purged"].as_array().unwrap().len(), r["blobs_freed"].as_u64()), (0, Some(0)), "{r}");
    assert_eq!(objects(&env).len(), 3);

    // A stale tmp/ file and a fresh one.
    let stale = env.archive.join("tmp/left-by-a-crash.part");
    write(&stale, b"stale");
    let fresh = env.archive.join("tmp/fresh.part");
    write(&fresh, b"fresh");
    let old = std::time::SystemTime::now() - Duration::from_secs(2 * DAY as u64);
    std::fs::File::options().write(true).open(&stale).unwrap().set_modified(old).unwrap();

    // Past it, a dry run deletes nothing and says what it would purge.
    let later = t0 + 31 * DAY;
    let r = json(&ok_at(&env, later, &["gc", "--dry-run", "--json"]));
    assert_eq!(r["purged"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(objects(&env).len(), 3, "a dry run deletes nothing");
    assert_eq!(env.catalog().trash().unwrap().len(), 1);
    assert!(stale.exists());

    // The run: the couple purged, exactly its own blob freed (the shared one stays with the other couple).
    let r = json(&ok_at(&env, later, &["gc", "--yes", "--json"]));
    assert_eq!(r["purged"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(r["blobs_freed"].as_u64(), Some(1), "{r}");
    assert_eq!(r["bytes_freed"].as_u64(), Some(own.len() as u64), "{r}");
    let left = objects(&env);
    assert_eq!(left, [b3(&shared), b3(&kept)].into_iter().collect(), "exactly the unreferenced blob is gone");
    assert!(!stale.exists(), "a tmp/ leftover older than a day is removed");
    assert!(fresh.exists(), "a fresh one stays");
    assert!(env.catalog().trash().unwrap().is_empty());
    assert!(env.catalog().couple_by_id(1).is_err(), "the couple is gone for good");
    env.ok(&["verify"]);
    env.assert_consistent();
    assert_catalog_consistent(&env);
    // Running again frees nothing more.
    let r = json(&ok_at(&env, later, &["gc", "--yes", "--json"]));
    assert_eq!(r["blobs_freed"].as_u64(), Some(0), "{r}");
    assert!(env.ok(&["log"]).contains("\tgc\t"));
}

#[test]
fn gc_while_an_export_runs_deletes_no_blob() {
    let env = Env::new();
    let a = env.couple("Ivy & Jo", "2026-09-01");
    let card = env.path("card");
    write(&card.join("x.mov"), &data(21, 10_000));
    env.ok(&["import", "--couple", &a, card.to_str().unwrap()]);
    let t0 = now();
    ok_at(&env, t0, &["couple", "remove", &a, "--yes"]);
    // Hold the export lock as an export does (shared).
    let lock = nightfox::lockfile::LockFile::take_shared(&env.archive.join("locks/export.lock")).unwrap();
    let r = json(&ok_at(&env, t0 + 31 * DAY, &["gc", "--yes", "--json"]));
    assert_eq!(r["blobs_freed"].as_u64(), Some(0), "{r}");
    assert!(r["blobs_skipped"].as_str().unwrap_or("").contains("export"), "{r}");
    assert_eq!(env.object_files().len(), 1, "no blob deleted while an export runs");
    drop(lock);
    let r = json(&ok_at(&env, t0 + 31 * DAY, &["gc", "--yes", "--json"]));
    assert_eq!(r["blobs_freed"].as_u64(), Some(1), "{r}");
    assert!(env.object_files().is_empty());
}

/// Waits (bounded) for a child; kills it if it overstays.
fn wait_child(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("a child process overstayed {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn gc_beside_an_import_never_deletes_its_blobs() {
    let env = Env::new();
    let old = env.couple("Old", "2026-10-01");
    let new = env.couple("New", "2026-10-02");
    let card = env.path("card");
    for i in 0..150u64 {
        write(&card.join(format!("F{i:04}.MOV")), &data(100 + i, 4_000 + (i as usize) * 37));
    }
    write_big(&card.join("BIG.MOV"), 24 << 20, 7);
    // The same content first catalogued in a couple that is then removed: once purged, its blobs are garbage that
    // the import of the same card into another couple relies on while gc runs beside it.
    env.ok(&["import", "--couple", &old, card.to_str().unwrap()]);
    let t0 = now();
    ok_at(&env, t0, &["couple", "remove", &old, "--yes"]);
    let later = (t0 + 31 * DAY).to_string();

    let mut import = env
        .cmd()
        .env("NIGHTFOX_IMPORT_WORKERS", "1")
        .args(["import", "--couple", &new])
        .arg(&card)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut runs = 0;
    while import.try_wait().unwrap().is_none() && runs < 400 && start.elapsed() < Duration::from_secs(300) {
        let mut gc = env
            .cmd()
            .env("NIGHTFOX_NOW", &later)
            .args(["gc", "--yes", "--json"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let s = wait_child(&mut gc, Duration::from_secs(120));
        assert!(s.success(), "gc beside an import");
        runs += 1;
    }
    let status = wait_child(&mut import, Duration::from_secs(300));
    let mut err = String::new();
    std::io::Read::read_to_string(import.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "the import: {err}");
    assert!(runs > 0, "gc ran beside the import");
    // One more gc after both, then everything must hold.
    ok_at(&env, t0 + 31 * DAY, &["gc", "--yes"]);
    assert_eq!(tree_paths(&env, &new).len(), 151, "every file imported");
    env.ok(&["verify"]);
    env.assert_consistent();
    assert_catalog_consistent(&env);
    let mut seen = HashSet::new();
    let objects: HashMap<String, std::path::PathBuf> = env.object_files().into_iter().collect();
    for f in env.catalog().files(None).unwrap() {
        let bytes = std::fs::read(&objects[&f.blob_hash]).unwrap();
        assert_eq!(b3(&bytes), f.blob_hash, "file {} reads whole", f.id);
        seen.insert(f.blob_hash);
    }
    assert_eq!(seen.len(), 151);
}

#[test]
fn kill_9_during_remove_restore_and_gc_leaves_a_consistent_catalog() {
    let env = Env::new();
    let mut folders = Vec::new();
    for i in 0..3u64 {
        let f = env.couple(&format!("K{i}"), "2026-11-01");
        let card = env.path(&format!("card{i}"));
        for j in 0..40u64 {
            write(&card.join(format!("C{j:03}.MOV")), &data(1000 * i + j, 3_000 + j as usize));
        }
        sony_card(&card, 3, 50 + i);
        env.ok(&["import", "--couple", &f, card.to_str().unwrap()]);
        folders.push(f);
    }
    let t0 = now();
    let later = (t0 + 31 * DAY).to_string();
    let kill_after = |args: &[&str], delay_us: u64, at: &str| {
        let mut child =
            env.cmd().env("NIGHTFOX_NOW", at).args(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(Duration::from_micros(delay_us));
        let _ = child.kill(); // SIGKILL
        wait_child(&mut child, Duration::from_secs(60));
    };
    let at = t0.to_string();
    for (round, delay) in [0u64, 2_000, 5_000, 10_000, 20_000, 40_000, 80_000].into_iter().enumerate() {
        let folder = &folders[round % folders.len()];
        let live = env.catalog().couple_by_folder(folder).is_ok();
        if live {
            kill_after(&["couple", "remove", folder, "--yes"], delay, &at);
        }
        assert_catalog_consistent(&env);
        let trash = env.catalog().trash().unwrap();
        if let Some(e) = trash.first() {
            kill_after(&["trash", "restore", &e.id.to_string()], delay, &at);
            assert_catalog_consistent(&env);
        }
        kill_after(&["gc", "--yes"], delay, &later);
        assert_catalog_consistent(&env);
    }
    // A gc that runs to its end cleans whatever a killed one left (an object whose row it had forgotten).
    ok_at(&env, t0 + 31 * DAY, &["gc", "--yes"]);
    assert_catalog_consistent(&env);
    env.assert_consistent();
    env.ok(&["verify"]);
    // Every trash entry left restores whole.
    for e in env.catalog().trash().unwrap() {
        env.ok(&["trash", "restore", &e.id.to_string()]);
    }
    assert_catalog_consistent(&env);
}

fn names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = match std::fs::read_dir(dir) {
        Ok(d) => d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

#[test]
fn removed_while_mounted_leaves_the_mount_at_once_and_restored_comes_back_with_its_inode() {
    use std::os::unix::fs::MetadataExt;
    let env = Env::new();
    let folder = env.couple("Ivy & Jo", "2026-10-01");
    let other = env.couple("Kim & Lu", "2026-10-02");
    let cam = env.ok(&["camera", "add", "--name", "A cam", "--type", "modern"]).trim().to_string();
    let card = env.path("card");
    sony_card(&card, 2, 3);
    env.ok(&["import", "--couple", &folder, "--camera", &cam, card.to_str().unwrap()]);
    let card2 = env.path("card2");
    sony_card(&card2, 1, 4);
    env.ok(&["import", "--couple", &other, "--camera", &cam, card2.to_str().unwrap()]);
    let mp = env.path("mnt");
    let mut m = Mount::start(&env, &mp, &[]);
    let dir = mp.join(&folder).join("source/modern").join(&cam);
    let clip = dir.join("C0001.MP4");
    let (ino, bytes) = (std::fs::metadata(&clip).unwrap().ino(), std::fs::read(&clip).unwrap());
    assert_eq!(names(&dir).len(), 4);

    env.ok(&["file", "remove", &format!("{folder}/source/modern/{cam}/C0001.MP4"), "--yes"]);
    wait_until("the clip to leave the mount", Duration::from_secs(10), || names(&dir).len() == 2);
    assert_eq!(names(&dir), ["C0002.MP4", "C0002M01.XML"], "the clip went with its sidecar");
    assert!(std::fs::metadata(&clip).is_err(), "its path no longer resolves");
    let entry = json(&env.ok(&["trash", "list", "--json"]))[0]["id"].to_string();
    env.ok(&["trash", "restore", &entry]);
    wait_until("the clip to come back", Duration::from_secs(10), || names(&dir).len() == 4);
    assert_eq!(std::fs::metadata(&clip).unwrap().ino(), ino, "the same inode");
    assert_eq!(std::fs::read(&clip).unwrap(), bytes);

    // A whole couple.
    env.ok(&["couple", "remove", &other, "--yes"]);
    wait_until("the couple to leave the mount", Duration::from_secs(10), || !names(&mp).contains(&other));
    assert!(std::fs::metadata(mp.join(&other).join("source")).is_err());
    assert!(names(&mp).contains(&folder));
    m.stop();
}
