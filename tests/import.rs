//! Local import: the real binary on temp dirs (issue 2).

mod common;

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use nightfox::catalog::{ItemState, SessionStatus};

#[test]
fn import_generated_tree_every_blob_rehashes() {
    let env = Env::new();
    let c = env.couple("Julia & Sven", "2025-12-31");
    assert_eq!(c, "2025-12-31-julia-sven");
    let card = env.path("card");
    let mut files = sony_card(&card, 5, 1);
    for i in 0..20 {
        let p = card.join(format!("DCIM/1{:02}MEDIA/IMG_{i:04}.JPG", i % 3));
        write(&p, &data(500 + i, 1000 + i as usize * 31));
        files.push(p);
    }
    let out = env.ok(&["import", "--couple", &c, card.to_str().unwrap()]);
    assert!(out.contains("30 imported"), "{out}");
    env.assert_consistent();
    let cat = env.catalog();
    let rows = cat.files(None).unwrap();
    assert_eq!(rows.len(), files.len());
    for p in &files {
        let rel = p.strip_prefix(&card).unwrap();
        let row = rows.iter().find(|r| r.original_path == rel.as_os_str().as_bytes()).expect("catalogued");
        assert_eq!(row.blob_hash, b3(&fs::read(p).unwrap()));
        assert_eq!(row.display_name, p.file_name().unwrap().as_bytes());
        let blob =
            env.archive.join("objects").join(&row.blob_hash[..2]).join(&row.blob_hash[2..4]).join(&row.blob_hash);
        assert_eq!(fs::metadata(&blob).unwrap().permissions().mode() & 0o777, 0o444);
        assert_eq!(row.source_mtime_ns, {
            let m = fs::metadata(p).unwrap();
            m.mtime() * 1_000_000_000 + m.mtime_nsec()
        });
    }
    // Sidecars are linked to their clips.
    let xml = rows.iter().find(|r| r.display_name == b"C0001M01.XML").unwrap();
    let clip = rows.iter().find(|r| r.display_name == b"C0001.MP4").unwrap();
    assert_eq!(xml.sidecar_of, Some(clip.id));
    // The catalog is private.
    assert_eq!(fs::metadata(env.archive.join("catalog.db")).unwrap().permissions().mode() & 0o777, 0o600);
    let s = cat.session(1).unwrap();
    assert_eq!(s.status, SessionStatus::Completed);
    assert_eq!(s.files_total, 30);
    assert_eq!(s.files_processed, 30);
    assert!(env.tmp_entries().is_empty());
    assert!(env.ok(&["verify"]).lines().last().unwrap().contains("0 problem"));
}

#[test]
fn duplicates_are_skipped_in_a_couple_and_stored_once_across_couples() {
    let env = Env::new();
    let a = env.couple("Anna", "2025-06-01");
    let b = env.couple("Bert", "2025-06-02");
    let card = env.path("card");
    write(&card.join("A.MP4"), &data(1, 100_000));
    write(&card.join("copy/renamed.MP4"), &data(1, 100_000));
    write(&card.join("B.MP4"), &data(2, 100_000));
    let out = env.ok(&["import", "--couple", &a, card.to_str().unwrap()]);
    assert!(out.contains("2 imported, 1 duplicate"), "{out}");
    // Same content into another couple: catalogued there too, stored once.
    let out = env.ok(&["import", "--couple", &b, card.join("A.MP4").to_str().unwrap()]);
    assert!(out.contains("1 imported"), "{out}");
    assert_eq!(env.object_files().len(), 2);
    // --duplicates import keeps a second file row for the same content.
    let out = env.ok(&["import", "--couple", &a, "--duplicates", "import", card.join("A.MP4").to_str().unwrap()]);
    assert!(out.contains("1 imported"), "{out}");
    let names: Vec<Vec<u8>> =
        env.catalog().files(None).unwrap().into_iter().filter(|f| f.couple_id == 1).map(|f| f.display_name).collect();
    assert!(names.contains(&b"A (2).MP4".to_vec()), "{names:?}");
    env.assert_consistent();
}

