//! The S3 blob store against a real SeaweedFS (issue 19): the blob-store conformance suite and multipart
//! landings; import, mount, read every byte, verify; rot in a stored object found; the store killed in the middle
//! of a 1 GiB upload and restarted; cache eviction under a small `--cache-size`; ranged reads at random offsets;
//! credentials never in the catalog, the config, argv or logs.

#![cfg(feature = "s3")]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::s3d::{Seaweed, ACCESS_KEY, BUCKET, SECRET_KEY};
use common::*;
use nightfox::blobs::s3::S3Blobs;
use nightfox::blobs::{BlobStore, Durability, Staging};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as Key;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt};

/// A raw client of the same bucket, behind the store's back (to flip a stored byte).
fn raw(sw: &Seaweed) -> (object_store::aws::AmazonS3, tokio::runtime::Runtime) {
    let s = AmazonS3Builder::new()
        .with_bucket_name(BUCKET)
        .with_region("us-east-1")
        .with_endpoint(sw.endpoint())
        .with_access_key_id(ACCESS_KEY)
        .with_secret_access_key(SECRET_KEY)
        .with_client_options(ClientOptions::new().with_allow_http(true))
        .build()
        .expect("raw client");
    (s, tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime"))
}

fn key(prefix: &str, hash: &str) -> Key {
    Key::from(format!("{prefix}/objects/{}/{}/{hash}", &hash[..2], &hash[2..4]))
}

/// Flips one byte of a stored object.
fn flip(sw: &Seaweed, prefix: &str, hash: &str, at: usize) {
    let (s, rt) = raw(sw);
    let k = key(prefix, hash);
    rt.block_on(async {
        let mut b = s.get_opts(&k, Default::default()).await.expect("get").bytes().await.expect("bytes").to_vec();
        b[at] ^= 0x20;
        s.put(&k, b.into()).await.expect("put back");
    });
}

fn credentials_file(root: &Path) {
    fs::create_dir_all(root).unwrap();
    let p = root.join("s3.env");
    fs::write(&p, format!("AWS_ACCESS_KEY_ID={ACCESS_KEY}\nAWS_SECRET_ACCESS_KEY={SECRET_KEY}\n")).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn s3_store_passes_the_blob_store_conformance_suite_and_lands_multipart_blobs() {
    let d = tempfile::tempdir_in(test_root()).unwrap();
    let sw = Seaweed::start(&d.path().join("sw"));
    let root = d.path().join("archive");
    credentials_file(&root);
    let store = S3Blobs::open(&sw.url("conf"), &root).expect("open the store");
    let staging = Staging::open(&root).unwrap();
    nightfox::blobs::conformance::run(&store, &staging, &|h: &str| flip(&sw, "conf", h, 7));

    // A blob of three parts (64 MiB each at most): landed, proven, read back at random offsets by ranges.
    let (_, big) = staging.create("big").unwrap();
    write_big(&big, 150 << 20, 42);
    let hash = b3_file(&big);
    let want = fs::read(&big).unwrap();
    store.land(&big, &hash, Durability::Now).expect("multipart landing");
    assert!(!big.exists());
    assert_eq!(store.size(&hash).unwrap(), Some(150 << 20));
    assert_eq!(store.rehash(&hash).unwrap(), hash);
    // Without a cache every read is a ranged GET.
    let no_cache = nightfox::blobs::s3::CacheOptions { dir: None, size: Some(0) };
    let cold = S3Blobs::open_with(&sw.url("conf"), &root, no_cache).unwrap();
    let r = cold.open(&hash).unwrap();
    let mut seed = 12345u64;
    for _ in 0..40 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let off = (seed >> 11) % (150 << 20);
        let len = ((seed >> 40) % (3 << 20)) as usize + 1;
        let mut buf = vec![0u8; len];
        let n = r.read_at(&mut buf, off).unwrap();
        let end = (off as usize + len).min(want.len());
        assert_eq!(n, end - off as usize);
        assert_eq!(&buf[..n], &want[off as usize..end], "range at {off}+{len}");
    }
    // Sequential reads grow their read-ahead: far fewer bytes fetched than a GET per read would, none twice.
    let before = cold.fetched_bytes();
    let mut buf = vec![0u8; 128 << 10];
    let mut off = 0;
    while off < (32 << 20) {
        let n = r.read_at(&mut buf, off).unwrap();
        assert_eq!(&buf[..n], &want[off as usize..off as usize + n]);
        off += n as u64;
    }
    let fetched = cold.fetched_bytes() - before;
    assert!(fetched <= (32 << 20) + (64 << 20), "read-ahead stays bounded: {fetched}");

    // Two sequential readers of a blob not cached: one hydration (the other reader never truncates it), both
    // read the right bytes, from the store, then from the hydration's file, and the blob ends up cached.
    let cached = root.join("cache").join(&hash[..2]).join(&hash[2..4]).join(&hash);
    fs::remove_file(&cached).expect("the landing put the staged copy in the cache");
    let warm = S3Blobs::open(&sw.url("conf"), &root).unwrap();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let r = warm.open(&hash).unwrap();
            std::thread::spawn(move || {
                let mut h = blake3::Hasher::new();
                let mut buf = vec![0u8; 1 << 20];
                let mut off = 0;
                loop {
                    let n = r.read_at(&mut buf, off).unwrap();
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                    off += n as u64;
                }
                h.finalize().to_hex().to_string()
            })
        })
        .collect();
    for r in readers {
        assert_eq!(r.join().unwrap(), hash);
    }
    wait_until("the blob cached", Duration::from_secs(60), || cached.exists());
    assert_eq!(b3_file(&cached), hash);
    // The keys are the local layout: a plain S3 listing finds the blob where `objects/` would hold it.
    let (s, rt) = raw(&sw);
    let meta = rt.block_on(s.head(&key("conf", &hash))).expect("the object at its layout key");
    assert_eq!(meta.size, 150 << 20);
    assert!(fs::read_dir(root.join("tmp")).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".s3upload")));
}

