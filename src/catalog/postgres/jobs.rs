//! `Jobs` on Postgres: claimed with `FOR UPDATE SKIP LOCKED`, shared by every seat's daemon.
