//! Encrypted archives on studio seats (issue 22), with real processes and the Postgres fixture: seat A makes an
//! encrypted archive on a shared catalog (the wrapped data key goes into `keys/vault.wrapped` and the catalog's
//! `catalog_info`), imports a card into a shared `file://` blob directory (sealed there, no plaintext); seat B joins
//! with the same `NIGHTFOX_SECRET`, becomes encrypted and verifies and exports the exact bytes; a seat with another
//! secret is refused at join with one line and leaves no archive directory; `secrets rotate` on A (same passphrase,
//! then a new one) re-wraps the catalog's copy and B still opens, a later seat joins with the new passphrase. An
//! encrypted SQLite archive is copied into Postgres with its key, and a seat with a copy of the key file joins it.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::pgd;
use common::seats::*;
use common::*;
use nightfox::blobs::vault::{MAGIC, WRAPPED_KEY};

const PASS: &str = "studio passphrase, the same on every seat";

fn seat(app: &str, name: &str) -> Seat {
    let dir = tempfile::Builder::new().prefix(&format!("nightfox-vseat-{name}-")).tempdir_in(test_root()).unwrap();
    let archive = dir.path().join("archive");
    Seat { env: Env { dir, archive }, app_dsn: app.to_string() }
}

/// Runs nightfox on a seat with `secret` as NIGHTFOX_SECRET (and `previous` as NIGHTFOX_SECRET_PREVIOUS).
fn run(s: &Seat, secret: &str, previous: Option<&str>, args: &[&str]) -> Output {
    let mut c = s.cmd();
    c.env("NIGHTFOX_SECRET", secret).env_remove("NIGHTFOX_SECRET_PREVIOUS").env_remove("NIGHTFOX_KEY_FILE");
    if let Some(p) = previous {
        c.env("NIGHTFOX_SECRET_PREVIOUS", p);
    }
    c.args(args).output().expect("run nightfox")
}

