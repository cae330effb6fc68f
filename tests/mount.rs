//! The read-only FUSE mount (issue 3): real mounts of real archives, read with std and libc calls.

mod common;

use std::collections::HashMap;
use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirEntryExt, FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

/// Two couples, three cameras, every footage type; returns (env, couple folders, source file per tree path).
fn archive() -> (Env, Vec<String>, HashMap<String, PathBuf>) {
    let env = Env::new();
    let a = env.couple("Julia & Sven", "2025-12-31");
    let b = env.couple("Mara & Tom", "2026-05-01");
    let sony = env.ok(&["camera", "add", "--name", "Sony A7S III", "--type", "modern"]).trim().to_string();
    let dv = env.ok(&["camera", "add", "--name", "Dad's DV", "--type", "dadcam"]).trim().to_string();
    let s8 = env.ok(&["camera", "add", "--name", "Nizo 801", "--type", "super8"]).trim().to_string();
    let mut map = HashMap::new();
    let card = env.path("sony");
    for p in sony_card(&card, 3, 1) {
        map.insert(format!("{a}/source/modern/{sony}/{}", p.file_name().unwrap().to_string_lossy()), p);
    }
    env.ok(&["import", "--couple", &a, "--camera", &sony, card.to_str().unwrap()]);
    let dvdir = env.path("dv");
    let tape = dvdir.join("tape1.dv");
    write(&tape, &data(77, 300_000));
    map.insert(format!("{a}/source/dadcam/{dv}/tape1.dv"), tape);
    env.ok(&["import", "--couple", &a, "--type", "dadcam", "--camera", &dv, dvdir.to_str().unwrap()]);
    let reel = env.path("reel/reel01.mov");
    write(&reel, &data(78, 200_000));
    map.insert(format!("{b}/source/super8/{s8}/reel01.mov"), reel.clone());
    env.ok(&["import", "--couple", &b, "--type", "super8", "--camera", &s8, reel.to_str().unwrap()]);
    let phone = env.path("phone/IMG_0001.MOV");
    write(&phone, &data(79, 150_000));
    map.insert(format!("{b}/source/modern/unknown/IMG_0001.MOV"), phone.clone());
    env.ok(&["import", "--couple", &b, phone.to_str().unwrap()]);
    (env, vec![a, b], map)
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

fn errno_of<T>(r: std::io::Result<T>) -> i32 {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.raw_os_error().unwrap_or(-1),
    }
}

fn check_tree_and_bytes(extra: &[&str]) {
    let (env, couples, map) = archive();
    let mp = env.path("mnt");
    let _m = Mount::start(&env, &mp, extra);
    let (a, b) = (&couples[0], &couples[1]);
    assert_eq!(names(&mp), vec![".by-hash", ".metadata_never_index", a.as_str(), b.as_str(), "ingest"]);
    assert_eq!(names(&mp.join("ingest")), vec![a.as_str(), b.as_str()]);
    assert_eq!(names(&mp.join(a)), vec!["source"]);
    assert_eq!(names(&mp.join(a).join("source")), vec!["dadcam", "modern"]);
    assert_eq!(names(&mp.join(b).join("source")), vec!["modern", "super8"]);
    assert_eq!(names(&mp.join(b).join("source/modern")), vec!["unknown"]);
    assert_eq!(
        names(&mp.join(a).join("source/modern/sony-a7s-iii")),
        vec!["C0001.MP4", "C0001M01.XML", "C0002.MP4", "C0002M01.XML", "C0003.MP4", "C0003M01.XML"]
    );
    // SAFETY: trivial libc calls.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let cat = env.catalog();
    let rows = cat.files(None).unwrap();
    for (tree, src) in &map {
        let p = mp.join(tree);
        let want = fs::read(src).unwrap();
        assert_eq!(fs::read(&p).unwrap(), want, "{tree}");
        let m = fs::metadata(&p).unwrap();
        let sm = fs::metadata(src).unwrap();
        assert_eq!(m.permissions().mode() & 0o7777, 0o444);
        assert_eq!(m.len(), want.len() as u64);
        assert_eq!(m.blocks(), (want.len() as u64).div_ceil(512));
        assert_eq!(m.blksize(), 4096);
        assert_eq!((m.mtime(), m.mtime_nsec()), (sm.mtime(), sm.mtime_nsec()), "{tree}: mtime is the source's");
        assert_eq!(m.nlink(), 1);
        assert_eq!((m.uid(), m.gid()), (uid, gid));
        let row = rows.iter().find(|r| r.blob_hash == b3(&want)).unwrap();
        assert_eq!(m.ctime(), row.imported_at, "ctime is the import time");
        // The same bytes under .by-hash.
        let ext = Path::new(tree).extension().unwrap().to_string_lossy().into_owned();
        assert_eq!(fs::read(mp.join(".by-hash").join(format!("{}.{ext}", row.blob_hash))).unwrap(), want);
    }
    let d = fs::metadata(mp.join(a).join("source")).unwrap();
    assert!(d.is_dir());
    assert_eq!(d.permissions().mode() & 0o7777, 0o555);
    assert_eq!(d.nlink(), 4, "2 + two footage type subdirectories");
    assert_eq!(fs::metadata(&mp).unwrap().nlink(), 6, "2 + .by-hash + ingest + two couples");
    let never = fs::metadata(mp.join(".metadata_never_index")).unwrap();
    assert!(never.is_file() && never.len() == 0);
    for probe in ["._C0001.MP4", ".DS_Store", ".Spotlight-V100", ".hidden"] {
        let e = fs::metadata(mp.join(a).join("source/modern/sony-a7s-iii").join(probe));
        assert_eq!(errno_of(e), libc::ENOENT);
    }
    assert_eq!(errno_of(fs::metadata(mp.join("no-such-couple"))), libc::ENOENT);
    // `du` counts blocks.
    let out = std::process::Command::new("du").arg("-s").arg("-B1").arg(mp.join(a)).output().unwrap();
    let du: u64 = String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().parse().unwrap();
    assert!(du > 300_000, "du -s = {du}");
}