fn s3_env(sw: &Seaweed, name: &str) -> (Env, String) {
    let dir = tempfile::Builder::new().prefix("nightfox-s3-").tempdir_in(test_root()).unwrap();
    let archive = dir.path().join("archive");
    let url = sw.url(name);
    let out = std::process::Command::new(BIN)
        .arg("--archive")
        .arg(&archive)
        .args(["init", "--blobs", &url])
        .envs(Seaweed::envs())
        .output()
        .unwrap();
    assert!(out.status.success(), "init: {}", String::from_utf8_lossy(&out.stderr));
    (Env { dir, archive }, url)
}

fn cmd(env: &Env) -> std::process::Command {
    let mut c = env.cmd();
    c.envs(Seaweed::envs());
    c
}

fn ok(env: &Env, args: &[&str]) -> (String, String) {
    let out = cmd(env).args(args).output().unwrap();
    let (o, e) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(out.status.success(), "nightfox {args:?}: {e}");
    (o, e)
}

/// No file of the archive, no log line and no argument holds the secret.
fn assert_secret_kept(env: &Env, logs: &[String]) {
    let mut files = Vec::new();
    walk_files(&env.archive, &mut files);
    for f in files {
        if f.file_name().is_some_and(|n| n == "s3.env") || f.starts_with(env.archive.join("cache")) {
            continue;
        }
        let b = fs::read(&f).unwrap_or_default();
        assert!(!b.windows(SECRET_KEY.len()).any(|w| w == SECRET_KEY.as_bytes()), "the secret is in {f:?}");
    }
    for l in logs {
        assert!(!l.contains(SECRET_KEY), "the secret is in a log: {l}");
    }
}

