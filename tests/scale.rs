//! A large generated archive (`nightfox generate`, catalogue rows in bulk as an import writes them): the mounted
//! tree is exactly the catalogue after a remount, with the same inode numbers, a file imported meanwhile appears,
//! and `verify` with every blob absent (an external disk not mounted) reports one line per couple and every
//! problem in `--json`. Timings and memory at a million files are the benchmark's (`scripts/bench-scale.sh`).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::*;

fn expected(couples: u32, cameras: u32, files: u32) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for c in 0..couples {
        for k in 0..cameras {
            for i in 0..files {
                out.insert(format!(
                    "2020-01-01-gen-{c:05}/source/modern/gen-cam{k:03}/{}",
                    nightfox::generate::file_name(i)
                ));
            }
        }
    }
    out
}

/// Every regular file under the mount (hidden `.by-hash` and `/ingest` aside) with its inode number.
fn tree(mp: &Path) -> BTreeMap<String, u64> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(mp).expect("list the root") {
        let e = e.expect("entry");
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name == "ingest" || !e.file_type().expect("type").is_dir() {
            continue;
        }
        walk_files(&e.path(), &mut files);
    }
    files
        .into_iter()
        .map(|p| {
            let ino = std::fs::metadata(&p).expect("stat").ino();
            (p.strip_prefix(mp).unwrap().to_string_lossy().into_owned(), ino)
        })
        .collect()
}

#[test]
fn a_generated_100k_file_tree_is_right_after_a_remount_and_takes_new_imports() {
    let env = Env::new();
    let out = env.ok(&["generate", "--couples", "40", "--cameras", "5", "--files", "500"]);
    assert!(out.contains("generated 100000 files"), "{out}");
    let want = expected(40, 5, 500);
    let mp = env.path("mnt");
    let mut m = Mount::start(&env, &mp, &[]);
    let first = tree(&mp);
    assert_eq!(first.keys().cloned().collect::<BTreeSet<_>>(), want, "the mount shows exactly the catalogue");
    m.stop();
    let mut m = Mount::start(&env, &mp, &[]);
    // A path named straight away, before any listing, resolves to the same inode.
    let deep = "2020-01-01-gen-00031/source/modern/gen-cam004/C00499.MP4";
    assert_eq!(std::fs::metadata(mp.join(deep)).expect("stat a deep path cold").ino(), first[deep]);
    let again = tree(&mp);
    assert_eq!(again, first, "after a remount: the same paths with the same inode numbers");
    // `.by-hash` lists every blob (in pages), and a name in it is found without a listing.
    let by_hash: Vec<String> = std::fs::read_dir(mp.join(".by-hash"))
        .expect("list .by-hash")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(by_hash.len(), 100_000, "one entry per blob");
    assert_eq!(by_hash.iter().collect::<BTreeSet<_>>().len(), 100_000, "no entry twice");
    let content = nightfox::generate::content(7, 3, 42);
    let name = format!("{}.MP4", blake3::hash(&content).to_hex());
    let ino = first["2020-01-01-gen-00007/source/modern/gen-cam003/C00042.MP4"];
    m.stop();
    let mut m = Mount::start(&env, &mp, &[]);
    let st = std::fs::metadata(mp.join(".by-hash").join(&name)).expect("stat a .by-hash name cold");
    assert_eq!(st.len(), content.len() as u64);
    assert_ne!(st.ino(), ino, "a .by-hash entry has its own inode");
    // An import while mounted appears in the tree.
    let couple = env.couple("Late Couple", "2026-01-01");
    let card = env.path("card");
    sony_card(&card, 1, 3);
    env.ok(&["import", "--couple", &couple, card.to_str().unwrap()]);
    let clip = mp.join(&couple).join("source/modern");
    wait_until("the new import in the mount", std::time::Duration::from_secs(10), || {
        let mut f = Vec::new();
        walk_files(&clip, &mut f);
        f.iter().any(|p| p.extension().is_some_and(|e| e == "MP4"))
    });
    m.stop();
}

#[test]
fn verify_with_the_blobs_absent_reports_one_line_per_couple_and_every_problem_in_json() {
    let env = Env::new();
    env.ok(&["generate", "--couples", "4", "--cameras", "2", "--files", "250"]);
    let out = env.run(&["verify"]);
    assert_eq!(out.status.code(), Some(1), "problems exit 1");
    let text = String::from_utf8_lossy(&out.stdout);
    let bad: Vec<&str> = text.lines().filter(|l| l.starts_with("BAD ")).collect();
    assert_eq!(bad.len(), 4, "one line per couple:\n{text}");
    for (c, line) in bad.iter().enumerate() {
        assert!(line.starts_with(&format!("BAD 2020-01-01-gen-{c:05}: 500 missing, 0 damaged")), "{line}");
        assert!(line.contains("and 497 more"), "{line}");
    }
    assert!(text.lines().last().unwrap().contains("verified 2000 blobs") && text.contains("2000 problem(s)"), "{text}");
    let out = env.run(&["verify", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let problems = v["problems"].as_array().expect("problems");
    assert_eq!(problems.len(), 2000);
    assert!(problems.iter().all(|p| p["kind"] == "missing" && p["files"].as_array().is_some_and(|f| f.len() == 1)));
    assert_eq!(v["couples"][3]["missing"], 500);
    // Recorded as missing, so the mount answers EIO for them.
    let cat = env.catalog();
    assert_eq!(cat.unhealthy_blobs().unwrap().len(), 2000);
    drop(cat);
    // `status` names the first 20 and counts the rest.
    let status = env.ok(&["status"]);
    assert_eq!(status.lines().filter(|l| l.contains("\tmissing\t")).count(), 20, "{status}");
    assert!(status.contains("and 1980 more"), "{status}");
}

#[test]
fn generated_blobs_verify_clean_and_read_back_through_the_mount() {
    let env = Env::new();
    env.ok(&["generate", "--couples", "2", "--cameras", "2", "--files", "20", "--blobs"]);
    assert!(env.ok(&["verify"]).contains("0 problem"));
    let mp = env.path("mnt");
    let mut m = Mount::start(&env, &mp, &[]);
    let p = mp.join("2020-01-01-gen-00001/source/modern/gen-cam001").join(nightfox::generate::file_name(7));
    assert_eq!(std::fs::read(&p).expect("read through the mount"), nightfox::generate::content(1, 1, 7));
    m.stop();
}
