//! The writable ingest directory (issue 5): real mounts, real `cp`, `rsync`, `dd` and `diff` from Debian.

mod common;

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use common::*;

fn sh(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A card with nested folders, sidecars, odd names.
fn card(root: &Path) -> Vec<PathBuf> {
    let mut v = sony_card(root, 3, 11);
    for (i, n) in ["DCIM/100GOPRO/GX010001.MP4", "DCIM/100GOPRO/GL010001.LRV", "Ünïcode folder/with space ü.MOV"]
        .iter()
        .enumerate()
    {
        let p = root.join(n);
        write(&p, &data(200 + i as u64, 150_000 + i * 1013));
        v.push(p);
    }
    v
}

/// Every source file under `src` is in the organized tree of `couple` with the same bytes, exactly once.
fn assert_in_tree(env: &Env, mp: &Path, couple: &str, src: &Path) {
    let mut files = Vec::new();
    walk_files(src, &mut files);
    let mut tree = Vec::new();
    walk_files(&mp.join(couple), &mut tree);
    let tree_hashes: Vec<String> = tree.iter().map(|p| b3_file(p)).collect();
    for f in &files {
        let h = b3_file(f);
        let at: Vec<&PathBuf> = tree.iter().zip(&tree_hashes).filter(|(_, t)| **t == h).map(|(p, _)| p).collect();
        assert_eq!(at.len(), 1, "{f:?} not exactly once in the tree: at {at:?}; the tree: {tree:?}");
    }
    env.assert_consistent();
}

/// Starts `dd` writing random data into `target` and returns once it has written 16 MiB.
fn dd_into(target: &Path) -> std::process::Child {
    let dd = Command::new("dd")
        .arg("if=/dev/urandom")
        .arg(format!("of={}", target.display()))
        .args(["bs=1M", "count=4000"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("dd to write a while", Duration::from_secs(60), || {
        fs::metadata(target).map(|m| m.len() > 16 << 20).unwrap_or(false)
    });
    dd
}

fn mounted(env: &Env, extra: &[&str]) -> (Mount, PathBuf) {
    let mp = env.path("mnt");
    let m = Mount::start(env, &mp, extra);
    (m, mp)
}

/// Runs each body twice: with ingest writes handed to the kernel (passthrough, when the machine allows it) and
/// with every write going through the daemon (`--no-passthrough`).
macro_rules! both_write_paths {
    ($($name:ident),* $(,)?) => {
        mod direct {
            $(#[test]
            fn $name() {
                super::$name(&[])
            })*
        }
        mod through_the_daemon {
            $(#[test]
            fn $name() {
                super::$name(&["--no-passthrough"])
            })*
        }
    };
}

both_write_paths!(
    cp_r_of_a_card_lands_verified_in_the_organized_tree,
    rsync_twice_transfers_nothing_the_second_time_and_diff_is_clean,
    overwriting_with_the_same_content_is_a_no_op_and_different_content_is_added,
    four_concurrent_writers_all_land,
    a_writer_killed_halfway_leaves_nothing_in_the_catalog,
    a_file_being_written_shows_its_size_and_keeps_the_mtime_set_on_it,
    a_5_gib_file_through_the_mount,
    a_writer_that_starts_a_program_while_writing_is_not_stalled,
    a_failed_commit_leaves_the_ingest_view_and_is_recorded_in_the_session,
);

/// A full disk, with writes going straight to the staging file (the daemon only learns of the ENOSPC from the free
/// space left when the file is closed) and through the daemon.
#[test]
fn a_full_disk_answers_enospc_and_loses_nothing_direct() {
    full_disk(true);
}

#[test]
fn a_full_disk_answers_enospc_and_loses_nothing_through_the_daemon() {
    full_disk(false);
}

/// Waits for commits to show in the organized tree. Each commit fsyncs; while another test writes gigabytes to the
/// same disk, one journal commit can wait many seconds for that data, so the bound is generous.
/// A directory's entry names, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

/// `/ingest` lists a couple added while the mount runs, although the kernel kept the listing it had before.
#[test]
fn a_couple_added_while_mounted_appears_in_the_ingest_listing() {
    let env = Env::new();
    let first = env.couple("First", "2025-12-30");
    let (_m, mp) = mounted(&env, &[]);
    let ingest = mp.join("ingest");
    assert_eq!(listing(&ingest), vec![first]);
    let later = env.couple("Later", "2025-12-31");
    wait_until("the new couple in /ingest", Duration::from_secs(30), || listing(&ingest).contains(&later));
    fs::write(ingest.join(&later).join("A001.MOV"), data(5, 10_000)).unwrap();
    wait_in_tree(&mp, &later, 1);
}

fn wait_in_tree(mp: &Path, couple: &str, count: usize) {
    wait_until("files in the organized tree", Duration::from_secs(90), || {
        let mut v = Vec::new();
        walk_files(&mp.join(couple), &mut v);
        v.len() >= count
    });
}

fn cp_r_of_a_card_lands_verified_in_the_organized_tree(extra: &[&str]) {
    let env = Env::new();
    let c = env.couple("Julia & Sven", "2025-12-31");
    let src = env.path("card");
    let files = card(&src);
    let (_m, mp) = mounted(&env, extra);
    let dest = mp.join("ingest").join(&c);
    sh(Command::new("cp").arg("-r").arg(format!("{}/.", src.display())).arg(&dest));
    sh(Command::new("diff").arg("-r").arg(&src).arg(&dest));
    wait_in_tree(&mp, &c, files.len());
    assert_in_tree(&env, &mp, &c, &src);
    let sidecar = mp.join(&c).join("source/modern/sony/C0001M01.XML");
    assert_eq!(fs::read(sidecar).unwrap(), fs::read(src.join("PRIVATE/M4ROOT/CLIP/C0001M01.XML")).unwrap());
    assert!(env.ok(&["verify"]).contains("0 problem"));
    // Original paths are kept as written below the couple's ingest folder.
    let rows = env.catalog().files(None).unwrap();
    assert!(rows.iter().any(|r| r.original_path == "Ünïcode folder/with space ü.MOV".as_bytes()));
    // Outside /ingest nothing is writable; a couple that does not exist cannot be written to.
    let e = fs::write(mp.join(&c).join("source/x.MP4"), b"x").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EROFS));
    let e = fs::create_dir(mp.join("ingest/1999-01-01-nobody")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
    let e = fs::write(mp.join("ingest/1999-01-01-nobody/x.MP4"), b"x").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
}

fn rsync_twice_transfers_nothing_the_second_time_and_diff_is_clean(extra: &[&str]) {
    let env = Env::new();
    let c = env.couple("Rsync", "2025-12-31");
    let src = env.path("card");
    let files = card(&src);
    let (_m, mp) = mounted(&env, extra);
    let dest = mp.join("ingest").join(&c);
    sh(Command::new("rsync").arg("-a").arg(format!("{}/", src.display())).arg(format!("{}/", dest.display())));
    let out = sh(Command::new("rsync")
        .arg("-a")
        .arg("--stats")
        .arg(format!("{}/", src.display()))
        .arg(format!("{}/", dest.display())));
    let stats = String::from_utf8_lossy(&out.stdout);
    assert!(stats.contains("Number of regular files transferred: 0"), "{stats}");
    sh(Command::new("diff").arg("-r").arg(&src).arg(&dest));
    wait_in_tree(&mp, &c, files.len());
    assert_in_tree(&env, &mp, &c, &src);
    // rsync's temp names never reached the catalog.
    let rows = env.catalog().files(None).unwrap();
    assert_eq!(rows.len(), files.len());
    assert!(rows.iter().all(|r| !r.display_name.starts_with(b".")));
    // --partial and a changed file: the new version is added, the old one kept.
    write(&src.join("PRIVATE/M4ROOT/CLIP/C0001.MP4"), &data(999, 60_000));
    sh(Command::new("rsync")
        .arg("-a")
        .arg("--partial")
        .arg(format!("{}/", src.display()))
        .arg(format!("{}/", dest.display())));
    sh(Command::new("diff").arg("-r").arg(&src).arg(&dest));
    wait_in_tree(&mp, &c, files.len() + 1);
    let names: Vec<String> = fs::read_dir(mp.join(&c).join("source/modern/sony"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.contains(&"C0001.MP4".to_string()) && names.contains(&"C0001 (2).MP4".to_string()), "{names:?}");
    assert!(env.ok(&["verify"]).contains("0 problem"));
}

fn overwriting_with_the_same_content_is_a_no_op_and_different_content_is_added(extra: &[&str]) {
    let env = Env::new();
    let c = env.couple("Overwrite", "2025-12-31");
    let (_m, mp) = mounted(&env, extra);
    let p = mp.join("ingest").join(&c).join("A001.MOV");
    fs::write(&p, data(1, 100_000)).unwrap();
    fs::write(&p, data(1, 100_000)).unwrap();
    wait_in_tree(&mp, &c, 1);
    assert_eq!(env.catalog().files(None).unwrap().len(), 1);
    fs::write(&p, data(2, 90_000)).unwrap();
    wait_in_tree(&mp, &c, 2);
    let dir = mp.join(&c).join("source/modern/unknown");
    assert_eq!(fs::read(dir.join("A001.MOV")).unwrap(), data(1, 100_000));
    assert_eq!(fs::read(dir.join("A001 (2).MOV")).unwrap(), data(2, 90_000));
    assert_eq!(fs::read(&p).unwrap(), data(2, 90_000), "the ingest view shows what was written last");
    assert_eq!(fs::metadata(&p).unwrap().len(), 90_000);
}

fn four_concurrent_writers_all_land(extra: &[&str]) {
    let env = Env::new();
    let c = env.couple("Writers", "2025-12-31");
    let src = env.path("src");
    for i in 0..4u64 {
        write_big(&src.join(format!("cam{i}/C{i:04}.MP4")), (24 << 20) + i * 4097, 30 + i);
    }
    let (_m, mp) = mounted(&env, extra);
    let dest = mp.join("ingest").join(&c);
    let children: Vec<_> = (0..4)
        .map(|i| {
            Command::new("cp")
                .arg("-r")
                .arg(src.join(format!("cam{i}")))
                .arg(&dest)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for ch in children {
        let out = ch.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    wait_in_tree(&mp, &c, 4);
    assert_in_tree(&env, &mp, &c, &src);
}

fn a_writer_killed_halfway_leaves_nothing_in_the_catalog(extra: &[&str]) {
    let env = Env::new();
    let c = env.couple("Killed", "2025-12-31");
    let (_m, mp) = mounted(&env, extra);
    let dir = mp.join("ingest").join(&c);
    let target = dir.join("HALF.MP4");
    let mut dd = dd_into(&target);
    // Listed while it is written (the kernel keeps that listing)...
    assert_eq!(listing(&dir), ["HALF.MP4"]);
    dd.kill().unwrap();
    dd.wait().unwrap();
    // Give the mount a moment to see the close, then check: nothing catalogued, nothing left in the view.
    std::thread::sleep(Duration::from_millis(300));
    assert!(env.catalog().files(None).unwrap().is_empty());
    assert!(!target.exists(), "the killed writer's file is not in the ingest view");
    // ...and gone from the listing too, once the daemon has dropped the kept one.
    wait_until("the killed writer's file to leave the listing", Duration::from_secs(30), || listing(&dir).is_empty());
    let leftovers: Vec<_> = env.tmp_entries();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // A whole file next to it still commits.
    fs::write(mp.join("ingest").join(&c).join("WHOLE.MP4"), data(3, 50_000)).unwrap();
    wait_in_tree(&mp, &c, 1);
    env.assert_consistent();
}

#[test]
fn the_daemon_killed_mid_write_loses_nothing_committed_and_discards_the_rest() {
    let env = Env::new();
    let c = env.couple("Crash", "2025-12-31");
    let mp = env.path("mnt");
    let mut m = Mount::start(&env, &mp, &[]);
    let dir = mp.join("ingest").join(&c);
    fs::write(dir.join("DONE.MP4"), data(4, 200_000)).unwrap();
    wait_in_tree(&mp, &c, 1);
    let target = dir.join("PARTIAL.MP4");
    let mut dd = dd_into(&target);
    // SAFETY: killing our own child.
    unsafe { libc::kill(m.pid(), libc::SIGKILL) };
    let _ = m.child.take().unwrap().wait();
    let _ = dd.kill();
    let _ = dd.wait();
    drop(m);
    let mut m = Mount::start(&env, &mp, &[]);
    // The committed file is there with its bytes; the partial one is gone from the view and from tmp/.
    assert_eq!(fs::read(mp.join(&c).join("source/modern/unknown/DONE.MP4")).unwrap(), data(4, 200_000));
    assert_eq!(fs::read(dir.join("DONE.MP4")).unwrap(), data(4, 200_000));
    assert!(!dir.join("PARTIAL.MP4").exists());
    assert!(env.tmp_entries().is_empty(), "{:?}", env.tmp_entries());
    assert_eq!(env.catalog().files(None).unwrap().len(), 1);
    assert!(m.stop().success());
    env.assert_consistent();
}

fn a_5_gib_file_through_the_mount(extra: &[&str]) {
    let _disk = disk_heavy(6 << 30);
    let env = Env::new();
    let c = env.couple("Big", "2025-12-31");
    let (_m, mp) = mounted(&env, extra);
    let target = mp.join("ingest").join(&c).join("BIG.MXF");
    // 5 GiB of a repeating non-zero pattern, written by dd through the mount.
    let pattern = env.path("pattern.bin");
    write(&pattern, &data(5, 1 << 20));
    sh(Command::new("sh").arg("-c").arg(format!(
        "for i in $(seq 1 5120); do cat '{}'; done | dd of='{}' bs=1M iflag=fullblock status=none",
        pattern.display(),
        target.display()
    )));
    assert_eq!(fs::metadata(&target).unwrap().len(), 5 << 30);
    wait_in_tree(&mp, &c, 1);
    let rows = env.catalog().files(None).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].size, 5 << 30);
    let mut h = blake3::Hasher::new();
    let block = data(5, 1 << 20);
    for _ in 0..5120 {
        h.update(&block);
    }
    assert_eq!(rows[0].blob_hash, h.finalize().to_hex().to_string());
}

fn full_disk(direct: bool) {
    require_root("mounting a small tmpfs");
    let env = Env::new();
    let small = env.path("small");
    fs::create_dir_all(&small).unwrap();
    let st = Command::new("mount").args(["-t", "tmpfs", "-o", "size=160m", "tmpfs"]).arg(&small).status().unwrap();
    assert!(st.success());
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _g = Unmount(small.clone());
    let arch = small.join("archive");
    let run = |args: &[&str]| Command::new(BIN).arg("--archive").arg(&arch).args(args).output().unwrap();
    assert!(run(&["init"]).status.success());
    let c = String::from_utf8_lossy(&run(&["couple", "add", "--name", "Full", "--date", "2025-01-01"]).stdout)
        .trim()
        .to_string();
    let mp = env.path("mnt");
    fs::create_dir_all(&mp).unwrap();
    let mut mount = Command::new(BIN);
    mount.arg("--archive").arg(&arch).arg("mount").arg(&mp).stderr(Stdio::null());
    if direct {
        // Hand writers the staging file even on this small disk.
        mount.env("NIGHTFOX_INGEST_DIRECT_MIN_FREE", "0");
    } else {
        mount.arg("--no-passthrough");
    }
    let mut child = mount.spawn().unwrap();
    wait_until("mount", Duration::from_secs(15), || serving(&mp));
    let dir = mp.join("ingest").join(&c);
    fs::write(dir.join("SMALL.MP4"), data(6, 1 << 20)).unwrap();
    let big = vec![7u8; 200 << 20];
    let e = fs::write(dir.join("TOO_BIG.MP4"), &big).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(fs::read(mp.join(&c).join("source/modern/unknown/SMALL.MP4")).unwrap(), data(6, 1 << 20));
    let cat = nightfox::catalog::open_sqlite(&arch.join("catalog.db")).unwrap();
    let rows = cat.files(None).unwrap();
    assert_eq!(rows.len(), 1);
    assert!(!dir.join("TOO_BIG.MP4").exists());
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
    let _ = Command::new("fusermount3").arg("-u").arg("-z").arg(&mp).status();
}

#[test]
fn a_real_file_that_looks_like_an_rsync_temp_name_commits_after_a_grace_period() {
    let env = Env::new();
    let c = env.couple("Dotfiles", "2025-12-31");
    let (_m, mp) = mounted(&env, &[]);
    let p = mp.join("ingest").join(&c).join(".profile.backup");
    // Written by a process that ends (`cp`): the grace counts from then.
    let src = env.path("profile.backup");
    write(&src, &data(8, 4321));
    sh(Command::new("cp").arg(&src).arg(&p));
    assert!(env.catalog().files(None).unwrap().is_empty(), "waits for a rename first");
    wait_until("the grace commit", Duration::from_secs(30), || env.catalog().files(None).unwrap().len() == 1);
    let in_tree = mp.join(&c).join("source/modern/unknown/.profile.backup");
    wait_until("the file in the organized tree", Duration::from_secs(90), || in_tree.exists());
    assert_eq!(fs::read(&in_tree).unwrap(), data(8, 4321));
    // Operating-system litter never commits (the one list of `organize::litter_reason`): Finder's clutter,
    // Windows' thumbnail cache, anything in a Spotlight folder.
    let dir = mp.join("ingest").join(&c);
    fs::write(dir.join("._clip.MP4"), b"apple double").unwrap();
    fs::write(dir.join("Thumbs.db"), b"thumbnails").unwrap();
    fs::create_dir_all(dir.join(".Spotlight-V100/Store-V2")).unwrap();
    fs::write(dir.join(".Spotlight-V100/Store-V2/store.db"), b"index").unwrap();
    std::thread::sleep(Duration::from_secs(7));
    assert_eq!(env.catalog().files(None).unwrap().len(), 1);
}

/// rsync renames its temp file when the copy is done, but on a busy machine the rename can come long after the
/// close: while the writer lives, its temp file waits for the rename instead of committing under the temp name
/// after the grace period (it did: the clip was catalogued as `.C0001.MP4.Ab12Cd`).
#[test]
fn a_temp_file_renamed_late_by_its_living_writer_commits_under_the_final_name() {
    let env = Env::new();
    let c = env.couple("Slow", "2025-12-31");
    let (_m, mp) = mounted(&env, &[]);
    let dir = mp.join("ingest").join(&c);
    // This test process is the writer, as rsync's receiver is: it writes, closes, stalls, renames.
    fs::write(dir.join(".C0001.MP4.Ab12Cd"), data(9, 300_000)).unwrap();
    std::thread::sleep(Duration::from_secs(8));
    fs::rename(dir.join(".C0001.MP4.Ab12Cd"), dir.join("C0001.MP4")).unwrap();
    wait_in_tree(&mp, &c, 1);
    let names: Vec<Vec<u8>> = env.catalog().files(None).unwrap().into_iter().map(|f| f.original_path).collect();
    assert_eq!(names, vec![b"C0001.MP4".to_vec()]);
    assert_eq!(fs::read(mp.join(&c).join("source/modern/unknown/C0001.MP4")).unwrap(), data(9, 300_000));
}

fn a_file_being_written_shows_its_size_and_keeps_the_mtime_set_on_it(extra: &[&str]) {
    let env = Env::new();
    let c = env.couple("Growing", "2025-12-31");
    let (_m, mp) = mounted(&env, extra);
    let dir = mp.join("ingest").join(&c);
    let p = dir.join("GROWING.MP4");
    let mut f = fs::File::create(&p).unwrap();
    f.write_all(&data(8, 3 << 20)).unwrap();
    // While the writer holds it open: stat by path and by descriptor, the listing, and a reader all see it.
    assert_eq!(fs::metadata(&p).unwrap().len(), 3 << 20);
    assert_eq!(f.metadata().unwrap().len(), 3 << 20);
    let listed: Vec<(std::ffi::OsString, u64)> =
        fs::read_dir(&dir).unwrap().map(|e| e.unwrap()).map(|e| (e.file_name(), e.metadata().unwrap().len())).collect();
    assert_eq!(listed, vec![("GROWING.MP4".into(), 3 << 20)]);
    assert_eq!(fs::read(&p).unwrap(), data(8, 3 << 20));
    f.write_all(&data(9, 1 << 20)).unwrap();
    // `cp -p` sets the mtime on the open file before it closes it.
    let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    f.set_modified(when).unwrap();
    drop(f);
    wait_in_tree(&mp, &c, 1);
    let mut expected = data(8, 3 << 20);
    expected.extend_from_slice(&data(9, 1 << 20));
    let m = fs::metadata(&p).unwrap();
    assert_eq!((m.len(), m.modified().unwrap()), (4 << 20, when));
    assert_eq!(fs::read(mp.join(&c).join("source/modern/unknown/GROWING.MP4")).unwrap(), expected);
    let rows = env.catalog().files(None).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].source_mtime_ns, 1_600_000_000 * 1_000_000_000);
    assert_eq!(rows[0].blob_hash, blake3::hash(&expected).to_hex().to_string());
}

/// A program started while a file is open for writing inherits the descriptor and closes it as it execs (it is
/// O_CLOEXEC), which the mount sees as a flush from a process in the middle of an exec.
fn a_writer_that_starts_a_program_while_writing_is_not_stalled(extra: &[&str]) {
    let env = Env::new();
    let c = env.couple("Exec", "2025-12-31");
    let (_m, mp) = mounted(&env, extra);
    let p = mp.join("ingest").join(&c).join("OPEN.MP4");
    let mut f = fs::File::create(&p).unwrap();
    f.write_all(&data(11, 1 << 20)).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let ok = (0..5).all(|_| Command::new("true").status().is_ok_and(|s| s.success()));
        let _ = tx.send(ok);
    });
    assert_eq!(rx.recv_timeout(Duration::from_secs(30)), Ok(true), "starting a program stalled");
    f.write_all(&data(12, 1 << 20)).unwrap();
    drop(f);
    wait_in_tree(&mp, &c, 1);
    let mut expected = data(11, 1 << 20);
    expected.extend_from_slice(&data(12, 1 << 20));
    assert_eq!(fs::read(mp.join(&c).join("source/modern/unknown/OPEN.MP4")).unwrap(), expected);
}