#[test]
fn import_mount_read_verify_on_s3_and_a_flipped_byte_is_found() {
    let d = tempfile::tempdir_in(test_root()).unwrap();
    let sw = Seaweed::start(&d.path().join("sw"));
    let (env, _) = s3_env(&sw, "studio");
    let couple = ok(&env, &["couple", "add", "--name", "Ana & Bo", "--date", "2026-06-01"]).0.trim().to_string();
    let card = env.path("card");
    let mut clips = sony_card(&card, 3, 5);
    let big = card.join("PRIVATE/M4ROOT/CLIP/C0099.MP4");
    write_big(&big, 100 << 20, 9);
    clips.push(big.clone());
    let (_, import_log) = ok(&env, &["import", "--couple", &couple, card.to_str().unwrap()]);
    assert!(env.object_files().is_empty(), "no blob on local disk: they live in the bucket");

    let mp = env.path("mnt");
    let mut m = Mount::start_with(&env, &mp, &[], &Seaweed::envs());
    let cmdline = fs::read(format!("/proc/{}/cmdline", m.pid())).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains(SECRET_KEY), "no secret in argv");
    let mut seen = 0;
    let mut files = Vec::new();
    walk_files(&mp.join(&couple), &mut files);
    for f in &files {
        let name = f.file_name().unwrap();
        let src = clips.iter().find(|c| c.file_name().unwrap() == name).expect("a mounted file is a clip of the card");
        assert_eq!(b3_file(f), b3_file(src), "{f:?} reads the card's bytes");
        seen += 1;
    }
    assert_eq!(seen, clips.len());
    // Read again: now from the local cache (hydrated on open), the same bytes.
    let mounted_big = files.iter().find(|f| f.file_name().unwrap() == "C0099.MP4").unwrap();
    wait_until("the blob to be cached", Duration::from_secs(60), || {
        let mut cached = Vec::new();
        walk_files(&env.archive.join("cache"), &mut cached);
        cached.iter().any(|c| fs::metadata(c).is_ok_and(|m| m.len() == 100 << 20))
    });
    assert_eq!(b3_file(mounted_big), b3_file(&big));
    m.stop();
    let (_, verify_log) = ok(&env, &["verify"]);

    // Rot in the bucket: verify reads the store (not the cache) and finds it.
    let hash = b3_file(&big);
    flip(&sw, "studio", &hash, 1 << 20);
    let out = cmd(&env).arg("verify").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "verify must fail on rot: {text}");
    assert!(text.contains("damaged") || text.contains(&hash[..12]), "{text}");
    assert_secret_kept(&env, &[import_log, verify_log, text]);
}