#[test]
fn second_import_of_the_same_card_copies_nothing() {
    let env = Env::new();
    let c = env.couple("Julia", "2025-12-31");
    let card = env.path("card");
    sony_card(&card, 4, 7);
    env.ok(&["import", "--couple", &c, card.to_str().unwrap()]);
    let before: Vec<(String, i64)> =
        env.object_files().iter().map(|(n, p)| (n.clone(), fs::metadata(p).unwrap().mtime_nsec())).collect();
    let out = env.ok(&["import", "--couple", &c, "--json", card.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["files_imported"], 0);
    assert_eq!(v["files_duplicate"], 8);
    let after: Vec<(String, i64)> =
        env.object_files().iter().map(|(n, p)| (n.clone(), fs::metadata(p).unwrap().mtime_nsec())).collect();
    assert_eq!(before, after);
    assert_eq!(env.catalog().files(None).unwrap().len(), 8);
}

#[test]
fn colliding_names_get_suffixes_and_sidecars_follow_their_clip() {
    let env = Env::new();
    let c = env.couple("Julia", "2025-12-31");
    let a = env.path("cardA");
    let b = env.path("cardB");
    sony_card(&a, 2, 1);
    sony_card(&b, 2, 2);
    env.ok(&["import", "--couple", &c, a.to_str().unwrap(), b.to_str().unwrap()]);
    let mut names: Vec<String> = env
        .catalog()
        .files(None)
        .unwrap()
        .iter()
        .map(|f| String::from_utf8_lossy(&f.display_name).into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            "C0001 (2).MP4",
            "C0001 (2)M01.XML",
            "C0001.MP4",
            "C0001M01.XML",
            "C0002 (2).MP4",
            "C0002 (2)M01.XML",
            "C0002.MP4",
            "C0002M01.XML"
        ]
    );
}