/// A commit that fails (here the blob directory refuses new entries, so the verified copy cannot land) takes the
/// file out of the ingest view and says why in the ingest session: `rsync` sends it again next time, and once the
/// archive takes writes again it lands.
fn a_failed_commit_leaves_the_ingest_view_and_is_recorded_in_the_session(extra: &[&str]) {
    let env = Env::new();
    let c = env.couple("Failing", "2025-12-31");
    let src = env.path("card");
    let files = sony_card(&src, 2, 5);
    let (_m, mp) = mounted(&env, extra);
    let objects = Immutable::set(&env.archive.join("objects"))
        .expect("chattr +i failed: this test needs root and a filesystem with the flag");
    let dest = mp.join("ingest").join(&c);
    sh(Command::new("rsync").arg("-a").arg(format!("{}/", src.display())).arg(format!("{}/", dest.display())));
    wait_until("the files that failed to commit to leave the ingest view", Duration::from_secs(60), || {
        let mut left = Vec::new();
        walk_files(&dest, &mut left);
        left.is_empty() && files.iter().all(|f| !dest.join(f.strip_prefix(&src).unwrap()).exists())
    });
    assert!(env.catalog().files(None).unwrap().is_empty());
    assert!(env.tmp_entries().is_empty(), "no staging left: {:?}", env.tmp_entries());
    // The ingest session says so, in `sessions` and in `status`.
    let sessions = env.ok(&["sessions"]);
    assert!(sessions.contains(&format!("{} failed", files.len())), "{sessions}");
    assert!(sessions.contains("could not be committed") && sessions.contains("C000"), "{sessions}");
    let status = env.ok(&["status"]);
    assert!(status.contains("could not be committed"), "{status}");
    // Once the archive takes writes again, the next rsync sends every file again and they land.
    drop(objects);
    let out = sh(Command::new("rsync")
        .arg("-a")
        .arg("--stats")
        .arg(format!("{}/", src.display()))
        .arg(format!("{}/", dest.display())));
    let stats = String::from_utf8_lossy(&out.stdout);
    assert!(stats.contains(&format!("Number of regular files transferred: {}", files.len())), "{stats}");
    wait_in_tree(&mp, &c, files.len());
    assert_in_tree(&env, &mp, &c, &src);
    sh(Command::new("diff").arg("-r").arg(&src).arg(&dest));
}