#[test]
fn the_store_killed_in_the_middle_of_a_1_gib_upload_and_restarted_the_import_completes_verified() {
    let d = tempfile::tempdir_in(test_root()).unwrap();
    let mut sw = Seaweed::start(&d.path().join("sw"));
    let (env, _) = s3_env(&sw, "crash");
    let couple = ok(&env, &["couple", "add", "--name", "Cy & Di", "--date", "2026-07-01"]).0.trim().to_string();
    let card = env.path("card");
    write_big(&card.join("BIG.MP4"), 1 << 30, 11);
    let want = b3_file(&card.join("BIG.MP4"));
    let mut import = cmd(&env)
        .env("NIGHTFOX_RETRY_DELAYS", "1,2,3,5,8")
        .env("NIGHTFOX_MAX_FAILURES", "8")
        .env("RUST_LOG", "nightfox=info")
        .args(["import", "--couple", &couple, card.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Some parts are up (the upload's state says so): the store dies and comes back.
    let state = env.archive.join("tmp").join(format!("{want}.s3upload"));
    wait_until("parts of the upload", Duration::from_secs(300), || {
        fs::read_to_string(&state).is_ok_and(|s| s.contains("\"1\""))
    });
    sw.restart();
    wait_until("the import", Duration::from_secs(600), || import.try_wait().unwrap().is_some());
    let out = import.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        // The retries ran out: the session paused; resumed, it completes.
        let sessions = env.catalog().sessions().unwrap();
        let id = sessions.last().unwrap().id.to_string();
        ok(&env, &["resume", &id]);
    }
    let cat = env.catalog();
    let files = cat.files(None).unwrap();
    assert_eq!(files.len(), 1, "{log}");
    assert_eq!(files[0].blob_hash, want, "the catalogued blob is the card's");
    assert!(!state.exists(), "the upload's state is gone once it completed");

    // The import itself killed in the middle of an upload: resumed, the upload goes on from its parts.
    let card2 = env.path("card2");
    write_big(&card2.join("BIG2.MP4"), 400 << 20, 12);
    let want2 = b3_file(&card2.join("BIG2.MP4"));
    let mut import = cmd(&env)
        .args(["import", "--couple", &couple, card2.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let state2 = env.archive.join("tmp").join(format!("{want2}.s3upload"));
    wait_until("parts of the second upload", Duration::from_secs(300), || {
        fs::read_to_string(&state2).is_ok_and(|s| s.contains("\"1\""))
    });
    import.kill().unwrap();
    import.wait().unwrap();
    assert!(env.catalog().files(None).unwrap().iter().all(|f| f.blob_hash != want2), "nothing catalogued unverified");
    let id = env.catalog().sessions().unwrap().last().unwrap().id.to_string();
    let out = cmd(&env).env("RUST_LOG", "nightfox=info").args(["resume", &id]).output().unwrap();
    let log2 = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{log2}");
    assert!(log2.contains("resuming an upload"), "the upload resumed at its parts: {log2}");
    assert!(!state2.exists());

    ok(&env, &["verify"]);
    // Every catalogued blob is in the bucket whole, and nothing else was catalogued.
    let cat = env.catalog();
    let (s, rt) = raw(&sw);
    for (h, size) in [(&want, 1u64 << 30), (&want2, 400 << 20)] {
        let meta = rt.block_on(s.head(&key("crash", h))).expect("stored");
        assert_eq!(meta.size, size);
    }
    assert_eq!(cat.blobs(None).unwrap().len(), 2);
}

#[test]
fn a_small_cache_evicts_the_least_recently_used_blobs_while_reads_stay_right() {
    let d = tempfile::tempdir_in(test_root()).unwrap();
    let sw = Seaweed::start(&d.path().join("sw"));
    let (env, _) = s3_env(&sw, "evict");
    let couple = ok(&env, &["couple", "add", "--name", "Ed & Flo", "--date", "2026-08-01"]).0.trim().to_string();
    let card = env.path("card");
    for i in 0..6u64 {
        write_big(&card.join(format!("C{i:04}.MP4")), 20 << 20, 100 + i);
    }
    // No cache while importing: the mount below fills one of 50 MB (two of these blobs at most).
    ok(&env, &["--cache-size", "0", "import", "--couple", &couple, card.to_str().unwrap()]);
    let cached = |env: &Env| {
        let mut v = Vec::new();
        walk_files(&env.archive.join("cache"), &mut v);
        v.iter().map(|p| fs::metadata(p).map(|m| m.len()).unwrap_or(0)).sum::<u64>()
    };
    let mp = env.path("mnt");
    let mut m = Mount::start_with(&env, &mp, &["--cache-size", "50MB"], &Seaweed::envs());
    let mut files = Vec::new();
    walk_files(&mp.join(&couple), &mut files);
    assert_eq!(files.len(), 6);
    for _round in 0..2 {
        for f in &files {
            let src = card.join(f.file_name().unwrap());
            assert_eq!(b3_file(f), b3_file(&src), "{f:?}");
            assert!(cached(&env) <= 50_000_000 + (20 << 20), "the cache stays near its limit: {}", cached(&env));
        }
    }
    m.stop();
    assert!(cached(&env) <= 50_000_000, "under the limit at rest: {}", cached(&env));
}

#[test]
fn bad_s3_urls_and_missing_credentials_fail_with_one_line() {
    let d = tempfile::tempdir_in(test_root()).unwrap();
    let sw = Seaweed::start(&d.path().join("sw"));
    for (url, with_creds) in [
        (format!("s3://key:secret@{BUCKET}/x?endpoint={}", sw.endpoint()), true),
        (format!("s3://{BUCKET}/x?endpoint={}&colour=blue", sw.endpoint()), true),
        (sw.url("nocreds"), false),
    ] {
        let archive = d.path().join(format!("a{}", url.len()));
        let mut c = std::process::Command::new(BIN);
        c.arg("--archive").arg(&archive).args(["init", "--blobs", &url]).env_remove("AWS_ACCESS_KEY_ID");
        if with_creds {
            c.envs(Seaweed::envs());
        }
        let out = c.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{url}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{url}: one line: {err}");
        assert!(!err.contains("secret"), "{err}");
        assert!(!archive.join("archive.toml").exists(), "nothing made: {url}");
    }
}

#[test]
fn migrate_blobs_moves_a_local_archive_to_s3_verified_and_resumable_and_back() {
    let d = tempfile::tempdir_in(test_root()).unwrap();
    let sw = Seaweed::start(&d.path().join("sw"));
    let env = Env::new();
    let couple = env.couple("Gus & Hal", "2026-09-01");
    let card = env.path("card");
    let clips = sony_card(&card, 3, 8);
    env.ok(&["import", "--couple", &couple, card.to_str().unwrap()]);
    let local_objects = env.object_files().len();
    assert_eq!(local_objects, clips.len());

    // Refused while a mount holds the archive.
    let mp = env.path("mnt");
    let mut m = Mount::start(&env, &mp, &[]);
    let url = sw.url("moved");
    let out = cmd(&env).args(["migrate-blobs", "--to", &url]).output().unwrap();
    assert!(!out.status.success(), "refused while mounted");
    m.stop();

    let (o, _) = ok(&env, &["migrate-blobs", "--to", &url]);
    assert!(o.contains(&format!("{} copied", clips.len())), "{o}");
    let config = fs::read_to_string(env.archive.join("archive.toml")).unwrap();
    assert!(config.contains("s3://footage/moved") && !config.contains(SECRET_KEY), "{config}");
    // Again: everything is there already.
    let (o, _) = ok(&env, &["migrate-blobs", "--to", &url]);
    assert!(o.contains("in s3://") || o.contains("already"), "{o}");
    // The archive reads from the bucket now: verify re-hashes there, the mount serves the same bytes.
    ok(&env, &["--cache-size", "0", "verify"]);
    let (s, rt) = raw(&sw);
    for c in &clips {
        rt.block_on(s.head(&key("moved", &b3_file(c)))).expect("in the bucket");
    }
    let mut m = Mount::start_with(&env, &mp, &["--cache-size", "0"], &Seaweed::envs());
    let mut files = Vec::new();
    walk_files(&mp.join(&couple), &mut files);
    assert_eq!(files.len(), clips.len());
    for f in &files {
        let src = clips.iter().find(|c| c.file_name() == f.file_name()).unwrap();
        assert_eq!(b3_file(f), b3_file(src));
    }
    m.stop();

    // And back to local disk.
    fs::remove_dir_all(env.archive.join("objects")).unwrap();
    fs::create_dir(env.archive.join("objects")).unwrap();
    ok(&env, &["migrate-blobs", "--to", "local"]);
    assert_eq!(env.object_files().len(), clips.len());
    env.ok(&["verify"]);
    env.assert_consistent();
}

#[test]
fn gc_deletes_purged_blobs_from_the_bucket() {
    let d = tempfile::tempdir_in(test_root()).unwrap();
    let sw = Seaweed::start(&d.path().join("sw"));
    let (env, _) = s3_env(&sw, "gc");
    let couple = ok(&env, &["couple", "add", "--name", "Max & Ned", "--date", "2026-11-01"]).0.trim().to_string();
    let card = env.path("card");
    let clips = sony_card(&card, 2, 21);
    ok(&env, &["import", "--couple", &couple, card.to_str().unwrap()]);
    let gone = b3_file(&clips[0]);
    let kept = b3_file(&clips[2]);
    let cat = env.catalog();
    let f = cat.files(None).unwrap().into_iter().find(|f| f.display_name == b"C0001.MP4").unwrap();
    let slug = f.camera_id.map(|id| cat.camera_by_id(id).unwrap().unwrap().slug);
    let path = nightfox::fs::tree_path(&couple, slug.as_deref(), &f);
    ok(&env, &["file", "remove", &path, "--yes"]);
    let later = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 31 * 86_400)
        .to_string();
    let out = cmd(&env).env("NIGHTFOX_NOW", &later).args(["gc", "--yes"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (s, rt) = raw(&sw);
    let head = |h: &str| rt.block_on(s.head(&key("gc", h)));
    assert!(head(&gone).is_err(), "the purged clip's blob left the bucket");
    assert!(head(&kept).is_ok(), "the live clip's blob stays");
    ok(&env, &["verify"]);
}
