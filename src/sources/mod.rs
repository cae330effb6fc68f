//! Sources: where footage is read from. One trait (`Source`) covers local folders and cards, SMB shares and NFS
//! exports; the import pipeline only talks to the trait. Errors carry a raw errno where there is one, so that
//! `Error::is_transient` can tell a dropped connection (retry) from a missing file or a refused login (fail). A scan yields every regular file under the given roots
//! with its size and mtime, and records what it will not import (symlinks, devices, unreadable folders).

pub mod local;
pub mod nfs;
pub mod smb;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::catalog::NetworkSource;
use crate::error::{Error, Result};
use crate::secrets::Password;

/// What a scan found at one path.
#[derive(Clone, Debug)]
pub enum EntryKind {
    /// A regular file to import.
    File { size: u64, mtime_ns: i64 },
    /// Something recorded and left alone, with the reason.
    Skipped(String),
    /// Something that should have been importable but could not be read.
    Unreadable(String),
}

#[derive(Clone, Debug)]
pub struct SourceEntry {
    /// The path as the source understands it.
    pub path: PathBuf,
    /// The path relative to its scan root (the original relative path kept in the catalog).
    pub rel: PathBuf,
    pub kind: EntryKind,
}

/// Size and modification time of a source file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileMeta {
    pub size: u64,
    pub mtime_ns: i64,
}

/// A place footage comes from.
pub trait Source: Send + Sync {
    /// A short description for the catalog and messages (`local:/media/card`); never contains secrets.
    fn describe(&self) -> String;
    /// Every entry under the roots, in a stable order (sorted by path within each directory).
    fn scan(&self, roots: &[PathBuf]) -> Result<Vec<SourceEntry>>;
    fn stat(&self, path: &Path) -> Result<FileMeta>;
    /// Opens a file for sequential reading from `offset`.
    fn open_at(&self, path: &Path, offset: u64) -> Result<Box<dyn Read + Send>>;
    /// Hashes a file where it lies (BLAKE3 and the checksums), if the source can do that faster than streaming it
    /// (local disks).
    fn hash_in_place(&self, _path: &Path) -> Option<Result<crate::blobs::Digest>> {
        None
    }
    /// Hints that these files are read next, so a source that can starts reading them all at once (small files on
    /// local disks, where one read at a time leaves the device idle between them).
    fn prefetch(&self, _paths: &[PathBuf]) {}
    fn remove(&self, path: &Path) -> Result<()>;
    /// Renames within the source (post-import `move:`); the target's parent must exist.
    fn rename(&self, from: &Path, to: &Path) -> Result<()>;
    /// Creates a directory and its missing parents.
    fn create_dir_all(&self, path: &Path) -> Result<()>;
    /// Drops any connection so the next call connects afresh (after a transient error).
    fn reconnect(&self) {}
}

/// A parsed source URL. A password is never taken from a URL (it would show in `ps`): it comes on standard input.
/// Percent-escapes (`My%20Share`) are decoded in the user, the share, the path and the options. A `#` starts a
/// fragment, which is refused (write `#` in a name as `%23`); so are `.` and `..` components (raw or escaped) and a
/// `/` or NUL inside a decoded component: the URL names exactly the share and path it spells.
///
/// - `smb://[[DOMAIN;]user@]host[:port]/share/path` (port 445 if none).
/// - `nfs://host[:port]/export/path[?mount_port=N][&export=/a/b][&uid=N&gid=N]`: NFSv3. `host` is a name (resolved
///   at each connect, IPv4 and IPv6, every address tried) or an IP (`[::1]`). Without a port the server's
///   portmapper (rpcbind, 111) is asked for the NFS and MOUNT ports (stored as port 0; 2049 is tried where no
///   portmapper answers); with a port and no `mount_port`, the portmapper's MOUNT port is used where it lists NFS at
///   the given port, else MOUNT is on the given port too (servers with one port for both and no portmapper).
///   The export is the first path component unless `export=` names a deeper one. `uid=`/`gid=` (both or neither)
///   are the AUTH_SYS identity the server checks permissions against (default: the identity Nightfox runs as);
///   they are stored as `UID:GID` in the source's user field (`user`), which SMB uses for `DOMAIN;user`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceUrl {
    pub protocol: String,
    pub host: String,
    pub port: u16,
    pub mount_port: Option<u16>,
    pub share: String,
    pub path: String,
    /// SMB: the user of the URL, `DOMAIN;user` when it names a domain. NFS: `UID:GID` from `?uid=&gid=`.
    pub user: Option<String>,
}

