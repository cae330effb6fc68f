//! The `Jobs` role trait: the daemons' background work (source passes, resumes, scrubs, gc) as rows of a jobs
//! table, claimed so that several `serve` processes on one catalog never run the same job at once.
