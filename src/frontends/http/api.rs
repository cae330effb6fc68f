//! The dashboard's JSON API (the routes under `/api/`, after `mod.rs` checked who asks) and the imports it starts.
//!
//! - `GET status`: `nightfox status --json` ([`crate::serve::Status`]) under `status`, plus what the page shows
//!   beside it: `couples` (sizes), `imports` (running, paused, interrupted and recently failed sessions with their
//!   step, files, bytes, speed, ETA and file errors) and `actions` (what the page's buttons started, and how it
//!   ended).
//! - `POST sessions/ID/resume`: `nightfox resume ID` on a thread of the daemon (202; 404/409 when it cannot).
//! - `POST sessions/ID/cancel`: `nightfox session cancel ID`: ended for good (200), or, while a process runs it
//!   (this daemon's page or source pollers, another import, another seat), marked so and stopped by that process
//!   at its next chunk (202).
//! - `POST sources/ID/test`: `nightfox source test ID`, answered when done (502 when the source does not answer).
//! - `POST sources/ID/import`: `nightfox source import ID` on a thread of the daemon (202).
//!
//! Progress of a running session comes from the catalog (counters written as items finish) and the sizes of its
//! temp files (copies in flight), as for `status`, so imports of other processes and of the source pollers show
//! the same numbers as the page's own. The page's imports stop with the daemon (resumable, like any import the
//! daemon stops).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::Mutex;
use serde::Serialize;
use tracing::{info, warn};

use super::Reply;
use crate::archive::Archive;
use crate::catalog::{Session, SessionStatus};
use crate::error::{Error, Result};
use crate::ingest::{Cancelled, Importer, Quiet, Summary};

/// Finished actions kept for the page.
const KEEP_FINISHED: usize = 20;

/// Sessions that failed or ended with failed files are shown for this long after they ended.
const RECENT_FAILED_SECS: i64 = 7 * 86400;

/// How many of them at most, and how many file errors per session.
const RECENT_FAILED: usize = 10;
const FILE_ERRORS: u32 = 5;

/// The API's state: the archive, and the imports the page started.
pub(super) struct State {
    archive: Arc<Archive>,
    actions: Mutex<Actions>,
    stopping: AtomicBool,
}

#[derive(Default)]
struct Actions {
    next: u64,
    list: Vec<Action>,
}

/// An import or resume the page started, on its own thread.
struct Action {
    id: u64,
    /// `resume` or `import`.
    kind: &'static str,
    session: Option<i64>,
    source: Option<i64>,
    started_at: i64,
    shared: Arc<Shared>,
    handle: Option<JoinHandle<()>>,
}

/// What an action's thread and the API share.
#[derive(Default)]
struct Shared {
    /// The importer's cancel flag (set when the daemon stops).
    cancel: Arc<AtomicBool>,
    /// `(ok, message)` once the thread is done.
    outcome: Mutex<Option<(bool, String)>>,
}

impl Action {
    fn running(&self) -> bool {
        self.shared.outcome.lock().is_none()
    }
}

/// An action as the page shows it.
#[derive(Serialize)]
struct ActionView {
    id: u64,
    kind: &'static str,
    session: Option<i64>,
    source: Option<i64>,
    started_at: String,
    /// `running`, `done` or `failed`.
    state: &'static str,
    message: Option<String>,
}

/// A couple and its size.
#[derive(Serialize)]
struct CoupleView {
    folder: String,
    name: String,
    date: String,
    files: i64,
    bytes: i64,
}

/// An import session as the page shows it.
#[derive(Serialize)]
struct ImportView {
    id: i64,
    couple: String,
    source: String,
    source_id: Option<i64>,
    /// `running`, `ingest (live)`, `interrupted`, `paused`, `failed` or `completed with errors`.
    state: String,
    /// The pipeline's step: `pending`, `scanning`, `hashing`, `copying`, `validating`, `finalizing`, or the
    /// final status.
    step: &'static str,
    files_processed: i64,
    files_total: i64,
    files_duplicate: i64,
    files_failed: i64,
    /// Bytes processed, copies in flight included.
    bytes_done: i64,
    bytes_total: i64,
    bytes_per_sec: Option<u64>,
    eta_seconds: Option<u64>,
    started_at: String,
    updated_at: String,
    error: Option<String>,
    /// The first few files that failed, `path: error`.
    file_errors: Vec<String>,
    can_resume: bool,
    can_cancel: bool,
    /// An action of this page runs it.
    run_here: bool,
}

