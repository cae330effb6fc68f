//! Scrubs as a schedule, through the real binary: `verify --limit` checks that many bytes oldest-verified first
//! and the next run continues with the rest; `--older-than` skips what was verified recently (aged without
//! waiting through `$NIGHTFOX_NOW`, the test clock of verify); the orphan check finds a stray object file and a
//! `tmp/` leftover; `serve --scrub-every` runs a recorded, throttled scrub that `status` shows, and stops cleanly
//! in the middle of one.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::time::Duration;

use common::*;

/// A couple with `n` imported clips of `size` bytes each; returns the couple and the clips' hashes in import
/// order.
fn archive_with(env: &Env, n: usize, size: usize) -> (String, Vec<String>) {
    let c = env.couple("Scrub Test", "2025-06-14");
    let card = env.path("card");
    let mut hashes = Vec::new();
    for i in 0..n {
        let bytes = data(1000 + i as u64, size);
        hashes.push(b3(&bytes));
        write(&card.join(format!("C{i:04}.MP4")), &bytes);
    }
    env.ok(&["import", "--couple", &c, card.to_str().unwrap()]);
    (c, hashes)
}

/// The blobs whose `verified_at` is set, and the subset verified at exactly `at`.
fn verified(env: &Env, at: Option<i64>) -> BTreeSet<String> {
    env.catalog()
        .blobs(None)
        .unwrap()
        .into_iter()
        .filter(|b| b.verified_at.is_some() && at.is_none_or(|t| b.verified_at == Some(t)))
        .map(|b| b.hash)
        .collect()
}

fn now() -> i64 {
    nightfox::catalog::now()
}

#[test]
fn a_limit_checks_that_many_bytes_oldest_first_and_the_next_run_continues_with_the_rest() {
    let env = Env::new();
    let (_, hashes) = archive_with(&env, 6, 10_000);
    let out = env.ok(&["verify", "--limit", "25kB"]);
    assert!(out.contains("verified 2 blobs") && out.contains("limit reached"), "{out}");
    let first = verified(&env, None);
    assert_eq!(first.len(), 2, "two blobs fit in 25 kB");
    let out = env.ok(&["verify", "--limit", "25kB"]);
    assert!(out.contains("verified 2 blobs"), "{out}");
    let second = verified(&env, None);
    assert_eq!(second.len(), 4, "the second run took two never verified ones");
    assert!(first.is_subset(&second));
    env.ok(&["verify", "--limit", "25kB"]);
    assert_eq!(verified(&env, None).len(), 6, "three runs went round");
    // Round again: the first run's blobs are now the oldest verified (ties go by row id, so them too).
    let later = now() + 100;
    env.cmd().args(["verify", "--limit", "25kB"]).env("NIGHTFOX_NOW", later.to_string()).output().unwrap();
    assert_eq!(verified(&env, Some(later)), first, "oldest verified first");
    // A blob bigger than the limit is still checked when it is the first.
    let out = env.ok(&["verify", "--limit", "1"]);
    assert!(out.contains("verified 1 blobs"), "{out}");
    // The runs are recorded.
    let runs = env.catalog().scrub_runs(10).unwrap();
    assert_eq!(runs.len(), 5);
    assert!(runs.iter().all(|r| r.trigger == "verify" && r.complete && r.finished_at.is_some()), "{runs:?}");
    assert_eq!(runs[0].blobs_checked, 1);
    assert_eq!(runs[1].bytes_checked, 20_000);
    // The whole archive, without a limit.
    let out = env.ok(&["verify"]);
    assert!(out.contains(&format!("verified {} blobs", hashes.len())) && out.contains("0 problem"), "{out}");
    // Bad input is one line and exit 2.
    for bad in [["verify", "--limit", "5 parsecs"], ["verify", "--older-than", "soon"]] {
        let out = env.run(&bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("is not a"), "{err}");
    }
}

