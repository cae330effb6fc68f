//! NFS sources against a NAS-like server (issue 21): nfs-ganesha with rpcbind in a private network namespace
//! (`common::ganesha`), the real binary run inside it. Host names, the portmapper, IPv6, a `secure` +
//! `root_squash` export (a privileged source port as root; the clear error when not root), `?uid=&gid=`,
//! `all_squash`, a v4-only server and a name that does not resolve. Every wait is bounded.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Output, Stdio};

use common::ganesha::{text, Export, Ganesha};
use common::*;

/// Runs the real binary inside the server's namespace (as root, or as `as_user` = uid 65534 via setpriv).
fn nf(g: &Ganesha, env: &Env, args: &[&str], as_nobody: bool) -> Output {
    let mut c = if as_nobody {
        let mut c = g.cmd("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN]);
        c
    } else {
        g.cmd(BIN)
    };
    c.arg("--archive")
        .arg(&env.archive)
        .args(args)
        .env_remove("NIGHTFOX_ARCHIVE")
        .env("NIGHTFOX_NET_TIMEOUT", "10")
        .env("NIGHTFOX_RETRY_DELAYS", "0.1")
        .env("NIGHTFOX_MAX_FAILURES", "2")
        .stdin(Stdio::null())
        .output()
        .expect("nsenter nightfox")
}

fn ok(g: &Ganesha, env: &Env, args: &[&str]) -> String {
    let out = nf(g, env, args, false);
    assert!(out.status.success(), "nightfox {args:?} failed ({:?}): {}", out.status.code(), text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A fresh archive with one couple; the couple's folder.
fn archive(name: &str) -> (Env, String) {
    let env = Env::new();
    let c = env.couple(name, "2025-12-31");
    (env, c)
}

/// `source add`; the source id.
fn add(g: &Ganesha, env: &Env, url: &str, couple: &str) -> String {
    ok(g, env, &["source", "add", url, "--couple", couple]).trim().to_string()
}

/// `source add` + `source test` + `source import --json`; the source id and the import's JSON.
fn add_test_import(g: &Ganesha, env: &Env, url: &str, couple: &str) -> (String, serde_json::Value) {
    let id = add(g, env, url, couple);
    ok(g, env, &["source", "test", &id]);
    let out = ok(g, env, &["source", "import", &id, "--json"]);
    (id, serde_json::from_str(&out).expect("import json"))
}

fn catalogued(env: &Env, name: &str) -> bool {
    env.catalog().files(None).unwrap().iter().any(|r| r.original_path.ends_with(name.as_bytes()))
}

/// A file of uid/gid 1234, mode 0600: only that identity (or an all_squash to it) may read it.
fn private_file(p: &Path, bytes: &[u8]) {
    write(p, bytes);
    std::os::unix::fs::chown(p, Some(1234), Some(1234)).unwrap();
    fs::set_permissions(p, fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn a_host_name_without_ports_asks_the_portmapper_and_imports_verified_from_a_secure_root_squash_export() {
    let g = Ganesha::start(&Export::default());
    let card = g.export.join("cards/cam a");
    sony_card(&card, 2, 11);
    write(&card.join("Ünïcode name.MOV"), &data(12, 70_000));
    write_big(&card.join("PRIVATE/M4ROOT/CLIP/C0009.MP4"), 3 << 20, 13);
    let (env, c) = archive("Nas");
    let export = g.export.display().to_string();
    // No port: NFS and MOUNT (on a port ganesha picked) come from rpcbind. As root the client binds a privileged
    // source port, which the export (PrivilegedPort = true, root_squash) demands.
    let url = format!("nfs://localhost{export}/cards/cam a?export={export}");
    let (id, v) = add_test_import(&g, &env, &url, &c);
    assert!(v["files_imported"].as_u64().unwrap() >= 5, "{v}");
    assert_all_imported(&env, &card);
    // The URL shown round-trips: no port (the portmapper is asked), the export named.
    let list = ok(&g, &env, &["source", "list"]);
    assert!(list.contains(&format!("nfs://localhost{export}/cards/cam a?export={export}\t")), "{list}");
    let again = ok(&g, &env, &["source", "import", &id, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&again).unwrap();
    assert_eq!(v["files_imported"], 0, "{again}");
}

#[test]
fn ipv6_literal_and_a_name_that_resolves_to_ipv6_only() {
    let g = Ganesha::start(&Export::default());
    assert!(g.has_ipv6(), "ganesha does not answer on ::1 in its namespace");
    let dir = g.export.join("day1");
    write(&dir.join("A001.MP4"), &data(21, 200_000));
    write(&dir.join("sub/B002.MOV"), &data(22, 30_000));
    let export = g.export.display().to_string();
    let (env, c) = archive("Six");
    let url = format!("nfs://[::1]{export}/day1?export={export}");
    add_test_import(&g, &env, &url, &c);
    assert_all_imported(&env, &dir);
    let list = ok(&g, &env, &["source", "list"]);
    assert!(list.contains(&format!("nfs://[::1]{export}/day1?export={export}")), "{list}");
    // A name only /etc/hosts knows, as ::1 only; the port given (2049), MOUNT from the portmapper (which lists
    // NFSv3 at that port).
    g.set_hosts("127.0.0.1 localhost\n::1 nas.test\n");
    let (env, c) = archive("Name");
    let url = format!("nfs://nas.test:2049{export}/day1?export={export}");
    add_test_import(&g, &env, &url, &c);
    assert_all_imported(&env, &dir);
}

#[test]
fn a_one_port_server_beside_a_portmapper_and_a_name_whose_first_address_refuses() {
    // cargo-nfs3-server (MOUNT and NFS on one port, 127.0.0.1 only) in the namespace where rpcbind lists ganesha's
    // NFS at 2049: the portmapper does not list NFS at the URL's port, so MOUNT is asked at that port too. The name
    // resolves to ::1 first (where nothing listens on that port), then 127.0.0.1.
    let mut g = Ganesha::start(&Export::default());
    let dir = g.dir.path().join("one-port/card");
    sony_card(&dir, 2, 71);
    let port = common::nfsd::free_port();
    let mut server = g.cmd(common::nfsd::server_binary());
    server.arg("--path").arg(dir.parent().unwrap()).args(["-i", "127.0.0.1", "-p", &port.to_string(), "-r", "--quiet"]);
    g.spawn(server);
    let t0 = std::time::Instant::now();
    while !g.quiet(&["rpcinfo", "-n", &port.to_string(), "-t", "127.0.0.1", "nfs", "3"]) {
        assert!(t0.elapsed() < std::time::Duration::from_secs(15), "cargo-nfs3-server did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    g.set_hosts("127.0.0.1 localhost\n::1 nas.test\n127.0.0.1 nas.test\n");
    let (env, c) = archive("OnePort");
    add_test_import(&g, &env, &format!("nfs://nas.test:{port}/card?export=/"), &c);
    assert_all_imported(&env, &dir);
}

#[test]
fn a_private_file_needs_the_owners_uid_and_gid_in_the_url() {
    let g = Ganesha::start(&Export::default());
    let dir = g.export.join("card");
    write(&dir.join("open.MP4"), &data(31, 50_000));
    private_file(&dir.join("private.MP4"), &data(32, 60_000));
    let export = g.export.display().to_string();
    // As root (squashed to nobody by root_squash) the private file is refused; the open one imports.
    let (env, c) = archive("Squashed");
    let id = add(&g, &env, &format!("nfs://localhost{export}/card?export={export}"), &c);
    ok(&g, &env, &["source", "test", &id]);
    let out = nf(&g, &env, &["source", "import", &id, "--json"], false);
    assert!(catalogued(&env, "open.MP4"), "{}", text(&out));
    assert!(!catalogued(&env, "private.MP4"), "{}", text(&out));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("private.MP4\": Permission denied"), "{}", text(&out));
    // With the owner's identity it is read.
    let (env, c) = archive("Owner");
    let url = format!("nfs://localhost{export}/card?export={export}&uid=1234&gid=1234");
    let (_, v) = add_test_import(&g, &env, &url, &c);
    assert_eq!(v["files_imported"], 2, "{v}");
    assert!(catalogued(&env, "private.MP4"));
    assert_all_imported(&env, &dir);
    let list = ok(&g, &env, &["source", "list"]);
    assert!(list.contains("&uid=1234&gid=1234\t") && list.contains("uid:gid 1234:1234"), "{list}");
    // Half an identity, or --user on an NFS source, is refused before anything is stored.
    let out = nf(&g, &env, &["source", "add", &format!("nfs://localhost{export}?uid=1"), "--couple", &c], false);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("uid= and gid= together"), "{}", text(&out));
    let out =
        nf(&g, &env, &["source", "add", &format!("nfs://localhost{export}"), "--couple", &c, "--user", "x"], false);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn an_all_squash_export_reads_as_its_anonymous_uid() {
    let g = Ganesha::start(&Export { squash: "all_squash", anon: (1234, 1234), ..Export::default() });
    let dir = g.export.join("card");
    private_file(&dir.join("C0001.MP4"), &data(41, 80_000));
    private_file(&dir.join("C0001M01.XML"), b"<xml/>");
    let export = g.export.display().to_string();
    let (env, c) = archive("All");
    add_test_import(&g, &env, &format!("nfs://127.0.0.1{export}/card?export={export}"), &c);
    assert_all_imported(&env, &dir);
}

#[test]
fn not_root_against_a_secure_export_says_a_privileged_port_is_needed() {
    let g = Ganesha::start(&Export::default());
    write(&g.export.join("card/a.MP4"), &data(51, 10_000));
    let export = g.export.display().to_string();
    let (env, c) = archive("Nobody");
    let id = add(&g, &env, &format!("nfs://localhost{export}/card?export={export}"), &c);
    // The archive belongs to the unprivileged user from here on.
    let st = std::process::Command::new("chown").arg("-R").arg("65534:65534").arg(env.dir.path()).status().unwrap();
    assert!(st.success());
    fs::set_permissions(env.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let out = nf(&g, &env, &["source", "test", &id], true);
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(1), "{msg}");
    assert!(msg.contains("privileged") && msg.contains("insecure") && msg.contains("root"), "{msg}");
    assert_eq!(msg.trim_end().lines().count(), 1, "one line: {msg}");
    // The source stays disabled, its last error the same.
    let out = nf(&g, &env, &["source", "list"], true);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("disabled\tfailed") && text(&out).contains("insecure"), "{}", text(&out));
}

#[test]
fn an_nfsv4_only_server_says_so() {
    let g = Ganesha::start(&Export { protocols: "4", ..Export::default() });
    write(&g.export.join("a.MP4"), &data(61, 1_000));
    let export = g.export.display().to_string();
    let (env, c) = archive("Four");
    // Through the portmapper, and with the NFS port given (MOUNT then asked at 2049).
    for url in
        [format!("nfs://localhost{export}?export={export}"), format!("nfs://127.0.0.1:2049{export}?export={export}")]
    {
        let id = add(&g, &env, &url, &c);
        let out = nf(&g, &env, &["source", "test", &id], false);
        let msg = text(&out);
        assert_eq!(out.status.code(), Some(1), "{url}: {msg}");
        assert!(msg.contains("no NFSv3") && msg.contains("NFSv4-only"), "{url}: {msg}");
        assert_eq!(msg.trim_end().lines().count(), 1, "one line: {msg}");
    }
}

#[test]
fn a_host_name_that_does_not_resolve_is_a_clear_error() {
    let g = Ganesha::start(&Export::default());
    let (env, c) = archive("Nowhere");
    let id = add(&g, &env, "nfs://nas.invalid/footage", &c);
    let t0 = std::time::Instant::now();
    let out = nf(&g, &env, &["source", "test", &id], false);
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(1), "{msg}");
    assert!(msg.contains("cannot resolve \"nas.invalid\""), "{msg}");
    assert_eq!(msg.trim_end().lines().count(), 1, "one line: {msg}");
    assert!(t0.elapsed() < std::time::Duration::from_secs(15), "{:?}", t0.elapsed());
}