#[derive(Serialize)]
struct View {
    status: crate::serve::Status,
    couples: Vec<CoupleView>,
    imports: Vec<ImportView>,
    actions: Vec<ActionView>,
}

#[derive(Serialize)]
struct Accepted {
    message: String,
    action: Option<u64>,
}

impl State {
    pub fn new(archive: Arc<Archive>) -> State {
        State { archive, actions: Mutex::new(Actions::default()), stopping: AtomicBool::new(false) }
    }

    /// The daemon stops: no new action; running ones stop at their next chunk (their sessions stay resumable);
    /// their threads are joined.
    pub fn shutdown(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let handles: Vec<JoinHandle<()>> = {
            let mut a = self.actions.lock();
            for x in &a.list {
                x.shared.cancel.store(true, Ordering::SeqCst);
            }
            a.list.iter_mut().filter_map(|x| x.handle.take()).collect()
        };
        for h in handles {
            if h.join().is_err() {
                warn!("an import started from the dashboard panicked");
            }
        }
    }

    /// A running action matching `f`, if any: its shared state.
    fn running(&self, f: impl Fn(&Action) -> bool) -> Option<Arc<Shared>> {
        self.actions.lock().list.iter().find(|a| a.running() && f(a)).map(|a| Arc::clone(&a.shared))
    }

    /// Starts `work` on a thread of its own as a new action.
    fn spawn(
        &self,
        kind: &'static str,
        session: Option<i64>,
        source: Option<i64>,
        work: impl FnOnce(&Archive, Arc<AtomicBool>) -> Result<Summary> + Send + 'static,
    ) -> Result<u64> {
        let shared = Arc::new(Shared::default());
        let (archive, sh) = (Arc::clone(&self.archive), Arc::clone(&shared));
        let mut actions = self.actions.lock();
        let id = actions.next + 1;
        let handle = std::thread::Builder::new()
            .name(format!("nightfox-http-{kind}-{id}"))
            .spawn(move || {
                let r = work(&archive, Arc::clone(&sh.cancel));
                let outcome = finish(r);
                *sh.outcome.lock() = Some(outcome);
            })
            .map_err(|e| Error::Invalid(format!("cannot start the {kind}: {e}")))?;
        actions.next = id;
        let started_at = crate::catalog::now();
        actions.list.push(Action { id, kind, session, source, started_at, shared, handle: Some(handle) });
        prune(&mut actions);
        Ok(id)
    }

