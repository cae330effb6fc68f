//! [`Finalize`] on Postgres (a port of `sqlite/finalize.rs`).

use super::*;