/// The AUTH_SYS identity of an NFS source as stored (`UID:GID`; empty: the process's own).
pub fn nfs_identity(stored: &str) -> Result<Option<(u32, u32)>> {
    if stored.is_empty() {
        return Ok(None);
    }
    let parsed = stored.split_once(':').and_then(|(u, g)| Some((u.parse::<u32>().ok()?, g.parse::<u32>().ok()?)));
    match parsed {
        Some(ids) => Ok(Some(ids)),
        None => Err(Error::Invalid(format!("an NFS identity is UID:GID in numbers, not {stored:?}"))),
    }
}

/// What `NetworkSource::url` escapes in a share or path component: what `SourceUrl::parse` would not read back as
/// written (controls, `%`, `/`, and `?` and `#`, which end the path). Spaces and other characters stay as they are,
/// for a URL people read in `source list` and in logs.
const URL_COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS.add(b'%').add(b'/').add(b'?').add(b'#');

/// What it escapes in a query value (`export=/a/b`): `&` as well, `/` kept.
const URL_QUERY_VALUE: &percent_encoding::AsciiSet = &URL_COMPONENT.add(b'&').remove(b'/');

/// A share or path component (`query`: a query value) escaped so that `SourceUrl::parse` reads it back the same:
/// see [`URL_COMPONENT`]; non-ASCII stays as it is but for control characters (`U+0085`), which are escaped.
pub fn url_escape(s: &str, query: bool) -> String {
    let set = if query { URL_QUERY_VALUE } else { URL_COMPONENT };
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let mut buf = [0; 4];
        let c = &*c.encode_utf8(&mut buf);
        if c.is_ascii() || c.chars().any(char::is_control) {
            out.extend(percent_encoding::utf8_percent_encode(c, set));
        } else {
            out.push_str(c);
        }
    }
    out
}

/// An SMB user as stored (`DOMAIN;user` or `user`): its domain (workgroup) and its name.
pub fn split_smb_user(stored: &str) -> (&str, &str) {
    stored.split_once(';').unwrap_or(("", stored))
}

