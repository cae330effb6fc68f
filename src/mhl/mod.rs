//! ASC MHL v2 (the manifest format of professional offload tools): the `ascmhl/` history of a folder, its
//! generations (`NNNN_<folder>_<date>_<time>Z.mhl`, never edited) and `ascmhl_chain.xml` (the C4 ID of each),
//! written and read here; the hash formats in [`hashes`], the XML in `xml`, checking a folder against its history
//! in [`check`]. BLAKE3 is not an ASC MHL format, so what Nightfox writes carries xxh64 and xxh128.

pub mod check;
pub mod hashes;
pub mod onset;
pub mod session;
mod xml;

use crate::blobs::staging::write_atomic;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
pub use hashes::HashFormat;

/// The history folder inside a folder.
pub const FOLDER: &str = "ascmhl";
/// The chain file inside the history folder.
pub const CHAIN: &str = "ascmhl_chain.xml";
/// What the reference tool ignores by default (and writes into each manifest).
pub const DEFAULT_IGNORE: [&str; 3] = [".DS_Store", "ascmhl", "ascmhl/"];

/// What a generation records: the folder was hashed where it is, was copied here, or was flattened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Process {
    InPlace,
    Transfer,
    Flatten,
}

impl Process {
    pub fn as_str(self) -> &'static str {
        match self {
            Process::InPlace => "in-place",
            Process::Transfer => "transfer",
            Process::Flatten => "flatten",
        }
    }
    pub fn parse(s: &str) -> Option<Process> {
        [Process::InPlace, Process::Transfer, Process::Flatten].into_iter().find(|p| p.as_str() == s)
    }
}

/// What a hash entry says: first seen (`original`), checked against an earlier one, or found different.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Original,
    Verified,
    Failed,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Original => "original",
            Action::Verified => "verified",
            Action::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Action> {
        [Action::Original, Action::Verified, Action::Failed].into_iter().find(|a| a.as_str() == s)
    }
}

/// One hash of one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HashEntry {
    pub format: HashFormat,
    pub value: String,
    pub action: Option<Action>,
    pub hashdate: Option<String>,
}

/// One file of a manifest: its path relative to the history's folder (`/`-separated), size, modification time
/// (`xs:dateTime`) and hashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    pub path: String,
    pub size: Option<u64>,
    pub mtime: Option<String>,
    pub hashes: Vec<HashEntry>,
    pub previous_path: Option<String>,
}

impl FileEntry {
    /// A file with its hashes, all with the same action and date.
    /// The hashes are kept in XSD order.
    pub fn new(
        path: &str,
        size: u64,
        mtime_secs: Option<i64>,
        mut hashes: Vec<(HashFormat, String)>,
        action: Action,
    ) -> Self {
        let date = now_rfc3339();
        hashes.sort();
        FileEntry {
            path: path.to_string(),
            size: Some(size),
            mtime: mtime_secs.map(crate::fs::rfc3339),
            hashes: hashes
                .into_iter()
                .map(|(format, value)| HashEntry { format, value, action: Some(action), hashdate: Some(date.clone()) })
                .collect(),
            previous_path: None,
        }
    }

    /// The value of one format, if recorded.
    pub fn hash(&self, f: HashFormat) -> Option<&str> {
        self.hashes.iter().find(|h| h.format == f).map(|h| h.value.as_str())
    }
}

/// One generation of a history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub creation_date: String,
    pub hostname: String,
    pub tool: String,
    pub tool_version: String,
    pub process: Process,
    pub ignore: Vec<String>,
    pub files: Vec<FileEntry>,
}

impl Manifest {
    /// A new manifest by this Nightfox, on this host, now, with the default ignore patterns.
    pub fn new(process: Process, files: Vec<FileEntry>) -> Manifest {
        Manifest {
            creation_date: now_rfc3339(),
            hostname: crate::jobs::hostname(),
            tool: "nightfox".into(),
            tool_version: env!("CARGO_PKG_VERSION").into(),
            process,
            ignore: DEFAULT_IGNORE.iter().map(|s| s.to_string()).collect(),
            files,
        }
    }

