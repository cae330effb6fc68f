//! The NFSv3 export (issue 21): `nightfox export-nfs` and `serve --nfs`, read by independent clients (libnfs's
//! `nfs-ls`, `nfs-cat`, `nfs-cp`, and the `nfs3_client` crate) on 127.0.0.1: the same tree as the FUSE mount with
//! the same bytes, handles that survive a restart, an import appearing with a changed directory time, every
//! change refused with NFS3ERR_ROFS, and the listen address guarded.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use nfs3_client::nfs3_types::nfs3::{
    self as nfs, createhow3, diropargs3, fattr3, filename3, nfs_fh3, nfsstat3, sattr3, Nfs3Result,
};
use nfs3_client::nfs3_types::xdr_codec::Opaque;
use nfs3_client::tokio::TokioConnector;
use nfs3_client::{Nfs3Client, Nfs3ConnectionBuilder};

/// A daemon serving the export; stopped by pid when dropped.
struct Export {
    child: Option<Child>,
    port: u16,
    mp: Option<std::path::PathBuf>,
}

impl Export {
    /// `nightfox export-nfs --listen 127.0.0.1:PORT` (0: any free port); waits for its "exporting" line.
    fn start(env: &Env, port: u16) -> Export {
        let child = env
            .cmd()
            .args(["export-nfs", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn export-nfs");
        Export::ready(child, None)
    }

    /// `nightfox serve MP --nfs 127.0.0.1:0`: the mount and the export side by side.
    fn serve(env: &Env, mp: &Path) -> Export {
        std::fs::create_dir_all(mp).unwrap();
        let child = env
            .cmd()
            .arg("serve")
            .arg(mp)
            .args(["--nfs", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn serve");
        let e = Export::ready(child, Some(mp.to_path_buf()));
        wait_until("the mount", Duration::from_secs(15), || serving(mp));
        e
    }

    fn ready(mut child: Child, mp: Option<std::path::PathBuf>) -> Export {
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut said = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("at nfs://127.0.0.1:").nth(1) {
                    let port = rest.trim_end_matches('/').parse::<u16>().ok();
                    let _ = tx.send(port.ok_or(line.clone()));
                }
                said.push_str(&line);
                said.push('\n');
            }
            let _ = tx.send(Err(said));
        });
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(Ok(port)) => Export { child: Some(child), port, mp },
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the export did not start: {other:?}");
            }
        }
    }

    /// A libnfs URL of a path inside the export.
    fn url(&self, path: &str) -> String {
        format!("nfs://127.0.0.1/{}?nfsport={p}&mountport={p}&version=3", path.trim_start_matches('/'), p = self.port)
    }

    fn stop(&mut self) {
        let mp = self.mp.clone().unwrap_or_default();
        stop_daemon(self.child.take(), &mp, Duration::from_secs(20));
    }
}

impl Drop for Export {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(cmd: &str, args: &[&str]) -> std::process::Output {
    Command::new(cmd).args(args).stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{cmd} (libnfs-utils): {e}"))
}

/// `nfs-ls -R` of the export's root: every path (relative) with its size (None for directories).
fn nfs_tree(e: &Export) -> BTreeMap<String, Option<u64>> {
    let out = run("nfs-ls", &["-R", &e.url("/")]);
    assert!(out.status.success(), "nfs-ls: {}", String::from_utf8_lossy(&out.stderr));
    let mut tree = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        // `-r--r--r--  1     0     0      3000000 path with spaces`: five fields, then the path.
        let mut rest = line;
        let mut fields = Vec::new();
        for _ in 0..5 {
            rest = rest.trim_start();
            let end = rest.find(' ').unwrap_or(rest.len());
            fields.push(&rest[..end]);
            rest = &rest[end..];
        }
        let path = rest.trim_start().to_string();
        let size = if fields[0].starts_with('d') { None } else { Some(fields[4].parse::<u64>().unwrap()) };
        tree.insert(path, size);
    }
    tree
}

