//! Real cards and real mistakes (issue 14): a card with a bad file, salvage, identical sidecars and empty files,
//! Mac and Windows litter, rot healed by a new verified copy, resume inside a big file after `kill -9`, and a
//! post-import move inside the source. Cards with bad sectors are served by the `faultfs` fixture (a FUSE mirror
//! that answers EIO for chosen ranges and counts the bytes it serves); the tree is read through a real mount.

mod common;

use std::fs;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::faultfs::FaultFs;
use common::nfsd::NfsProcess;
use common::*;
use nightfox::catalog::{ItemState, SessionStatus};

const MIB: u64 = 1 << 20;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A Sony card of `clips` clips in the env's `card`, served through a fault-injecting mirror at `card-mnt`.
fn faulty_card(env: &Env, clips: usize, seed: u64) -> (FaultFs, Vec<std::path::PathBuf>) {
    let card = env.path("card");
    let files = sony_card(&card, clips, seed);
    let fs = FaultFs::mount(&card, &env.path("card-mnt"));
    (fs, files)
}

/// `nightfox import ARGS DIR` with short retry delays (a bad file is tried three times in well under a second).
fn import_from(env: &Env, args: &[&str], dir: &Path) -> std::process::Output {
    env.cmd().arg("import").args(args).arg(dir).env("NIGHTFOX_RETRY_DELAYS", "0.05").output().unwrap()
}

fn rel(card: &Path, p: &Path) -> String {
    p.strip_prefix(card).unwrap().to_string_lossy().into_owned()
}

fn blob_of(env: &Env, hash: &str) -> std::path::PathBuf {
    env.archive.join("objects").join(&hash[..2]).join(&hash[2..4]).join(hash)
}