/// The pid holding the `flock` on `path`, from `/proc/locks` (waiters, `->`, are not holders).
fn flock_holder(path: &Path) -> Option<i32> {
    use std::os::unix::fs::MetadataExt;
    let ino = fs::metadata(path).ok()?.ino();
    fs::read_to_string("/proc/locks").ok()?.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let holds = f.len() > 5 && f[1] == "FLOCK" && f[5].rsplit(':').next()?.parse::<u64>().ok()? == ino;
        if holds {
            f[4].parse().ok()
        } else {
            None
        }
    })
}

/// One import per couple, `/ingest` included: a commit waits for a running import of its couple (and lands after
/// it), and holds the couple's lock while it commits, so an import started then is told the couple is busy.
#[test]
fn ingest_commits_queue_behind_an_import_of_the_couple_and_hold_its_lock() {
    let _disk = disk_heavy(6 << 30);
    let env = Env::new();
    let c = env.couple("Queue", "2025-12-31");
    let card = env.path("card");
    write_big(&card.join("BIG.MP4"), 1 << 30, 3);
    let mp = env.path("mnt");
    let mut m = Mount::start(&env, &mp, &[]);
    let dir = mp.join("ingest").join(&c);

    // An import of the couple is copying: a file written into /ingest meanwhile waits for it.
    let mut import = env.spawn_import(&c, &card, Stdio::piped());
    env.wait_for_temp_over(16 << 20);
    fs::write(dir.join("SMALL.MOV"), data(1, 100_000)).unwrap();
    assert!(import.try_wait().unwrap().is_none(), "the import ended before the write: too fast a disk for this test");
    wait_until("the import", Duration::from_secs(300), || import.try_wait().unwrap().is_some());
    let out = import.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_in_tree(&mp, &c, 2);
    let rows = env.catalog().files(None).unwrap();
    let id_of = |name: &[u8]| rows.iter().find(|r| r.original_path == name).map(|r| r.id).unwrap();
    assert!(id_of(b"SMALL.MOV") > id_of(b"BIG.MP4"), "the commit waited for the import");

    // A large commit holds the couple's lock while it verifies: an import started then is told the couple is busy.
    let lock =
        env.archive.join("locks").join(format!("couple-{}.lock", env.catalog().couple_by_folder(&c).unwrap().id));
    write_big(&dir.join("BIG2.MXF"), 2 << 30, 4);
    wait_until("the commit to hold the couple's lock", Duration::from_secs(60), || {
        flock_holder(&lock) == Some(m.pid())
    });
    let other = env.path("other/x.MOV");
    write(&other, &data(2, 1000));
    let out = env.run(&["import", "--couple", &c, other.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    let ingest_session =
        env.catalog().sessions().unwrap().into_iter().find(|s| s.source.starts_with("ingest:")).unwrap().id;
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("already being imported by session {ingest_session}")), "{err}");
    wait_in_tree(&mp, &c, 3);
    // Once the commit is done the couple is free again.
    wait_until("the lock to be free", Duration::from_secs(60), || flock_holder(&lock).is_none());
    env.ok(&["import", "--couple", &c, other.to_str().unwrap()]);

    // A daemon stopped while a commit waits for an import does not wait for the import: the commit fails, and the
    // session says why.
    let card = env.path("card2");
    write_big(&card.join("BIG3.MP4"), 1 << 30, 5);
    let mut import = env.spawn_import(&c, &card, Stdio::null());
    env.wait_for_temp_over(16 << 20);
    fs::write(dir.join("LATE.MOV"), data(3, 50_000)).unwrap();
    assert!(m.stop().success());
    assert!(import.try_wait().unwrap().is_none(), "the mount stopped before the import ended: too fast a disk");
    wait_until("the import", Duration::from_secs(300), || import.try_wait().unwrap().is_some());
    assert!(import.wait().unwrap().success());
    let cat = env.catalog();
    assert!(cat.files(None).unwrap().iter().all(|f| f.original_path != b"LATE.MOV"));
    let s = cat.session(ingest_session).unwrap();
    let err = s.error.unwrap_or_default();
    // The kernel sends a file's RELEASE after close() returns: a stop that comes first finds LATE.MOV still open,
    // and keeps it staged in /ingest for the next start instead of failing its commit. Either way nothing is lost.
    let staged = cat.ingest_entries().unwrap().into_iter().any(|e| e.name == b"LATE.MOV" && !e.committed);
    if !staged {
        assert!(err.contains("LATE.MOV") && err.contains("already being imported"), "{err}");
        assert_eq!((s.status, s.files_error), (nightfox::catalog::SessionStatus::Completed, 1));
    }
    env.assert_consistent();
}