#[test]
fn tree_layout_stat_fields_and_bytes_copy_path() {
    check_tree_and_bytes(&["--no-passthrough"]);
}

#[test]
fn tree_layout_stat_fields_and_bytes_passthrough_when_available() {
    check_tree_and_bytes(&[]);
}

fn random_reads(extra: &[&str]) {
    let env = Env::new();
    let c = env.couple("Threads", "2025-01-01");
    let card = env.path("card");
    let mut srcs = Vec::new();
    for i in 0..8u64 {
        let p = card.join(format!("C{i:04}.MP4"));
        write_big(&p, (8 << 20) + i * 4099, i + 10);
        srcs.push(p);
    }
    env.ok(&["import", "--couple", &c, card.to_str().unwrap()]);
    let mp = env.path("mnt");
    let _m = Mount::start(&env, &mp, extra);
    let dir = mp.join(&c).join("source/modern/unknown");
    let handles: Vec<_> = srcs
        .iter()
        .enumerate()
        .map(|(t, src)| {
            let want = fs::read(src).unwrap();
            let path = dir.join(src.file_name().unwrap());
            std::thread::spawn(move || {
                let f = fs::File::open(&path).unwrap();
                let mut x = (t as u64 + 1) * 0x9E37_79B9;
                for _ in 0..300 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let len = [4096usize, 65536, 1 << 20, 17][(x % 4) as usize];
                    let off = (x >> 8) as usize % want.len();
                    let mut buf = vec![0u8; len];
                    let n = f.read_at(&mut buf, off as u64).unwrap();
                    let end = (off + len).min(want.len());
                    assert_eq!(n, end - off);
                    assert_eq!(&buf[..n], &want[off..end], "thread {t} offset {off}");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn eight_threads_random_offsets_copy_path() {
    random_reads(&["--no-passthrough"]);
}

/// The copy path reads blobs with O_DIRECT; a client's own O_DIRECT reads reach it at any offset and length (the
/// kernel sends them as they are), and still get the right bytes.
#[test]
fn a_client_reading_with_o_direct_gets_the_right_bytes_copy_path() {
    use std::os::unix::fs::OpenOptionsExt;
    let env = Env::new();
    let c = env.couple("Direct", "2025-01-01");
    let src = env.path("card/C0001.MP4");
    write_big(&src, (3 << 20) + 1234, 7);
    env.ok(&["import", "--couple", &c, src.to_str().unwrap()]);
    let mp = env.path("mnt");
    let _m = Mount::start(&env, &mp, &["--no-passthrough"]);
    let want = fs::read(&src).unwrap();
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(mp.join(&c).join("source/modern/unknown/C0001.MP4"))
        .unwrap();
    let len = want.len();
    let reads =
        [(0, 4096), (3, 1000), (4095, 8193), (1 << 20, 1 << 20), (3, 600_000), (len - 1001, 7777), (len - 4096, 4096)];
    for (off, n) in reads {
        let mut buf = vec![0u8; n];
        let got = f.read_at(&mut buf, off as u64).unwrap();
        let end = (off + n).min(len);
        assert_eq!(got, end - off, "offset {off}");
        assert_eq!(&buf[..got], &want[off..end], "offset {off} length {n}");
    }
}

#[test]
fn eight_threads_random_offsets_passthrough_when_available() {
    random_reads(&[]);
}

#[test]
fn passthrough_is_used_when_root_and_the_kernel_allows() {
    require_root("FUSE passthrough");
    let (env, couples, _) = archive();
    let mp = env.path("mnt");
    let run = |extra: &[&str]| {
        let _ = fs::create_dir_all(&mp);
        let child = env
            .cmd()
            .arg("mount")
            .arg(&mp)
            .args(extra)
            .env("RUST_LOG", "nightfox=info")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        wait_until("mount", Duration::from_secs(15), || is_mounted(&mp));
        let f = mp.join(&couples[1]).join("source/modern/unknown/IMG_0001.MOV");
        assert_eq!(fs::read(&f).unwrap(), data(79, 150_000));
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let log = run(&[]);
    let (major, minor) = kernel_version();
    if (major, minor) >= (6, 9) {
        assert!(log.contains("passthrough=true"), "{log}");
    }
    let log = run(&["--no-passthrough"]);
    assert!(log.contains("passthrough=false"), "{log}");
}

/// The read-ahead the kernel uses for the FUSE mount at `mp`, in KiB.
fn mount_read_ahead_kb(mp: &Path) -> u64 {
    let dev = fs::metadata(mp).unwrap().dev();
    let p = format!("/sys/class/bdi/{}:{}/read_ahead_kb", libc::major(dev), libc::minor(dev));
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}")).trim().parse().unwrap()
}

#[test]
fn the_mount_reads_ahead_at_least_a_mebibyte_and_the_override_is_kept() {
    require_root("a mount's read-ahead is set through sysfs");
    let (env, couples, _) = archive();
    let mp = env.path("mnt");
    let f = mp.join(&couples[1]).join("source/modern/unknown/IMG_0001.MOV");
    // The kernel's default for a FUSE mount is 128 KiB.
    let mut m = Mount::start(&env, &mp, &["--no-passthrough"]);
    wait_until("a read-ahead of 1 MiB or more", Duration::from_secs(15), || mount_read_ahead_kb(&mp) >= 1024);
    assert_eq!(fs::read(&f).unwrap(), data(79, 150_000));
    assert!(m.stop().success());
    let mut m = Mount::start_with(&env, &mp, &["--no-passthrough"], &[("NIGHTFOX_READ_AHEAD_KB", "3072")]);
    wait_until("a read-ahead of 3072 KiB", Duration::from_secs(15), || mount_read_ahead_kb(&mp) == 3072);
    assert_eq!(fs::read(&f).unwrap(), data(79, 150_000));
    assert!(m.stop().success());
}

fn kernel_version() -> (u32, u32) {
    let r = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut it = r.split(|c: char| !c.is_ascii_digit()).filter_map(|x| x.parse().ok());
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

#[test]
fn inodes_and_mtimes_are_stable_across_remounts() {
    let (env, _, map) = archive();
    let mp = env.path("mnt");
    let snapshot = |mp: &Path| {
        let mut v: Vec<(String, u64, i64, i64)> = Vec::new();
        let mut stack = vec![mp.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let e = e.unwrap();
                let m = fs::symlink_metadata(e.path()).unwrap();
                if m.is_dir() {
                    stack.push(e.path());
                }
                v.push((
                    e.path().strip_prefix(mp).unwrap().to_string_lossy().into_owned(),
                    m.ino(),
                    m.mtime(),
                    m.mtime_nsec(),
                ));
            }
        }
        v.sort();
        v
    };
    let mut m = Mount::start(&env, &mp, &[]);
    let first = snapshot(&mp);
    assert!(first.len() > map.len());
    assert!(m.stop().success());
    assert!(!is_mounted(&mp));
    let _m = Mount::start(&env, &mp, &[]);
    assert_eq!(snapshot(&mp), first);
}

#[test]
fn every_write_answers_erofs() {
    let (env, couples, _) = archive();
    let mp = env.path("mnt");
    let _m = Mount::start(&env, &mp, &[]);
    let dir = mp.join(&couples[0]).join("source/modern/sony-a7s-iii");
    let file = dir.join("C0001.MP4");
    assert_eq!(errno_of(fs::OpenOptions::new().write(true).open(&file)), libc::EROFS);
    assert_eq!(errno_of(fs::File::create(dir.join("new.MP4"))), libc::EROFS);
    assert_eq!(errno_of(fs::File::create(mp.join("new.MP4"))), libc::EROFS);
    assert_eq!(errno_of(fs::create_dir(dir.join("sub"))), libc::EROFS);
    assert_eq!(errno_of(fs::rename(&file, dir.join("renamed.MP4"))), libc::EROFS);
    assert_eq!(errno_of(fs::remove_file(&file)), libc::EROFS);
    assert_eq!(errno_of(fs::remove_dir(mp.join(&couples[1]))), libc::EROFS);
    assert_eq!(errno_of(fs::set_permissions(&file, fs::Permissions::from_mode(0o644))), libc::EROFS);
    assert_eq!(errno_of(std::os::unix::fs::symlink("x", dir.join("link"))), libc::EROFS);
    let cp = CString::new(file.as_os_str().as_bytes()).unwrap();
    let cn = CString::new("user.test").unwrap();
    // SAFETY: valid C strings and buffer.
    let rc = unsafe { libc::setxattr(cp.as_ptr(), cn.as_ptr(), b"v".as_ptr().cast(), 1, 0) };
    assert_eq!(rc, -1);
    assert_eq!(std::io::Error::last_os_error().raw_os_error(), Some(libc::EROFS));
    // SAFETY: valid C string.
    assert_eq!(unsafe { libc::truncate(cp.as_ptr(), 0) }, -1);
    assert_eq!(std::io::Error::last_os_error().raw_os_error(), Some(libc::EROFS));
    // Nothing changed.
    assert_eq!(fs::read(&file).unwrap().len(), 50_997);
}

#[test]
fn xattrs_and_their_absence() {
    let (env, couples, map) = archive();
    let mp = env.path("mnt");
    let _m = Mount::start(&env, &mp, &[]);
    let tree = format!("{}/source/modern/sony-a7s-iii/C0002.MP4", couples[0]);
    let p = mp.join(&tree);
    let want = fs::read(&map[&tree]).unwrap();
    assert_eq!(getxattr(&p, "user.nightfox.blake3").unwrap(), b3(&want).into_bytes());
    assert_eq!(getxattr(&p, "user.nightfox.original_path").unwrap(), b"PRIVATE/M4ROOT/CLIP/C0002.MP4");
    assert_eq!(getxattr(&p, "user.nightfox.camera").unwrap(), b"sony-a7s-iii");
    let at = String::from_utf8(getxattr(&p, "user.nightfox.imported_at").unwrap()).unwrap();
    assert!(at.len() == 20 && at.ends_with('Z') && at.starts_with("20"), "{at}");
    assert_eq!(getxattr(&p, "user.nightfox.nope"), Err(libc::ENODATA));
    assert_eq!(getxattr(&mp.join(&couples[0]), "user.nightfox.blake3"), Err(libc::ENODATA));
    // No security labels, no POSIX ACLs: answered as a filesystem without that namespace (so `ls -l` stops asking).
    assert_eq!(getxattr(&p, "security.selinux"), Err(libc::EOPNOTSUPP));
    assert_eq!(getxattr(&mp.join(&couples[0]), "security.selinux"), Err(libc::EOPNOTSUPP));
    assert_eq!(getxattr(&p, "system.posix_acl_access"), Err(libc::EOPNOTSUPP));
    assert_eq!(getxattr(&p, "user.nightfox.blake3").unwrap(), b3(&want).into_bytes(), "still served after those");
    let unknown = mp.join(&couples[1]).join("source/modern/unknown/IMG_0001.MOV");
    assert_eq!(getxattr(&unknown, "user.nightfox.camera").unwrap(), b"unknown");
    let out = std::process::Command::new("getfattr").arg("-d").arg(&p).output();
    if let Ok(out) = out {
        if out.status.success() {
            let s = String::from_utf8_lossy(&out.stdout);
            assert!(s.contains("user.nightfox.original_path"), "{s}");
        }
    }
}

#[test]
fn statfs_reports_the_archive_filesystem() {
    let (env, _, _) = archive();
    let mp = env.path("mnt");
    let _m = Mount::start(&env, &mp, &[]);
    let c = CString::new(mp.as_os_str().as_bytes()).unwrap();
    // SAFETY: valid C string and out pointer.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut s) }, 0);
    let ca = CString::new(env.archive.as_os_str().as_bytes()).unwrap();
    let mut sa: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(ca.as_ptr(), &mut sa) }, 0);
    assert!(s.f_blocks > 0 && s.f_bavail > 0 && s.f_bsize > 0);
    assert_eq!(s.f_blocks * s.f_frsize, sa.f_blocks * sa.f_frsize);
    assert_eq!(s.f_files, 9, "the file count of the archive");
    assert_eq!(s.f_namemax, 255);
}

#[test]
fn an_import_while_mounted_appears_in_the_tree() {
    let (env, couples, _) = archive();
    let mp = env.path("mnt");
    let _m = Mount::start(&env, &mp, &[]);
    let c = env.couple("Late Couple", "2026-07-07");
    let dir = mp.join(&c).join("source/modern/unknown");
    let old_dir = mp.join(&couples[1]).join("source/modern/unknown");
    // Looked up (and listed) before they exist.
    assert_eq!(errno_of(fs::metadata(dir.join("NEW.MP4"))), libc::ENOENT);
    assert_eq!(errno_of(fs::metadata(old_dir.join("LATE.MOV"))), libc::ENOENT);
    let before = names(&old_dir);
    let src = env.path("late");
    write(&src.join("NEW.MP4"), &data(900, 4321));
    env.ok(&["import", "--couple", &c, src.to_str().unwrap()]);
    let src2 = env.path("late2/LATE.MOV");
    write(&src2, &data(901, 1234));
    env.ok(&["import", "--couple", &couples[1], src2.to_str().unwrap()]);
    wait_until("new files in the mount", Duration::from_secs(90), || {
        dir.join("NEW.MP4").exists() && old_dir.join("LATE.MOV").exists()
    });
    assert_eq!(fs::read(dir.join("NEW.MP4")).unwrap(), data(900, 4321));
    assert_eq!(fs::read(old_dir.join("LATE.MOV")).unwrap(), data(901, 1234));
    let mut after = before.clone();
    after.push("LATE.MOV".into());
    after.sort();
    assert_eq!(names(&old_dir), after);
    assert!(names(&mp).contains(&c));
}

#[test]
fn a_deleted_blob_gives_eio_and_the_mount_stays_up() {
    let (env, couples, map) = archive();
    let mp = env.path("mnt");
    let mut m = Mount::start(&env, &mp, &["--no-passthrough"]);
    let tree = format!("{}/source/modern/sony-a7s-iii/C0003.MP4", couples[0]);
    let h = b3(&fs::read(&map[&tree]).unwrap());
    let blob = env.archive.join("objects").join(&h[..2]).join(&h[2..4]).join(&h);
    fs::remove_file(&blob).unwrap();
    let e = fs::read(mp.join(&tree));
    assert_eq!(errno_of(e), libc::EIO);
    let other = format!("{}/source/modern/sony-a7s-iii/C0001.MP4", couples[0]);
    assert_eq!(fs::read(mp.join(&other)).unwrap(), fs::read(&map[&other]).unwrap());
    assert!(m.stop().success());
}

#[test]
fn sigterm_exits_cleanly_and_a_stale_mount_is_cleaned_at_start() {
    let (env, couples, _) = archive();
    let mp = env.path("mnt");
    let mut m = Mount::start(&env, &mp, &[]);
    assert!(m.stop().success(), "exit 0 on SIGTERM");
    assert!(!is_mounted(&mp), "no mount left behind");
    // A crashed daemon leaves "Transport endpoint is not connected"; the next mount cleans it.
    let mut crashed = Mount::start(&env, &mp, &[]);
    let mut child = crashed.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(errno_of(fs::metadata(&mp)), libc::ENOTCONN);
    assert!(is_mounted(&mp));
    let mut m = Mount::start(&env, &mp, &[]);
    assert!(names(&mp).contains(&couples[0]));
    assert!(m.stop().success());
    assert!(!is_mounted(&mp), "neither the stale nor the new mount is left");
    drop(crashed);
}

/// Starts `nightfox mount MP` or `nightfox serve MP` and waits (bounded) until it serves; panics with its stderr
/// if it exits instead (a refused lock).
fn start_daemon(env: &Env, cmd: &str, mp: &Path) -> std::process::Child {
    let mut c = env.cmd();
    c.arg(cmd).arg(mp);
    if cmd == "serve" {
        c.args(["--poll-interval", "1s"]);
    }
    let mut child = c.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    wait_until(&format!("{cmd} to serve"), Duration::from_secs(15), || {
        if let Ok(Some(st)) = child.try_wait() {
            let mut err = String::new();
            use std::io::Read;
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("{cmd} exited ({st}) instead of mounting: {err}");
        }
        serving(mp)
    });
    child
}

/// `fusermount3 -u M && nightfox mount M`: the daemon that served M has let the archive go by the time its mount
/// is gone, `mount` and `serve` alike, also after commits in `/ingest` (whose catalog it closes afterwards).
#[test]
fn a_new_daemon_started_right_after_an_external_unmount_gets_the_archive() {
    let env = Env::new();
    let c = env.couple("Again", "2025-12-31");
    let mp = env.path("mnt");
    fs::create_dir_all(&mp).unwrap();
    let mut running = start_daemon(&env, "mount", &mp);
    for (round, next) in ["mount", "serve", "mount"].into_iter().enumerate() {
        fs::write(mp.join("ingest").join(&c).join(format!("R{round}.MOV")), data(round as u64, 200_000)).unwrap();
        wait_until("the commit", Duration::from_secs(90), || env.catalog().files(None).unwrap().len() > round);
        let st = std::process::Command::new("fusermount3").arg("-u").arg(&mp).status().unwrap();
        assert!(st.success());
        let new = start_daemon(&env, next, &mp);
        let old = std::mem::replace(&mut running, new);
        let mut old = old;
        wait_until("the old daemon to exit", Duration::from_secs(30), || old.try_wait().unwrap().is_some());
        assert!(old.wait().unwrap().success());
    }
    // SAFETY: signalling our own child by pid.
    unsafe { libc::kill(running.id() as i32, libc::SIGTERM) };
    wait_until("the last daemon to exit", Duration::from_secs(30), || running.try_wait().unwrap().is_some());
    assert!(!is_mounted(&mp));
    assert_eq!(env.catalog().files(None).unwrap().len(), 3);
}

#[test]
fn odd_names_are_served_as_given() {
    let env = Env::new();
    let c = env.couple("Odd", "2025-01-01");
    let card = env.path("card");
    fs::create_dir_all(&card).unwrap();
    let names_in: Vec<Vec<u8>> = vec![
        b"new\nline.MP4".to_vec(),
        b"bad\xffname.MP4".to_vec(),
        "Cafe\u{301}.MOV".as_bytes().to_vec(),
        b"a b.MP4".to_vec(),
    ];
    for (i, n) in names_in.iter().enumerate() {
        fs::write(card.join(os(n)), data(i as u64, 100 + i)).unwrap();
    }
    env.ok(&["import", "--couple", &c, card.to_str().unwrap()]);
    let mp = env.path("mnt");
    let _m = Mount::start(&env, &mp, &[]);
    let dir = mp.join(&c).join("source/modern/unknown");
    let listed: Vec<Vec<u8>> =
        fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().as_bytes().to_vec()).collect();
    for (i, n) in names_in.iter().enumerate() {
        assert!(listed.contains(n), "{:?} not listed", os(n));
        assert_eq!(fs::read(dir.join(os(n))).unwrap(), data(i as u64, 100 + i));
    }
}

/// A directory too big for one reply is listed in parts, each entry once, with the same attributes `stat` gives;
/// a second listing (kept by the kernel) is the same.
#[test]
fn a_large_directory_lists_every_entry_once() {
    let env = Env::new();
    let c = env.couple("Many", "2025-03-03");
    let card = env.path("card");
    fs::create_dir_all(&card).unwrap();
    let mut want: Vec<String> = (0..1500).map(|i| format!("CLIP_{i:05}_with_a_longer_name.MP4")).collect();
    for (i, n) in want.iter().enumerate() {
        fs::write(card.join(n), data(i as u64, 10 + i % 200)).unwrap();
    }
    env.ok(&["import", "--couple", &c, card.to_str().unwrap()]);
    want.sort();
    let mp = env.path("mnt");
    let _m = Mount::start(&env, &mp, &[]);
    let dir = mp.join(&c).join("source/modern/unknown");
    let listed: Vec<(String, u64, u64)> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().to_string_lossy().into_owned(), e.ino(), e.metadata().unwrap().len())
        })
        .collect();
    let names: Vec<String> = listed.iter().map(|(n, _, _)| n.clone()).collect();
    assert_eq!(names, want, "every entry once, in name order");
    for (n, ino, len) in &listed {
        let md = fs::metadata(dir.join(n)).unwrap();
        assert_eq!((md.ino(), md.len()), (*ino, *len), "{n}");
        assert_eq!(*len, fs::metadata(card.join(n)).unwrap().len(), "{n}");
    }
    assert_eq!(self::names(&dir), want, "listed again");
}