#[test]
fn one_unreadable_file_fails_alone_and_resume_retries_it() {
    let env = Env::new();
    let c = env.couple("Bad Card", "2025-06-01");
    let (fault, files) = faulty_card(&env, 3, 11);
    let card = env.path("card");
    let bad = files.iter().find(|p| p.ends_with("C0002.MP4")).unwrap().clone();
    fault.fail_file(&rel(&card, &bad));
    let out = import_from(&env, &["--couple", &c], fault.mountpoint());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("C0002.MP4") && err.contains("nightfox resume 1"), "{err}");
    let cat = env.catalog();
    let s = cat.session(1).unwrap();
    assert_eq!(s.status, SessionStatus::Completed, "{s:?}");
    // The clip failed, and its sidecar is held back with it (a resume brings them in together).
    assert_eq!(s.files_error, 2);
    let catalogued: Vec<String> =
        cat.files(None).unwrap().iter().map(|f| String::from_utf8_lossy(&f.display_name).into_owned()).collect();
    assert_eq!(catalogued.len(), files.len() - 2, "{catalogued:?}");
    assert!(!catalogued.contains(&"C0002.MP4".to_string()));
    assert!(fault.eio_count(&rel(&card, &bad)) >= 3, "tried a few times");

    // The card reads again: resume retries the failed file, and the rest is not read again.
    fault.heal(&rel(&card, &bad));
    fault.reset_counters();
    let out = env.run(&["resume", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let cat = env.catalog();
    let row = cat.files(None).unwrap().into_iter().find(|f| f.display_name == b"C0002.MP4").expect("retried");
    assert_eq!(row.blob_hash, b3_file(&bad));
    let side = cat.sidecars_of(row.id).unwrap();
    assert_eq!(side.len(), 1, "the sidecar came in with its clip");
    let good = files.iter().find(|p| p.ends_with("C0001.MP4")).unwrap();
    assert_eq!(fault.bytes_read(&rel(&card, good)), 0, "finished files are not read again");
    env.assert_consistent();

    // `session cancel` ends a session for good; its files stay.
    fault.fail_file(&rel(&card, &bad));
    write(&env.path("card/extra/NEW.MP4"), &data(99, 5000));
    let out = import_from(&env, &["--couple", &c, "--duplicates", "import"], fault.mountpoint());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let before = env.catalog().files(None).unwrap().len();
    env.ok(&["session", "cancel", "2"]);
    let out = env.run(&["resume", "2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cancelled for good"), "{}", stderr(&out));
    assert_eq!(env.catalog().files(None).unwrap().len(), before);
    // `status` lists open sessions only: one cancelled for good is not shown as paused.
    let st: serde_json::Value = serde_json::from_str(&env.ok(&["status", "--json"])).unwrap();
    assert!(st["sessions"].as_array().unwrap().iter().all(|s| s["id"] != 2), "{st}");
    assert!(env.ok(&["status"]).contains("none running or paused"));
}

#[test]
fn salvage_keeps_what_can_be_read_and_a_clean_read_replaces_it() {
    let env = Env::new();
    let c = env.couple("Salvage", "2025-06-02");
    let card = env.path("card");
    let clip = card.join("clips/C0001.MP4");
    let original = data(7, 12 * MIB as usize);
    write(&clip, &original);
    write(&card.join("clips/C0002.MP4"), &data(8, 300_000));
    let fault = FaultFs::mount(&card, &env.path("card-mnt"));
    let r = "clips/C0001.MP4";
    fault.fail_range(r, 5 * MIB, 8192);
    let out = import_from(&env, &["--salvage", "--couple", &c], fault.mountpoint());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stdout(&out).contains("1 imported") && stdout(&out).contains("1 damaged"), "{}", stdout(&out));
    assert!(stderr(&out).contains("damaged:") && stderr(&out).contains("5242880"), "{}", stderr(&out));
    let cat = env.catalog();
    let f = cat.files(None).unwrap().into_iter().find(|f| f.display_name == b"C0001.MP4").unwrap();
    assert_eq!(f.bad_ranges.as_deref(), Some("[[5242880,8192]]"));
    let mut expected = original.clone();
    expected[5 * MIB as usize..5 * MIB as usize + 8192].fill(0);
    assert_eq!(f.blob_hash, b3(&expected), "stored by the hash of what was stored");
    assert_eq!(fs::read(blob_of(&env, &f.blob_hash)).unwrap(), expected);
    let info = env.ok(&["info", &format!("{c}/source/modern/unknown/C0001.MP4")]);
    assert!(info.contains("damaged") && info.contains("5242880"), "{info}");
    let status = env.ok(&["status"]);
    assert!(status.contains("damaged files") && status.contains("C0001.MP4\t[[5242880,8192]]"), "{status}");
    // Help is wrapped to the terminal's width: compare words.
    let help = env.ok(&["import", "--help"]).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(help.contains("sidecar is never skipped on its own bytes"), "{help}");
    {
        let mp = env.path("mnt");
        let _m = Mount::start(&env, &mp, &[]);
        let in_tree = mp.join(&c).join("source/modern/unknown/C0001.MP4");
        assert_eq!(getxattr(&in_tree, "user.nightfox.damaged").as_deref(), Ok(&b"[[5242880,8192]]"[..]));
        assert_eq!(fs::read(&in_tree).unwrap(), expected, "the mount serves what was salvaged");
        let clean = mp.join(&c).join("source/modern/unknown/C0002.MP4");
        assert_eq!(getxattr(&clean, "user.nightfox.damaged"), Err(libc::ENODATA));
    }
    assert!(!env.ok(&["verify"]).contains("BAD"));

    // The card reads cleanly again: a plain import replaces the salvaged copy in place (same file, same path).
    fault.heal(r);
    let out = import_from(&env, &["--couple", &c], fault.mountpoint());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("1 healed"), "{}", stdout(&out));
    let g = env.catalog().file(f.id).unwrap().unwrap();
    assert_eq!(g.blob_hash, b3(&original));
    assert_eq!(g.bad_ranges, None);
    assert_eq!(env.catalog().files(None).unwrap().len(), 2);
    let kinds: Vec<String> = env.catalog().events_after(0, 100).unwrap().into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, ["file_replaced"]);
    env.assert_consistent();
}

