//! The worker side of the jobs queue: claiming, heartbeats, reaping dead workers.