    fn view(&self) -> Result<View> {
        let archive = &*self.archive;
        let cat = archive.catalog()?;
        let (status, all) = crate::serve::status_with(archive, &cat)?;
        let couples = cat
            .couples()?
            .into_iter()
            .map(|c| CoupleView {
                folder: c.folder_name,
                name: c.display_name,
                date: c.event_date,
                files: c.file_count,
                bytes: c.total_bytes,
            })
            .collect();
        let sessions: HashMap<i64, Session> = all.into_iter().map(|s| (s.id, s)).collect();
        let mut imports = Vec::new();
        for p in &status.sessions {
            let Some(s) = sessions.get(&p.id) else { continue };
            let run_here = self.runs(s);
            let idle = matches!(p.state.as_str(), "paused" | "interrupted");
            imports.push(ImportView {
                id: p.id,
                couple: p.couple.clone(),
                source: p.source.clone(),
                source_id: p.source_id,
                state: p.state.clone(),
                step: p.status.as_str(),
                files_processed: p.files_processed,
                files_total: p.files_total,
                files_duplicate: s.files_duplicate,
                files_failed: s.files_error,
                bytes_done: p.bytes_processed.saturating_add(p.bytes_in_flight as i64),
                bytes_total: p.bytes_total,
                bytes_per_sec: p.bytes_per_sec,
                eta_seconds: p.eta_seconds,
                started_at: p.started_at.clone(),
                updated_at: p.updated_at.clone(),
                error: p.error.clone(),
                file_errors: file_errors(&cat, s)?,
                can_resume: idle && s.can_resume,
                can_cancel: p.state != "ingest (live)",
                run_here,
            });
        }
        // Recently ended with failures (the newest first): failed sessions, and completed ones with failed files
        // (resume tries those again).
        let now = crate::catalog::now();
        let mut ended: Vec<&Session> = sessions
            .values()
            .filter(|s| {
                let with_errors = s.has_failed_files();
                (s.status == SessionStatus::Failed || with_errors)
                    && now - s.finished_at.unwrap_or(s.updated_at) <= RECENT_FAILED_SECS
            })
            .collect();
        ended.sort_by_key(|s| std::cmp::Reverse(s.id));
        for s in ended.into_iter().take(RECENT_FAILED) {
            let retry = s.status == SessionStatus::Completed;
            imports.push(ImportView {
                id: s.id,
                couple: s.couple.clone(),
                source: s.source.clone(),
                source_id: s.source_id,
                state: if retry { "completed with errors".into() } else { "failed".into() },
                step: s.status.as_str(),
                files_processed: s.files_processed,
                files_total: s.files_total,
                files_duplicate: s.files_duplicate,
                files_failed: s.files_error,
                bytes_done: s.bytes_processed,
                bytes_total: s.bytes_total,
                bytes_per_sec: None,
                eta_seconds: None,
                started_at: crate::fs::rfc3339(s.created_at),
                updated_at: crate::fs::rfc3339(s.updated_at),
                error: s.error.clone(),
                file_errors: file_errors(&cat, s)?,
                can_resume: retry,
                can_cancel: retry,
                run_here: self.runs(s),
            });
        }
        let actions = self
            .actions
            .lock()
            .list
            .iter()
            .rev()
            .map(|a| {
                let outcome = a.shared.outcome.lock().clone();
                let (state, message) = match outcome {
                    None => ("running", None),
                    Some((true, m)) => ("done", Some(m)),
                    Some((false, m)) => ("failed", Some(m)),
                };
                ActionView {
                    id: a.id,
                    kind: a.kind,
                    session: a.session,
                    source: a.source,
                    started_at: crate::fs::rfc3339(a.started_at),
                    state,
                    message,
                }
            })
            .collect();
        Ok(View { status, couples, imports, actions })
    }

    /// True when a running action of the page works on session `s`.
    fn runs(&self, s: &Session) -> bool {
        let open = !s.status.is_final();
        self.running(|a| {
            a.session == Some(s.id) || (open && a.kind == "import" && a.source.is_some() && a.source == s.source_id)
        })
        .is_some()
    }

    fn resume(&self, id: i64) -> Result<Reply> {
        let cat = self.archive.catalog()?;
        let s = cat.session(id)?;
        if self.runs(&s) {
            return Ok(Reply::error(409, &format!("session {id} is running already")));
        }
        let retry = s.has_failed_files();
        if !s.is_open() && !retry {
            return Err(s.not_resumable());
        }
        if cat.couple_lock_held(s.couple_id) == Some(true) {
            let session = cat.couple_lock_holder(s.couple_id).and_then(|n| n.parse().ok()).unwrap_or(0);
            return Err(Error::CoupleBusy { couple: s.couple.clone(), session });
        }
        drop(cat);
        info!(session = id, "dashboard: resuming session {id}");
        let action =
            self.spawn("resume", Some(id), s.source_id, move |a, cancel| Importer::new(a, &Quiet, cancel).resume(id))?;
        Ok(Reply::json(202, &Accepted { message: format!("resuming session {id}"), action: Some(action) }))
    }

    fn cancel(&self, id: i64) -> Result<Reply> {
        let done = Importer::new(&self.archive, &Quiet, Arc::new(AtomicBool::new(false))).cancel_session(id)?;
        let message = done.message();
        info!(session = id, "dashboard: {message}");
        let code = if matches!(done, Cancelled::Requested(_)) { 202 } else { 200 };
        Ok(Reply::json(code, &Accepted { message, action: None }))
    }

    fn test(&self, id: i64) -> Result<Reply> {
        match crate::serve::test_source(&self.archive, id) {
            Ok(row) => {
                let message = format!("source {id}: connected to {}; enabled", row.url());
                Ok(Reply::json(200, &Accepted { message, action: None }))
            }
            Err(e @ Error::NotFound(_)) => Err(e),
            Err(e) => Ok(Reply::error(502, &format!("source {id}: {e}"))),
        }
    }

