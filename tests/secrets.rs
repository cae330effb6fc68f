//! Credential tiers and key hygiene (issue 22) through the real binary: a real Secret Service (gnome-keyring on a
//! private session bus) and a real smbd; the tier skipped fast without a bus; `--ephemeral-secrets`; key
//! rotation; a key file that others may read; a key file outside the archive.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::keyring::SecretService;
use common::smbd::{SmbServer, SHARE, USER};
use common::*;

const PW: &str = "Keyring-Wedding 2025!";

/// smbd tests share the `smbtest` user (as tests/network.rs): one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Without any session bus (nor X display to autolaunch one).
fn no_bus(c: &mut Command) -> &mut Command {
    c.env_remove("DBUS_SESSION_BUS_ADDRESS").env_remove("DISPLAY").env_remove("NIGHTFOX_SECRET")
}

fn run_with(mut c: Command, args: &[&str], stdin: Option<&str>) -> Output {
    c.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn nightfox");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).expect("write stdin");
    }
    drop(input);
    child.wait_with_output().expect("wait nightfox")
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn smb_url(srv: &SmbServer) -> String {
    format!("smb://127.0.0.1:{}/{SHARE}", srv.port())
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The catalog file and its WAL.
fn catalog_bytes(env: &Env) -> Vec<u8> {
    let mut all = Vec::new();
    for f in ["catalog.db", "catalog.db-wal"] {
        if let Ok(b) = fs::read(env.archive.join(f)) {
            all.extend(b);
        }
    }
    all
}

#[test]
fn a_keyring_round_trip_with_a_real_secret_service_and_smbd() {
    let _g = serial();
    let ss = SecretService::start();
    let srv = SmbServer::start(PW);
    fs::write(srv.share_dir().join("a.MP4"), b"x").expect("write");
    let env = Env::new();
    let c = env.couple("Keys", "2025-06-01");
    let cmd = || {
        let mut c = env.cmd();
        ss.apply(&mut c);
        c.env_remove("NIGHTFOX_SECRET");
        c
    };
    let url = smb_url(&srv);
    let id = ok(run_with(
        cmd(),
        &["source", "add", &url, "--couple", &c, "--user", USER, "--password-stdin"],
        Some(&format!("{PW}\n")),
    ));
    let id = id.trim().to_string();
    let list = ok(run_with(cmd(), &["source", "list"], None));
    assert!(list.contains("password: keyring"), "{list}");
    // The catalog keeps the reference, not the password.
    let row = env.catalog().source(id.parse().expect("id")).expect("row");
    assert!(row.password_enc.is_empty());
    let key = row.credential_key.clone().expect("a reference");
    assert!(key.starts_with("keyring:"), "{key}");
    let user = key.splitn(3, ':').nth(2).expect("user").to_string();
    let catalog_id = env.catalog().catalog_id().expect("catalog id");
    assert_eq!(user, format!("{catalog_id}/source/{id}"));
    let bytes = catalog_bytes(&env);
    assert!(!contains(&bytes, PW), "the password is in the catalog file");
    assert!(contains(&bytes, &user), "the reference is in the catalog file");
    assert_eq!(ss.lookup("nightfox", &user).as_deref(), Some(PW));
    assert!(ok(run_with(cmd(), &["source", "test", &id], None)).contains("connected"));
    // To the catalog: the keyring entry goes, the password is encrypted in the catalog.
    let out = ok(run_with(cmd(), &["secrets", "migrate", "--to", "catalog"], None));
    assert!(out.contains(&format!("source {id}: keyring -> catalog")), "{out}");
    assert_eq!(ss.lookup("nightfox", &user), None);
    let row = env.catalog().source(id.parse().expect("id")).expect("row");
    assert!(!row.password_enc.is_empty() && row.credential_key.is_none());
    assert!(ok(run_with(cmd(), &["source", "list"], None)).contains("password: catalog"));
    assert!(ok(run_with(cmd(), &["source", "test", &id], None)).contains("connected"));
    // And back.
    let out = ok(run_with(cmd(), &["secrets", "migrate", "--to", "keyring"], None));
    assert!(out.contains(&format!("source {id}: catalog -> keyring")), "{out}");
    assert_eq!(ss.lookup("nightfox", &user).as_deref(), Some(PW));
    assert!(ok(run_with(cmd(), &["source", "test", &id], None)).contains("connected"));
    assert!(!contains(&catalog_bytes(&env), PW));
    // Without the bus, the seat says where the password is rather than hanging.
    let mut c = env.cmd();
    no_bus(&mut c);
    let out = run_with(c, &["source", "test", &id], None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("OS keyring") && !err.contains(PW), "{err}");
    // Removing the source removes its keyring entry.
    ok(run_with(cmd(), &["source", "remove", &id], None));
    assert_eq!(ss.lookup("nightfox", &user), None);
}

#[test]
fn without_a_bus_the_keyring_is_skipped_fast_and_the_catalog_keeps_the_password() {
    let env = Env::new();
    let c = env.couple("NoBus", "2025-06-02");
    let mut cmd = env.cmd();
    no_bus(&mut cmd);
    let start = Instant::now();
    let out = run_with(
        cmd,
        &["source", "add", "smb://127.0.0.1:1/share", "--couple", &c, "--password-stdin"],
        Some("pw-nobus\n"),
    );
    // A hang guard, not a performance threshold.
    assert!(start.elapsed() < Duration::from_secs(5), "took {:?}", start.elapsed());
    let id = ok(out).trim().to_string();
    let row = env.catalog().source(id.parse().expect("id")).expect("row");
    assert!(!row.password_enc.is_empty() && row.credential_key.is_none());
    let mut cmd = env.cmd();
    no_bus(&mut cmd);
    assert!(ok(run_with(cmd, &["source", "list"], None)).contains("password: catalog"));
    // A bus address that leads nowhere is skipped as fast.
    let mut cmd = env.cmd();
    no_bus(&mut cmd).env("DBUS_SESSION_BUS_ADDRESS", format!("unix:path={}", env.path("no-such-bus").display()));
    let start = Instant::now();
    ok(run_with(cmd, &["source", "set-password", &id], Some("pw2\n")));
    assert!(start.elapsed() < Duration::from_secs(5), "took {:?}", start.elapsed());
    assert!(env.catalog().source(id.parse().expect("id")).expect("row").credential_key.is_none());
}

#[test]
fn ephemeral_secrets_stay_in_memory_and_a_later_process_does_not_have_them() {
    let env = Env::new();
    let c = env.couple("Eph", "2025-06-03");
    let mut cmd = env.cmd();
    no_bus(&mut cmd);
    let out = run_with(
        cmd,
        &["--ephemeral-secrets", "source", "add", "smb://127.0.0.1:1/share", "--couple", &c, "--password-stdin"],
        Some("pw-ephemeral\n"),
    );
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    let id = ok(out).trim().to_string();
    assert!(err.contains("memory only") && err.contains("lost"), "{err}");
    let row = env.catalog().source(id.parse().expect("id")).expect("row");
    assert!(row.password_enc.is_empty() && row.credential_key.as_deref().is_some_and(|k| k.starts_with("memory:")));
    assert!(!contains(&catalog_bytes(&env), "pw-ephemeral"));
    assert!(env.ok(&["source", "list"]).contains("password: memory"));
    let out = env.run(&["source", "test", &id]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("went with that process"), "{err}");
}

#[test]
fn rotation_re_encrypts_every_secret_and_re_wraps_keys_under_a_new_key_file() {
    let env = Env::new();
    let c = env.couple("Rot", "2025-06-04");
    let mut ids = Vec::new();
    for (i, pw) in ["first-pw", "second-pw"].iter().enumerate() {
        let mut cmd = env.cmd();
        no_bus(&mut cmd);
        let url = format!("smb://127.0.0.1:1/share{i}");
        ids.push(
            ok(run_with(cmd, &["source", "add", &url, "--couple", &c, "--password-stdin"], Some(&format!("{pw}\n"))))
                .trim()
                .parse::<i64>()
                .expect("id"),
        );
    }
    let before: Vec<Vec<u8>> = ids.iter().map(|&i| env.catalog().source(i).expect("row").password_enc).collect();
    let key_path = env.archive.join("secret.key");
    let old_key = fs::read(&key_path).expect("key");
    // A wrapped data key (the vault's contract): keys/*.wrapped is re-wrapped.
    std::env::remove_var("NIGHTFOX_SECRET");
    let data_key = [9u8; 32];
    let s = nightfox::secrets::Secrets::load(&env.archive).expect("secrets");
    fs::create_dir_all(env.archive.join("keys")).expect("keys dir");
    let wrapped_path = env.archive.join("keys/vault.wrapped");
    fs::write(&wrapped_path, s.wrap_key(&data_key).expect("wrap")).expect("write wrapped");
    let old_wrapped = fs::read(&wrapped_path).expect("wrapped");
    let mut cmd = env.cmd();
    no_bus(&mut cmd);
    let out = ok(run_with(cmd, &["secrets", "rotate"], None));
    assert!(out.contains("re-encrypted") && out.contains("re-wrapped") && out.contains("a new key"), "{out}");
    let new_key = fs::read(&key_path).expect("key");
    assert_ne!(old_key, new_key);
    assert_eq!(fs::metadata(&key_path).expect("meta").permissions().mode() & 0o777, 0o600);
    assert!(!env.archive.join("secret.key.new").exists());
    let s = nightfox::secrets::Secrets::load(&env.archive).expect("secrets");
    for (i, (&id, old)) in ids.iter().zip(&before).enumerate() {
        let row = env.catalog().source(id).expect("row");
        assert_ne!(&row.password_enc, old, "the ciphertext changed");
        assert_eq!(s.decrypt(&row.password_enc).expect("decrypt").expose(), ["first-pw", "second-pw"][i]);
    }
    let wrapped = fs::read(&wrapped_path).expect("wrapped");
    assert_ne!(wrapped, old_wrapped);
    assert_eq!(s.unwrap_key(&wrapped).expect("unwrap"), data_key);
    // An interrupted rotation (a .new key left beside the key file) still decrypts, and `rotate` finishes it.
    fs::write(env.archive.join("secret.key.new"), [3u8; 32]).expect("write .new");
    fs::set_permissions(env.archive.join("secret.key.new"), fs::Permissions::from_mode(0o600)).expect("chmod");
    let mut cmd = env.cmd();
    no_bus(&mut cmd);
    ok(run_with(cmd, &["secrets", "rotate"], None));
    assert_eq!(fs::read(&key_path).expect("key"), [3u8; 32]);
    let s = nightfox::secrets::Secrets::load(&env.archive).expect("secrets");
    assert_eq!(
        s.decrypt(&env.catalog().source(ids[0]).expect("row").password_enc).expect("decrypt").expose(),
        "first-pw"
    );
}

#[test]
fn a_key_file_others_can_read_is_refused_in_one_line() {
    let env = Env::new();
    let key = env.archive.join("secret.key");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o640)).expect("chmod");
    let out = env.run(&["source", "list"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("chmod 600") && err.trim().lines().count() == 1, "{err}");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).expect("chmod");
    env.ok(&["source", "list"]);
}