impl SourceUrl {
    pub fn parse(url: &str) -> Result<SourceUrl> {
        let bad = |why: &str| Error::Invalid(format!("invalid source URL {url:?}: {why}"));
        // The url crate drops tabs and newlines anywhere and spaces at the ends; what it reads must be what was
        // written.
        if url.chars().any(char::is_control) {
            return Err(bad("a control character (write it percent-encoded)"));
        }
        let url = url.trim_matches(' ');
        let after_scheme = url.split_once("://").map_or("", |(_, r)| r);
        let (authority, raw_path) =
            after_scheme.split_at(after_scheme.find(['/', '?', '#']).unwrap_or(after_scheme.len()));
        let raw_path = &raw_path[..raw_path.find(['?', '#']).unwrap_or(raw_path.len())];
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        if host_port.starts_with('[') && host_port.contains('%') {
            return Err(bad(
                "IPv6 zone ids (`%25eth0`) are not supported: give the address without one, or a host name",
            ));
        }
        // The syntax (scheme, user, host with IPv6 literals, port, percent-escapes) is the url crate's; what is
        // read from it is checked here.
        let u = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        let protocol = u.scheme().to_string();
        if protocol != "smb" && protocol != "nfs" {
            return Err(bad("expected smb:// or nfs://"));
        }
        if u.fragment().is_some() {
            return Err(bad("a `#` starts a fragment, which would be dropped: write `#` in a name as `%23`"));
        }
        let decode = |s: &str| match percent_encoding::percent_decode_str(s).decode_utf8() {
            Ok(d) => Ok(d.into_owned()),
            Err(_) => Err(bad(&format!("{s:?} decodes to bytes that are not UTF-8"))),
        };
        // The url crate collapses `.` and `..` (also `%2e%2e`); a source names its path as written or not at all.
        for c in raw_path.split('/') {
            if matches!(decode(c)?.as_str(), "." | "..") {
                return Err(bad("`.` and `..` are not allowed as path components"));
            }
        }
        if u.password().is_some() {
            return Err(bad("a password in the URL would show in `ps`: give it on stdin (--password-stdin)"));
        }
        // An `@` with nobody before it parses as no user at all.
        let user = match (u.username(), authority.contains('@')) {
            ("", false) => None,
            (_, true) if protocol != "smb" => return Err(bad("an NFS URL names no user")),
            (name, _) => {
                let userinfo = decode(name)?;
                let (domain, name) = split_smb_user(&userinfo);
                if name.is_empty() || (userinfo.contains(';') && domain.is_empty()) {
                    return Err(bad("expected [DOMAIN;]user@ before the host"));
                }
                Some(userinfo)
            }
        };
        let host = match u.host() {
            Some(url::Host::Ipv6(a)) => a.to_string(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Domain(d)) if !d.is_empty() => decode(d)?,
            _ => return Err(bad("no host")),
        };
        // NFS without a port: 0, the portmapper is asked.
        let port = match u.port() {
            Some(0) => return Err(bad("the port is not a number from 1 to 65535")),
            Some(p) => p,
            None if protocol == "smb" => 445,
            None => 0,
        };
        let mut mount_port = None;
        let mut export = None;
        let (mut uid, mut gid) = (None, None);
        let id = |v: &str, what: &str| v.parse::<u32>().map_err(|_| bad(&format!("{what} must be a number")));
        for kv in u.query().unwrap_or("").split('&').filter(|s| !s.is_empty()) {
            let kv = decode(kv)?;
            match kv.split_once('=') {
                Some(("mount_port", v)) if protocol == "nfs" => match v.parse::<u16>() {
                    Ok(p) if p > 0 => mount_port = Some(p),
                    _ => return Err(bad("bad mount_port")),
                },
                Some(("export", v)) if protocol == "nfs" => export = Some(v.to_string()),
                Some(("uid", v)) if protocol == "nfs" => uid = Some(id(v, "uid")?),
                Some(("gid", v)) if protocol == "nfs" => gid = Some(id(v, "gid")?),
                _ => return Err(bad(&format!("unknown option {kv:?}"))),
            }
        }
        let user = match (uid, gid) {
            (Some(u), Some(g)) => Some(format!("{u}:{g}")),
            (None, None) => user,
            _ => return Err(bad("give uid= and gid= together")),
        };
        let comps = u.path().split('/').filter(|c| !c.is_empty()).map(decode).collect::<Result<Vec<String>>>()?;
        if let Some(c) = comps.iter().find(|c| c.contains(['/', '\0'])) {
            return Err(bad(&format!("the path component {c:?} holds a `/` or NUL (`%2F`, `%00`)")));
        }
        let (share, sub): (String, Vec<String>) = match export {
            Some(e) => {
                let ecomps: Vec<String> = e.split('/').filter(|c| !c.is_empty()).map(str::to_string).collect();
                if !comps.starts_with(&ecomps) {
                    return Err(bad("the path does not start with the export"));
                }
                (format!("/{}", ecomps.join("/")), comps[ecomps.len()..].to_vec())
            }
            None => {
                let first = comps.first().ok_or_else(|| bad("no share or export in the path"))?;
                let share = if protocol == "nfs" { format!("/{first}") } else { first.to_string() };
                (share, comps[1..].to_vec())
            }
        };
        Ok(SourceUrl { protocol, host, port, mount_port, share, path: format!("/{}", sub.join("/")), user })
    }
}