    fn import(&self, id: i64) -> Result<Reply> {
        let cat = self.archive.catalog()?;
        let row = cat.source(id)?;
        if !row.enabled {
            return Err(Error::Disabled(format!(
                "source {id} is disabled: test it first (the Test button enables it)"
            )));
        }
        if self.running(|a| a.source == Some(id)).is_some() {
            return Ok(Reply::error(409, &format!("an import of source {id} runs already")));
        }
        if cat.couple_lock_held(row.couple_id) == Some(true) {
            let session = cat.couple_lock_holder(row.couple_id).and_then(|n| n.parse().ok()).unwrap_or(0);
            return Err(Error::CoupleBusy { couple: row.couple.clone(), session });
        }
        drop(cat);
        info!(source = id, "dashboard: importing from source {id}");
        let action =
            self.spawn("import", None, Some(id), move |a, cancel| Importer::new(a, &Quiet, cancel).import_source(id))?;
        Ok(Reply::json(202, &Accepted { message: format!("importing from source {id}"), action: Some(action) }))
    }
}

/// Ends an action: the summary, or why it stopped, as a message.
fn finish(r: Result<Summary>) -> (bool, String) {
    match r {
        Ok(s) => {
            let mut m = format!(
                "session {} {}: {} imported, {} duplicate, {} failed",
                s.session,
                s.status.as_str(),
                s.files_imported,
                s.files_duplicate,
                s.files_failed
            );
            if let Some(e) = &s.error {
                m.push_str(&format!(" ({e})"));
            }
            (s.status == SessionStatus::Completed && s.files_failed == 0, m)
        }
        Err(e @ Error::CancelledForGood(_)) => (true, e.to_string()),
        Err(e) => (false, e.to_string()),
    }
}

/// Keeps the running actions and the newest finished ones (joining the threads of those let go).
fn prune(actions: &mut Actions) {
    let finished = actions.list.iter().filter(|a| !a.running()).count();
    let mut drop_n = finished.saturating_sub(KEEP_FINISHED);
    let mut kept = Vec::with_capacity(actions.list.len());
    for mut a in actions.list.drain(..) {
        if drop_n > 0 && !a.running() {
            drop_n -= 1;
            if let Some(h) = a.handle.take() {
                let _ = h.join();
            }
            continue;
        }
        kept.push(a);
    }
    actions.list = kept;
}

/// The first few failed files of a session, `path: error`.
fn file_errors(cat: &crate::catalog::Catalog, s: &Session) -> Result<Vec<String>> {
    if s.files_error == 0 {
        return Ok(Vec::new());
    }
    Ok(cat
        .item_errors(s.id, FILE_ERRORS)?
        .into_iter()
        .map(|(path, e)| format!("{}: {e}", String::from_utf8_lossy(&path)))
        .collect())
}

/// The HTTP status of an error.
fn code_of(e: &Error) -> u16 {
    match e {
        Error::NoSuchSession(_) | Error::NotFound(_) | Error::NoSuchCouple(_) => 404,
        Error::CoupleBusy { .. }
        | Error::NotResumable { .. }
        | Error::Disabled(_)
        | Error::SourceUnavailable { .. } => 409,
        Error::Invalid(_) => 400,
        _ => 500,
    }
}

/// Routes `path` (after `/api/`).
pub(super) fn route(state: &State, post: bool, path: &str) -> Reply {
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let action = matches!(parts.as_slice(), ["sessions" | "sources", _, _]);
    if post && state.stopping.load(Ordering::SeqCst) {
        return Reply::error(503, "the daemon is stopping");
    }
    let result = match (post, parts.as_slice()) {
        (false, ["status"]) => state.view().map(|v| Reply::json(200, &v)),
        (true, [kind, id, verb]) => match (id.parse::<i64>(), *kind, *verb) {
            (Err(_), _, _) => Ok(Reply::error(404, &format!("{id:?} is not an id"))),
            (Ok(id), "sessions", "resume") => state.resume(id),
            (Ok(id), "sessions", "cancel") => state.cancel(id),
            (Ok(id), "sources", "test") => state.test(id),
            (Ok(id), "sources", "import") => state.import(id),
            _ => Ok(Reply::error(404, "no such API route")),
        },
        (false, _) if action => Ok(Reply::error(405, "this route changes state: use POST")),
        (true, ["status"]) => Ok(Reply::error(405, "use GET")),
        _ => Ok(Reply::error(404, "no such API route")),
    };
    result.unwrap_or_else(|e| Reply::error(code_of(&e), &e.to_string()))
}