#[test]
fn a_key_file_outside_the_archive() {
    let env = Env::new();
    let c = env.couple("Outside", "2025-06-05");
    let outside = env.path("keys-elsewhere");
    fs::create_dir_all(&outside).expect("dir");
    let key = outside.join("nightfox.key");
    let key_arg = key.to_string_lossy().to_string();
    let mut cmd = env.cmd();
    no_bus(&mut cmd);
    let id = ok(run_with(
        cmd,
        &["--key-file", &key_arg, "source", "add", "smb://127.0.0.1:1/s", "--couple", &c, "--password-stdin"],
        Some("outside-pw\n"),
    ));
    let id: i64 = id.trim().parse().expect("id");
    assert_eq!(fs::metadata(&key).expect("key made").permissions().mode() & 0o777, 0o600);
    let enc = env.catalog().source(id).expect("row").password_enc;
    std::env::set_var("NIGHTFOX_KEY_FILE", &key);
    std::env::remove_var("NIGHTFOX_SECRET");
    let s = nightfox::secrets::Secrets::load(&env.archive).expect("secrets");
    std::env::remove_var("NIGHTFOX_KEY_FILE");
    assert_eq!(s.decrypt(&enc).expect("decrypt").expose(), "outside-pw");
    let e = nightfox::secrets::Secrets::load(&env.archive).err().expect("the archive's own key file is refused");
    assert!(e.to_string().contains("wrong --key-file"), "{e}");
    // NIGHTFOX_KEY_FILE (the env file's variable) works as the flag does; others may not read it either.
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = env.cmd().env("NIGHTFOX_KEY_FILE", &key).args(["source", "list"]).output().expect("run");
    assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"));
    // Once a secret is under it, a key file that is not there is refused in one line, not replaced by a new key
    // that opens nothing.
    let gone = outside.join("typo.key");
    let mut cmd = env.cmd();
    no_bus(&mut cmd);
    cmd.args(["--key-file", &gone.to_string_lossy(), "source", "test", &id.to_string()]);
    let out = cmd.output().expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("does not exist") && err.trim().lines().count() == 1, "{err}");
    assert!(!gone.exists(), "no key made in its place");
}
