//! The env file: secrets and settings a daemon reads at start (`--env-file PATH`, or `/etc/nightfox/env` for
//! `serve` when it exists, as systemd units use it), one `NAME=value` per line (`.env.example` in the repository
//! lists every variable). Refused when its group or others may read it: it holds the catalog's passwords, the S3
//! keys and `NIGHTFOX_SECRET`. Variables already set in the process environment win (an operator's override).
//! Values are never printed or logged; only the names of the variables read are (at debug level).

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::error::{Error, IoContext, Result};

/// Where `serve` looks when no `--env-file` is given.
pub const DEFAULT_SERVE_ENV: &str = "/etc/nightfox/env";

/// Every variable the env file may set, with what it is for (the source of `.env.example`'s list).
pub const VARIABLES: &[(&str, &str)] = &[
    ("NIGHTFOX_ARCHIVE", "the archive directory of this seat"),
    ("NIGHTFOX_DATABASE_URL", "the runtime DSN of a Postgres catalog, with its password"),
    ("NIGHTFOX_DATABASE_MIGRATE_URL", "the migration DSN (only `nightfox migrate` uses it)"),
    ("AWS_ACCESS_KEY_ID", "the S3 blob store's access key"),
    ("AWS_SECRET_ACCESS_KEY", "the S3 blob store's secret key"),
    ("AWS_SESSION_TOKEN", "a temporary S3 session token, when the keys are temporary"),
    ("NIGHTFOX_SECRET", "a passphrase for stored source passwords, Argon2id (the same on every seat)"),
    ("NIGHTFOX_SECRET_PREVIOUS", "the passphrase before a change, while `secrets rotate` re-encrypts"),
    ("NIGHTFOX_KEY_FILE", "the 0600 key file of stored source passwords, when not secret.key in the archive"),
];

/// Reads the env file at `path` into the process environment (not over variables already set). Fails when the
/// file is readable by group or others, or cannot be parsed; the message names the file and the line, never a
/// value.
pub fn load(path: &Path) -> Result<Vec<String>> {
    let meta = std::fs::metadata(path).at(path)?;
    if let Some(m) = crate::secrets::readable_by_others(path, meta.mode(), "env file") {
        return Err(Error::Invalid(m));
    }
    let iter = dotenvy::from_path_iter(path)
        .map_err(|e| Error::Invalid(format!("the env file {}: {}", path.display(), scrub(&e))))?;
    let mut pairs = Vec::new();
    for item in iter {
        let (k, v) = item.map_err(|e| Error::Invalid(format!("the env file {}: {}", path.display(), scrub(&e))))?;
        pairs.push((k, v));
    }
    let mut set = Vec::new();
    for (k, v) in pairs {
        if std::env::var_os(&k).is_none() {
            // Single-threaded: called at start, before any thread is spawned.
            std::env::set_var(&k, v);
            set.push(k);
        }
    }
    tracing::debug!(file = %path.display(), variables = ?set, "read env file");
    Ok(set)
}

/// A parse error without the line's text (which may hold a secret): dotenvy's `LineParse` carries the line.
fn scrub(e: &dotenvy::Error) -> String {
    match e {
        dotenvy::Error::LineParse(_, at) => format!("line {} cannot be read as NAME=value", at + 1),
        dotenvy::Error::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}

/// The env file a command reads: the one given, else for `serve` the default one when it exists.
pub fn chosen(given: Option<&Path>, serving: bool) -> Option<std::path::PathBuf> {
    match given {
        Some(p) => Some(p.to_path_buf()),
        None if serving && Path::new(DEFAULT_SERVE_ENV).is_file() => Some(DEFAULT_SERVE_ENV.into()),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_file_others_can_read_is_refused_and_sets_nothing() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("env");
        std::fs::write(&p, "NIGHTFOX_TEST_ENV_A=secret-value\n").expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let e = load(&p).expect_err("0644 is refused").to_string();
        assert!(e.contains("chmod 600") && !e.contains("secret-value") && !e.contains('\n'), "{e}");
        assert!(std::env::var_os("NIGHTFOX_TEST_ENV_A").is_none());
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(load(&p).expect("0600 is read"), vec!["NIGHTFOX_TEST_ENV_A".to_string()]);
        assert_eq!(std::env::var("NIGHTFOX_TEST_ENV_A").as_deref(), Ok("secret-value"));
    }

    #[test]
    fn a_bad_line_names_the_line_not_its_text() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("env");
        std::fs::write(&p, "NIGHTFOX_TEST_ENV_B=ok\nthis is 'not a pair hunter2\n").expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let e = load(&p).expect_err("refused").to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn the_example_lists_every_variable() {
        let example = include_str!("../../.env.example");
        for (name, _) in VARIABLES {
            assert!(example.contains(&format!("{name}=")), ".env.example lacks {name}");
        }
    }
}