#[test]
fn identical_sidecars_and_empty_files_stay_with_their_clips() {
    let env = Env::new();
    let c = env.couple("Sidecars", "2025-06-03");
    let card = env.path("card");
    let dir = card.join("PRIVATE/M4ROOT/CLIP");
    let xml = sony_xml("ILCE-7SM3", "5001234", "2025-06-03T10:00:00+02:00");
    for (i, n) in ["C0001", "C0002", "C0003"].iter().enumerate() {
        write(&dir.join(format!("{n}.MP4")), &data(30 + i as u64, 40_000));
        write(&dir.join(format!("{n}M01.XML")), &xml);
        write(&dir.join(format!("{n}.SRT")), b"");
    }
    write(&card.join("notes-a.txt"), b"");
    write(&card.join("notes-b.txt"), b"");
    let out = env.ok(&["import", "--couple", &c, card.to_str().unwrap()]);
    assert!(out.contains("11 imported") && out.contains("0 duplicate"), "{out}");
    let cat = env.catalog();
    let rows = cat.files(None).unwrap();
    for n in ["C0001", "C0002", "C0003"] {
        let clip = rows.iter().find(|r| r.display_name == format!("{n}.MP4").as_bytes()).unwrap();
        let mut side: Vec<String> = cat
            .sidecars_of(clip.id)
            .unwrap()
            .iter()
            .map(|s| String::from_utf8_lossy(&s.display_name).into_owned())
            .collect();
        side.sort();
        assert_eq!(side, vec![format!("{n}.SRT"), format!("{n}M01.XML")], "{n}");
    }
    // Stored once.
    assert_eq!(rows.iter().filter(|r| r.blob_hash == b3(&xml)).count(), 3);
    assert_eq!(cat.blobs(None).unwrap().iter().filter(|b| b.hash == b3(&xml)).count(), 1);
    // A second import of the same card: every clip is a duplicate, and so are its sidecars with it.
    let again = env.path("again");
    fs::create_dir_all(&again).unwrap();
    let st = std::process::Command::new("cp").arg("-a").arg(&dir).arg(&again).status().unwrap();
    assert!(st.success());
    let out = env.ok(&["import", "--couple", &c, again.to_str().unwrap()]);
    assert!(out.contains("0 imported") && out.contains("9 duplicate"), "{out}");
    assert_eq!(env.catalog().files(None).unwrap().len(), 11);
}

#[test]
fn mac_and_windows_litter_is_skipped_with_its_reason() {
    let env = Env::new();
    let c = env.couple("Litter", "2025-06-04");
    let card = env.path("card");
    let clip = card.join("PRIVATE/M4ROOT/CLIP/C0001.MP4");
    write(&clip, &data(40, 50_000));
    let litter = [
        ".DS_Store",
        "PRIVATE/.DS_Store",
        "._C0001.MP4",
        "PRIVATE/M4ROOT/CLIP/._C0001.MP4",
        ".Spotlight-V100/Store-V2/ABC/0.indexHead",
        ".Trashes/501/old.MP4",
        ".fseventsd/0000000000a1b2c3",
        ".TemporaryItems/folders.501/x",
        ".apdisk",
        "Icon\r",
        "Thumbs.db",
        "DCIM/desktop.ini",
        "System Volume Information/IndexerVolumeGuid",
        "$RECYCLE.BIN/S-1-5-21/$I123.MP4",
        ".Trash-1000/files/C0009.MP4",
    ];
    for (i, l) in litter.iter().enumerate() {
        write(&card.join(l), &data(100 + i as u64, 4096 + i));
    }
    let out = env.ok(&["import", "--couple", &c, card.to_str().unwrap()]);
    assert!(out.contains("1 imported") && out.contains(&format!("{} skipped", litter.len())), "{out}");
    let cat = env.catalog();
    let rows = cat.files(None).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].display_name, b"C0001.MP4");
    let items = cat.items(1).unwrap();
    for l in litter {
        let it = items.iter().find(|i| i.rel_path == l.as_bytes()).unwrap_or_else(|| panic!("{l} recorded"));
        assert_eq!(it.state, ItemState::Skipped, "{l}");
        assert!(it.error.as_deref().unwrap_or("").contains("litter"), "{l}: {:?}", it.error);
    }
    for cam in cat.cameras().unwrap() {
        assert!(rows.iter().any(|r| r.camera_id == Some(cam.id)), "camera {} made by litter", cam.slug);
    }
}