    /// The file at a path, if listed.
    pub fn file(&self, path: &str) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.path == path)
    }
}

/// One line of the chain: a generation's number, manifest file name and the C4 ID of its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainEntry {
    pub number: u32,
    pub path: String,
    pub c4: String,
}

/// A generation found in the history folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generation {
    pub number: u32,
    pub file: String,
}

/// The `ascmhl/` history of a folder.
#[derive(Debug)]
pub struct History {
    /// The folder the history describes (its `ascmhl/` is inside).
    pub root: PathBuf,
    /// The manifests in the history folder, by generation number.
    pub generations: Vec<Generation>,
    /// What `ascmhl_chain.xml` lists (empty when it is missing).
    pub chain: Vec<ChainEntry>,
    /// Whether `ascmhl_chain.xml` exists.
    pub has_chain: bool,
}

impl History {
    /// The history folder of `root`.
    pub fn dir_of(root: &Path) -> PathBuf {
        root.join(FOLDER)
    }

    /// True when `root` holds an `ascmhl/` folder.
    pub fn exists(root: &Path) -> bool {
        Self::dir_of(root).is_dir()
    }

    /// Loads the list of generations and the chain of `root`'s history (an empty history when there is none).
    pub fn load(root: &Path) -> Result<History> {
        let dir = Self::dir_of(root);
        let mut generations = Vec::new();
        if dir.is_dir() {
            for e in fs::read_dir(&dir).at(&dir)? {
                let e = e.at(&dir)?;
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with("._") || !name.ends_with(".mhl") {
                    continue;
                }
                let digits: String = name.chars().take_while(|c| c.is_ascii_digit()).collect();
                if digits.len() < 4 {
                    continue;
                }
                if let Ok(number) = digits.parse() {
                    generations.push(Generation { number, file: name });
                }
            }
        }
        generations.sort_by_key(|g| g.number);
        let chain_path = dir.join(CHAIN);
        let (chain, has_chain) = match fs::read(&chain_path) {
            Ok(b) => (xml::chain_from(&xml::parse(&b, &chain_path)?, &chain_path)?, true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Vec::new(), false),
            Err(e) => return Err(Error::io(&chain_path, e)),
        };
        Ok(History { root: root.to_path_buf(), generations, chain, has_chain })
    }

    /// Reads one generation's manifest.
    pub fn read(&self, g: &Generation) -> Result<Manifest> {
        let p = Self::dir_of(&self.root).join(&g.file);
        let bytes = fs::read(&p).at(&p)?;
        xml::manifest_from(&xml::parse(&bytes, &p)?, &p)
    }

    /// The newest generation and its manifest, if the history has any.
    pub fn newest(&self) -> Result<Option<(Generation, Manifest)>> {
        match self.generations.last() {
            Some(g) => Ok(Some((g.clone(), self.read(g)?))),
            None => Ok(None),
        }
    }

    /// Every generation's manifest, oldest first.
    pub fn all(&self) -> Result<Vec<(Generation, Manifest)>> {
        self.generations.iter().map(|g| Ok((g.clone(), self.read(g)?))).collect()
    }

