//! ASC MHL round trips with the reference tool (`ascmhl` 1.2 in target/venv-ascmhl, see scripts/setup.sh): the
//! history Nightfox writes for an import session passes the XSD and `ascmhl-debug verify` (0; 11 after a flipped
//! byte; 31 after an edited manifest), and `nightfox mhl check` accepts histories the reference tool created.

mod common;

use std::ffi::OsStr;
use std::fs;
use std::path::Path;

use common::*;

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// A card with clips, sidecars, a nested folder and awkward names.
fn card(root: &Path) {
    sony_card(root, 3, 7);
    write(&root.join("DCIM/100GOPRO/GX010001 & co.MP4"), &data(11, 300_000));
    write(&root.join("DCIM/100GOPRO/empty.THM"), b"");
    write(&root.join("notes <1>.txt"), b"caf\xc3\xa9\n");
}

fn manifests(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = fs::read_dir(dir.join("ascmhl"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "mhl"))
        .collect();
    v.sort();
    v
}

#[test]
fn session_history_verifies_with_the_reference_tool() {
    let Some(bin) = ascmhl_bin() else { return };
    let env = Env::new();
    let couple = env.couple("Julia Sven", "2025-12-31");
    let src = env.path("card");
    card(&src);
    env.ok(&[os("import"), os("--couple"), os(&couple), src.as_os_str()]);

    // `nightfox mhl SESSION DIR`, the folder copied into a plain copy of the card.
    let out = env.path("history");
    env.ok(&[os("mhl"), os("1"), out.as_os_str()]);
    let m = manifests(&out);
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(ascmhl(&bin, "ascmhl-debug", &[os("xsd-schema-check"), m[0].as_os_str()]), 0);
    let chain = out.join("ascmhl/ascmhl_chain.xml");
    assert_eq!(ascmhl(&bin, "ascmhl-debug", &[os("xsd-schema-check"), os("-df"), chain.as_os_str()]), 0);
    let text = fs::read_to_string(&m[0]).unwrap();
    assert!(text.contains("<xxh64 action=\"original\"") && text.contains("<xxh128 action=\"original\""), "{text}");
    assert!(text.contains("PRIVATE/M4ROOT/CLIP/C0001.MP4"), "original relative paths: {text}");

    let copy = env.path("copy");
    copy_tree(&src, &copy);
    copy_tree(&out.join("ascmhl"), &copy.join("ascmhl"));
    assert_eq!(ascmhl(&bin, "ascmhl-debug", &[os("verify"), copy.as_os_str()]), 0);
    env.ok(&[os("mhl"), os("check"), copy.as_os_str()]);
    flip_byte(&copy.join("DCIM/100GOPRO/GX010001 & co.MP4"), 1234);
    assert_eq!(ascmhl(&bin, "ascmhl-debug", &[os("verify"), copy.as_os_str()]), 11);
    let r = env.run(&[os("mhl"), os("check"), copy.as_os_str()]);
    assert_eq!(r.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&r.stdout).contains("hash mismatch: DCIM/100GOPRO/GX010001 & co.MP4"));

    // The history the import wrote into the archive, and an edited manifest.
    let kept = env.archive.join("manifests/1");
    assert_eq!(manifests(&kept).len(), 1);
    let copy2 = env.path("copy2");
    copy_tree(&src, &copy2);
    copy_tree(&kept.join("ascmhl"), &copy2.join("ascmhl"));
    assert_eq!(ascmhl(&bin, "ascmhl-debug", &[os("verify"), copy2.as_os_str()]), 0);
    let edited = &manifests(&copy2)[0];
    let t = fs::read_to_string(edited).unwrap().replace("<hostname>", "<hostname>x");
    fs::write(edited, t).unwrap();
    assert_eq!(ascmhl(&bin, "ascmhl-debug", &[os("verify"), copy2.as_os_str()]), 31);
    let r = env.run(&[os("mhl"), os("check"), copy2.as_os_str()]);
    assert_eq!(r.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&r.stdout).contains("was modified"), "{r:?}");

    // A second history into the same folder is its generation 0002, and the reference tool still accepts it.
    env.ok(&[os("mhl"), os("1"), out.as_os_str()]);
    let m = manifests(&out);
    assert_eq!(m.len(), 2);
    assert!(m[1].file_name().unwrap().to_string_lossy().starts_with("0002_history_"), "{m:?}");
    let copy3 = env.path("copy3");
    copy_tree(&src, &copy3);
    copy_tree(&out.join("ascmhl"), &copy3.join("ascmhl"));
    assert_eq!(ascmhl(&bin, "ascmhl-debug", &[os("verify"), copy3.as_os_str()]), 0);
}