/// Corrupts a blob in place (as rot would).
fn rot(path: &Path) {
    let mut p = fs::metadata(path).unwrap().permissions();
    p.set_mode(0o644);
    fs::set_permissions(path, p).unwrap();
    let f = fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_at(b"ROT!", 1000).unwrap();
    f.sync_all().unwrap();
}

#[test]
fn rot_is_healed_by_reimport_and_by_repair_and_the_mount_answers_eio_until_then() {
    let env = Env::new();
    let c = env.couple("Rot", "2025-06-05");
    let card = env.path("card");
    let a = card.join("A.MP4");
    let b = card.join("B.MP4");
    write(&a, &data(50, 3 * MIB as usize));
    write(&b, &data(51, 2 * MIB as usize + 5));
    env.ok(&["import", "--couple", &c, card.to_str().unwrap()]);
    let (ha, hb) = (b3_file(&a), b3_file(&b));
    rot(&blob_of(&env, &ha));
    fs::remove_file(blob_of(&env, &hb)).unwrap();
    let out = env.run(&["verify"]);
    assert_eq!(out.status.code(), Some(1));
    let cat = env.catalog();
    assert_eq!(cat.blob_health(&ha).unwrap().as_deref(), Some("damaged"));
    assert_eq!(cat.blob_health(&hb).unwrap().as_deref(), Some("missing"));
    drop(cat);
    let status = env.ok(&["status"]);
    assert!(status.contains(&format!("{ha}\tdamaged")) && status.contains(&format!("{hb}\tmissing")), "{status}");

    let mp = env.path("mnt");
    fs::create_dir_all(&mp).unwrap();
    let mut m = Mount::start(&env, &mp, &[]);
    let in_tree = |n: &str| mp.join(&c).join("source/modern/unknown").join(n);
    let e = fs::read(in_tree("A.MP4")).expect_err("damaged blob");
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    let e = fs::read(in_tree("B.MP4")).expect_err("missing blob");
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");

    // Importing the original again heals A: the fresh verified copy replaces the rotten blob.
    let out = env.ok(&["import", "--couple", &c, a.to_str().unwrap()]);
    assert!(out.contains("1 healed"), "{out}");
    assert_eq!(b3_file(&blob_of(&env, &ha)), ha);
    wait_until("the healed file reads", Duration::from_secs(10), || {
        fs::read(in_tree("A.MP4")).is_ok_and(|d| b3(&d) == ha)
    });
    // `repair` heals B from a file given by hand.
    let out = env.ok(&["repair", b.to_str().unwrap(), a.to_str().unwrap()]);
    assert!(out.contains(&format!("healed blob {hb}")) && out.contains("is whole"), "{out}");
    wait_until("the repaired file reads", Duration::from_secs(10), || {
        fs::read(in_tree("B.MP4")).is_ok_and(|d| b3(&d) == hb)
    });
    m.stop();
    assert!(env.ok(&["verify"]).contains("0 problem"));
    let kinds: Vec<String> = env.catalog().events_after(0, 100).unwrap().into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, ["blob_damaged", "blob_missing", "blob_healed", "blob_healed"], "{kinds:?}");
    env.assert_consistent();
}

