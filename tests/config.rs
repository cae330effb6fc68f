//! `archive.toml`: `init` writes the default URLs, an archive without the file (made before it existed) opens
//! and imports as before, another local blob directory is honoured, and a URL this build cannot serve is a clear
//! one-line error that changes nothing.

mod common;
use common::*;

#[test]
fn init_writes_the_default_urls() {
    let env = Env::new();
    let text = std::fs::read_to_string(env.archive.join("archive.toml")).expect("archive.toml");
    let v: toml::Table = toml::from_str(&text).expect("valid TOML");
    assert_eq!(v["blobs"]["url"].as_str(), Some("local"), "{text}");
    assert_eq!(v["catalog"]["url"].as_str(), Some("sqlite"), "{text}");
}

#[test]
fn an_archive_without_archive_toml_opens_and_imports_as_before() {
    let env = Env::new();
    std::fs::remove_file(env.archive.join("archive.toml")).expect("remove archive.toml");
    let couple = env.couple("Ana & Bo", "2026-06-01");
    let card = env.path("card");
    let files = sony_card(&card, 2, 7);
    env.ok(&["import", "--couple", &couple, card.to_str().unwrap()]);
    let mut want: Vec<String> = files.iter().map(|f| b3_file(f)).collect();
    want.sort();
    let mut have: Vec<String> = env.object_files().into_iter().map(|(n, _)| n).collect();
    have.sort();
    assert_eq!(have, want, "blobs land in objects/<2>/<2>/<hash> as before");
    for (name, path) in env.object_files() {
        let rel = path.strip_prefix(env.archive.join("objects")).unwrap().to_string_lossy().into_owned();
        assert_eq!(rel, format!("{}/{}/{name}", &name[0..2], &name[2..4]));
    }
    assert!(!env.archive.join("archive.toml").exists(), "opening an old archive writes nothing new");
    env.ok(&["verify"]);
}

#[test]
fn a_file_url_puts_the_blobs_in_another_directory() {
    let env = Env::new();
    let elsewhere = env.path("blobs-elsewhere");
    std::fs::write(
        env.archive.join("archive.toml"),
        format!("[blobs]\nurl = \"file://{}\"\n\n[catalog]\nurl = \"sqlite\"\n", elsewhere.display()),
    )
    .unwrap();
    let couple = env.couple("Ana & Bo", "2026-06-01");
    let card = env.path("card");
    sony_card(&card, 1, 9);
    env.ok(&["import", "--couple", &couple, card.to_str().unwrap()]);
    assert!(env.object_files().is_empty(), "nothing lands in the archive's own objects/");
    let mut there = Vec::new();
    walk_files(&elsewhere, &mut there);
    assert_eq!(there.len(), 2, "the clip and its sidecar land in the configured directory: {there:?}");
    env.ok(&["verify"]);
}

#[test]
fn an_unknown_scheme_is_one_clear_line_and_changes_nothing() {
    let env = Env::new();
    let couple = env.couple("Ana & Bo", "2026-06-01");
    let before = std::fs::read(env.archive.join("catalog.db")).unwrap();
    for (section, url) in [("blobs", "gopher://host/blobs"), ("catalog", "oracle://db")] {
        let other = if section == "blobs" { "catalog" } else { "blobs" };
        let other_url = if other == "blobs" { "local" } else { "sqlite" };
        std::fs::write(
            env.archive.join("archive.toml"),
            format!("[{section}]\nurl = \"{url}\"\n\n[{other}]\nurl = \"{other_url}\"\n"),
        )
        .unwrap();
        let out = env.run(&["import", "--couple", &couple, env.path("card").to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "a bad URL in archive.toml is a failure, not wrong usage");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(err.contains(url.split(':').next().unwrap()), "names the scheme: {err}");
    }
    std::fs::write(env.archive.join("archive.toml"), "[blobs]\nurl = \"local\"\nsurprise = 1\n").unwrap();
    let out = env.run(&["status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("archive.toml"));
    assert_eq!(std::fs::read(env.archive.join("catalog.db")).unwrap(), before, "the catalog is untouched");
}
