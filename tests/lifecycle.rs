//! Fixing mistakes (issue 18, the part built so far): correcting a couple's or a camera's display name without
//! changing any path, and the archive-wide audit log of who changed what.

mod common;

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
        .args(["couple", "rename", &folder, "--name", "Ana & Bob", "--date", "2026-06-02"])
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