/// Runs a shell script as `nobody` (no groups, C locale); returns whether it succeeded and its stderr.
fn as_nobody(script: &str) -> (bool, String) {
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "sh", "-c", script])
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Another user of an `--allow-other` mount reads the tree and gets EROFS for every write, as the owner does (the
/// kernel's permission check would answer EACCES first); in `/ingest` the daemon keeps the modes and owners.
#[test]
fn another_user_gets_erofs_in_the_tree_and_the_modes_in_ingest() {
    require_root("setpriv to another user");
    let (env, couples, map) = archive();
    fs::set_permissions(env.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let mp = env.path("mnt");
    let _m = Mount::start(&env, &mp, &["--allow-other"]);
    let dir = mp.join(&couples[0]).join("source/modern/sony-a7s-iii");
    let file = dir.join("C0001.MP4");
    let q = |p: &Path| format!("'{}'", p.display());
    let src = map.iter().find(|(t, _)| t.ends_with("/C0001.MP4")).map(|(_, s)| s).unwrap();
    let (ok, err) = as_nobody(&format!("cmp {} {}", q(&file), q(src)));
    assert!(ok, "everyone reads the tree: {err}");
    let (f, d) = (q(&file), q(&dir));
    for script in [
        format!("echo x >> {f}"),
        format!("touch {d}/new.MP4"),
        format!("mkdir {d}/sub"),
        format!("chmod 644 {f}"),
        format!("mv {f} {d}/renamed.MP4"),
        format!("rm {f}"),
        format!("truncate -s 0 {f}"),
        format!("setfattr -n user.test -v 1 {f}"),
    ] {
        let (ok, err) = as_nobody(&script);
        assert!(!ok && err.contains("Read-only file system"), "{script}: {err}");
    }
    assert_eq!(fs::read(&file).unwrap(), fs::read(src).unwrap(), "nothing changed");

    // The couple folders in /ingest belong to the mounting user (root here), 0755.
    let ingest = mp.join("ingest").join(&couples[0]);
    let (ok, err) = as_nobody(&format!("touch {}/theirs.MP4", q(&ingest)));
    assert!(!ok && err.contains("Permission denied"), "{err}");
    let mine = ingest.join("mine.txt");
    fs::write(&mine, b"secret").unwrap();
    fs::set_permissions(&mine, fs::Permissions::from_mode(0o600)).unwrap();
    let (ok, err) = as_nobody(&format!("cat {}", q(&mine)));
    assert!(!ok && err.contains("Permission denied"), "{err}");
    // Handed to nobody, it is theirs to read and chmod; once it is read-only to them, not to write; never to give.
    std::os::unix::fs::chown(&mine, Some(65534), None).unwrap();
    let (ok, err) = as_nobody(&format!("cat {m} >/dev/null && chmod 400 {m}", m = q(&mine)));
    assert!(ok, "{err}");
    let (ok, err) = as_nobody(&format!("echo more >> {}", q(&mine)));
    assert!(!ok && err.contains("Permission denied"), "{err}");
    let (ok, err) = as_nobody(&format!("chown 0 {}", q(&mine)));
    assert!(!ok && err.contains("Operation not permitted"), "{err}");
    let m = fs::metadata(&mine).unwrap();
    assert_eq!((m.uid(), m.permissions().mode() & 0o7777), (65534, 0o400));
    assert_eq!(fs::read(&mine).unwrap(), b"secret");
}
