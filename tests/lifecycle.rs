//! Fixing mistakes (issue 18): renames (display names; folders and slugs, whose old names keep resolving), file
//! moves and camera merges, mounted and remounted, `kill -9` during each, and the archive-wide audit log.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use common::*;

#[test]
fn couple_rename_corrects_name_and_date_keeps_the_folder_and_is_logged() {
    let env = Env::new();
    let folder = env.couple("Ana & Bo", "2026-06-01");
    let card = env.path("card");
    write(&card.join("A001.MOV"), &data(1, 10_000));
    env.ok(&["import", "--couple", &folder, card.to_str().unwrap()]);

    let out = env
        .cmd()
        .env("NIGHTFOX_NOW", "1780000000")
        .args(["couple", "rename", &folder, "--name", "Ana & Bob", "--date", "2026-06-02", "--keep-folder"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let cat = env.catalog();
    let c = cat.couple_by_folder(&folder).expect("the folder stays");
    assert_eq!((c.display_name.as_str(), c.event_date.as_str()), ("Ana & Bob", "2026-06-02"));
    assert_eq!(c.file_count, 1, "its files stay with it");

    let log = env.ok(&["log", "--couple", &folder, "--json"]);
    let events: serde_json::Value = serde_json::from_str(&log).expect("json");
    let actions: Vec<&str> = events.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["couple.add", "session.import", "couple.rename"], "{log}");
    let import = events[1]["summary"].as_str().unwrap();
    assert!(import.contains("1 files"), "{import}");
    let rename = &events[2];
    assert_eq!(rename["at"], 1780000000, "the archive's clock");
    assert_eq!(rename["uid"], unsafe { libc::getuid() });
    assert_eq!(rename["couple"], folder.as_str());
    let summary = rename["summary"].as_str().unwrap();
    assert!(summary.contains("Ana & Bo") && summary.contains("Ana & Bob"), "{summary}");
}

#[test]
fn camera_rename_corrects_the_name_keeps_the_slug_and_is_logged() {
    let env = Env::new();
    let slug = env.ok(&["camera", "add", "--name", "sony ilce 7sm3", "--type", "modern"]).trim().to_string();
    env.ok(&["camera", "rename", &slug, "--name", "A-cam"]);
    let cam = env.catalog().camera_by_slug(&slug).expect("the slug stays");
    assert_eq!(cam.name, "A-cam");
    let log = env.ok(&["log"]);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2, "{log}");
    assert!(lines[0].contains("camera.add") && lines[1].contains("camera.rename"), "{log}");
    assert!(lines[1].contains("A-cam"), "{log}");
}

