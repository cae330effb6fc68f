//! Retrying a flaky source: transient errors (see `Error::is_transient`) wait with backoff (1 s, 3 s, 5 s by
//! default, then the last delay again) and try again; permanent errors give up at once; and after a number of
//! consecutive failures (5 by default) the whole session gives up with `Error::SourcePaused`, so it can be resumed
//! once the share is back. The counter is shared by all workers of a session and reset by any success. A call may
//! also be bounded on its own (`per_call`): a local card's EIO is a property of one file, so a local read is tried
//! a few times and then that file fails, while the session never pauses on a count.
//! `$NIGHTFOX_RETRY_DELAYS` (seconds, comma separated) and `$NIGHTFOX_MAX_FAILURES` tune it (tests use short delays).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub delays: Vec<Duration>,
    pub max_failures: u32,
    /// Attempts of one call before it gives up with its own error (`u32::MAX`: only `max_failures` bounds it).
    pub per_call: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { delays: [1, 3, 5].map(Duration::from_secs).to_vec(), max_failures: 5, per_call: u32::MAX }
    }
}

impl RetryPolicy {
    /// The default, adjusted by `$NIGHTFOX_RETRY_DELAYS` and `$NIGHTFOX_MAX_FAILURES`.
    pub fn from_env() -> Self {
        let mut p = RetryPolicy::default();
        if let Ok(v) = std::env::var("NIGHTFOX_RETRY_DELAYS") {
            let d: Vec<Duration> = v
                .split(',')
                .filter_map(|x| x.trim().parse::<f64>().ok())
                .filter(|x| *x >= 0.0)
                .map(Duration::from_secs_f64)
                .collect();
            if !d.is_empty() {
                p.delays = d;
            }
        }
        if let Some(n) = std::env::var("NIGHTFOX_MAX_FAILURES").ok().and_then(|v| v.parse().ok()) {
            p.max_failures = n;
        }
        p.max_failures = p.max_failures.max(1);
        p
    }

    /// For local disks and cards: a call is tried three times, then its file fails; no count pauses the session
    /// (a vanished card is told apart by its root, see `Importer::source_error`).
    pub fn local(mut self) -> Self {
        self.per_call = 3;
        self.max_failures = u32::MAX;
        self
    }
}

/// What a caller is told after reporting a failure.
pub struct Retrying<'a> {
    pub error: &'a Error,
    /// Consecutive failures so far, this one included.
    pub failures: u32,
    pub delay: Duration,
}

/// The retry state of one session, and whether it was asked to stop.
pub struct Retry {
    policy: RetryPolicy,
    consecutive: AtomicU32,
    /// The caller's flag (Ctrl-C, the daemon stopping): shared by everything the caller runs.
    cancel: Arc<AtomicBool>,
    /// This session alone was cancelled for good (`session cancel` from another process or seat, the dashboard).
    for_good: Arc<AtomicBool>,
    session: i64,
}

impl Retry {
    pub fn new(policy: RetryPolicy, cancel: Arc<AtomicBool>, session: i64) -> Self {
        Retry { policy, consecutive: AtomicU32::new(0), cancel, for_good: Arc::default(), session }
    }

    /// The flag that stops this session at its next chunk, to be ended for good (set by a watcher thread).
    pub fn for_good_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.for_good)
    }

    /// True once the flag of [`Retry::for_good_flag`] was set.
    pub fn cancelled_for_good(&self) -> bool {
        self.for_good.load(Ordering::Relaxed)
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.consecutive.load(Ordering::Relaxed)
    }

    /// Records a success; returns true if it ended a run of failures (the source recovered).
    pub fn success(&self) -> bool {
        self.consecutive.swap(0, Ordering::Relaxed) > 0
    }

    /// True when the session was asked to stop.
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed) || self.for_good.load(Ordering::Relaxed)
    }

    /// Decides after the `attempt`-th failure of one call: `Ok(())` after waiting out the backoff (try again), or
    /// the error to give up with. `notify` hears about each wait before it starts.
    pub fn after_failure(&self, e: Error, attempt: u32, notify: &dyn Fn(&Retrying)) -> Result<()> {
        if !e.is_transient() {
            return Err(e);
        }
        let failures = self.consecutive.fetch_add(1, Ordering::Relaxed) + 1;
        if failures >= self.policy.max_failures {
            return Err(Error::SourcePaused { session: self.session, failures, last: e.to_string() });
        }
        if attempt >= self.policy.per_call {
            return Err(e);
        }
        let i = (failures as usize - 1).min(self.policy.delays.len().saturating_sub(1));
        let delay = self.policy.delays.get(i).copied().unwrap_or(Duration::from_secs(1));
        notify(&Retrying { error: &e, failures, delay });
        let until = Instant::now() + delay;
        while Instant::now() < until {
            if self.cancelled() {
                return Err(e);
            }
            std::thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
        }
        Ok(())
    }

    /// Runs `f` until it succeeds, fails permanently, or the session gives up. `before_retry` runs before each
    /// new attempt (to reconnect).
    pub fn call<T>(
        &self,
        mut f: impl FnMut() -> Result<T>,
        before_retry: &dyn Fn(),
        notify: &dyn Fn(&Retrying),
    ) -> Result<T> {
        let mut attempt = 0;
        loop {
            match f() {
                Ok(v) => {
                    self.success();
                    return Ok(v);
                }
                Err(e) => {
                    attempt += 1;
                    self.after_failure(e, attempt, notify)?;
                    before_retry();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn io(code: i32) -> Error {
        Error::io("/x", std::io::Error::from_raw_os_error(code))
    }

    #[test]
    fn transient_errors_retry_until_the_threshold() {
        let policy = RetryPolicy { delays: vec![Duration::from_millis(1)], max_failures: 3, per_call: u32::MAX };
        let r = Retry::new(policy, Arc::new(AtomicBool::new(false)), 7);
        let calls = Cell::new(0);
        let out: Result<()> = r.call(
            || {
                calls.set(calls.get() + 1);
                Err(io(libc::ECONNRESET))
            },
            &|| {},
            &|_| {},
        );
        assert_eq!(calls.get(), 3);
        assert!(matches!(out, Err(Error::SourcePaused { session: 7, failures: 3, .. })));
        // Permanent errors give up at once; success resets the count.
        let r = Retry::new(
            RetryPolicy { delays: vec![Duration::ZERO], max_failures: 3, per_call: u32::MAX },
            Arc::default(),
            1,
        );
        assert!(matches!(r.call(|| -> Result<()> { Err(io(libc::EACCES)) }, &|| {}, &|_| {}), Err(Error::Io { .. })));
        let n = Cell::new(0);
        let v = r.call(
            || {
                n.set(n.get() + 1);
                if n.get() < 3 {
                    Err(io(libc::ETIMEDOUT))
                } else {
                    Ok(5)
                }
            },
            &|| {},
            &|_| {},
        );
        assert_eq!(v.unwrap(), 5);
        assert_eq!(r.failures(), 0);
    }

    #[test]
    fn a_local_call_gives_up_with_its_own_error_and_never_pauses() {
        let policy = RetryPolicy { delays: vec![Duration::ZERO], ..RetryPolicy::default() }.local();
        let r = Retry::new(policy, Arc::default(), 1);
        for _ in 0..10 {
            let calls = Cell::new(0);
            let out: Result<()> = r.call(
                || {
                    calls.set(calls.get() + 1);
                    Err(io(libc::EIO))
                },
                &|| {},
                &|_| {},
            );
            assert_eq!(calls.get(), 3);
            assert!(matches!(out, Err(Error::Io { .. })), "{out:?}");
        }
    }
}