#[test]
fn a_killed_import_resumes_inside_a_big_local_file() {
    let env = Env::new();
    let c = env.couple("Big", "2025-06-06");
    let card = env.path("card");
    let size = 2048 * MIB;
    let big = card.join("PRIVATE/M4ROOT/CLIP/C0001.MP4");
    write_big(&big, size, 3);
    let fault = FaultFs::mount(&card, &env.path("card-mnt"));
    env.import_killed_mid_copy(&c, fault.mountpoint(), size / 2);
    let first = fault.bytes_read("PRIVATE/M4ROOT/CLIP/C0001.MP4");
    assert!(first >= size / 2, "{first}");
    fault.reset_counters();
    let out = env.run(&["resume", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let again = fault.bytes_read("PRIVATE/M4ROOT/CLIP/C0001.MP4");
    // The rest of the file, plus at most one checkpoint interval (64 MiB) that was not durable yet.
    assert!(again <= size - size / 2 + 80 * MIB, "read {again} of {size} bytes again");
    let row = env.catalog().files(None).unwrap().pop().unwrap();
    assert_eq!(row.blob_hash, b3_file(&big));
    assert!(env.tmp_entries().is_empty());
    env.assert_consistent();
}

#[test]
fn a_kept_partial_copy_of_a_file_that_changed_since_is_not_used() {
    let env = Env::new();
    let c = env.couple("Changed", "2025-06-10");
    let card = env.path("card");
    let size = 320 * MIB;
    let rel = "CLIP/C0001.MP4";
    let big = card.join(rel);
    write_big(&big, size, 5);
    let fault = FaultFs::mount(&card, &env.path("card-mnt"));
    env.import_killed_mid_copy(&c, fault.mountpoint(), 160 * MIB);
    // The card was rewritten meanwhile: same size, new bytes, new mtime.
    let f = fs::OpenOptions::new().write(true).open(&big).unwrap();
    f.write_at(&data(77, 1 << 20), 0).unwrap();
    drop(f);
    let later = std::time::SystemTime::now() + Duration::from_secs(5);
    fs::File::options().write(true).open(&big).unwrap().set_modified(later).unwrap();
    fault.reset_counters();
    let out = env.run(&["resume", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(fault.bytes_read(rel) >= size, "copied from the start: {} of {size}", fault.bytes_read(rel));
    assert_eq!(env.catalog().files(None).unwrap().pop().unwrap().blob_hash, b3_file(&big));
    env.assert_consistent();
}

/// Bytes a process has read (`rchar` of /proc/PID/io): the NFS server's own counter.
fn rchar(pid: i32) -> u64 {
    let io = fs::read_to_string(format!("/proc/{pid}/io")).unwrap();
    io.lines().find_map(|l| l.strip_prefix("rchar: ")).unwrap().trim().parse().unwrap()
}

#[test]
fn a_killed_network_import_resumes_inside_the_file() {
    let root = tempfile::Builder::new().prefix("nfs-big-").tempdir_in(test_root()).unwrap();
    let size = 768 * MIB;
    let big = root.path().join("card/C0100.MP4");
    write_big(&big, size, 9);
    let srv = NfsProcess::start(root.path(), true);
    let env = Env::new();
    let c = env.couple("Net Big", "2025-06-07");
    let url = format!("nfs://127.0.0.1:{}/card?export=/", srv.port);
    let id = env.ok(&["source", "add", &url, "--couple", &c]).trim().to_string();
    env.ok(&["source", "test", &id]);
    let mut child =
        env.cmd().args(["source", "import", &id]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    env.wait_for_temp_over(size / 2);
    child.kill().unwrap();
    child.wait().unwrap();
    let before = rchar(srv.pid());
    let out = env.run(&["resume", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let again = rchar(srv.pid()) - before;
    assert!(again <= size - size / 2 + 80 * MIB, "the server read {again} of {size} bytes again");
    assert_eq!(env.catalog().files(None).unwrap().pop().unwrap().blob_hash, b3_file(&big));
}

#[test]
fn a_move_target_inside_the_source_is_refused() {
    let env = Env::new();
    let c = env.couple("Move", "2025-06-08");
    let add = |target: &str| {
        let post = format!("move:{target}");
        let url = "nfs://127.0.0.1:2049/export/cards?export=/export";
        env.run(&["source", "add", url, "--couple", &c, "--post-import", &post])
    };
    let out = add("/cards/imported");
    assert_eq!(out.status.code(), Some(2), "bad input");
    let err = stderr(&out);
    assert!(err.contains("inside the source path") && err.lines().count() == 1, "{err}");
    assert!(env.catalog().sources().unwrap().is_empty());
    let out = add("/done");
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn serve_keeps_importing_new_files_past_a_bad_one() {
    let env = Env::new();
    let c = env.couple("Serve Bad", "2025-06-09");
    let share = env.path("share");
    write(&share.join("day1/C0001.MP4"), &data(60, 200_000));
    write(&share.join("day1/C0002.MP4"), &data(61, 200_000));
    let fault = FaultFs::mount(&share, &env.path("share-mnt"));
    fault.fail_file("day1/C0002.MP4");
    let srv = NfsProcess::start(fault.mountpoint(), true);
    let url = format!("nfs://127.0.0.1:{}/day1?export=/", srv.port);
    let id = env.ok(&["source", "add", &url, "--couple", &c]).trim().to_string();
    env.ok(&["source", "test", &id]);
    let vars = [("NIGHTFOX_RETRY_DELAYS", "0.05"), ("NIGHTFOX_MAX_FAILURES", "3")];
    let mut daemon = Mount::serve_with(&env, &env.path("mnt"), &["--poll-interval", "500ms"], &vars);
    let names = |env: &Env| -> Vec<Vec<u8>> {
        env.catalog().files(None).map(|v| v.into_iter().map(|f| f.display_name).collect()).unwrap_or_default()
    };
    wait_until("the good file", Duration::from_secs(60), || names(&env).contains(&b"C0001.MP4".to_vec()));
    write(&share.join("day1/C0003.MP4"), &data(62, 100_000));
    wait_until("a new file past the bad one", Duration::from_secs(60), || names(&env).contains(&b"C0003.MP4".to_vec()));
    assert!(!names(&env).contains(&b"C0002.MP4".to_vec()));
    let st = daemon.stop();
    assert!(st.success(), "{st:?}");
    let failed = env.catalog().sessions().unwrap().iter().map(|s| s.files_error).sum::<i64>();
    assert!(failed >= 1);
}

/// `mount --verify-reads`: every block served is checked against the blob's hash; rot answers EIO for its block
/// only (the rest of the clip still reads), and the blob is recorded damaged for `verify`, `status` and `repair`.
#[test]
fn verified_reads_refuse_the_rotten_block_only_and_record_the_damage() {
    let env = Env::new();
    let c = env.couple("Verified", "2025-06-06");
    let card = env.path("card");
    let a = card.join("A.MP4");
    let bytes = data(60, 40 * MIB as usize + 12_345);
    write(&a, &bytes);
    let small = data(61, 100_000);
    write(&card.join("B.MP4"), &small);
    env.ok(&["import", "--couple", &c, card.to_str().unwrap()]);
    let ha = b3_file(&a);
    let outboard = |h: &str| env.archive.join("outboards").join(&h[..2]).join(&h[2..4]).join(h);
    assert!(outboard(&ha).is_file(), "the clip's outboard is built by the import's validate pass");
    let hb = b3_file(&card.join("B.MP4"));
    assert!(!outboard(&hb).exists(), "a small file's is left to its first verified open");
    let mp = env.path("mnt");
    fs::create_dir_all(&mp).unwrap();
    let clip = mp.join(&c).join("source/modern/unknown/A.MP4");

    // Clean first: the whole clip reads back through the checks, and the small one (its outboard built now).
    let mut m = Mount::start(&env, &mp, &["--verify-reads"]);
    assert_eq!(fs::read(&clip).unwrap(), bytes);
    assert_eq!(fs::read(mp.join(&c).join("source/modern/unknown/B.MP4")).unwrap(), small);
    assert!(outboard(&hb).is_file());
    m.stop();

    // Rot at 1000 (the `rot` helper): the first 32 KiB block is damaged.
    rot(&blob_of(&env, &ha));
    let mut m = Mount::start(&env, &mp, &["--verify-reads"]);
    let f = fs::File::open(&clip).unwrap();
    let mut buf = vec![0u8; 4096];
    let far = 30 * MIB;
    assert_eq!(f.read_at(&mut buf, far).unwrap(), 4096, "a block far from the rot reads");
    assert_eq!(buf, bytes[far as usize..far as usize + 4096]);
    let e = f.read_at(&mut buf, 0).expect_err("the rotten block");
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    let end = bytes.len() as u64 - 100;
    assert_eq!(f.read_at(&mut buf, end).unwrap(), 100, "the end of the clip still reads");
    assert_eq!(buf[..100], bytes[end as usize..]);
    wait_until("the damage recorded", std::time::Duration::from_secs(10), || {
        env.catalog().blob_health(&ha).unwrap().as_deref() == Some("damaged")
    });
    drop(f);
    m.stop();
    // Without verified reads the mount refuses the whole damaged blob, as before.
    let mut m = Mount::start(&env, &mp, &[]);
    assert_eq!(fs::File::open(&clip).err().and_then(|e| e.raw_os_error()), Some(libc::EIO));
    m.stop();
}