#[test]
fn odd_names_survive_byte_for_byte() {
    let env = Env::new();
    let c = env.couple("Odd", "2025-01-01");
    let card = env.path("card");
    fs::create_dir_all(&card).unwrap();
    let long = {
        let mut n = vec![b'x'; 251];
        n.extend_from_slice(b".MOV");
        n
    };
    let names: Vec<Vec<u8>> = vec![
        b"with space.MP4".to_vec(),
        "Caf\u{e9} NFC.MOV".as_bytes().to_vec(),
        "Cafe\u{301} NFD.MOV".as_bytes().to_vec(),
        b"new\nline.MP4".to_vec(),
        b"bad\xff\xfeutf8.MP4".to_vec(),
        long.clone(),
    ];
    for (i, n) in names.iter().enumerate() {
        fs::write(card.join(os(n)), data(i as u64 + 40, 1234 + i)).unwrap();
    }
    let out = env.run(&["import", "--couple", &c, card.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows = env.catalog().files(None).unwrap();
    for n in &names {
        let r = rows.iter().find(|r| &r.display_name == n).unwrap_or_else(|| panic!("{:?} missing", os(n)));
        assert_eq!(r.blob_hash, b3(&fs::read(card.join(os(n))).unwrap()));
        assert_eq!(r.original_path, *n);
    }
    assert_eq!(long.len(), 255);
    env.assert_consistent();
}

#[test]
fn zero_byte_and_sparse_5gib_files() {
    let env = Env::new();
    let c = env.couple("Big", "2025-01-01");
    let card = env.path("card");
    fs::create_dir_all(&card).unwrap();
    fs::File::create(card.join("empty.MP4")).unwrap();
    let big = card.join("sparse.MXF");
    let f = fs::File::create(&big).unwrap();
    f.set_len(5 << 30).unwrap();
    drop(f);
    // A few non-zero bytes in the middle and at the end.
    {
        use std::os::unix::fs::FileExt;
        let f = fs::OpenOptions::new().write(true).open(&big).unwrap();
        f.write_all_at(b"middle", 3 << 30).unwrap();
        f.write_all_at(b"end", (5 << 30) - 3).unwrap();
    }
    env.ok(&["import", "--couple", &c, card.to_str().unwrap()]);
    let rows = env.catalog().files(None).unwrap();
    let empty = rows.iter().find(|r| r.display_name == b"empty.MP4").unwrap();
    assert_eq!(empty.size, 0);
    assert_eq!(empty.blob_hash, b3(b""));
    let sparse = rows.iter().find(|r| r.display_name == b"sparse.MXF").unwrap();
    assert_eq!(sparse.size, 5 << 30);
    assert_eq!(sparse.blob_hash, b3_file(&big));
    let blob =
        env.archive.join("objects").join(&sparse.blob_hash[..2]).join(&sparse.blob_hash[2..4]).join(&sparse.blob_hash);
    let m = fs::metadata(&blob).unwrap();
    assert_eq!(m.len(), 5 << 30);
    assert!(m.blocks() * 512 < 64 << 20, "the stored copy stays sparse ({} blocks)", m.blocks());
    assert!(env.ok(&["verify"]).contains("0 problem"));
}

#[test]
fn kill_9_mid_copy_then_resume_finishes_consistently() {
    let env = Env::new();
    let c = env.couple("Crash", "2025-01-01");
    let card = env.path("card");
    sony_card(&card, 3, 3);
    write_big(&card.join("PRIVATE/M4ROOT/CLIP/C0099.MP4"), 1536 << 20, 99);
    // kill -9 while the big file is being copied (a temp file bigger than 64 MiB).
    env.import_killed_mid_copy(&c, &card, 64 << 20);
    // The catalog is consistent right after the crash: no file row for the big clip, no orphans.
    env.assert_consistent();
    let cat = env.catalog();
    let s = cat.session(1).unwrap();
    assert!(!s.status.is_final());
    let done_before: Vec<(i64, Option<i64>)> =
        cat.items(1).unwrap().iter().filter(|i| i.state == ItemState::Done).map(|i| (i.id, i.file_id)).collect();
    assert!(cat.files(None).unwrap().iter().all(|f| f.display_name != b"C0099.MP4"));
    drop(cat);
    let out = env.ok(&["resume", "1"]);
    assert!(out.contains("7 imported"), "{out}");
    env.assert_consistent();
    let cat = env.catalog();
    assert_eq!(cat.session(1).unwrap().status, SessionStatus::Completed);
    // Items finished before the crash kept their file rows (they were not copied again).
    for (id, fid) in done_before {
        let it = cat.items(1).unwrap().into_iter().find(|i| i.id == id).unwrap();
        assert_eq!(it.file_id, fid);
    }
    let big = cat.files(None).unwrap().into_iter().find(|f| f.display_name == b"C0099.MP4").unwrap();
    assert_eq!(big.blob_hash, b3_file(&card.join("PRIVATE/M4ROOT/CLIP/C0099.MP4")));
    assert!(env.tmp_entries().is_empty(), "{:?}", env.tmp_entries());
    // A completed session cannot be resumed.
    let out = env.run(&["resume", "1"]);
    assert_eq!(out.status.code(), Some(1));
}

/// Small files are copied in batches (one syncfs for the batch's copies, one for its landings, one transaction):
/// a crash anywhere inside a batch loses no finished file and `resume` completes it without orphans.
#[test]
fn kill_9_inside_a_batch_of_small_files_then_resume_finishes_consistently() {
    let env = Env::new();
    let c = env.couple("Batch", "2025-01-01");
    let card = env.path("card");
    let n = 600;
    for i in 0..n {
        write_big(&card.join(format!("DCIM/{:03}MEDIA/IMG_{i:04}.JPG", 100 + i / 200)), 48 << 10, i as u64 + 1);
    }
    let mut child = env.spawn_import(&c, &card, Stdio::null());
    // Kill as soon as the first blobs have landed: inside a batch, before or around its catalogue transaction.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while env.object_files().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let cat = env.catalog();
    let done_before = cat.items(1).unwrap().iter().filter(|i| i.state == ItemState::Done).count();
    assert!(done_before < n, "the import was killed before it finished");
    drop(cat);
    let out = env.ok(&["resume", "1"]);
    assert!(out.contains(&format!("{} imported", n - done_before)), "{out}");
    env.assert_consistent();
    assert!(env.tmp_entries().is_empty(), "{:?}", env.tmp_entries());
    let cat = env.catalog();
    let files = cat.files(None).unwrap();
    assert_eq!(files.len(), n);
    let mut on_card = Vec::new();
    walk_files(&card, &mut on_card);
    let mut want: Vec<String> = on_card.iter().map(|p| b3_file(p)).collect();
    let mut got: Vec<String> = files.iter().map(|f| f.blob_hash.clone()).collect();
    want.sort();
    got.sort();
    assert_eq!(got, want, "every file on the card is catalogued once with its content");
    assert!(env.ok(&["verify"]).contains("0 problem"));
}

#[test]
fn a_flipped_byte_makes_verify_fail_naming_the_file() {
    let env = Env::new();
    let c = env.couple("Flip", "2025-01-01");
    let card = env.path("card");
    write(&card.join("A001.MOV"), &data(5, 200_000));
    write(&card.join("A002.MOV"), &data(6, 200_000));
    env.ok(&["import", "--couple", &c, card.to_str().unwrap()]);
    let h = b3(&data(5, 200_000));
    let blob = env.archive.join("objects").join(&h[..2]).join(&h[2..4]).join(&h);
    fs::set_permissions(&blob, fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = fs::read(&blob).unwrap();
    bytes[1000] ^= 0x01;
    fs::write(&blob, &bytes).unwrap();
    let out = env.run(&["verify"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("2025-01-01-flip/source/modern/unknown/A001.MOV"), "{text}");
    assert!(!text.contains("A002.MOV"), "{text}");
    // A missing blob is reported too.
    fs::remove_file(&blob).unwrap();
    let out = env.run(&["verify", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["problems"][0]["kind"], "missing");
}

#[test]
fn unreadable_source_file_is_reported_and_the_rest_imports() {
    require_root("switching to an unprivileged user");
    let env = Env::new();
    let c = env.couple("Perm", "2025-01-01");
    let card = env.path("card");
    write(&card.join("ok1.MP4"), &data(1, 5000));
    write(&card.join("secret.MP4"), &data(2, 5000));
    write(&card.join("ok2.MP4"), &data(3, 5000));
    fs::set_permissions(card.join("secret.MP4"), fs::Permissions::from_mode(0o000)).unwrap();
    // Hand the archive and card to `nobody` and run the import as that user.
    let st = std::process::Command::new("chown").arg("-R").arg("nobody").arg(env.dir.path()).status().unwrap();
    assert!(st.success());
    fs::set_permissions(env.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"])
        .arg(BIN)
        .arg("--archive")
        .arg(&env.archive)
        .args(["import", "--couple", &c])
        .arg(&card)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("secret.MP4") && err.contains("ermission denied"), "{err}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("2 imported") && stdout.contains("1 failed"), "{stdout}");
    let names: Vec<Vec<u8>> = env.catalog().files(None).unwrap().into_iter().map(|f| f.display_name).collect();
    assert_eq!(names.len(), 2);
    assert!(!names.contains(&b"secret.MP4".to_vec()));
}

#[test]
fn a_second_import_of_the_same_couple_is_refused() {
    let env = Env::new();
    let c = env.couple("Busy", "2025-01-01");
    let card = env.path("card");
    write_big(&card.join("BIG.MP4"), 1024 << 20, 1);
    let mut first = env
        .cmd()
        .args(["import", "--couple", &c, card.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let tmp = env.archive.join("tmp");
    wait_until("the first import to copy", Duration::from_secs(60), || fs::read_dir(&tmp).unwrap().next().is_some());
    let other = env.path("other");
    write(&other.join("x.MP4"), b"x");
    let out = env.run(&["import", "--couple", &c, other.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("already being imported by session 1"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // Another couple is not blocked.
    let d = env.couple("Free", "2025-01-02");
    env.ok(&["import", "--couple", &d, other.to_str().unwrap()]);
    assert!(first.wait().unwrap().success());
    env.assert_consistent();
}

/// `session cancel` reaches a session another process is running: that import stops at its next chunk, ends the
/// session for good (its partial copy removed, the files it finished kept) and says so; resume is refused after.
#[test]
fn session_cancel_stops_an_import_running_in_another_process() {
    let env = Env::new();
    let c = env.couple("Stop", "2025-01-01");
    let card = env.path("card");
    write(&card.join("A001.MP4"), &data(1, 200_000));
    write_big(&card.join("B002.MP4"), 768 << 20, 2);
    let first = env.spawn_import_one_worker(&c, &card, Stdio::piped());
    env.wait_for_temp_over(16 << 20);
    let out = env.ok(&["session", "cancel", "1"]);
    assert!(out.contains("cancelling session 1") && out.contains("next chunk"), "{out}");
    let out = first.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("session 1 was cancelled for good"), "{err}");
    let s = env.catalog().session(1).unwrap();
    assert_eq!((s.status, s.can_resume), (nightfox::catalog::SessionStatus::Cancelled, false));
    assert!(env.tmp_entries().is_empty(), "the partial copy is removed: {:?}", env.tmp_entries());
    let names: Vec<Vec<u8>> = env.catalog().files(None).unwrap().into_iter().map(|f| f.display_name).collect();
    assert!(!names.contains(&b"B002.MP4".to_vec()), "{names:?}");
    let out = env.run(&["resume", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cancelled for good"));

    // A cancel that comes while the import stops for another reason (here Ctrl-C, held back with the process by
    // SIGSTOP so that both are seen at once) still ends the session for good.
    let card = env.path("card2");
    write_big(&card.join("C003.MP4"), 768 << 20, 3);
    // Continued and killed if the test fails while it is stopped.
    let mut second = Proc(Some(env.spawn_import_one_worker(&c, &card, Stdio::null())));
    env.wait_for_temp_over(16 << 20);
    second.signal(libc::SIGSTOP);
    let cancel = env.cmd().args(["session", "cancel", "2"]).stdout(Stdio::piped()).spawn().unwrap();
    wait_until("the mark", Duration::from_secs(30), || !env.catalog().session(2).unwrap().can_resume);
    second.signal(libc::SIGINT);
    second.signal(libc::SIGCONT);
    second.wait(Duration::from_secs(60));
    let out = cancel.wait_with_output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("session 2 cancelled for good"), "{out:?}");
    let s = env.catalog().session(2).unwrap();
    assert_eq!((s.status, s.can_resume), (nightfox::catalog::SessionStatus::Cancelled, false));
    assert_eq!(s.error.as_deref(), Some("cancelled for good by the user"));
    assert!(env.tmp_entries().is_empty(), "{:?}", env.tmp_entries());
    env.assert_consistent();
}

#[test]
fn bad_input_gets_one_clear_line_and_loses_nothing() {
    let env = Env::new();
    let c = env.couple("Bad", "2025-01-01");
    let out = env.run(&["import", "--couple", &c, "/does/not/exist"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/does/not/exist") && err.contains("No such file"), "{err}");
    assert_eq!(err.trim().lines().count(), 1);
    assert!(env.catalog().sessions().unwrap().is_empty(), "no session for a missing path");
    let out = env.run(&["import", "--couple", "nobody-here", "/tmp"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no couple"));
    let out = env.run(&["couple", "add", "--name", "X", "--date", "2025-02-30"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid date"));
    let out = env.run(&["import", "--couple", &c, "--type", "vhs", "/tmp"]);
    assert_eq!(out.status.code(), Some(2));
    let out = env.run(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    // Not an archive.
    let out =
        std::process::Command::new(BIN).arg("--archive").arg(env.path("nowhere")).arg("sessions").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nightfox init"));
    // init refuses a non-empty directory that is not an archive.
    write(&env.path("full/file"), b"x");
    let out = std::process::Command::new(BIN).arg("--archive").arg(env.path("full")).arg("init").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    // The archive location comes from the environment when no flag is given.
    let out = std::process::Command::new(BIN)
        .env("NIGHTFOX_ARCHIVE", &env.archive)
        .args(["couple", "list"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(&c));
}

/// A second `couple add` of a name and date that exist already is refused with one line (the same name ignoring
/// case and punctuation, as the folder name sees it); `--allow-same-name` adds a second couple on purpose.
#[test]
fn couple_add_of_an_existing_name_and_date_is_refused_unless_allowed() {
    let env = Env::new();
    let first = env.couple("Julia & Sven", "2025-12-31");
    assert_eq!(first, "2025-12-31-julia-sven");
    for name in ["Julia & Sven", "julia + sven", " Julia & Sven "] {
        let out = env.run(&["couple", "add", "--name", name, "--date", "2025-12-31"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert!(
            err.contains(r#"couple "Julia & Sven" on 2025-12-31 exists already (2025-12-31-julia-sven)"#)
                && err.contains("--allow-same-name"),
            "{err}"
        );
        assert!(out.stdout.is_empty());
    }
    assert_eq!(env.catalog().couples().unwrap().len(), 1, "nothing was added");
    // Another date or another name is another couple.
    assert_eq!(env.couple("Julia & Sven", "2026-01-01"), "2026-01-01-julia-sven");
    assert_eq!(env.couple("Julia", "2025-12-31"), "2025-12-31-julia");
    // On purpose: a second couple of that name and date.
    let second = env.ok(&["couple", "add", "--name", "Julia & Sven", "--date", "2025-12-31", "--allow-same-name"]);
    assert_eq!(second.trim(), "2025-12-31-julia-sven-2");
    assert_eq!(env.catalog().couples().unwrap().len(), 4);
    let help = env.ok(&["couple", "add", "--help"]);
    assert!(help.contains("--allow-same-name"), "{help}");
}

#[test]
fn symlinks_and_special_files_are_recorded_and_skipped() {
    let env = Env::new();
    let c = env.couple("Links", "2025-01-01");
    let card = env.path("card");
    write(&card.join("real.MP4"), &data(1, 999));
    std::os::unix::fs::symlink("/etc/hostname", card.join("outside.MP4")).unwrap();
    std::os::unix::fs::symlink(&card, card.join("loop")).unwrap();
    let fifo = card.join("pipe");
    let cpath = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: valid C string.
    assert_eq!(unsafe { libc::mkfifo(cpath.as_ptr(), 0o644) }, 0);
    let out = env.ok(&["import", "--couple", &c, card.to_str().unwrap()]);
    assert!(out.contains("1 imported") && out.contains("3 skipped"), "{out}");
    let items = env.catalog().items(1).unwrap();
    assert_eq!(items.iter().filter(|i| i.state == ItemState::Skipped).count(), 3);
    assert!(items.iter().all(|i| i.state != ItemState::Skipped || i.error.is_some()));
}

#[test]
fn a_file_that_keeps_changing_during_copy_is_not_catalogued() {
    let env = Env::new();
    let c = env.couple("Moving", "2025-01-01");
    let card = env.path("card");
    write(&card.join("stable.MP4"), &data(1, 10_000));
    let moving = card.join("growing.MP4");
    write_big(&moving, 64 << 20, 3);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = stop.clone();
    let m2 = moving.clone();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let mut f = fs::OpenOptions::new().append(true).open(&m2).unwrap();
        let start = std::time::Instant::now();
        while !s2.load(std::sync::atomic::Ordering::Relaxed) && start.elapsed() < Duration::from_secs(120) {
            f.write_all(&[7u8; 4096]).unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    let out = env.run(&["import", "--couple", &c, card.to_str().unwrap()]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("growing.MP4") && err.contains("changed"), "{err}");
    let names: Vec<Vec<u8>> = env.catalog().files(None).unwrap().into_iter().map(|f| f.display_name).collect();
    assert_eq!(names, vec![b"stable.MP4".to_vec()]);
    env.assert_consistent();
    assert!(env.tmp_entries().is_empty());
}

#[test]
fn a_full_disk_pauses_the_session_and_resume_continues_after_space_is_freed() {
    full_disk_pauses_then_resume_continues(6, 12 << 20);
}

/// The same with small files, where the disk fills up inside a batch: the batch's copies are all removed.
#[test]
fn a_full_disk_inside_a_batch_of_small_files_pauses_and_resume_continues() {
    full_disk_pauses_then_resume_continues(40, 3 << 20);
}

fn full_disk_pauses_then_resume_continues(count: u64, size: u64) {
    require_root("mounting a small tmpfs");
    let env = Env::new();
    let card = env.path("card");
    for i in 0..count {
        write_big(&card.join(format!("C{i:04}.MP4")), size, i + 1);
    }
    // An archive on a 40 MiB filesystem.
    let small = env.path("small");
    fs::create_dir_all(&small).unwrap();
    let st = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=40m", "tmpfs"])
        .arg(&small)
        .status()
        .unwrap();
    assert!(st.success());
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg("-l").arg(self.0).status();
        }
    }
    let _guard = Unmount(&small);
    let arch = small.join("archive");
    let run = |args: &[&str]| std::process::Command::new(BIN).arg("--archive").arg(&arch).args(args).output().unwrap();
    assert!(run(&["init"]).status.success());
    let c = String::from_utf8_lossy(&run(&["couple", "add", "--name", "Full", "--date", "2025-01-01"]).stdout)
        .trim()
        .to_string();
    let out = run(&["import", "--couple", &c, card.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("disk full") && err.contains("nightfox resume 1"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(fs::read_dir(arch.join("tmp")).unwrap().next().is_none(), "temp file cleaned");
    let cat = nightfox::catalog::open_sqlite(&arch.join("catalog.db")).unwrap();
    assert_eq!(cat.session(1).unwrap().status, SessionStatus::Paused);
    let imported_before = cat.files(None).unwrap().len();
    assert!(imported_before < count as usize);
    drop(cat);
    let st = std::process::Command::new("mount").args(["-o", "remount,size=200m"]).arg(&small).status().unwrap();
    assert!(st.success());
    let out = run(&["resume", "1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cat = nightfox::catalog::open_sqlite(&arch.join("catalog.db")).unwrap();
    assert_eq!(cat.files(None).unwrap().len(), count as usize);
    assert!(run(&["verify"]).status.success());
}

#[test]
fn resume_with_the_card_gone_keeps_the_session_resumable() {
    let env = Env::new();
    let c = env.couple("Gone", "2025-01-01");
    let card = env.path("card");
    sony_card(&card, 2, 4);
    write_big(&card.join("PRIVATE/M4ROOT/CLIP/C0050.MP4"), 768 << 20, 50);
    env.import_killed_mid_copy(&c, &card, 32 << 20);
    // The card is unplugged: resume refuses clearly and changes nothing.
    let away = env.path("card-away");
    fs::rename(&card, &away).unwrap();
    let out = env.run(&["resume", "1"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not available") && err.contains("nightfox resume 1"), "{err}");
    let s = env.catalog().session(1).unwrap();
    assert!(s.can_resume && !s.status.is_final());
    // Plugged in again: resume finishes.
    fs::rename(&away, &card).unwrap();
    let out = env.ok(&["resume", "1"]);
    assert!(out.contains("5 imported"), "{out}");
    env.assert_consistent();
    assert!(env.tmp_entries().is_empty());
}
