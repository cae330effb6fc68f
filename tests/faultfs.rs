//! The fault-injecting FUSE fixture itself (`common::faultfs`): a clean mirror, EIO for a bad range seen by
//! positioned reads, `O_DIRECT` reads and a child `cat`, healing, a file that cannot be read at all, and unmounting.
mod common;

use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::process::Command;

use common::faultfs::FaultFs;

const MIB: u64 = 1 << 20;
const CLIP: &str = "PRIVATE/M4ROOT/CLIP/C0001.MP4";
const XML: &str = "PRIVATE/M4ROOT/CLIP/C0001M01.XML";

fn eio<T: std::fmt::Debug>(r: std::io::Result<T>) -> bool {
    matches!(r, Err(ref e) if e.raw_os_error() == Some(libc::EIO))
}

#[test]
fn serves_fails_ranges_and_files_and_heals() {
    let dir = tempfile::Builder::new().prefix("faultfs-").tempdir_in(common::test_root()).expect("tempdir");
    let (src, mp) = (dir.path().join("card"), dir.path().join("mnt"));
    let clip = common::data(1, 3 * MIB as usize);
    let xml = common::sony_xml("ILCE-7SM3", "5012345", "2025-12-31T14:03:10+01:00");
    common::write(&src.join(CLIP), &clip);
    common::write(&src.join(XML), &xml);
    let fs = FaultFs::mount(&src, &mp);
    let (clip_path, xml_path) = (mp.join(CLIP), mp.join(XML));

    // A clean mirror: names, real size and mtime, bytes, no xattrs, no writes.
    let names: Vec<_> = fs::read_dir(mp.join("PRIVATE/M4ROOT/CLIP")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    let (real, seen) = (fs::metadata(src.join(CLIP)).unwrap(), fs::metadata(&clip_path).unwrap());
    assert_eq!((seen.len(), seen.mtime(), seen.mtime_nsec()), (real.len(), real.mtime(), real.mtime_nsec()));
    assert_eq!(fs::read(&xml_path).unwrap(), xml);
    assert_eq!((fs.bytes_read(XML), fs.eio_count(XML)), (xml.len() as u64, 0));
    let out = Command::new("getfattr").arg("-d").arg(&xml_path).output().expect("getfattr");
    assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");
    let write = fs::OpenOptions::new().write(true).open(&xml_path);
    assert_eq!(write.unwrap_err().raw_os_error(), Some(libc::EROFS));

    // A bad range: reads that touch it fail, reads around it work.
    fs.fail_range(CLIP, MIB, 4096);
    let f = fs::File::open(&clip_path).unwrap();
    let mut buf = vec![0u8; 4096];
    assert_eq!(f.read_at(&mut buf, 0).unwrap(), 4096);
    assert_eq!(buf, clip[..4096]);
    assert!(eio(f.read_at(&mut buf, MIB)), "read of the bad range");
    assert!(eio(f.read_at(&mut buf, MIB + 4095)), "read of its last byte");
    f.read_at(&mut buf, MIB - 4096).expect("read ending where the bad range starts");
    f.read_at(&mut buf, MIB + 4096).expect("read starting where it ends");
    assert_eq!(f.read_at(&mut buf, 2 * MIB).unwrap(), 4096);
    assert_eq!(buf, clip[2 * MIB as usize..][..4096]);
    assert_eq!(fs.eio_count(CLIP), 2);
    // One read(2) spanning the bad range: the kernel's requests before it succeed, a short read.
    let mut big = vec![0u8; 2 * MIB as usize];
    let n = f.read_at(&mut big, 0).expect("short read up to the bad request");
    assert!(n > 0 && n as u64 <= MIB, "{n}");
    assert_eq!(big[..n], clip[..n]);
    drop(f);
    // O_DIRECT, as the importer reads large files (aligned buffer and offsets).
    let f = fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECT).open(&clip_path).unwrap();
    let mut raw = vec![0u8; MIB as usize + 4096];
    let at = raw.as_ptr().align_offset(4096);
    let aligned = &mut raw[at..at + MIB as usize];
    assert_eq!(f.read_at(aligned, 0).unwrap(), MIB as usize);
    assert_eq!(aligned[..], clip[..MIB as usize]);
    assert!(eio(f.read_at(aligned, MIB)), "O_DIRECT read of the bad range");
    drop(f);
    // A reader in another process sees the error.
    let out = Command::new("cat").arg(&clip_path).output().expect("cat");
    assert!(!out.status.success(), "cat read through the bad range");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Input/output error"), "{out:?}");

    // Healed, the whole clip reads back.
    fs.heal(CLIP);
    fs.reset_counters();
    assert_eq!(fs::read(&clip_path).unwrap(), clip);
    assert_eq!((fs.bytes_read(CLIP), fs.eio_count(CLIP)), (clip.len() as u64, 0));

    // A file that cannot be read at all still opens and stats.
    fs.fail_file(XML);
    assert!(eio(fs::read(&xml_path)), "read of a failed file");
    assert_eq!(fs::metadata(&xml_path).unwrap().len(), xml.len() as u64);
    assert!(eio(fs::File::open(&xml_path).unwrap().read_at(&mut buf, 0)));
    let out = Command::new("cat").arg(&xml_path).output().expect("cat");
    assert!(!out.status.success(), "{out:?}");
    assert_eq!(fs.bytes_read(XML), 0);
    assert!(fs.eio_count(XML) >= 3);

    fs.unmount();
    assert!(!common::is_mounted(&mp), "still mounted");
}

#[test]
fn unmounts_on_drop_even_with_a_file_open() {
    let dir = tempfile::Builder::new().prefix("faultfs-").tempdir_in(common::test_root()).expect("tempdir");
    let (src, mp) = (dir.path().join("card"), dir.path().join("mnt"));
    common::write(&src.join("a.bin"), b"abc");
    let fs = FaultFs::mount(&src, &mp);
    assert_eq!(fs.mountpoint(), mp);
    assert_eq!(fs::read(mp.join("a.bin")).unwrap(), b"abc");
    drop(fs);
    assert!(!common::is_mounted(&mp), "still mounted after drop");

    // A reader still holding a file: the mount is forced away and its reads fail.
    let fs = FaultFs::mount(&src, &mp);
    let f = fs::File::open(mp.join("a.bin")).unwrap();
    let start = std::time::Instant::now();
    drop(fs);
    assert!(start.elapsed() < std::time::Duration::from_secs(5), "took {:?}", start.elapsed());
    assert!(!common::is_mounted(&mp), "still mounted after drop");
    let err = f.read_at(&mut [0u8; 3], 0).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOTCONN), "{err}");
}