/// Reads ahead of the consumer on its own thread: up to `depth` chunks of `chunk` bytes wait in a queue, so a
/// network round trip overlaps with hashing and writing. An error is delivered in order, after the data that came
/// before it, so the consumer's offset stays exact (and a resume starts there). Dropping the reader stops the thread
/// at its next chunk.
pub fn read_ahead(mut inner: Box<dyn Read + Send>, chunk: usize, depth: usize) -> Box<dyn Read + Send> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<std::io::Result<Vec<u8>>>(depth.max(1));
    std::thread::spawn(move || loop {
        let mut buf = vec![0u8; chunk];
        let mut n = 0;
        let res = loop {
            match inner.read(&mut buf[n..]) {
                Ok(0) => break Ok(()),
                Ok(k) => {
                    n += k;
                    if n == buf.len() {
                        break Ok(());
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        buf.truncate(n);
        let eof = n == 0;
        if n > 0 && tx.send(Ok(buf)).is_err() {
            return;
        }
        match res {
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
            Ok(()) if eof => return,
            Ok(()) => {}
        }
    });
    Box::new(ReadAhead { rx, cur: Vec::new(), pos: 0, done: false })
}

struct ReadAhead {
    rx: std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    cur: Vec<u8>,
    pos: usize,
    done: bool,
}

impl Read for ReadAhead {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.cur.len() {
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(b)) => {
                    self.cur = b;
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => {
                    self.done = true;
                    return Ok(0);
                }
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Network settings read from the environment: `$NIGHTFOX_NET_TIMEOUT` (seconds per network call, default 30).
pub fn net_timeout() -> Duration {
    std::env::var("NIGHTFOX_NET_TIMEOUT")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| *v > 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(Duration::from_secs(30))
}

/// Opens a configured network source with its (decrypted) password.
pub fn open_network(row: &NetworkSource, password: Password) -> Result<Box<dyn Source>> {
    let timeout = net_timeout();
    match row.protocol.as_str() {
        "smb" => {
            let (domain, user) = split_smb_user(&row.username);
            Ok(Box::new(smb::SmbSource::new(smb::SmbConfig {
                host: row.host.clone(),
                port: row.port,
                share: row.share.clone(),
                username: user.to_string(),
                password: password.expose().to_string(),
                workgroup: domain.to_string(),
                timeout,
            })?))
        }
        "nfs" => {
            let src = nfs::NfsSource::new(nfs::NfsConfig {
                host: row.host.clone(),
                port: row.port,
                mount_port: row.mount_port,
                export: row.share.clone(),
                timeout,
            })?;
            Ok(Box::new(match nfs_identity(&row.username)? {
                Some((uid, gid)) => src.with_identity(uid, gid),
                None => src,
            }))
        }
        other => Err(Error::Invalid(format!("unknown protocol {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = SourceUrl::parse("smb://127.0.0.1:4455/footage/2025/julia").unwrap();
        assert_eq!((u.protocol.as_str(), u.host.as_str(), u.port), ("smb", "127.0.0.1", 4455));
        assert_eq!((u.share.as_str(), u.path.as_str()), ("footage", "/2025/julia"));
        let u = SourceUrl::parse("nfs://127.0.0.1/footage?mount_port=20048").unwrap();
        assert_eq!((u.port, u.mount_port, u.share.as_str(), u.path.as_str()), (0, Some(20048), "/footage", "/"));
        let u = SourceUrl::parse("nfs://127.0.0.1:2050/srv/nfs/cards/a?export=/srv/nfs").unwrap();
        assert_eq!((u.share.as_str(), u.path.as_str()), ("/srv/nfs", "/cards/a"));
        let u = SourceUrl::parse("smb://[::1]:445/s").unwrap();
        assert_eq!(u.host, "::1");
        assert!(SourceUrl::parse("ftp://x/y").is_err());
        assert!(SourceUrl::parse("smb://user:pw@host/share").is_err());
        let u = SourceUrl::parse("smb://STUDIO;anna@nas.local/footage/cards").unwrap();
        assert_eq!(
            (u.user.as_deref(), u.host.as_str(), u.share.as_str()),
            (Some("STUDIO;anna"), "nas.local", "footage")
        );
        assert_eq!(split_smb_user("STUDIO;anna"), ("STUDIO", "anna"));
        assert_eq!(SourceUrl::parse("smb://anna@[::1]:4455/s").unwrap().user.as_deref(), Some("anna"));
        assert_eq!(SourceUrl::parse("smb://host/s/a@b").unwrap().path, "/a@b", "an @ in the path is no user");
        assert!(SourceUrl::parse("smb://;anna@host/s").is_err());
        assert!(SourceUrl::parse("smb://@host/s").is_err());
        assert!(SourceUrl::parse("nfs://anna@host/export").is_err());
        assert!(SourceUrl::parse("smb://host").is_err());
        assert!(SourceUrl::parse("smb://host:99999/s").is_err());
        // Escapes are decoded (a URL copied from a file manager); a raw space reads the same.
        for url in ["smb://nas/My%20Share/Wedding%202025", "smb://nas/My Share/Wedding 2025"] {
            let u = SourceUrl::parse(url).unwrap();
            assert_eq!((u.share.as_str(), u.path.as_str()), ("My Share", "/Wedding 2025"), "{url}");
        }
        assert_eq!(SourceUrl::parse("SMB://STUDIO%3Banna@nas/s").unwrap().user.as_deref(), Some("STUDIO;anna"));
        assert!(SourceUrl::parse("smb://[not-an-ip]/s").is_err());
    }

    #[test]
    fn nfs_urls() {
        // No port: 0, the portmapper is asked; a host name stays a name (resolved at connect).
        let u = SourceUrl::parse("nfs://nas.local/volume1/footage/2025").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.mount_port, u.share.as_str(), u.path.as_str(), u.user.as_deref()),
            ("nas.local", 0, None, "/volume1", "/footage/2025", None)
        );
        let u = SourceUrl::parse("nfs://[::1]:2049/srv/nfs/cards?export=/srv/nfs&uid=1000&gid=100").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.share.as_str(), u.path.as_str()), ("::1", 2049, "/srv/nfs", "/cards"));
        assert_eq!(u.user.as_deref(), Some("1000:100"));
        assert_eq!(nfs_identity("1000:100").unwrap(), Some((1000, 100)));
        assert_eq!(nfs_identity("").unwrap(), None);
        assert!(nfs_identity("anna").is_err());
        let u = SourceUrl::parse("nfs://[fe80::1]/x?gid=5&uid=0").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.user.as_deref()), ("fe80::1", 0, Some("0:5")));
        for bad in [
            "nfs://host/x?uid=1",
            "nfs://host/x?gid=1",
            "nfs://host/x?uid=-1&gid=1",
            "nfs://host/x?uid=a&gid=1",
            "nfs://host:0/x",
            "nfs://host/x?mount_port=0",
            "nfs://[::1/x",
            "smb://host/s?uid=1&gid=1",
            "smb://host/s?mount_port=1",
        ] {
            assert!(SourceUrl::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(SourceUrl::parse("smb://host/s").unwrap().port, 445);
    }

    fn row(u: &SourceUrl) -> NetworkSource {
        NetworkSource {
            id: 1,
            protocol: u.protocol.clone(),
            host: u.host.clone(),
            port: u.port,
            mount_port: u.mount_port,
            share: u.share.clone(),
            path: u.path.clone(),
            username: u.user.clone().unwrap_or_default(),
            password_enc: Vec::new(),
            credential_key: None,
            has_password: false,
            couple_id: 1,
            couple: String::new(),
            footage_type: None,
            camera_id: None,
            enabled: false,
            post_import: "leave".into(),
            duplicates: crate::catalog::DuplicateAction::Skip,
            connection_state: String::new(),
            consecutive_failures: 0,
            last_error: None,
            last_scan_at: None,
            created_at: 0,
        }
    }

    #[test]
    fn nfs_rows_show_as_urls_that_parse_back_the_same() {
        for url in [
            "nfs://nas.local/volume1/footage/2025",
            "nfs://[::1]:2049/srv/nfs/cards?export=/srv/nfs&uid=1000&gid=100",
            "nfs://10.0.0.5:2050/footage?mount_port=20048&uid=0&gid=0",
            "nfs://127.0.0.1:1234/cards/cam b?export=/",
            "nfs://127.0.0.1:1234/?export=/",
            "smb://nas:445/cards/a",
            "smb://[::1]:445/share/a",
        ] {
            let u = SourceUrl::parse(url).unwrap();
            assert_eq!(row(&u).url(), url);
            assert_eq!(SourceUrl::parse(&row(&u).url()).unwrap(), u);
        }
    }

    #[test]
    fn names_with_space_hash_percent_and_non_ascii_round_trip() {
        let smb = |share: &str, path: &str| SourceUrl {
            protocol: "smb".into(),
            host: "nas".into(),
            port: 445,
            mount_port: None,
            share: share.into(),
            path: path.into(),
            user: None,
        };
        let nfs = |share: &str, path: &str| SourceUrl { protocol: "nfs".into(), port: 0, ..smb(share, path) };
        for u in [
            smb("My Share", "/Card #3/100%/Müller Hochzeit"),
            smb("Fotos & Filme", "/Trailing space /?/a=b;c@d/ü/日本"),
            smb("%41", "/%2e%2e/[x]/{y}/a\\b"),
            nfs("/srv/my exports/#1", "/Card #3/50%"),
            nfs("/Ünïcode", "/"),
            nfs("/a&b=c", "/x"),
            smb("s", "/Trailing space "),
            nfs("/export/end ", "/"),
            smb("s", "/next\u{85}line/\u{200b}"),
        ] {
            let url = row(&u).url();
            assert_eq!(SourceUrl::parse(&url).unwrap(), u, "{url}");
        }
        // Escaped only where it must be: what people read stays readable.
        assert_eq!(row(&smb("footage", "/Card #3/100%/Müller")).url(), "smb://nas:445/footage/Card %233/100%25/Müller");
        assert_eq!(row(&nfs("/a b/c&d", "/x?")).url(), "nfs://nas/a b/c&d/x%3F?export=/a b/c%26d");
        assert_eq!(row(&smb("s", "/end ")).url(), "smb://nas:445/s/end%20", "a space at the end would be trimmed");
    }

    #[test]
    fn urls_that_would_not_name_what_they_spell_are_refused() {
        let err = |url: &str| match SourceUrl::parse(url) {
            Ok(u) => panic!("{url} parsed as {u:?}"),
            Err(e) => e.to_string(),
        };
        // `#` starts a fragment, which the url crate drops.
        let e = err("smb://nas/footage/Card #3");
        assert!(e.contains("%23") && !e.contains('\n'), "{e}");
        let u = SourceUrl::parse("smb://nas/footage/Card%20%233").unwrap();
        assert_eq!((u.share.as_str(), u.path.as_str()), ("footage", "/Card #3"));
        // `.` and `..`, raw or escaped, which the url crate collapses.
        for url in [
            "smb://nas/share/../private",
            "smb://nas/share/./x",
            "smb://nas/../x",
            "smb://nas/share/%2e%2e/private",
            "smb://nas/share/%2E./private",
            "smb://nas/share/x/%2e",
            "nfs://nas/srv/nfs/../etc?export=/srv/nfs",
        ] {
            assert!(err(url).contains("`..`"), "{url}");
        }
        assert_eq!(SourceUrl::parse("smb://nas/share/..x/.y").unwrap().path, "/..x/.y");
        // A `/` or NUL inside a component would not come back as that component.
        assert!(err("smb://nas/share/a%2Fb").contains("a/b"));
        assert!(err("smb://nas/a%2fb/x").contains("a/b"));
        assert!(err("smb://nas/share/a%00b").contains("NUL"));
        assert!(err("smb://nas/share/%FF").contains("UTF-8"));
        // Tabs and newlines the url crate would drop silently.
        assert!(err("smb://nas/share/a\tb").contains("control"));
        // IPv6 zone ids: refused in one line that says so.
        for url in ["nfs://[fe80::1%25eth0]/x", "smb://[fe80::1%eth0]:445/s", "smb://anna@[fe80::1%25eth0]/s"] {
            let e = err(url);
            assert!(e.contains("zone") && !e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn read_ahead_keeps_order_and_delivers_errors_after_the_data() {
        struct Src(Vec<u8>, usize, usize);
        impl Read for Src {
            fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
                if self.1 >= self.2 {
                    return Err(std::io::Error::from_raw_os_error(libc::ECONNRESET));
                }
                let n = b.len().min(1000).min(self.2 - self.1);
                b[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
                self.1 += n;
                Ok(n)
            }
        }
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
        let mut r = read_ahead(Box::new(Src(data.clone(), 0, 54_321)), 4096, 3);
        let mut got = Vec::new();
        let mut buf = [0u8; 777];
        let err = loop {
            match r.read(&mut buf) {
                Ok(0) => panic!("EOF before the error"),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => break e,
            }
        };
        assert_eq!(got, &data[..54_321]);
        assert_eq!(err.raw_os_error(), Some(libc::ECONNRESET));
        let mut r = read_ahead(Box::new(std::io::Cursor::new(data.clone())), 4096, 2);
        let mut all = Vec::new();
        r.read_to_end(&mut all).unwrap();
        assert_eq!(all, data);
    }
}
