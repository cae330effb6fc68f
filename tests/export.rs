//! `nightfox export`: the bytes in DEST equal the archive's, the ASC MHL history there passes the reference tool,
//! an export killed with SIGKILL mid-file resumes (the finished files kept, the partial one removed and copied
//! again), and a second export copies nothing and appends a `verified` generation.

mod common;

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::*;

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    walk_files(dir, &mut v);
    v.sort();
    v
}

fn parts(dir: &Path) -> Vec<PathBuf> {
    files_under(dir).into_iter().filter(|p| p.to_string_lossy().ends_with(".nightfox-part")).collect()
}

fn manifests(dest: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dest.join("ascmhl"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".mhl"))
        .collect();
    v.sort();
    v
}

#[test]
fn export_resume_and_reverify() {
    let env = Env::new();
    let couple = env.couple("Julia Sven", "2025-12-31");
    let card = env.path("card");
    sony_card(&card, 3, 5);
    write_big(&card.join("DCIM/100/BIG.MP4"), 384 << 20, 9);
    env.ok(&[os("import"), os("--couple"), os(&couple), card.as_os_str()]);

    // Killed mid-export: the temp file of the big one is growing.
    let dest = env.path("dest");
    let mut child = env
        .cmd()
        .args([os("export"), os(&couple), dest.as_os_str(), os("--layout"), os("original")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("a partial copy in DEST", Duration::from_secs(60), || {
        parts(&dest).iter().any(|p| fs::metadata(p).is_ok_and(|m| m.len() > 8 << 20))
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(!parts(&dest).is_empty());

    let out = env.ok(&[os("export"), os(&couple), dest.as_os_str(), os("--layout"), os("original")]);
    assert!(out.contains("exported 7 files") && out.contains("0 failed"), "{out}");
    assert!(parts(&dest).is_empty(), "temp leftovers: {:?}", parts(&dest));
    for f in files_under(&card) {
        let rel = f.strip_prefix(&card).unwrap();
        assert_eq!(b3_file(&f), b3_file(&dest.join(rel)), "{rel:?}");
    }
    assert_eq!(manifests(&dest).len(), 1);
    env.ok(&[os("mhl"), os("check"), dest.as_os_str()]);

    // Again: nothing copied, a second generation verifying every file.
    let out = env.ok(&[os("export"), os(&couple), dest.as_os_str(), os("--layout"), os("original")]);
    assert!(out.contains("0 copied, 7 already there, 0 failed"), "{out}");
    let m = manifests(&dest);
    assert_eq!(m.len(), 2);
    assert!(m[1].starts_with("0002_dest_"), "{m:?}");
    let second = fs::read_to_string(dest.join("ascmhl").join(&m[1])).unwrap();
    assert_eq!(second.matches("action=\"verified\"").count(), 14, "{second}");
    assert!(!second.contains("action=\"original\""));

    if let Some(bin) = ascmhl_bin() {
        assert_eq!(ascmhl(&bin, "ascmhl-debug", &[os("verify"), dest.as_os_str()]), 0);
        for name in &m {
            let p = dest.join("ascmhl").join(name);
            assert_eq!(ascmhl(&bin, "ascmhl-debug", &[os("xsd-schema-check"), p.as_os_str()]), 0);
        }
        flip_byte(&dest.join("PRIVATE/M4ROOT/CLIP/C0001.MP4"), 100);
        assert_eq!(ascmhl(&bin, "ascmhl-debug", &[os("verify"), dest.as_os_str()]), 11);
    }
}

#[test]
fn export_tree_layout_and_part_of_a_couple() {
    let env = Env::new();
    let couple = env.couple("Ana Bo", "2025-06-01");
    let card = env.path("card");
    sony_card(&card, 2, 3);
    env.ok(&[os("import"), os("--couple"), os(&couple), card.as_os_str()]);
    let dest = env.path("dest");
    let what = format!("{couple}/source/modern");
    env.ok(&[os("export"), os(&what), dest.as_os_str()]);
    let got: Vec<String> = files_under(&dest.join("source"))
        .iter()
        .map(|p| p.strip_prefix(&dest).unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(got.len(), 4, "{got:?}");
    assert!(got.iter().all(|p| p.starts_with("source/modern/")), "{got:?}");
    env.ok(&[os("mhl"), os("check"), dest.as_os_str()]);

    let r = env.run(&[os("export"), os(&format!("{couple}/source/super8")), env.path("d2").as_os_str()]);
    assert_eq!(r.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&r.stderr).contains("nothing to export"));
    let r = env.run(&[os("export"), os("no-such-couple"), env.path("d3").as_os_str()]);
    assert_eq!(r.status.code(), Some(1));
    let r = env.run(&[os("export"), os(&couple), env.path("d4").as_os_str(), os("--layout"), os("flat")]);
    assert_eq!(r.status.code(), Some(2));
}
