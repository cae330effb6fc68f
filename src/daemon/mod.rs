//! The daemon's operator side (issue 23): `nightfox.toml`, the operator's settings of `serve` and of every other
//! command ([`config`]: schema, discovery, precedence, `config check`/`show`, SIGHUP reloads, the reloadable log
//! filter), and the systemd notify protocol ([`notify`]: READY, STATUS, WATCHDOG, RELOADING, STOPPING). The
//! archive's own identity stays in `archive.toml` (`crate::archive::config`).

pub mod config;
pub mod notify;
