//! `Jobs` on SQLite (the single daemon of an embedded archive).