    /// What is wrong with the chain: a manifest whose bytes no longer have the recorded C4 ID (edited), one the
    /// chain lists that is gone, one the chain does not list, or no chain at all. Empty when the chain holds.
    pub fn chain_problems(&self) -> Result<Vec<String>> {
        let dir = Self::dir_of(&self.root);
        let mut out = Vec::new();
        if !self.has_chain {
            if !self.generations.is_empty() {
                out.push(format!("no {CHAIN} in {}", dir.display()));
            }
            return Ok(out);
        }
        for c in &self.chain {
            let p = dir.join(&c.path);
            match hashes::hash_file(&p, &[HashFormat::C4]) {
                Ok(v) if v.first().map(|(_, h)| h.as_str()) == Some(c.c4.as_str()) => {}
                Ok(_) => out.push(format!("manifest {} was modified (its C4 ID differs from the chain's)", c.path)),
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                    out.push(format!("manifest {} is missing", c.path))
                }
                Err(e) => return Err(e),
            }
        }
        for g in &self.generations {
            if !self.chain.iter().any(|c| c.path == g.file) {
                out.push(format!("manifest {} is not in the chain", g.file));
            }
        }
        Ok(out)
    }

    /// Appends a generation: writes `NNNN_<folder>_<date>_<time>Z.mhl` (never over an existing file) and the chain
    /// with its C4 ID, each through a temp file, fsync and rename. Returns the manifest's path.
    pub fn append(&mut self, m: &Manifest) -> Result<PathBuf> {
        let dir = Self::dir_of(&self.root);
        fs::create_dir_all(&dir).at(&dir)?;
        let number = self.generations.last().map_or(1, |g| g.number + 1);
        let folder = self
            .root
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "root".into());
        let stamp = file_stamp(crate::catalog::now());
        let file = format!("{number:04}_{folder}_{stamp}.mhl");
        let path = dir.join(&file);
        if path.exists() {
            return Err(Error::Invalid(format!("{} exists already; a manifest is never replaced", path.display())));
        }
        let bytes = xml::manifest_xml(m)?;
        write_atomic(&path, &bytes)?;
        let c4 =
            hashes::hash_reader(&mut &bytes[..], &path, &[HashFormat::C4])?.pop().map(|(_, v)| v).unwrap_or_default();
        self.chain.push(ChainEntry { number, path: file.clone(), c4 });
        let chain = dir.join(CHAIN);
        write_atomic(&chain, &xml::chain_xml(&self.chain)?)?;
        crate::blobs::staging::fsync_dir(&dir)?;
        self.has_chain = true;
        self.generations.push(Generation { number, file });
        Ok(path)
    }
}

fn now_rfc3339() -> String {
    crate::fs::rfc3339(crate::catalog::now())
}

/// `2025-12-31_140300Z` (the manifest file name's date and time, UTC).
fn file_stamp(secs: i64) -> String {
    let s = crate::fs::rfc3339(secs); // 2025-12-31T14:03:00Z
    format!("{}_{}{}{}Z", &s[..10], &s[11..13], &s[14..16], &s[17..19])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp() {
        assert_eq!(file_stamp(0), "1970-01-01_000000Z");
    }

    #[test]
    fn write_then_read() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("card");
        fs::create_dir(&root).unwrap();
        let mut h = History::load(&root).unwrap();
        let f = FileEntry::new(
            "A/x & y.bin",
            6,
            Some(1_700_000_000),
            vec![
                (HashFormat::Xxh64, "e4c191d091bd8853".into()),
                (HashFormat::Md5, "b1946ac92492d2347c6235b4d2611184".into()),
            ],
            Action::Original,
        );
        let m = Manifest::new(Process::InPlace, vec![f.clone()]);
        h.append(&m).unwrap();
        h.append(&Manifest::new(Process::Transfer, vec![f.clone()])).unwrap();
        let h = History::load(&root).unwrap();
        assert_eq!(h.generations.len(), 2);
        assert!(h.generations[0].file.starts_with("0001_card_"));
        assert!(h.generations[1].file.starts_with("0002_card_"));
        assert_eq!(h.chain_problems().unwrap(), Vec::<String>::new());
        let (_, newest) = h.newest().unwrap().unwrap();
        assert_eq!(newest.process, Process::Transfer);
        assert_eq!(newest.files, vec![f]);
        assert_eq!(h.read(&h.generations[0]).unwrap(), m);
        // An edited manifest breaks the chain.
        let p = History::dir_of(&root).join(&h.generations[0].file);
        let mut s = fs::read_to_string(&p).unwrap();
        s = s.replace("e4c1", "e4c2");
        fs::write(&p, s).unwrap();
        assert_eq!(h.chain_problems().unwrap().len(), 1);
    }
}