/// The FUSE mount's tree the same way (without `ingest`, which the export leaves out).
fn fuse_tree(mp: &Path) -> BTreeMap<String, Option<u64>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Option<u64>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let rel = e.path().strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if rel == "ingest" {
                continue;
            }
            let md = e.metadata().unwrap();
            if md.is_dir() {
                out.insert(rel, None);
                walk(root, &e.path(), out);
            } else {
                out.insert(rel, Some(md.len()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(mp, mp, &mut out);
    out
}

/// An archive with two couples, odd names, an empty clip, a 40 MB one and sidecars.
fn archive() -> Env {
    let env = Env::new();
    let a = env.couple("Julia & Sven", "2025-12-31");
    let b = env.couple("Zoë Müller", "2026-05-01");
    let card = env.path("card");
    sony_card(&card, 3, 7);
    write(&card.join("PRIVATE/M4ROOT/CLIP/C0099 copy (2).MP4"), &data(9, 12_345));
    write(&card.join("PRIVATE/M4ROOT/CLIP/Hochzeit – Kirche é.mov"), &data(10, 777));
    write(&card.join("PRIVATE/M4ROOT/CLIP/empty.MP4"), b"");
    write_big(&card.join("PRIVATE/M4ROOT/CLIP/C0100.MP4"), 40 << 20, 11);
    env.ok(&["import", "--couple", &a, card.to_str().unwrap()]);
    let other = env.path("other");
    write(&other.join("DCIM/100CANON/IMG_0001.MOV"), &data(12, 50_000));
    env.ok(&["import", "--couple", &b, other.to_str().unwrap()]);
    env
}

#[test]
fn serve_with_nfs_exports_the_same_tree_as_the_mount_and_every_byte() {
    let env = archive();
    let mp = env.path("mnt");
    let e = Export::serve(&env, &mp);
    let fuse = fuse_tree(&mp);
    let nfs = nfs_tree(&e);
    assert!(fuse.keys().any(|k| k.starts_with(".by-hash/")), "the mount lists .by-hash: {fuse:?}");
    assert!(fuse.keys().any(|k| k.contains("Hochzeit – Kirche é.mov")), "{fuse:?}");
    assert_eq!(nfs, fuse, "the export lists what the mount lists (less ingest)");
    assert!(!nfs.contains_key("ingest"));
    // Every file's bytes, through an independent client, against the mount's.
    let files: Vec<_> = fuse.iter().filter(|(_, s)| s.is_some()).map(|(p, _)| p.clone()).collect();
    assert!(files.len() >= 10, "{files:?}");
    // (libnfs mounts a file's folder as the export: files at the root, the empty `.metadata_never_index`, cannot
    // be named that way.)
    for p in files.iter().filter(|p| p.contains('/')) {
        let out = run("nfs-cat", &[&e.url(p)]);
        assert!(out.status.success(), "nfs-cat {p}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(b3(&out.stdout), b3_file(&mp.join(p)), "bytes of {p}");
    }
    // nfs-cp of the big clip.
    let big = files.iter().find(|p| p.ends_with("C0100.MP4") && !p.starts_with(".by-hash")).unwrap();
    let dest = env.path("copy.MP4");
    let out = run("nfs-cp", &[&e.url(big), dest.to_str().unwrap()]);
    assert!(out.status.success(), "nfs-cp: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(b3_file(&dest), b3_file(&mp.join(big)));
    // /ingest is not exported.
    let out = run("nfs-ls", &[&e.url("/ingest")]);
    assert!(!out.status.success(), "ingest must not be exported");
}

/// Where the 40 MB clip is in the export (under its camera's folder).
fn clip_path(e: &Export) -> String {
    let tree = nfs_tree(e);
    tree.keys().find(|p| p.ends_with("/C0100.MP4") && !p.starts_with(".by-hash")).expect("C0100.MP4 exported").clone()
}

// ---- nfs3_client ----------------------------------------------------------------------------------------------

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

type Client = Nfs3Client<nfs3_client::tokio::TokioIo<tokio::net::TcpStream>>;

async fn connect(port: u16) -> (Client, nfs_fh3) {
    let c = tokio::time::timeout(
        Duration::from_secs(10),
        Nfs3ConnectionBuilder::new(TokioConnector, "127.0.0.1", "/")
            .mount_port(port)
            .nfs3_port(port)
            .connect_from_privileged_port(false)
            .mount(),
    )
    .await
    .expect("mount in time")
    .expect("mount");
    let root = c.root_nfs_fh3();
    (c.into_nfs3_client(), root)
}

fn name(n: &str) -> filename3<'static> {
    filename3(Opaque::owned(n.as_bytes().to_vec()))
}

async fn lookup(c: &mut Client, root: &nfs_fh3, path: &str) -> nfs_fh3 {
    let mut fh = root.clone();
    for comp in path.split('/').filter(|s| !s.is_empty()) {
        let args = nfs::LOOKUP3args { what: diropargs3 { dir: fh.clone(), name: name(comp) } };
        fh = match c.lookup(&args).await.expect("lookup rpc") {
            Nfs3Result::Ok(ok) => ok.object,
            Nfs3Result::Err((s, _)) => panic!("lookup {comp} of {path}: {s:?}"),
        };
    }
    fh
}

async fn getattr(c: &mut Client, fh: &nfs_fh3) -> Result<fattr3, nfsstat3> {
    match c.getattr(&nfs::GETATTR3args { object: fh.clone() }).await.expect("getattr rpc") {
        Nfs3Result::Ok(ok) => Ok(ok.obj_attributes),
        Nfs3Result::Err((s, _)) => Err(s),
    }
}

async fn read_all(c: &mut Client, fh: &nfs_fh3) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let args = nfs::READ3args { file: fh.clone(), offset: out.len() as u64, count: 1 << 20 };
        match c.read(&args).await.expect("read rpc") {
            Nfs3Result::Ok(ok) => {
                out.extend_from_slice(ok.data.as_ref());
                if ok.eof {
                    return out;
                }
                assert!(ok.count > 0, "a read short of EOF gave nothing");
            }
            Nfs3Result::Err((s, _)) => panic!("read: {s:?}"),
        }
    }
}

/// Every name of a directory, paged through READDIRPLUS with a small reply size.
async fn list(c: &mut Client, dir: &nfs_fh3) -> Vec<String> {
    let (mut names, mut cookie, mut verf) = (Vec::new(), 0, nfs::cookieverf3::default());
    for _ in 0..10_000 {
        let args = nfs::READDIRPLUS3args { dir: dir.clone(), cookie, cookieverf: verf, dircount: 512, maxcount: 2048 };
        let ok = match c.readdirplus(&args).await.expect("readdirplus rpc") {
            Nfs3Result::Ok(ok) => ok,
            Nfs3Result::Err((s, _)) => panic!("readdirplus: {s:?}"),
        };
        verf = ok.cookieverf;
        for e in ok.reply.entries.0.iter() {
            names.push(String::from_utf8_lossy(e.name.as_ref()).into_owned());
            cookie = e.cookie;
        }
        if ok.reply.eof {
            return names;
        }
    }
    panic!("readdirplus never reached EOF");
}

fn ns(t: &nfs::nfstime3) -> u64 {
    u64::from(t.seconds) * 1_000_000_000 + u64::from(t.nseconds)
}

#[test]
fn handles_survive_a_restart_and_an_import_shows_with_a_changed_directory_time() {
    let env = archive();
    let couple = "2025-12-31-julia-sven";
    let mut e = Export::start(&env, 0);
    let port = e.port;
    let clip = clip_path(&e);
    let dir = clip.rsplit_once('/').unwrap().0.to_string();
    let rt = rt();
    let (fh, dir_fh, before, dir_before) = rt.block_on(async {
        let (mut c, root) = connect(port).await;
        let fh = lookup(&mut c, &root, &clip).await;
        let dir_fh = lookup(&mut c, &root, &dir).await;
        let bytes = read_all(&mut c, &fh).await;
        let dir_attr = getattr(&mut c, &dir_fh).await.unwrap();
        (fh, dir_fh, bytes, dir_attr)
    });
    assert_eq!(before.len(), 40 << 20);
    let names = rt.block_on(async {
        let (mut c, _) = connect(port).await;
        list(&mut c, &dir_fh).await
    });
    assert!(names.contains(&"C0100.MP4".to_string()) && names.len() >= 7, "{names:?}");
    e.stop();

    // A new daemon on the same port: the old handles still name the same nodes.
    let e = Export::start(&env, port);
    rt.block_on(async {
        let (mut c, _) = connect(port).await;
        let a = getattr(&mut c, &fh).await.expect("the clip's handle after a restart");
        assert_eq!(a.size, 40 << 20);
        assert_eq!(b3(&read_all(&mut c, &fh).await), b3(&before), "same bytes through the old handle");
        getattr(&mut c, &dir_fh).await.expect("the folder's handle after a restart");
        // A handle the archive never gave is stale, not another file.
        let bogus = nfs_fh3 { data: Opaque::owned(vec![0xAB; fh.data.len()]) };
        assert!(getattr(&mut c, &bogus).await.is_err());
    });

    // An import while the export runs appears, and the folder's time moves on.
    let card = env.path("late");
    write(&card.join("PRIVATE/M4ROOT/CLIP/C0200.MP4"), &data(99, 4096));
    env.ok(&["import", "--couple", couple, card.to_str().unwrap()]);
    rt.block_on(async {
        let (mut c, _) = connect(port).await;
        // A client that caches by the folder's times: it looks again once they move (within the refresher's
        // period), and then finds the new clip.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let after = getattr(&mut c, &dir_fh).await.unwrap();
            if ns(&after.mtime) > ns(&dir_before.mtime) && ns(&after.ctime) > ns(&dir_before.ctime) {
                break;
            }
            assert!(Instant::now() < deadline, "the folder's mtime/ctime never changed: {dir_before:?} -> {after:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let names = list(&mut c, &dir_fh).await;
        assert!(names.contains(&"C0200.MP4".to_string()), "the new import is listed: {names:?}");
        let new = lookup(&mut c, &dir_fh, "C0200.MP4").await;
        assert_eq!(read_all(&mut c, &new).await, data(99, 4096));
    });
    drop(e);
}

#[test]
fn every_change_is_refused_read_only() {
    let env = archive();
    let e = Export::start(&env, 0);
    let clip = &clip_path(&e);
    let dir = clip.rsplit_once('/').unwrap().0;
    // An independent client's copy into the export.
    let local = env.path("x.MP4");
    write(&local, b"not footage");
    let out = run("nfs-cp", &[local.to_str().unwrap(), &e.url(&format!("{dir}/x.MP4"))]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("NFS3ERR_ROFS"), "{}", String::from_utf8_lossy(&out.stderr));
    rt().block_on(async {
        let (mut c, root) = connect(e.port).await;
        let fh = lookup(&mut c, &root, clip).await;
        let dfh = lookup(&mut c, &root, dir).await;
        let before = read_all(&mut c, &fh).await;
        let w = nfs::WRITE3args {
            file: fh.clone(),
            offset: 0,
            count: 4,
            stable: nfs::stable_how::FILE_SYNC,
            data: Opaque::owned(b"oops".to_vec()),
        };
        assert!(matches!(c.write(&w).await.unwrap(), Nfs3Result::Err((nfsstat3::NFS3ERR_ROFS, _))), "WRITE");
        let cr = nfs::CREATE3args {
            where_: diropargs3 { dir: dfh.clone(), name: name("new.MP4") },
            how: createhow3::UNCHECKED(sattr3::default()),
        };
        assert!(matches!(c.create(&cr).await.unwrap(), Nfs3Result::Err((nfsstat3::NFS3ERR_ROFS, _))), "CREATE");
        let mk =
            nfs::MKDIR3args { where_: diropargs3 { dir: dfh.clone(), name: name("d") }, attributes: sattr3::default() };
        assert!(matches!(c.mkdir(&mk).await.unwrap(), Nfs3Result::Err((nfsstat3::NFS3ERR_ROFS, _))), "MKDIR");
        let rm = nfs::REMOVE3args { object: diropargs3 { dir: dfh.clone(), name: name("C0100.MP4") } };
        assert!(matches!(c.remove(&rm).await.unwrap(), Nfs3Result::Err((nfsstat3::NFS3ERR_ROFS, _))), "REMOVE");
        let sa = nfs::SETATTR3args {
            object: fh.clone(),
            new_attributes: sattr3 { mode: nfs::Nfs3Option::Some(0o777), ..Default::default() },
            guard: nfs::Nfs3Option::None,
        };
        assert!(matches!(c.setattr(&sa).await.unwrap(), Nfs3Result::Err((nfsstat3::NFS3ERR_ROFS, _))), "SETATTR");
        assert_eq!(read_all(&mut c, &fh).await, before, "the clip is unchanged");
        let a = getattr(&mut c, &fh).await.unwrap();
        assert_eq!(a.mode & 0o222, 0, "no write bits: {:o}", a.mode);
    });
}

#[test]
fn the_listen_address_is_loopback_unless_remote_is_allowed() {
    let env = Env::new();
    let out = env.run(&["export-nfs", "--listen", "0.0.0.0:20499"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--allow-remote") && err.lines().count() == 1, "{err}");
    let out = env.run(&["export-nfs", "--listen", "[::1]:20499"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("IPv4"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = env.run(&["export-nfs", "--listen", "nas:2049"]);
    assert!(!out.status.success());
}
