//! Shared helpers for the integration tests: a temp archive driven through the real binary, generated footage,
//! catalog inspection through the library, and real FUSE mounts with bounded waits.
#![allow(dead_code)]

pub mod browser;
pub mod faultfs;
pub mod ganesha;
pub mod keyring;
pub mod nfsd;
pub mod pgd;
pub mod s3d;
pub mod seats;
pub mod smbd;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_nightfox");

pub struct Env {
    pub dir: tempfile::TempDir,
    pub archive: PathBuf,
}

impl Env {
    /// A fresh temp dir with an initialized archive in it.
    pub fn new() -> Env {
        let dir = tempfile::Builder::new().prefix("nightfox-test-").tempdir_in(test_root()).expect("tempdir");
        let archive = dir.path().join("archive");
        let e = Env { dir, archive };
        e.ok(&["init"]);
        e
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--archive").arg(&self.archive).env_remove("NIGHTFOX_ARCHIVE").stdin(Stdio::null());
        c
    }

    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Output {
        self.cmd().args(args).output().expect("run nightfox")
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok<S: AsRef<OsStr>>(&self, args: &[S]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "nightfox {:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            args.iter().map(|a| a.as_ref().to_string_lossy().into_owned()).collect::<Vec<_>>(),
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn couple(&self, name: &str, date: &str) -> String {
        self.ok(&["couple", "add", "--name", name, "--date", date]).trim().to_string()
    }

    pub fn catalog(&self) -> nightfox::catalog::Catalog {
        nightfox::catalog::open_sqlite(&self.archive.join("catalog.db")).expect("open catalog")
    }

    /// Every file under objects/ as (name, path).
    pub fn object_files(&self) -> Vec<(String, PathBuf)> {
        let mut out = Vec::new();
        walk_files(&self.archive.join("objects"), &mut out);
        out.into_iter().map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), p)).collect()
    }

    /// Waits (bounded) until a temp file in the archive is bigger than `bytes`: a copy is under way.
    pub fn wait_for_temp_over(&self, bytes: u64) {
        let tmp = self.archive.join("tmp");
        wait_until("a large temp file", Duration::from_secs(120), || {
            fs::read_dir(&tmp).unwrap().flatten().any(|e| e.metadata().map(|m| m.len() > bytes).unwrap_or(false))
        });
    }

    /// Starts `import --couple COUPLE DIR` in the background, its output dropped but for stderr as given.
    pub fn spawn_import(&self, couple: &str, dir: &Path, stderr: Stdio) -> Child {
        self.cmd().args(["import", "--couple", couple]).arg(dir).stdout(Stdio::null()).stderr(stderr).spawn().unwrap()
    }

    /// Starts `import --couple COUPLE DIR` with one worker (one file copied at a time) in the background, its
    /// stdout dropped and stderr as given.
    pub fn spawn_import_one_worker(&self, couple: &str, dir: &Path, stderr: Stdio) -> Child {
        self.cmd()
            .args(["import", "--couple", couple])
            .arg(dir)
            .env("NIGHTFOX_IMPORT_WORKERS", "1")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap()
    }

    /// Starts `import --couple COUPLE DIR` with one worker and kills it (-9) once a temp file exceeds `bytes`.
    pub fn import_killed_mid_copy(&self, couple: &str, dir: &Path, bytes: u64) {
        let mut child = self.spawn_import_one_worker(couple, dir, Stdio::null());
        self.wait_for_temp_over(bytes);
        child.kill().unwrap();
        child.wait().unwrap();
    }

    pub fn tmp_entries(&self) -> Vec<PathBuf> {
        fs::read_dir(self.archive.join("tmp")).unwrap().map(|e| e.unwrap().path()).collect()
    }

    /// Asserts the archive is consistent: every blob row has its file with the right hash, every object file
    /// has a blob row, every file row has its blob.
    pub fn assert_consistent(&self) {
        let cat = self.catalog();
        let blobs = cat.blobs(None).unwrap();
        let objects = self.object_files();
        let names: std::collections::HashSet<String> = objects.iter().map(|(n, _)| n.clone()).collect();
        for b in &blobs {
            assert!(names.contains(&b.hash), "blob {} has no object file", b.hash);
        }
        let rows: std::collections::HashSet<String> = blobs.iter().map(|b| b.hash.clone()).collect();
        for (n, p) in &objects {
            assert!(rows.contains(n), "orphan object {p:?}");
            assert_eq!(&b3_file(p), n, "object {p:?} does not hash to its name");
        }
        for f in cat.files(None).unwrap() {
            assert!(rows.contains(&f.blob_hash));
        }
    }
}