fn ok(s: &Seat, secret: &str, args: &[&str]) -> String {
    let out = run(s, secret, None, args);
    assert!(
        out.status.success(),
        "nightfox {args:?} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The catalog's wrapped vault key (hex), as the runtime role reads it.
fn catalog_key(pg: &pgd::PgServer, db: &str) -> String {
    sql(pg, db, "SELECT value FROM catalog_info WHERE name = 'vault_key_wrapped'")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Exports the couple from a seat and checks every clip's bytes.
fn exports_the_card(s: &Seat, secret: &str, couple: &str, clips: &[(PathBuf, Vec<u8>)], dest: &Path) {
    let out = ok(s, secret, &["export", couple, dest.to_str().unwrap(), "--layout", "original"]);
    assert!(out.contains("0 failed"), "{out}");
    for (p, bytes) in clips {
        let got = fs::read(dest.join(p.file_name().unwrap())).expect("exported file");
        assert!(got == *bytes, "{p:?}: other bytes on export");
    }
}

/// A fresh migrated Postgres database and a shared `file://` blob directory: the runtime DSN, the catalog URL
/// seats are made with (no password), the directory (kept while it lives) and the blob store URL.
struct Studio {
    pg: &'static pgd::PgServer,
    db: String,
    app: String,
    catalog: String,
    shared: tempfile::TempDir,
    blobs_url: String,
}

fn studio() -> Studio {
    let pg = pgd::shared();
    let db = migrated_db(pg);
    let app = pg.app_dsn(&db);
    let catalog = without_password(&app);
    let shared = tempfile::Builder::new().prefix("nightfox-vseat-blobs-").tempdir_in(test_root()).unwrap();
    let blobs_url = format!("file://{}", shared.path().display());
    Studio { pg, db, app, catalog, shared, blobs_url }
}

#[test]
fn seats_share_an_encrypted_archive_through_the_catalog_and_a_wrong_secret_is_refused_at_join() {
    let Studio { pg, db, app, catalog, shared, blobs_url } = studio();

    // Seat A: a new encrypted archive; the catalog keeps the wrapped key (the same bytes as its file, never clear).
    let a = seat(&app, "a");
    ok(&a, PASS, &["init", "--encrypt", "--catalog", &catalog, "--blobs", &blobs_url]);
    let wrapped_a = fs::read(a.env.archive.join(WRAPPED_KEY)).expect("keys/vault.wrapped");
    let in_catalog = catalog_key(pg, &db);
    assert_eq!(in_catalog, hex(&wrapped_a), "the catalog keeps the wrapped key");
    assert!(in_catalog.len() > 64 * 2, "wrapped, not the bare 32-byte key: {in_catalog}");

    let couple = ok(&a, PASS, &["couple", "add", "--name", "Vera Holt", "--date", "2025-07-01"]).trim().to_string();
    let card = a.env.path("card");
    let clips: Vec<(PathBuf, Vec<u8>)> = [(1u64, 200_000usize), (2, 3_000)]
        .iter()
        .map(|&(seed, len)| (card.join(format!("C000{seed}.MP4")), data(seed + 70, len)))
        .collect();
    for (p, bytes) in &clips {
        write(p, bytes);
    }
    ok(&a, PASS, &["import", "--couple", &couple, card.to_str().unwrap()]);

    // The shared blob files are sealed: no plaintext in them.
    let mut objects = Vec::new();
    walk_files(shared.path(), &mut objects);
    let objects: Vec<PathBuf> = objects.into_iter().filter(|p| p.file_name().is_some_and(|n| n.len() == 64)).collect();
    assert_eq!(objects.len(), clips.len(), "{objects:?}");
    for o in &objects {
        let stored = fs::read(o).unwrap();
        assert_eq!(&stored[..5], MAGIC, "{o:?}");
        for (_, bytes) in &clips {
            assert!(!contains(&stored, &bytes[..48]) && !contains(&stored, &bytes[bytes.len() - 48..]), "{o:?}");
        }
    }

    // Seat B joins without --encrypt: it becomes encrypted with the catalog's key, verifies and reads the bytes.
    let b = seat(&app, "b");
    ok(&b, PASS, &["init", "--catalog", &catalog, "--blobs", &blobs_url]);
    let toml = fs::read_to_string(b.env.archive.join("archive.toml")).unwrap();
    assert!(toml.contains("encrypt = true"), "{toml}");
    assert!(b.env.archive.join(WRAPPED_KEY).is_file());
    ok(&b, PASS, &["verify"]);
    exports_the_card(&b, PASS, &couple, &clips, &b.env.path("export-1"));

    // A seat with another secret is refused at join, in one line, and leaves no archive directory.
    let c = seat(&app, "c");
    let out = run(&c, "not the studio passphrase", None, &["init", "--catalog", &catalog, "--blobs", &blobs_url]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("does not open the archive's vault key"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!c.env.archive.exists(), "a refused join leaves no archive directory");
    assert_eq!(catalog_key(pg, &db), in_catalog, "nothing written to the catalog");

    // Rotation on A (the same passphrase): the catalog's copy is re-wrapped, B still opens.
    let out = ok(&a, PASS, &["secrets", "rotate"]);
    assert!(out.contains("the catalog's vault key: re-wrapped"), "{out}");
    let rotated = catalog_key(pg, &db);
    assert_ne!(rotated, in_catalog);
    ok(&b, PASS, &["verify"]);
    exports_the_card(&b, PASS, &couple, &clips, &b.env.path("export-2"));

    // A new passphrase (the old one as previous): the catalog's copy moves under it; B (its own wrapped file, the
    // old passphrase) still opens, and a later seat joins with the new passphrase alone.
    const NEW: &str = "the studio's new passphrase";
    let out = run(&a, NEW, Some(PASS), &["secrets", "rotate"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    ok(&a, NEW, &["verify"]);
    ok(&b, PASS, &["verify"]);
    let d = seat(&app, "d");
    ok(&d, NEW, &["init", "--catalog", &catalog, "--blobs", &blobs_url]);
    exports_the_card(&d, NEW, &couple, &clips, &d.env.path("export-3"));
    let out = run(&c, PASS, None, &["init", "--catalog", &catalog, "--blobs", &blobs_url]);
    assert!(!out.status.success(), "the old passphrase no longer opens the catalog's copy");
    assert!(!c.env.archive.exists());
}

#[test]
fn an_encrypted_archive_is_copied_into_postgres_with_its_key_and_a_seat_with_the_key_file_joins() {
    let pg = pgd::shared();
    let db = migrated_db(pg);
    let app = pg.app_dsn(&db);
    // An encrypted archive on SQLite, its secret a key file (no passphrase).
    let dir = tempfile::Builder::new().prefix("nightfox-vseat-sqlite-").tempdir_in(test_root()).unwrap();
    let archive = dir.path().join("archive");
    let env = Env { dir, archive };
    let out = env.cmd().args(["init", "--encrypt"]).env_remove("NIGHTFOX_SECRET").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let couple = env.couple("Ines Ruiz", "2025-07-02");
    let card = env.path("card");
    let clip = data(91, 150_000);
    write(&card.join("C0001.MP4"), &clip);
    env.ok(&["import", "--couple", &couple, card.to_str().unwrap()]);

    let out = env
        .cmd()
        .args(["catalog", "copy", "--to", &without_password(&app)])
        .env(nightfox_var(), &app)
        .env_remove("NIGHTFOX_SECRET")
        .output()
        .unwrap();
    assert!(out.status.success(), "copy into postgres: {}", String::from_utf8_lossy(&out.stderr));
    let wrapped = fs::read(env.archive.join(WRAPPED_KEY)).unwrap();
    assert_eq!(catalog_key(pg, &db), hex(&wrapped), "the wrapped key went along");

    // A seat given a copy of the key file joins the copy (its blobs: the archive's objects directory).
    let s = seat(&app, "keyfile");
    let key = s.env.path("secret.key");
    fs::copy(env.archive.join("secret.key"), &key).unwrap();
    let blobs_url = format!("file://{}", env.archive.join("objects").display());
    let joined = |args: &[&str]| {
        let out = s.cmd().env_remove("NIGHTFOX_SECRET").env("NIGHTFOX_KEY_FILE", &key).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    joined(&["init", "--catalog", &without_password(&app), "--blobs", &blobs_url]);
    joined(&["verify"]);
    let dest = s.env.path("export");
    joined(&["export", &couple, dest.to_str().unwrap(), "--layout", "original"]);
    assert!(fs::read(dest.join("C0001.MP4")).unwrap() == clip, "the exact bytes through the joined seat");
}

/// A seat that joined the empty catalog in clear, before another seat's `init --encrypt` of it, is refused from
/// then on (it would land plaintext among sealed blobs), in one line.
#[test]
fn a_clear_seat_of_a_catalog_made_encrypted_later_is_refused() {
    let Studio { app, catalog, shared: _shared, blobs_url, .. } = studio();
    let clear = seat(&app, "clear");
    ok(&clear, PASS, &["init", "--catalog", &catalog, "--blobs", &blobs_url]);
    ok(&clear, PASS, &["couple", "list"]);
    let sealed = seat(&app, "sealed");
    ok(&sealed, PASS, &["init", "--encrypt", "--catalog", &catalog, "--blobs", &blobs_url]);
    let out = run(&clear, PASS, None, &["couple", "list"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("keeps blobs in clear") && err.trim().lines().count() == 1, "{err}");
}
