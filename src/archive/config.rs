//! `archive.toml`: which blob store and which catalog an archive uses, chosen by URL. `init` writes it; an archive
//! made before it existed has none and opens with the defaults, which are today's layout exactly (`objects/` and
//! `catalog.db` under the archive root).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};

/// The file's name in the archive root.
pub const FILE: &str = "archive.toml";

/// The default blob store: `objects/` under the archive root.
pub const DEFAULT_BLOBS: &str = "local";
/// The default catalog: `catalog.db` under the archive root.
pub const DEFAULT_CATALOG: &str = "sqlite";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub blobs: Section,
    pub catalog: Section,
    /// The daemon's scheduled scrub (`[scrub]`); `serve --scrub-*` flags override each key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrub: Option<Scrub>,
    /// The trash (`[trash]`): how long a removed couple, file or import stays restorable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trash: Option<TrashSettings>,
}

/// `[trash]`: `retention = "30d"` (a duration as the other settings take them).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrashSettings {
    /// Time from a removal until `gc` may purge it.
    pub retention: Option<String>,
}

/// How long a removal stays in the trash when `[trash] retention` does not say.
pub const DEFAULT_RETENTION: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// `[scrub]`: `every = "7d"`, `limit = "500GB"`, `rate = "100MB/s"` (as the `serve --scrub-*` flags take them).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scrub {
    /// Time from the end of one complete scheduled scrub to the start of the next.
    pub every: Option<String>,
    /// Bytes one scrub checks at most (oldest-verified first).
    pub limit: Option<String>,
    /// Bytes per second a scrub reads at most.
    pub rate: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    /// `local` or `file:///dir` for blobs; `sqlite` or `sqlite:///file.db` for the catalog. Never holds a secret
    /// (credentials live in the encrypted secrets file).
    pub url: String,
    /// `[blobs] encrypt = true`: the blobs are sealed with the archive's data key (`blobs::vault`, made by `init
    /// --encrypt`; the key itself lives wrapped in `keys/vault.wrapped`, never here). Not for `[catalog]`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub encrypt: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            blobs: Section { url: DEFAULT_BLOBS.into(), encrypt: false },
            catalog: Section { url: DEFAULT_CATALOG.into(), encrypt: false },
            scrub: None,
            trash: None,
        }
    }
}

impl Config {
    /// How long a removal stays restorable: `[trash] retention`, else 30 days.
    pub fn trash_retention(&self) -> Result<std::time::Duration> {
        match self.trash.as_ref().and_then(|t| t.retention.as_deref()) {
            None => Ok(DEFAULT_RETENTION),
            Some(t) => crate::serve::parse_duration(t)
                .map_err(|e| Error::Invalid(format!("archive.toml [trash] retention: {e}"))),
        }
    }

    /// Reads `archive.toml` from `root`; the defaults when there is none (an archive older than the file).
    pub fn load(root: &Path) -> Result<Config> {
        let path = root.join(FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => return Err(Error::io(path, e)),
        };
        let config: Config = toml::from_str(&text).map_err(|e| {
            Error::Invalid(format!("{}: {}", path.display(), e.message().lines().next().unwrap_or("invalid")))
        })?;
        if config.catalog.encrypt {
            return Err(Error::Invalid(format!(
                "{}: [catalog] encrypt is not a setting (encryption is [blobs] encrypt = true)",
                path.display()
            )));
        }
        Ok(config)
    }

    /// The file's text: the URLs, after a comment saying what the defaults mean.
    pub fn to_text(&self) -> Result<String> {
        let body = toml::to_string(self).map_err(|e| Error::Invalid(format!("{FILE}: {e}")))?;
        Ok(format!(
            "# Nightfox archive: where its verified blobs and its catalog live.\n\
             # blobs \"local\" = objects/ in this directory; catalog \"sqlite\" = catalog.db in this directory.\n\
             # blobs encrypt = true: sealed with the key in keys/vault.wrapped (wrapped under the archive secret).\n\n{body}"
        ))
    }

    /// Writes the file (0600) into a new archive's root.
    pub fn write_new(&self, root: &Path) -> Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = root.join(FILE);
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).at(&path)?;
        f.write_all(self.to_text()?.as_bytes()).at(&path)?;
        f.sync_all().at(&path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_written_text_reads_back_and_a_missing_file_means_the_defaults() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(Config::load(d.path()).unwrap(), Config::default());
        let c = Config {
            blobs: Section { url: "file:///srv/blobs".into(), encrypt: true },
            catalog: Section { url: "sqlite".into(), encrypt: false },
            scrub: None,
            trash: Some(TrashSettings { retention: Some("7d".into()) }),
        };
        c.write_new(d.path()).unwrap();
        assert_eq!(Config::load(d.path()).unwrap(), c);
        std::fs::write(d.path().join(FILE), "[blobs]\nurl = 3\n").unwrap();
        let e = Config::load(d.path()).unwrap_err().to_string();
        assert!(e.contains("archive.toml") && !e.contains('\n'), "{e}");
        let text =
            "[blobs]\nurl = \"local\"\n[catalog]\nurl = \"sqlite\"\n[scrub]\nevery = \"7d\"\nlimit = \"500GB\"\n";
        std::fs::write(d.path().join(FILE), text).unwrap();
        let c = Config::load(d.path()).unwrap();
        assert_eq!(c.scrub, Some(Scrub { every: Some("7d".into()), limit: Some("500GB".into()), rate: None }));
        assert_eq!(c.trash_retention().unwrap(), DEFAULT_RETENTION, "30 days unless [trash] says");
        std::fs::write(
            d.path().join(FILE),
            "[blobs]\nurl = \"local\"\n[catalog]\nurl = \"sqlite\"\n[trash]\nretention = \"2w\"\n",
        )
        .unwrap();
        let c = Config::load(d.path()).unwrap();
        assert_eq!(c.trash_retention().unwrap(), std::time::Duration::from_secs(14 * 24 * 3600));
        std::fs::write(
            d.path().join(FILE),
            "[blobs]\nurl = \"local\"\n[catalog]\nurl = \"sqlite\"\n[trash]\nretention = \"soon\"\n",
        )
        .unwrap();
        let e = Config::load(d.path()).unwrap().trash_retention().unwrap_err().to_string();
        assert!(e.contains("[trash] retention"), "{e}");
    }
}