#[test]
fn bad_renames_fail_with_one_line_and_change_nothing() {
    let env = Env::new();
    let folder = env.couple("Cy & Di", "2026-07-01");
    for args in [
        vec!["couple", "rename", "no-such-couple", "--name", "X"],
        vec!["couple", "rename", folder.as_str()],
        vec!["couple", "rename", folder.as_str(), "--date", "2026-13-45"],
        vec!["couple", "rename", folder.as_str(), "--name", "  "],
        vec!["camera", "rename", "no-such-camera", "--name", "X"],
        vec!["couple", "rename", folder.as_str(), "--to-folder", "a/b"],
        vec!["couple", "rename", folder.as_str(), "--to-folder", ".hidden"],
    ] {
        let out = env.run(&args);
        assert!(!out.status.success(), "{args:?} must fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line: {err}");
    }
    let c = env.catalog().couple_by_folder(&folder).unwrap();
    assert_eq!((c.display_name.as_str(), c.event_date.as_str()), ("Cy & Di", "2026-07-01"));
    let log = env.ok(&["log"]);
    assert_eq!(log.lines().count(), 1, "only the couple.add: {log}");
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match fs::read_dir(dir) {
        Ok(d) => d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// (inode, bytes) of a path, or None when it does not resolve.
fn seen(p: &Path) -> Option<(u64, Vec<u8>)> {
    let m = fs::metadata(p).ok()?;
    Some((m.ino(), fs::read(p).ok()?))
}

/// A couple with a two-clip Sony card imported under camera `a` (and camera `b` there to move to).
fn two_cameras(env: &Env) -> (String, String, String) {
    let folder = env.couple("Ana & Bo", "2026-06-01");
    let a = env.ok(&["camera", "add", "--name", "sony ilce 7sm3", "--type", "modern"]).trim().to_string();
    let b = env.ok(&["camera", "add", "--name", "B cam", "--type", "modern"]).trim().to_string();
    let card = env.path("card");
    sony_card(&card, 2, 1);
    env.ok(&["import", "--couple", &folder, "--camera", &a, card.to_str().unwrap()]);
    (folder, a, b)
}

#[test]
fn renames_and_moves_while_mounted_keep_old_paths_resolving_to_the_same_bytes_and_inodes() {
    let env = Env::new();
    let (folder, a, b) = two_cameras(&env);
    let mp = env.path("mnt");
    let mut m = Mount::start(&env, &mp, &[]);
    let clip =
        |root: &Path, f: &str, t: &str, cam: &str, n: &str| root.join(f).join("source").join(t).join(cam).join(n);
    let p0 = clip(&mp, &folder, "modern", &a, "C0001.MP4");
    let side0 = clip(&mp, &folder, "modern", &a, "C0001M01.XML");
    let (ino, bytes) = seen(&p0).expect("the clip is mounted");
    let (side_ino, side_bytes) = seen(&side0).expect("its sidecar");

    // The camera's slug: the new folder listed, the old one resolves but is not listed and lists empty.
    env.ok(&["camera", "rename", &a, "--slug", "a-cam", "--name", "A-cam"]);
    let modern = mp.join(&folder).join("source/modern");
    wait_until("the new camera folder", Duration::from_secs(10), || listing(&modern) == ["a-cam"]);
    assert_eq!(seen(&clip(&mp, &folder, "modern", "a-cam", "C0001.MP4")), Some((ino, bytes.clone())));
    assert_eq!(seen(&p0), Some((ino, bytes.clone())), "the old path reads the same bytes");
    assert!(listing(&modern.join(&a)).is_empty(), "the old folder lists empty");

    // A clip moves with its sidecar to another camera and footage type.
    env.ok(&["file", "move", &format!("{folder}/source/modern/a-cam/C0001.MP4"), "--camera", &b, "--type", "dadcam"]);
    let p1 = clip(&mp, &folder, "dadcam", &b, "C0001.MP4");
    wait_until("the moved clip", Duration::from_secs(10), || listing(p1.parent().unwrap()).len() == 2);
    assert_eq!(seen(&p1), Some((ino, bytes.clone())), "same inode, same bytes");
    assert_eq!(seen(&clip(&mp, &folder, "dadcam", &b, "C0001M01.XML")), Some((side_ino, side_bytes.clone())));
    assert_eq!(listing(&modern.join("a-cam")), ["C0002.MP4", "C0002M01.XML"], "moved away: not listed");
    for old in [&p0, &clip(&mp, &folder, "modern", "a-cam", "C0001.MP4")] {
        assert_eq!(seen(old), Some((ino, bytes.clone())), "{old:?} still resolves");
    }
    assert_eq!(seen(&side0), Some((side_ino, side_bytes.clone())));

    // The couple's name, and with it its folder.
    let out = env.ok(&["couple", "rename", &folder, "--name", "Ana & Bob"]);
    let folder2 = out.split('\t').next().unwrap().to_string();
    assert_ne!(folder2, folder);
    wait_until("the new couple folder", Duration::from_secs(10), || listing(&mp).contains(&folder2));
    assert!(!listing(&mp).contains(&folder), "the old folder is not listed");
    assert!(listing(&mp.join(&folder)).is_empty(), "and lists empty");
    let now = clip(&mp, &folder2, "dadcam", &b, "C0001.MP4");
    let olds = [p0.clone(), p1.clone(), clip(&mp, &folder2, "modern", &a, "C0001.MP4")];
    assert_eq!(seen(&now), Some((ino, bytes.clone())));
    for old in &olds {
        assert_eq!(seen(old), Some((ino, bytes.clone())), "{old:?} still resolves");
    }
    let untouched = clip(&mp, &folder2, "modern", "a-cam", "C0002.MP4");
    let before = seen(&untouched).expect("the other clip");
    assert_eq!(seen(&clip(&mp, &folder, "modern", &a, "C0002.MP4")), Some(before.clone()));
    assert!(seen(&clip(&mp, &folder, "modern", &a, "NOPE.MP4")).is_none(), "only old names resolve");
    m.stop();

    // Remounted: the same.
    let mut m = Mount::start(&env, &mp, &[]);
    assert_eq!(seen(&now), Some((ino, bytes.clone())));
    for old in &olds {
        assert_eq!(seen(old), Some((ino, bytes.clone())), "{old:?} after a remount");
    }
    assert_eq!(seen(&untouched), Some(before));
    assert_eq!(listing(&mp.join(&folder2).join("source")), ["dadcam", "modern"]);
    assert!(!listing(&mp).contains(&folder));

    // `info` of an old path finds the file, and lists where it was.
    let info = env.ok(&["info", p0.to_str().unwrap()]);
    assert!(info.contains(&format!("{folder2}/source/dadcam/{b}/C0001.MP4")), "{info}");
    assert!(info.contains(&format!("old path       {folder2}/source/modern/a-cam/C0001.MP4")), "{info}");
    assert!(info.contains(&folder), "its old folder name: {info}");
    m.stop();

    let log = env.ok(&["log"]);
    for action in ["camera.rename", "file.move", "couple.rename"] {
        assert!(log.contains(action), "{action} logged: {log}");
    }
    let cat = env.catalog();
    let listing = cat.camera_listing().unwrap();
    let count = |slug: &str| listing.iter().find(|c| c.camera.slug == slug).map(|c| c.file_count);
    assert_eq!((count("a-cam"), count(&b)), (Some(2), Some(2)), "camera totals follow the move");
}

#[test]
fn camera_merge_moves_every_file_renames_clashes_retires_the_camera_and_routes_new_imports() {
    let env = Env::new();
    let (folder, a, b) = two_cameras(&env);
    // The same clip names on camera b, other bytes.
    let card2 = env.path("card2");
    sony_card(&card2, 1, 2);
    env.ok(&["import", "--couple", &folder, "--camera", &b, card2.to_str().unwrap()]);
    let before = env.catalog().file_at_tree_path_for_test(&format!("{folder}/source/modern/{a}/C0001.MP4"));

    let out = env.ok(&["camera", "merge", &a, &b]);
    assert!(out.contains("4 files moved") && out.contains("2 renamed"), "{out}");
    let list = env.ok(&["camera", "list"]);
    assert!(!list.contains(&a) && list.contains(&b), "{list}");

    // The clash got a suffix, its sidecar the same one; the old path names the same file.
    let dir = format!("{folder}/source/modern/{b}");
    let moved = env.catalog().file_at_tree_path_for_test(&format!("{dir}/C0001 (2).MP4"));
    assert_eq!(moved, before);
    assert!(env.run(&["info", &format!("{dir}/C0001 (2)M01.XML")]).status.success(), "the sidecar pairs");
    let old = env.ok(&["info", &format!("{folder}/source/modern/{a}/C0001.MP4")]);
    assert!(old.contains(&format!("{dir}/C0001 (2).MP4")), "{old}");

    // What would route to the merged camera routes to the one it was merged into.
    let card3 = env.path("card3");
    write(&card3.join("LATE.MP4"), &data(9, 30_000));
    env.ok(&["import", "--couple", &folder, "--camera", &a, card3.to_str().unwrap()]);
    assert!(env.run(&["info", &format!("{dir}/LATE.MP4")]).status.success());
    let listing = env.catalog().camera_listing().unwrap();
    let n = listing.iter().find(|c| c.camera.slug == b).map(|c| c.file_count);
    assert_eq!(n, Some(7), "{listing:?}");

    // A merged camera cannot be renamed or merged again; a new camera cannot take its slug.
    assert!(!env.run(&["camera", "merge", &a, &b]).status.success());
    assert!(!env.run(&["camera", "rename", &b, "--slug", &a]).status.success(), "the slug stays held");
    assert!(env.ok(&["log"]).contains("camera.merge"));
}

/// The tree path of a catalog file (for comparing which file an old path names).
trait TreePathForTest {
    fn file_at_tree_path_for_test(&self, tree: &str) -> i64;
}

impl TreePathForTest for nightfox::catalog::Catalog {
    fn file_at_tree_path_for_test(&self, tree: &str) -> i64 {
        nightfox::fs::file_at_tree_path(self, tree.as_bytes()).expect(tree).id
    }
}

#[test]
fn names_held_by_old_paths_are_not_taken_by_new_imports() {
    let env = Env::new();
    let (folder, a, b) = two_cameras(&env);
    env.ok(&["file", "move", &format!("{folder}/source/modern/{a}/C0001.MP4"), "--camera", &b]);
    // A new C0001.MP4 on camera a must not shadow the old path of the moved one.
    let card2 = env.path("card2");
    sony_card(&card2, 1, 7);
    env.ok(&["import", "--couple", &folder, "--camera", &a, card2.to_str().unwrap()]);
    let cat = env.catalog();
    let old = cat.file_at_tree_path_for_test(&format!("{folder}/source/modern/{a}/C0001.MP4"));
    let now = cat.file_at_tree_path_for_test(&format!("{folder}/source/modern/{b}/C0001.MP4"));
    assert_eq!(old, now, "the old path still names the moved file");
    let new = cat.file_at_tree_path_for_test(&format!("{folder}/source/modern/{a}/C0001 (2).MP4"));
    assert_ne!(new, now);
    // Nor a couple folder or a camera slug.
    env.ok(&["camera", "rename", &a, "--slug", "a-cam"]);
    let again = env.run(&["camera", "add", "--name", "sony ilce 7sm3", "--type", "modern"]);
    let slug = String::from_utf8_lossy(&again.stdout).trim().to_string();
    assert_ne!(slug, a, "the old slug is held");
}

/// Runs a command, killed with SIGKILL after `delay`; returns whether it finished by itself.
fn killed_after(env: &Env, args: &[&str], delay: Duration) -> bool {
    let mut child =
        env.cmd().args(args).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    std::thread::sleep(delay);
    // SAFETY: signalling our own child by pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap().success()
}

/// Every camera's count matches its files, every couple's count matches its files.
fn assert_totals(env: &Env) {
    let cat = env.catalog();
    let files = cat.files(None).unwrap();
    for c in cat.camera_listing().unwrap() {
        let n = files.iter().filter(|f| f.camera_id == Some(c.camera.id)).count() as i64;
        assert_eq!(c.file_count, n, "camera {} totals", c.camera.slug);
    }
    for c in cat.couples().unwrap() {
        let n = files.iter().filter(|f| f.couple_id == c.id).count() as i64;
        assert_eq!(c.file_count, n, "couple {} totals", c.folder_name);
    }
    env.assert_consistent();
}

#[test]
fn kill_9_during_a_move_a_merge_or_a_rename_leaves_before_or_after() {
    for (i, delay) in [0u64, 2, 5, 10, 20, 40].into_iter().enumerate() {
        let env = Env::new();
        let (folder, a, b) = two_cameras(&env);
        let d = Duration::from_millis(delay);
        let path = format!("{folder}/source/modern/{a}/C0001.MP4");
        let done = killed_after(&env, &["file", "move", &path, "--camera", &b], d);
        let cat = env.catalog();
        let at_b = nightfox::fs::file_at_tree_path(&cat, format!("{folder}/source/modern/{b}/C0001.MP4").as_bytes());
        let at_a = cat
            .file_in_dir(
                cat.couple_by_folder(&folder).unwrap().id,
                nightfox::catalog::FootageType::Modern,
                Some(cat.camera_by_slug(&a).unwrap().id),
                b"C0001.MP4",
            )
            .unwrap();
        assert!(at_b.is_ok() != at_a.is_some(), "run {i}: in exactly one place (finished: {done})");
        if at_b.is_ok() {
            assert!(nightfox::fs::file_at_tree_path(&cat, path.as_bytes()).is_ok(), "moved: the old path resolves");
        }
        assert_totals(&env);
        killed_after(&env, &["camera", "merge", &a, &b], d);
        assert_totals(&env);
        killed_after(&env, &["couple", "rename", &folder, "--name", "Someone Else"], d);
        let cat = env.catalog();
        let couples = cat.couples().unwrap();
        assert_eq!(couples.len(), 1);
        let f = &couples[0].folder_name;
        if f != &folder {
            assert_eq!(cat.couple_alias(&folder).unwrap(), Some(couples[0].id), "renamed: the old name resolves");
        }
        assert_totals(&env);
    }
}
