//! Scrubs as a schedule, through the real binary: `verify --limit` checks that many bytes oldest-verified first
//! and the next run continues with the rest; `--older-than` skips what was verified recently (runs placed in time
//! without waiting through `$NIGHTFOX_NOW`, the test clock of verify); the orphan check finds a stray object file and a
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

/// `verify ARGS` with the test clock at `at`; returns stdout (asserting success).
fn verify_at(env: &Env, at: i64, args: &[&str]) -> String {
    let out = env.cmd().arg("verify").args(args).env("NIGHTFOX_NOW", at.to_string()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "verify {args:?}: {text}{}", String::from_utf8_lossy(&out.stderr));
    text
}

// Each run below is a minute after the last on the test clock: `verified_at` has a resolution of a second, and
// a run stamps what it checked with its own second.

#[test]
fn a_limit_checks_that_many_bytes_oldest_first_and_the_next_run_continues_with_the_rest() {
    let env = Env::new();
    let (_, hashes) = archive_with(&env, 6, 10_000);
    let t = now();
    let out = verify_at(&env, t + 60, &["--limit", "25kB"]);
    assert!(out.contains("verified 2 blobs") && out.contains("limit reached"), "{out}");
    let first = verified(&env, Some(t + 60));
    assert_eq!(first.len(), 2, "two blobs fit in 25 kB");
    assert_eq!(first, hashes[..2].iter().cloned().collect(), "all verified at import: by row id");
    let out = verify_at(&env, t + 120, &["--limit", "25kB"]);
    assert!(out.contains("verified 2 blobs"), "{out}");
    assert_eq!(verified(&env, Some(t + 120)), hashes[2..4].iter().cloned().collect(), "the next two");
    verify_at(&env, t + 180, &["--limit", "25kB"]);
    assert_eq!(verified(&env, Some(t + 180)), hashes[4..].iter().cloned().collect(), "and the rest");
    // Round again: the first run's blobs are now the oldest verified.
    verify_at(&env, t + 240, &["--limit", "25kB"]);
    assert_eq!(verified(&env, Some(t + 240)), first, "oldest verified first");
    // A blob bigger than the limit is still checked when it is the first.
    let out = verify_at(&env, t + 300, &["--limit", "1"]);
    assert!(out.contains("verified 1 blobs"), "{out}");
    assert_eq!(verified(&env, Some(t + 300)), [hashes[2].clone()].into_iter().collect());
    // The runs are recorded.
    let runs = env.catalog().scrub_runs(10).unwrap();
    assert_eq!(runs.len(), 5);
    assert!(runs.iter().all(|r| r.trigger == "verify" && r.complete && r.finished_at.is_some()), "{runs:?}");
    assert_eq!(runs[0].blobs_checked, 1);
    assert_eq!(runs[1].bytes_checked, 20_000);
    // The whole archive, without a limit (twice in the same second: each time every blob).
    for _ in 0..2 {
        let out = env.ok(&["verify"]);
        assert!(out.contains(&format!("verified {} blobs", hashes.len())) && out.contains("0 problem"), "{out}");
    }
    // Bad input is one line and exit 2.
    for bad in [["verify", "--limit", "5 parsecs"], ["verify", "--older-than", "soon"]] {
        let out = env.run(&bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("is not a"), "{err}");
    }
}

#[test]
fn older_than_skips_the_recently_verified() {
    let env = Env::new();
    let (_, hashes) = archive_with(&env, 3, 5_000);
    let t = now();
    assert!(verify_at(&env, t, &[]).contains("verified 3 blobs"));
    let out = verify_at(&env, t + 60, &["--older-than", "1d"]);
    assert!(out.contains("verified 0 blobs"), "verified a minute ago: {out}");
    // Two days on, all of them are older than a day; one is checked then (the limit).
    let later = t + 2 * 86_400;
    let out = verify_at(&env, later, &["--older-than", "1d", "--limit", "5kB"]);
    assert!(out.contains("verified 1 blobs"), "{out}");
    // A minute later only the other two are older than a day.
    let out = verify_at(&env, later + 60, &["--older-than", "1d", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["blobs_checked"], 2, "{out}");
    assert_eq!(v["bytes_checked"], 10_000);
    assert_eq!(verified(&env, Some(later)).len() + verified(&env, Some(later + 60)).len(), hashes.len());
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
    let before = now();
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
    assert!(env.catalog().blobs(None).unwrap().iter().all(|b| b.verified_at >= Some(before)));
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
    fs::write(env.archive.join("archive.toml"), format!("{toml}\n[scrub]\nevery = \"7d\"\nlimit = \"500GB\"\n"))
        .unwrap();
    let text = env.ok(&["status"]);
    assert!(text.contains("(every 7d)"), "{text}");
}
