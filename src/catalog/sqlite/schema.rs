//! The SQLite schema: one migration per version, applied at open (`PRAGMA user_version` counts them). Existing
//! archives depend on these texts: never edit one, only append.

/// Each entry upgrades the schema by one version; `user_version` is the number applied.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: the foundation schema.
    r#"
    CREATE TABLE couples (
        id            INTEGER PRIMARY KEY,
        display_name  TEXT NOT NULL,
        event_date    TEXT NOT NULL,
        folder_name   TEXT NOT NULL UNIQUE,
        created_at    INTEGER NOT NULL
    );
    CREATE TABLE cameras (
        id            INTEGER PRIMARY KEY,
        slug          TEXT NOT NULL UNIQUE,
        name          TEXT NOT NULL,
        footage_type  TEXT NOT NULL CHECK (footage_type IN ('modern','dadcam','super8')),
        make          TEXT,
        model         TEXT,
        serial        TEXT,
        created_at    INTEGER NOT NULL
    );
    CREATE TABLE blobs (
        id            INTEGER PRIMARY KEY,
        hash          TEXT NOT NULL UNIQUE CHECK (length(hash) = 64),
        size          INTEGER NOT NULL,
        stored_at     INTEGER NOT NULL,
        verified_at   INTEGER
    );
    CREATE TABLE import_sessions (
        id               INTEGER PRIMARY KEY,
        couple_id        INTEGER NOT NULL REFERENCES couples(id),
        status           TEXT NOT NULL CHECK (status IN ('pending','scanning','hashing','copying','validating',
                                                         'finalizing','completed','cancelled','failed','paused')),
        last_step        TEXT,
        can_resume       INTEGER NOT NULL DEFAULT 1,
        footage_type     TEXT NOT NULL,
        camera_id        INTEGER REFERENCES cameras(id),
        duplicates       TEXT NOT NULL DEFAULT 'skip' CHECK (duplicates IN ('skip','import')),
        source           TEXT NOT NULL,
        source_paths     BLOB NOT NULL,
        files_total      INTEGER NOT NULL DEFAULT 0,
        files_processed  INTEGER NOT NULL DEFAULT 0,
        files_duplicate  INTEGER NOT NULL DEFAULT 0,
        files_error      INTEGER NOT NULL DEFAULT 0,
        bytes_total      INTEGER NOT NULL DEFAULT 0,
        bytes_processed  INTEGER NOT NULL DEFAULT 0,
        bytes_duplicate  INTEGER NOT NULL DEFAULT 0,
        bytes_error      INTEGER NOT NULL DEFAULT 0,
        error            TEXT,
        created_at       INTEGER NOT NULL,
        updated_at       INTEGER NOT NULL,
        finished_at      INTEGER
    );
    CREATE TABLE files (
        id               INTEGER PRIMARY KEY,
        couple_id        INTEGER NOT NULL REFERENCES couples(id),
        footage_type     TEXT NOT NULL CHECK (footage_type IN ('modern','dadcam','super8')),
        camera_id        INTEGER REFERENCES cameras(id),
        blob_hash        TEXT NOT NULL REFERENCES blobs(hash),
        display_name     BLOB NOT NULL,
        name_key         TEXT NOT NULL,
        original_path    BLOB NOT NULL,
        source           TEXT NOT NULL,
        source_mtime_ns  INTEGER NOT NULL,
        imported_at      INTEGER NOT NULL,
        session_id       INTEGER REFERENCES import_sessions(id),
        sidecar_of       INTEGER REFERENCES files(id)
    );
    CREATE UNIQUE INDEX files_dir_key ON files(couple_id, footage_type, IFNULL(camera_id, 0), name_key);
    CREATE INDEX files_dir_name ON files(couple_id, footage_type, IFNULL(camera_id, 0), display_name);
    CREATE INDEX files_blob ON files(blob_hash, couple_id);
    CREATE TABLE import_items (
        id            INTEGER PRIMARY KEY,
        session_id    INTEGER NOT NULL REFERENCES import_sessions(id),
        path          BLOB NOT NULL,
        rel_path      BLOB NOT NULL,
        size          INTEGER NOT NULL,
        mtime_ns      INTEGER NOT NULL,
        state         TEXT NOT NULL CHECK (state IN ('pending','copied','stored','done','duplicate','failed','skipped')),
        hash          TEXT,
        sidecar_of    INTEGER REFERENCES import_items(id),
        file_id       INTEGER REFERENCES files(id),
        error         TEXT,
        updated_at    INTEGER NOT NULL
    );
    CREATE INDEX import_items_session ON import_items(session_id, state);
    "#,
    // 2: routing: capture times, cameras created from metadata, whether an import named its footage type.
    r#"
    ALTER TABLE files ADD COLUMN captured_at INTEGER;
    ALTER TABLE cameras ADD COLUMN auto INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE import_sessions ADD COLUMN type_explicit INTEGER NOT NULL DEFAULT 1;
    "#,
    // 3: network sources (SMB, NFS) and their event log.
    r#"
    CREATE TABLE network_sources (
        id                    INTEGER PRIMARY KEY,
        protocol              TEXT NOT NULL CHECK (protocol IN ('smb','nfs')),
        host                  TEXT NOT NULL,
        port                  INTEGER NOT NULL,
        mount_port            INTEGER,
        share                 TEXT NOT NULL,
        path                  TEXT NOT NULL,
        username              TEXT NOT NULL DEFAULT '',
        password_enc          BLOB NOT NULL DEFAULT x'',
        couple_id             INTEGER NOT NULL REFERENCES couples(id),
        footage_type          TEXT CHECK (footage_type IN ('modern','dadcam','super8')),
        camera_id             INTEGER REFERENCES cameras(id),
        enabled               INTEGER NOT NULL DEFAULT 0,
        post_import           TEXT NOT NULL DEFAULT 'leave',
        duplicates            TEXT NOT NULL DEFAULT 'skip' CHECK (duplicates IN ('skip','import')),
        connection_state      TEXT NOT NULL DEFAULT 'untested',
        consecutive_failures  INTEGER NOT NULL DEFAULT 0,
        last_error            TEXT,
        last_scan_at          INTEGER,
        created_at            INTEGER NOT NULL,
        updated_at            INTEGER NOT NULL
    );
    CREATE TABLE network_source_events (
        id          INTEGER PRIMARY KEY,
        source_id   INTEGER NOT NULL REFERENCES network_sources(id) ON DELETE CASCADE,
        session_id  INTEGER REFERENCES import_sessions(id),
        at          INTEGER NOT NULL,
        level       TEXT NOT NULL,
        message     TEXT NOT NULL
    );
    CREATE INDEX network_source_events_source ON network_source_events(source_id, id);
    ALTER TABLE import_sessions ADD COLUMN source_id INTEGER REFERENCES network_sources(id) ON DELETE SET NULL;
    CREATE INDEX files_source_path ON files(couple_id, original_path);
    "#,
    // 4: the writable ingest directory of the mount: what writers created, as they see it.
    r#"
    CREATE TABLE ingest_entries (
        id          INTEGER PRIMARY KEY,
        couple_id   INTEGER NOT NULL REFERENCES couples(id),
        parent_id   INTEGER REFERENCES ingest_entries(id),
        name        BLOB NOT NULL,
        kind        TEXT NOT NULL CHECK (kind IN ('dir','file')),
        state       TEXT NOT NULL CHECK (state IN ('staging','committed')),
        size        INTEGER NOT NULL DEFAULT 0,
        mtime_ns    INTEGER NOT NULL,
        mode        INTEGER NOT NULL,
        uid         INTEGER NOT NULL,
        gid         INTEGER NOT NULL,
        blob_hash   TEXT,
        file_id     INTEGER REFERENCES files(id),
        updated_at  INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX ingest_entries_name ON ingest_entries(couple_id, IFNULL(parent_id, 0), name);
    "#,
    // 5: real cards. Blob health as `verify` found it (rot, loss) until a verified copy heals it; salvaged files
    // with the ranges that could not be read; partial copies kept for a resume inside a file; the current run of
    // a session (speed and ETA); the archive's own event log (heals, damage), which the mount follows.
    r#"
    ALTER TABLE blobs ADD COLUMN health TEXT NOT NULL DEFAULT 'ok' CHECK (health IN ('ok','damaged','missing'));
    ALTER TABLE blobs ADD COLUMN problem TEXT;
    CREATE INDEX blobs_unhealthy ON blobs(health) WHERE health <> 'ok';
    ALTER TABLE files ADD COLUMN bad_ranges TEXT;
    CREATE INDEX files_damaged ON files(couple_id, original_path) WHERE bad_ranges IS NOT NULL;
    ALTER TABLE import_items ADD COLUMN bad_ranges TEXT;
    ALTER TABLE import_items ADD COLUMN resume_offset INTEGER;
    ALTER TABLE import_items ADD COLUMN healed INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE import_sessions ADD COLUMN salvage INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE import_sessions ADD COLUMN run_started_at INTEGER;
    ALTER TABLE import_sessions ADD COLUMN run_bytes_start INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE events (
        id          INTEGER PRIMARY KEY,
        at          INTEGER NOT NULL,
        kind        TEXT NOT NULL,
        blob_hash   TEXT,
        file_id     INTEGER,
        session_id  INTEGER,
        message     TEXT NOT NULL
    );
    "#,
    // 6: a couple's file count and bytes kept as files are added, re-pointed or removed (triggers), so listing
    // couples never sums a million files through the blobs table. Filled once from what is there.
    r#"
    CREATE TABLE couple_totals (
        couple_id   INTEGER PRIMARY KEY REFERENCES couples(id) ON DELETE CASCADE,
        files       INTEGER NOT NULL DEFAULT 0,
        bytes       INTEGER NOT NULL DEFAULT 0
    );
    INSERT INTO couple_totals (couple_id, files, bytes)
        SELECT c.id,
               (SELECT COUNT(*) FROM files f WHERE f.couple_id = c.id),
               (SELECT IFNULL(SUM(b.size), 0) FROM files f JOIN blobs b ON b.hash = f.blob_hash WHERE f.couple_id = c.id)
        FROM couples c;
    CREATE TRIGGER couple_totals_new_couple AFTER INSERT ON couples BEGIN
        INSERT OR IGNORE INTO couple_totals (couple_id) VALUES (NEW.id);
    END;
    CREATE TRIGGER couple_totals_file_added AFTER INSERT ON files BEGIN
        INSERT OR IGNORE INTO couple_totals (couple_id) VALUES (NEW.couple_id);
        UPDATE couple_totals SET files = files + 1,
            bytes = bytes + IFNULL((SELECT size FROM blobs WHERE hash = NEW.blob_hash), 0)
        WHERE couple_id = NEW.couple_id;
    END;
    CREATE TRIGGER couple_totals_file_removed AFTER DELETE ON files BEGIN
        UPDATE couple_totals SET files = files - 1,
            bytes = bytes - IFNULL((SELECT size FROM blobs WHERE hash = OLD.blob_hash), 0)
        WHERE couple_id = OLD.couple_id;
    END;
    CREATE TRIGGER couple_totals_file_changed AFTER UPDATE OF blob_hash, couple_id ON files BEGIN
        UPDATE couple_totals SET files = files - 1,
            bytes = bytes - IFNULL((SELECT size FROM blobs WHERE hash = OLD.blob_hash), 0)
        WHERE couple_id = OLD.couple_id;
        INSERT OR IGNORE INTO couple_totals (couple_id) VALUES (NEW.couple_id);
        UPDATE couple_totals SET files = files + 1,
            bytes = bytes + IFNULL((SELECT size FROM blobs WHERE hash = NEW.blob_hash), 0)
        WHERE couple_id = NEW.couple_id;
    END;
    "#,
    // 7: what the mount and the listings read without scanning a million files: the newest import below each
    // couple (the root's mtimes), each camera's file count (`camera list`), each file's blob row id, so a
    // folder listing joins its blobs by row id (neighbouring rows) instead of a hash lookup per file (and the
    // files of a blob are indexed by that id, which grows with each import, instead of by a random hash), and an
    // index of the sidecars by clip (`info`). Triggers keep the first three as files are added, re-pointed or
    // removed; filled once from what is there.
    r#"
    CREATE INDEX files_sidecar ON files(sidecar_of) WHERE sidecar_of IS NOT NULL;
    ALTER TABLE files ADD COLUMN blob_id INTEGER;
    UPDATE files SET blob_id = (SELECT id FROM blobs WHERE hash = files.blob_hash);
    DROP INDEX files_blob;
    CREATE INDEX files_blob_id ON files(blob_id, couple_id);
    CREATE TRIGGER files_blob_id_added AFTER INSERT ON files WHEN NEW.blob_id IS NULL BEGIN
        UPDATE files SET blob_id = (SELECT id FROM blobs WHERE hash = NEW.blob_hash) WHERE id = NEW.id;
    END;
    CREATE TRIGGER files_blob_id_changed AFTER UPDATE OF blob_hash ON files BEGIN
        UPDATE files SET blob_id = (SELECT id FROM blobs WHERE hash = NEW.blob_hash) WHERE id = NEW.id;
    END;
    CREATE TABLE camera_totals (
        camera_id   INTEGER PRIMARY KEY REFERENCES cameras(id) ON DELETE CASCADE,
        files       INTEGER NOT NULL DEFAULT 0
    );
    INSERT INTO camera_totals (camera_id, files)
        SELECT camera_id, COUNT(*) FROM files WHERE camera_id IS NOT NULL GROUP BY camera_id;
    CREATE TRIGGER camera_totals_file_added AFTER INSERT ON files WHEN NEW.camera_id IS NOT NULL BEGIN
        INSERT OR IGNORE INTO camera_totals (camera_id) VALUES (NEW.camera_id);
        UPDATE camera_totals SET files = files + 1 WHERE camera_id = NEW.camera_id;
    END;
    CREATE TRIGGER camera_totals_file_removed AFTER DELETE ON files WHEN OLD.camera_id IS NOT NULL BEGIN
        UPDATE camera_totals SET files = files - 1 WHERE camera_id = OLD.camera_id;
    END;
    CREATE TRIGGER camera_totals_file_moved AFTER UPDATE OF camera_id ON files BEGIN
        UPDATE camera_totals SET files = files - 1 WHERE camera_id = OLD.camera_id;
        INSERT OR IGNORE INTO camera_totals (camera_id) SELECT NEW.camera_id WHERE NEW.camera_id IS NOT NULL;
        UPDATE camera_totals SET files = files + 1 WHERE camera_id = NEW.camera_id;
    END;
    ALTER TABLE couple_totals ADD COLUMN newest_import INTEGER NOT NULL DEFAULT 0;
    UPDATE couple_totals SET newest_import =
        IFNULL((SELECT MAX(f.imported_at) FROM files f WHERE f.couple_id = couple_totals.couple_id), 0);
    CREATE TRIGGER couple_totals_newest_added AFTER INSERT ON files BEGIN
        INSERT OR IGNORE INTO couple_totals (couple_id) VALUES (NEW.couple_id);
        UPDATE couple_totals SET newest_import = MAX(newest_import, NEW.imported_at)
        WHERE couple_id = NEW.couple_id;
    END;
    CREATE TRIGGER couple_totals_newest_moved AFTER UPDATE OF couple_id ON files BEGIN
        UPDATE couple_totals SET newest_import = MAX(newest_import, NEW.imported_at)
        WHERE couple_id = NEW.couple_id;
    END;
    "#,
    // 8: chain of custody. Each blob's xxh64 and xxh128 (XXH3-128), computed in the same read as its BLAKE3, as
    // lowercase hex (ASC MHL's formats; NULL for blobs stored before this version); an index of blobs by when
    // they were last verified (`verify --older-than`, scheduled scrubs); what checking a card's on-set ASC MHL
    // history found (`onset_manifest`: NULL when the card had none; a one-line summary otherwise, and
    // `onset_problems` the mismatches as JSON); each scrub run, so `status` shows the last one.
    r#"
    ALTER TABLE blobs ADD COLUMN xxh64 TEXT;
    ALTER TABLE blobs ADD COLUMN xxh128 TEXT;
    CREATE INDEX blobs_verified ON blobs(IFNULL(verified_at, 0), id);
    ALTER TABLE import_sessions ADD COLUMN onset_manifest TEXT;
    ALTER TABLE import_sessions ADD COLUMN onset_problems TEXT;
    CREATE TABLE scrub_runs (
        id               INTEGER PRIMARY KEY,
        started_at       INTEGER NOT NULL,
        finished_at      INTEGER,
        trigger          TEXT NOT NULL,
        blobs_checked    INTEGER NOT NULL DEFAULT 0,
        bytes_checked    INTEGER NOT NULL DEFAULT 0,
        damaged          INTEGER NOT NULL DEFAULT 0,
        missing          INTEGER NOT NULL DEFAULT 0,
        orphans          INTEGER NOT NULL DEFAULT 0,
        complete         INTEGER NOT NULL DEFAULT 0,
        error            TEXT
    );
    "#,
    // 9: the archive-wide audit log: who (uid) changed what, when.
    r#"
    CREATE TABLE audit_log (
        id         INTEGER PRIMARY KEY,
        at         INTEGER NOT NULL,
        uid        INTEGER NOT NULL,
        action     TEXT NOT NULL,
        couple_id  INTEGER,
        summary    TEXT NOT NULL
    );
    CREATE INDEX audit_log_couple ON audit_log(couple_id, id);
    "#,
    // 10: fixing mistakes and letting go. Old names that keep resolving after a rename, move or merge (a couple's
    // folder, a camera's slug, a file's place; none listed, none taken by anything new); cameras merged into
    // another; the trash (a removed couple, file or import: its rows stay, marked with the entry, out of the tree
    // and the totals, until restored or purged); what a lifecycle event took from the tree (`events.detail`).
    r#"
    CREATE TABLE couple_aliases (
        id           INTEGER PRIMARY KEY,
        folder_name  TEXT NOT NULL UNIQUE,
        couple_id    INTEGER NOT NULL REFERENCES couples(id) ON DELETE CASCADE,
        created_at   INTEGER NOT NULL
    );
    CREATE INDEX couple_aliases_couple ON couple_aliases(couple_id);
    CREATE TABLE camera_aliases (
        slug        TEXT PRIMARY KEY,
        camera_id   INTEGER NOT NULL REFERENCES cameras(id),
        created_at  INTEGER NOT NULL
    );
    ALTER TABLE cameras ADD COLUMN merged_into INTEGER;
    CREATE TABLE file_aliases (
        id            INTEGER PRIMARY KEY,
        file_id       INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
        couple_id     INTEGER NOT NULL,
        footage_type  TEXT NOT NULL CHECK (footage_type IN ('modern','dadcam','super8')),
        camera_id     INTEGER,
        display_name  BLOB NOT NULL,
        name_key      TEXT NOT NULL,
        created_at    INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX file_aliases_dir_key ON file_aliases(couple_id, footage_type, IFNULL(camera_id, 0), name_key);
    CREATE INDEX file_aliases_dir_name ON file_aliases(couple_id, footage_type, IFNULL(camera_id, 0), display_name);
    CREATE INDEX file_aliases_file ON file_aliases(file_id);
    CREATE TABLE trash (
        id           INTEGER PRIMARY KEY,
        kind         TEXT NOT NULL CHECK (kind IN ('couple','file','session')),
        couple_id    INTEGER NOT NULL REFERENCES couples(id),
        session_id   INTEGER REFERENCES import_sessions(id),
        label        TEXT NOT NULL,
        files        INTEGER NOT NULL DEFAULT 0,
        bytes        INTEGER NOT NULL DEFAULT 0,
        trashed_at   INTEGER NOT NULL,
        purge_after  INTEGER NOT NULL,
        uid          INTEGER NOT NULL
    );
    ALTER TABLE files ADD COLUMN trash_id INTEGER;
    CREATE INDEX files_trash ON files(trash_id) WHERE trash_id IS NOT NULL;
    ALTER TABLE couples ADD COLUMN trash_id INTEGER;
    ALTER TABLE events ADD COLUMN detail TEXT;
    DROP TRIGGER couple_totals_file_removed;
    CREATE TRIGGER couple_totals_file_removed AFTER DELETE ON files WHEN OLD.trash_id IS NULL BEGIN
        UPDATE couple_totals SET files = files - 1,
            bytes = bytes - IFNULL((SELECT size FROM blobs WHERE hash = OLD.blob_hash), 0)
        WHERE couple_id = OLD.couple_id;
    END;
    DROP TRIGGER couple_totals_file_changed;
    CREATE TRIGGER couple_totals_file_changed AFTER UPDATE OF blob_hash, couple_id ON files
    WHEN OLD.trash_id IS NULL AND NEW.trash_id IS NULL BEGIN
        UPDATE couple_totals SET files = files - 1,
            bytes = bytes - IFNULL((SELECT size FROM blobs WHERE hash = OLD.blob_hash), 0)
        WHERE couple_id = OLD.couple_id;
        INSERT OR IGNORE INTO couple_totals (couple_id) VALUES (NEW.couple_id);
        UPDATE couple_totals SET files = files + 1,
            bytes = bytes + IFNULL((SELECT size FROM blobs WHERE hash = NEW.blob_hash), 0)
        WHERE couple_id = NEW.couple_id;
    END;
    DROP TRIGGER camera_totals_file_removed;
    CREATE TRIGGER camera_totals_file_removed AFTER DELETE ON files
    WHEN OLD.camera_id IS NOT NULL AND OLD.trash_id IS NULL BEGIN
        UPDATE camera_totals SET files = files - 1 WHERE camera_id = OLD.camera_id;
    END;
    DROP TRIGGER camera_totals_file_moved;
    CREATE TRIGGER camera_totals_file_moved AFTER UPDATE OF camera_id ON files
    WHEN OLD.trash_id IS NULL AND NEW.trash_id IS NULL BEGIN
        UPDATE camera_totals SET files = files - 1 WHERE camera_id = OLD.camera_id;
        INSERT OR IGNORE INTO camera_totals (camera_id) SELECT NEW.camera_id WHERE NEW.camera_id IS NOT NULL;
        UPDATE camera_totals SET files = files + 1 WHERE camera_id = NEW.camera_id;
    END;
    CREATE TRIGGER files_trashed AFTER UPDATE OF trash_id ON files
    WHEN OLD.trash_id IS NULL AND NEW.trash_id IS NOT NULL BEGIN
        UPDATE couple_totals SET files = files - 1,
            bytes = bytes - IFNULL((SELECT size FROM blobs WHERE hash = OLD.blob_hash), 0)
        WHERE couple_id = OLD.couple_id;
        UPDATE camera_totals SET files = files - 1 WHERE camera_id = OLD.camera_id;
    END;
    CREATE TRIGGER files_restored AFTER UPDATE OF trash_id ON files
    WHEN OLD.trash_id IS NOT NULL AND NEW.trash_id IS NULL BEGIN
        INSERT OR IGNORE INTO couple_totals (couple_id) VALUES (NEW.couple_id);
        UPDATE couple_totals SET files = files + 1,
            bytes = bytes + IFNULL((SELECT size FROM blobs WHERE hash = NEW.blob_hash), 0)
        WHERE couple_id = NEW.couple_id;
        INSERT OR IGNORE INTO camera_totals (camera_id) SELECT NEW.camera_id WHERE NEW.camera_id IS NOT NULL;
        UPDATE camera_totals SET files = files + 1 WHERE camera_id = NEW.camera_id;
    END;
    "#,
    // 11: the jobs queue (`catalog::jobs`): the daemon's recurring work (a source's passes, the scheduled scrub, the
    // daily gc) as claimable rows, at most one live (queued or running) per kind and key.
    r#"
    CREATE TABLE jobs (
        id            INTEGER PRIMARY KEY,
        kind          TEXT NOT NULL,
        key           TEXT NOT NULL,
        state         TEXT NOT NULL CHECK (state IN ('queued','running','done','failed')),
        run_after     INTEGER NOT NULL,
        claimed_by    TEXT,
        heartbeat_at  INTEGER,
        attempts      INTEGER NOT NULL DEFAULT 0,
        error         TEXT,
        created_at    INTEGER NOT NULL,
        finished_at   INTEGER
    );
    CREATE UNIQUE INDEX jobs_live ON jobs(kind, key) WHERE state IN ('queued','running');
    CREATE INDEX jobs_due ON jobs(kind, run_after) WHERE state = 'queued';
    CREATE INDEX jobs_running ON jobs(heartbeat_at) WHERE state = 'running';
    "#,
    // 12: credential tiers (`secrets`): a source's password may live outside the catalog (the OS keyring, or one
    // process's memory), the catalog keeping only a reference to it; and the catalog's identity (`catalog_id`,
    // made on first use) naming its keyring entries and salting a passphrase's key.
    r#"
    ALTER TABLE network_sources ADD COLUMN credential_key TEXT;
    CREATE TABLE catalog_info (
        name   TEXT PRIMARY KEY,
        value  TEXT NOT NULL
    );
    "#,
];

/// Current schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;