#[test]
fn reference_histories_check() {
    let Some(bin) = ascmhl_bin() else { return };
    let t = tempfile::tempdir_in(test_root()).unwrap();
    let env = Env::new();
    for format in ["xxh64", "md5", "sha1", "c4", "xxh128", "xxh3"] {
        let dir = t.path().join(format!("card-{format}"));
        card(&dir);
        assert_eq!(ascmhl(&bin, "ascmhl", &[os("create"), os("-h"), os(format), dir.as_os_str()]), 0);
        let out = env.ok(&[os("mhl"), os("check"), dir.as_os_str()]);
        assert!(out.starts_with("OK: 9 files verified"), "{format}: {out}");
        flip_byte(&dir.join("PRIVATE/M4ROOT/CLIP/C0002.MP4"), 10);
        let r = env.run(&[os("mhl"), os("check"), dir.as_os_str()]);
        assert_eq!(r.status.code(), Some(1), "{format}");
        let stdout = String::from_utf8_lossy(&r.stdout);
        assert!(stdout.contains(&format!("hash mismatch: PRIVATE/M4ROOT/CLIP/C0002.MP4: {format} ")), "{stdout}");
    }
    // Two generations (xxh64, then xxh128 verifying it), a missing and a new file.
    let dir = t.path().join("two");
    card(&dir);
    assert_eq!(ascmhl(&bin, "ascmhl", &[os("create"), os("-h"), os("xxh64"), dir.as_os_str()]), 0);
    assert_eq!(ascmhl(&bin, "ascmhl", &[os("create"), os("-h"), os("xxh128"), dir.as_os_str()]), 0);
    env.ok(&[os("mhl"), os("check"), dir.as_os_str()]);
    fs::remove_file(dir.join("notes <1>.txt")).unwrap();
    write(&dir.join("extra.bin"), b"x");
    let r = env.run(&[os("mhl"), os("check"), dir.as_os_str()]);
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert_eq!(r.status.code(), Some(1));
    assert!(stdout.contains("missing: notes <1>.txt"), "{stdout}");
    assert!(stdout.contains("new file: extra.bin"), "{stdout}");
}

#[test]
fn check_without_history_is_one_clear_line() {
    let env = Env::new();
    let dir = env.path("plain");
    write(&dir.join("a.bin"), b"a");
    let r = env.run(&[os("mhl"), os("check"), dir.as_os_str()]);
    assert_eq!(r.status.code(), Some(1));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("no ASC MHL history") && err.lines().count() == 1, "{err}");
    let r = env.run(&[os("mhl"), os("nope"), dir.as_os_str()]);
    assert_eq!(r.status.code(), Some(2));
    let r = env.run(&[os("mhl"), os("99"), dir.as_os_str()]);
    assert_eq!(r.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&r.stderr).contains("no import session 99"));
}

#[test]
fn onset_history_checked_at_import() {
    let Some(bin) = ascmhl_bin() else { return };
    let env = Env::new();
    let couple = env.couple("On Set", "2025-02-02");
    let src = env.path("card");
    card(&src);
    assert_eq!(ascmhl(&bin, "ascmhl", &[os("create"), os("-h"), os("xxh64"), src.as_os_str()]), 0);
    assert_eq!(ascmhl(&bin, "ascmhl", &[os("create"), os("-h"), os("md5"), src.as_os_str()]), 0);
    let out = env.ok(&[os("import"), os("--couple"), os(&couple), src.as_os_str()]);
    assert!(out.contains("on-set ASC MHL: verified against the on-set manifest (9 files, generation 0002)"), "{out}");
    // The card's ascmhl/ is kept as sidecars of a clip, not as footage.
    let files = env.catalog().files(None).unwrap();
    let history: Vec<_> = files.iter().filter(|f| f.original_path.starts_with(b"ascmhl/")).collect();
    assert_eq!(history.len(), 3, "two manifests and the chain");
    assert!(history.iter().all(|f| f.sidecar_of.is_some()));
    let sessions = env.ok(&["sessions"]);
    assert!(sessions.contains("verified against the on-set manifest"), "{sessions}");

    // A file altered after the history was made, one removed, one added: reported, the import itself fine.
    let card2 = env.path("card2");
    copy_tree(&src, &card2);
    flip_byte(&card2.join("PRIVATE/M4ROOT/CLIP/C0002.MP4"), 7);
    fs::remove_file(card2.join("notes <1>.txt")).unwrap();
    write(&card2.join("late.bin"), b"late");
    let out = env.ok(&[os("import"), os("--couple"), os(&couple), os("--duplicates"), os("import"), card2.as_os_str()]);
    assert!(
        out.contains("3 problem(s) against the on-set manifest (generation 0002): 1 file(s) with a hash mismatch, 1 missing, 1 not listed"),
        "{out}"
    );
    let json = env.ok(&["sessions", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let problems: serde_json::Value = serde_json::from_str(v[1]["onset_problems"].as_str().unwrap()).unwrap();
    let kinds: Vec<(&str, &str)> = problems
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["problem"].as_str().unwrap(), p["path"].as_str().unwrap()))
        .collect();
    assert!(kinds.contains(&("mismatch", "PRIVATE/M4ROOT/CLIP/C0002.MP4")), "{kinds:?}");
    assert!(kinds.contains(&("missing", "notes <1>.txt")), "{kinds:?}");
    assert!(kinds.contains(&("new", "late.bin")), "{kinds:?}");
}
