//! Benchmark reference: copies every file of an NFS export with a plain sequential read loop (1 MiB READs over
//! the same client Nightfox uses), no hashing and no verification, into a local directory, then fsyncs.
//! Usage: nfs_copy HOST PORT EXPORT DEST_DIR
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use nightfox::sources::nfs::{NfsConfig, NfsSource};
use nightfox::sources::{EntryKind, Source};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: nfs_copy HOST PORT EXPORT DEST_DIR");
        std::process::exit(2);
    }
    let src = NfsSource::new(NfsConfig {
        host: args[1].clone(),
        port: args[2].parse()?,
        mount_port: None,
        export: args[3].clone(),
        timeout: Duration::from_secs(30),
    })?;
    let dest = PathBuf::from(&args[4]);
    let mut total = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    for e in src.scan(&[PathBuf::from("/")])? {
        if let EntryKind::File { .. } = e.kind {
            let out_path = dest.join(&e.rel);
            if let Some(p) = out_path.parent() {
                std::fs::create_dir_all(p)?;
            }
            let mut out = std::fs::File::create(&out_path)?;
            let mut r = src.open_at(&e.path, 0)?;
            loop {
                let n = r.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                out.write_all(&buf[..n])?;
                total += n as u64;
            }
            out.sync_all()?;
        }
    }
    println!("{total}");
    Ok(())
}