/// Every file under `dir` must be catalogued with its bytes' hash, exactly once.
pub fn assert_all_imported(env: &Env, dir: &Path) {
    let rows = env.catalog().files(None).unwrap();
    let mut files = Vec::new();
    walk_files(dir, &mut files);
    assert!(!files.is_empty());
    for f in &files {
        let rel = f.strip_prefix(dir).unwrap();
        let hits: Vec<_> = rows
            .iter()
            .filter(|r| r.original_path == std::os::unix::ffi::OsStrExt::as_bytes(rel.as_os_str()))
            .collect();
        assert_eq!(hits.len(), 1, "{rel:?} catalogued {} times", hits.len());
        assert_eq!(hits[0].blob_hash, b3_file(f), "{rel:?}");
    }
    env.assert_consistent();
}

/// Where temp dirs go: on the same disk as the target dir (not a small tmpfs).
pub fn test_root() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    fs::create_dir_all(&p).unwrap();
    p
}

/// Taken by a test that writes gigabytes: such tests of one test binary run one at a time, so the suite's peak disk
/// use is one of them, not the sum of those the harness happens to run together (two 5 GiB writes and a 4 GiB
/// import side by side once filled CI's disk). Fails loudly, with the figures, when the disk has too little room
/// for `need` bytes, instead of an ENOSPC halfway through.
pub fn disk_heavy(need: u64) -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let root = test_root();
    let s = rustix::fs::statvfs(&root).expect("statvfs of the test directory");
    let free = s.f_bavail * s.f_frsize;
    assert!(
        free >= need + (1 << 30),
        "this test writes {} MiB and needs {} MiB free on {} (1 GiB to spare); {} MiB are free",
        need >> 20,
        (need >> 20) + 1024,
        root.display(),
        free >> 20
    );
    guard
}

pub fn walk_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd {
        let e = e.unwrap();
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            walk_files(&e.path(), out);
        } else if ft.is_file() {
            out.push(e.path());
        }
    }
}

pub fn b3(data: &[u8]) -> String {
    blake3::hash(data).to_hex().to_string()
}

pub fn b3_file(p: &Path) -> String {
    let mut h = blake3::Hasher::new();
    h.update_mmap_rayon(p).unwrap();
    h.finalize().to_hex().to_string()
}

/// Deterministic pseudo-random bytes (xorshift), different per seed.
pub fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn write(p: &Path, bytes: &[u8]) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, bytes).unwrap();
}

/// Writes a large non-zero file quickly (a repeated random block with a counter so no two blocks are equal).
pub fn write_big(p: &Path, len: u64, seed: u64) {
    use std::io::Write;
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    let mut f = std::io::BufWriter::with_capacity(8 << 20, fs::File::create(p).unwrap());
    let mut block = data(seed, 1 << 20);
    let mut left = len;
    let mut i = 0u64;
    while left > 0 {
        block[..8].copy_from_slice(&i.to_le_bytes());
        let n = left.min(block.len() as u64) as usize;
        f.write_all(&block[..n]).unwrap();
        left -= n as u64;
        i += 1;
    }
    f.flush().unwrap();
}

/// A Sony-style card: PRIVATE/M4ROOT/CLIP/C000n.MP4 with C000nM01.XML sidecars.
pub fn sony_card(root: &Path, clips: usize, seed: u64) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for i in 1..=clips {
        let clip = root.join(format!("PRIVATE/M4ROOT/CLIP/C{i:04}.MP4"));
        write(&clip, &data(seed * 1000 + i as u64, 50_000 + i * 997));
        let xml = root.join(format!("PRIVATE/M4ROOT/CLIP/C{i:04}M01.XML"));
        write(&xml, format!("<NonRealTimeMeta><Clip n=\"{i}\" seed=\"{seed}\"/></NonRealTimeMeta>").as_bytes());
        out.push(clip);
        out.push(xml);
    }
    out
}

pub fn os(b: &[u8]) -> &OsStr {
    OsStr::from_bytes(b)
}