#[test]
fn older_than_skips_the_recently_verified_and_checks_the_never_verified() {
    let env = Env::new();
    let (c, hashes) = archive_with(&env, 3, 5_000);
    assert!(env.ok(&["verify"]).contains("verified 3 blobs"));
    let out = env.ok(&["verify", "--older-than", "1d"]);
    assert!(out.contains("verified 0 blobs"), "verified just now: {out}");
    // A new clip was never verified: it is due.
    let more = env.path("more");
    write(&more.join("NEW.MP4"), &data(77, 4_000));
    env.ok(&["import", "--couple", &c, more.to_str().unwrap()]);
    let out = env.ok(&["verify", "--older-than", "1d", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["blobs_checked"], 1, "{out}");
    assert_eq!(v["bytes_checked"], 4_000);
    // Two days on, all of them are older than a day.
    let later = now() + 2 * 86_400;
    let out = env.cmd().args(["verify", "--older-than", "1d"]).env("NIGHTFOX_NOW", later.to_string()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("verified 4 blobs"), "{text}");
    assert_eq!(verified(&env, Some(later)).len(), hashes.len() + 1);
}

#[test]
fn the_orphan_check_finds_a_stray_object_file_and_lists_tmp_leftovers() {
    let env = Env::new();
    let (_, hashes) = archive_with(&env, 2, 3_000);
    assert!(env.ok(&["verify"]).contains("0 problem"));
    // A blob-shaped file the catalog does not know, and a leftover copy in tmp/.
    let stray = "ab".repeat(32);
    let dir = env.archive.join("objects/ab/ab");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(&stray), b"not catalogued").unwrap();
    fs::write(env.archive.join("tmp/s99-i1.part"), vec![0u8; 1234]).unwrap();
    let out = env.run(&["verify"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "an orphan is an error: {text}");
    assert!(text.contains("ORPHAN") && text.contains(&stray), "{text}");
    assert!(text.contains("tmp/ holds 1 file(s)") && text.contains("s99-i1.part"), "{text}");
    assert!(text.lines().last().unwrap().contains("1 orphan(s)"), "{text}");
    let out = env.run(&["verify", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["orphans"]["objects"].as_array().unwrap().len(), 1);
    assert_eq!(v["orphans"]["tmp"][0]["session"], 99);
    assert_eq!(v["orphans"]["tmp"][0]["size"], 1234);
    assert_eq!(env.catalog().scrub_runs(1).unwrap()[0].orphans, 1, "recorded with the run");
    // The catalogued blobs are not orphans; with the stray gone, a tmp/ leftover alone is no error.
    fs::remove_file(dir.join(&stray)).unwrap();
    let out = env.ok(&["verify"]);
    assert!(out.contains(&format!("verified {} blobs", hashes.len())) && !out.contains("ORPHAN"), "{out}");
    assert!(out.contains("tmp/ holds 1 file(s)"), "{out}");
    // `--couple` checks that couple's blobs only, without the orphan check.
}

fn status_json(env: &Env) -> serde_json::Value {
    let out = env.run(&["status", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("status json")
}

#[test]
fn serve_runs_a_scheduled_scrub_that_status_shows_and_stops_cleanly_in_the_middle_of_one() {
    let env = Env::new();
    let (_, hashes) = archive_with(&env, 3, 20_000);
    assert!(env.ok(&["status"]).contains("last scrub: never"));
    let mp = env.path("mnt");
    {
        let mut m = Mount::serve_with(&env, &mp, &["--scrub-every", "7d", "--scrub-rate", "100MB/s"], &[]);
        wait_until("a scheduled scrub", Duration::from_secs(60), || !status_json(&env)["last_scrub"].is_null());
        let v = status_json(&env);
        assert_eq!(v["last_scrub"]["trigger"], "schedule", "{v}");
        assert_eq!(v["last_scrub"]["blobs_checked"], hashes.len());
        assert_eq!(v["last_scrub"]["complete"], true);
        assert_eq!(v["scrub_every"], "7d");
        assert!(v["next_scrub"].is_string(), "{v}");
        let text = env.ok(&["status"]);
        assert!(text.contains("(schedule), 3 blobs") && text.contains("clean"), "{text}");
        assert!(text.contains("next scrub: ") && text.contains("(every 7d)"), "{text}");
        assert!(m.stop().success());
    }
    assert_eq!(verified(&env, None).len(), hashes.len());
    // Without a daemon or a [scrub] table, nothing is scheduled.
    assert!(env.ok(&["status"]).contains("next scrub: not scheduled"));
    // A slow scrub (1 kB/s over 60 kB, the blobs aged two days) stops at its next blob when serve stops.
    let later = (now() + 2 * 86_400).to_string();
    {
        let mut m = Mount::serve_with(
            &env,
            &mp,
            &["--scrub-every", "1d", "--scrub-rate", "1kB/s"],
            &[("NIGHTFOX_NOW", later.as_str())],
        );
        wait_until("a running scheduled scrub", Duration::from_secs(60), || {
            env.catalog().scrub_runs(1).unwrap().first().is_some_and(|r| r.finished_at.is_none())
        });
        assert!(m.stop().success(), "serve stops in the middle of a scrub");
    }
    let runs = env.catalog().scrub_runs(10).unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(runs[0].finished_at.is_some() && !runs[0].complete, "recorded as stopped: {runs:?}");
    assert!(runs[0].blobs_checked < hashes.len() as i64, "{runs:?}");
    // The schedule in archive.toml: `status` shows when the next one is due.
    let toml = fs::read_to_string(env.archive.join("archive.toml")).unwrap();
    fs::write(env.archive.join("archive.toml"), format!("{toml}\n[scrub]\nevery = \"7d\"\nlimit = \"500GB\"\n")).unwrap();
    let text = env.ok(&["status"]);
    assert!(text.contains("(every 7d)"), "{text}");
}