/// A child process of the test that may be stopped (SIGSTOP): continued and killed when dropped.
pub struct Proc(pub Option<Child>);

impl Proc {
    pub fn signal(&self, sig: i32) {
        if let Some(c) = &self.0 {
            // SAFETY: signalling our own child by pid.
            unsafe { libc::kill(c.id() as i32, sig) };
        }
    }

    /// Waits (bounded) for the exit.
    pub fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        let c = self.0.as_mut().expect("running");
        let start = Instant::now();
        loop {
            if let Some(st) = c.try_wait().expect("try_wait") {
                self.0 = None;
                return st;
            }
            assert!(start.elapsed() < limit, "the process did not end within {limit:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.signal(libc::SIGCONT);
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn is_root() -> bool {
    // SAFETY: trivial libc call.
    unsafe { libc::geteuid() == 0 }
}

/// Runs the binary without an archive flag and without the developer's settings: `HOME` and `XDG_DATA_HOME` are
/// an empty temp dir (no `~/.local/share/nightfox/nightfox.toml`), and neither `$NIGHTFOX_ARCHIVE`,
/// `$NIGHTFOX_CONFIG` nor `$RUST_LOG` is passed on; then `vars` (which may set any of them).
pub fn bare(args: &[&str], vars: &[(&str, &str)]) -> Output {
    let home = tempfile::tempdir_in(test_root()).expect("temp HOME");
    Command::new(BIN)
        .args(args)
        .env("HOME", home.path())
        .env("XDG_DATA_HOME", home.path())
        .env_remove("NIGHTFOX_ARCHIVE")
        .env_remove("NIGHTFOX_CONFIG")
        .env_remove("RUST_LOG")
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run nightfox")
}

/// Output bytes as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// For a test that can only check what it is for as root: fails loudly otherwise, never passes having checked
/// nothing. CI runs the suite as root.
pub fn require_root(why: &str) {
    assert!(is_root(), "this test needs root ({why}); run the suite as root, as CI does");
}

/// `chattr +i` on a file or directory while it lives: it cannot be changed, removed, or (a directory) get new
/// entries, root included (as on a disk gone bad under it). `None` where that cannot be done (not root, or a
/// filesystem without the flag).
pub struct Immutable(PathBuf);

impl Immutable {
    pub fn set(path: &Path) -> Option<Immutable> {
        let st = Command::new("chattr").arg("+i").arg(path).stderr(Stdio::null()).status().ok()?;
        st.success().then(|| Immutable(path.to_path_buf()))
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

/// Waits (bounded) until `cond` is true.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn is_mounted(mp: &Path) -> bool {
    let mp = fs::canonicalize(mp).unwrap_or_else(|_| mp.to_path_buf());
    let Ok(m) = fs::read_to_string("/proc/self/mountinfo") else { return false };
    let want = mp.to_string_lossy().replace(' ', "\\040");
    m.lines().any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

/// Whether a mount at `mp` answers: its root can be listed. (Opening the root alone is no proof: the kernel stops
/// asking the daemon about opening directories, so a dead mount's root still opens.)
pub fn serving(mp: &Path) -> bool {
    is_mounted(mp) && fs::read_dir(mp).is_ok_and(|mut d| d.next().is_none_or(|e| e.is_ok()))
}

/// A running `nightfox mount` (or `serve`); unmounted (SIGTERM, bounded wait, then lazy unmount and SIGKILL) when
/// dropped.
pub struct Mount {
    pub child: Option<Child>,
    pub mp: PathBuf,
}

impl Mount {
    pub fn start(env: &Env, mp: &Path, extra: &[&str]) -> Mount {
        Mount::start_with(env, mp, extra, &[])
    }

    /// `start`, with extra environment variables for the daemon.
    pub fn start_with(env: &Env, mp: &Path, extra: &[&str], vars: &[(&str, &str)]) -> Mount {
        Mount::daemon(env, "mount", mp, extra, vars)
    }

    /// `nightfox serve MP EXTRA...` (the mount plus its source pollers), guarded the same way.
    pub fn serve_with(env: &Env, mp: &Path, extra: &[&str], vars: &[(&str, &str)]) -> Mount {
        Mount::daemon(env, "serve", mp, extra, vars)
    }

    fn daemon(env: &Env, command: &str, mp: &Path, extra: &[&str], vars: &[(&str, &str)]) -> Mount {
        let _ = fs::create_dir_all(mp);
        let child = env
            .cmd()
            .envs(vars.iter().copied())
            .arg(command)
            .arg(mp)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mount");
        let mut m = Mount { child: Some(child), mp: mp.to_path_buf() };
        let start = Instant::now();
        while !serving(mp) {
            if let Some(c) = m.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    let mut err = String::new();
                    use std::io::Read;
                    let _ = c.stderr.take().unwrap().read_to_string(&mut err);
                    panic!("mount exited early ({st}): {err}");
                }
            }
            assert!(start.elapsed() < Duration::from_secs(15), "mount did not appear");
            std::thread::sleep(Duration::from_millis(20));
        }
        m
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// SIGTERM and wait (bounded); returns the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let start = Instant::now();
        loop {
            if let Some(st) = c.try_wait().unwrap() {
                return st;
            }
            if start.elapsed() > Duration::from_secs(20) {
                let _ = c.kill();
                let st = c.wait().unwrap();
                let _ = Command::new("fusermount3").arg("-u").arg("-z").arg(&self.mp).status();
                panic!("mount did not exit on SIGTERM ({st})");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        stop_daemon(self.child.take(), &self.mp, Duration::from_secs(10));
    }
}

/// Stops a daemon of a test: SIGTERM, a bounded wait (`grace`), SIGKILL; then a lazy unmount of its mount point
/// if it is still mounted.
pub fn stop_daemon(child: Option<Child>, mp: &Path, grace: Duration) {
    if let Some(mut c) = child {
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let start = Instant::now();
        while start.elapsed() < grace {
            if let Ok(Some(_)) = c.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
    }
    if is_mounted(mp) {
        let _ = Command::new("fusermount3").arg("-u").arg("-z").arg(mp).status();
    }
}

/// A Sony NonRealTimeMeta sidecar as the cameras write it.
pub fn sony_xml(model: &str, serial: &str, created: &str) -> Vec<u8> {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<NonRealTimeMeta xmlns="urn:schemas-professionalDisc:nonRealTimeMeta:ver.2.20" lastUpdate="2025-12-31T14:03:10+01:00">
  <TargetMaterial umidRef="060A2B340101010501010D4313000000{serial}"/>
  <Duration value="250"/>
  <CreationDate value="{created}"/>
  <Device manufacturer="Sony" modelName="{model}" serialNo="{serial}"/>
</NonRealTimeMeta>
"#
    )
    .into_bytes()
}

/// A minimal JPEG whose EXIF carries Make, Model, BodySerialNumber and DateTimeOriginal (big-endian TIFF).
pub fn exif_jpeg(make: &str, model: &str, serial: &str, taken: &str) -> Vec<u8> {
    fn ascii(s: &str) -> Vec<u8> {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        v
    }
    // (tag, type, payload) for IFD0 and the Exif IFD; type 2 = ASCII, 4 = LONG.
    let ifd0: Vec<(u16, Vec<u8>)> = vec![(0x010F, ascii(make)), (0x0110, ascii(model))];
    let exif: Vec<(u16, Vec<u8>)> = vec![(0x9003, ascii(taken)), (0xA431, ascii(serial))];
    let ifd0_off = 8u32;
    let ifd0_len = 2 + 12 * (ifd0.len() as u32 + 1) + 4;
    let exif_off = ifd0_off + ifd0_len;
    let exif_len = 2 + 12 * exif.len() as u32 + 4;
    let mut data_off = exif_off + exif_len;
    let mut tiff = b"MM\x00\x2a".to_vec();
    tiff.extend_from_slice(&ifd0_off.to_be_bytes());
    let mut data = Vec::new();
    let entry = |out: &mut Vec<u8>, tag: u16, payload: &[u8], data: &mut Vec<u8>, data_off: &mut u32| {
        out.extend_from_slice(&tag.to_be_bytes());
        out.extend_from_slice(&2u16.to_be_bytes());
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        if payload.len() <= 4 {
            let mut v = payload.to_vec();
            v.resize(4, 0);
            out.extend_from_slice(&v);
        } else {
            out.extend_from_slice(&data_off.to_be_bytes());
            data.extend_from_slice(payload);
            *data_off += payload.len() as u32;
        }
    };
    tiff.extend_from_slice(&(ifd0.len() as u16 + 1).to_be_bytes());
    for (tag, p) in &ifd0 {
        entry(&mut tiff, *tag, p, &mut data, &mut data_off);
    }
    tiff.extend_from_slice(&0x8769u16.to_be_bytes());
    tiff.extend_from_slice(&4u16.to_be_bytes());
    tiff.extend_from_slice(&1u32.to_be_bytes());
    tiff.extend_from_slice(&exif_off.to_be_bytes());
    tiff.extend_from_slice(&0u32.to_be_bytes());
    tiff.extend_from_slice(&(exif.len() as u16).to_be_bytes());
    for (tag, p) in &exif {
        entry(&mut tiff, *tag, p, &mut data, &mut data_off);
    }
    tiff.extend_from_slice(&0u32.to_be_bytes());
    tiff.extend_from_slice(&data);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE1];
    jpeg.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    jpeg.extend_from_slice(&app1);
    jpeg.extend_from_slice(&[0xFF, 0xD9]);
    jpeg
}

/// A short real clip made by ffmpeg (from Debian; scripts/setup.sh installs it). `args` go before the output.
pub fn ffmpeg_clip(out: &Path, tone: u32, args: &[&str]) {
    fs::create_dir_all(out.parent().unwrap()).unwrap();
    let st = Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25"])
        .args(["-f", "lavfi", "-i", &format!("sine=frequency={tone}")])
        .args(["-t", "1", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"])
        .args(args)
        .arg(out)
        .status()
        .expect("ffmpeg (run scripts/setup.sh test)");
    assert!(st.success(), "ffmpeg failed for {out:?}");
}

/// An extended attribute of a path, or the errno.
pub fn getxattr(p: &Path, name: &str) -> Result<Vec<u8>, i32> {
    let cp = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    let cn = std::ffi::CString::new(name).unwrap();
    // SAFETY: valid C strings; a null buffer with size 0 asks for the size.
    let n = unsafe { libc::getxattr(cp.as_ptr(), cn.as_ptr(), std::ptr::null_mut(), 0) };
    if n < 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap());
    }
    let mut buf = vec![0u8; n as usize];
    // SAFETY: buffer of the probed size.
    let m = unsafe { libc::getxattr(cp.as_ptr(), cn.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if m < 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap());
    }
    buf.truncate(m as usize);
    Ok(buf)
}

/// The `bin/` of the ASC MHL reference tool's venv (`scripts/setup.sh test` installs `ascmhl==1.2` there), with its
/// XSD in `xsd/` beside it. `None` (the caller skips, saying so) when it is missing on a developer machine; in CI
/// (`CI=true`) a missing tool fails the test loudly instead.
pub fn ascmhl_bin() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/venv-ascmhl");
    let bin = venv.join("bin");
    if bin.join("ascmhl-debug").is_file() && venv.join("xsd/ASCMHL.xsd").is_file() {
        return Some(bin);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("the ASC MHL reference tool is missing at {}: run scripts/setup.sh test", venv.display());
    }
    eprintln!("SKIP: the ASC MHL reference tool is missing at {} (run scripts/setup.sh test)", venv.display());
    None
}

/// Runs a reference tool command (`ascmhl` or `ascmhl-debug`) in the venv's folder (where `xsd/` is) and returns
/// its exit code, printing its output on failure.
pub fn ascmhl(bin: &Path, tool: &str, args: &[&OsStr]) -> i32 {
    let out = Command::new(bin.join(tool))
        .args(args)
        .current_dir(bin.parent().unwrap())
        .stdin(Stdio::null())
        .output()
        .expect("run the ASC MHL reference tool");
    let code = out.status.code().unwrap_or(-1);
    if code != 0 {
        eprintln!(
            "{tool} {:?} exited {code}:\n{}{}",
            args,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    code
}

/// Copies a folder tree (files and folders only).
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// Flips one byte of a file (XOR 0xff at `offset`).
pub fn flip_byte(p: &Path, offset: u64) {
    use std::os::unix::fs::FileExt;
    let f = fs::OpenOptions::new().read(true).write(true).open(p).unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset).unwrap();
    b[0] ^= 0xff;
    f.write_all_at(&b, offset).unwrap();
}
