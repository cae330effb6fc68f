//! Blobs in an S3-compatible object store (`s3://BUCKET/PREFIX?endpoint=URL&region=R`; the `s3` feature). Keys
//! keep the local layout, `PREFIX/objects/<2 hex>/<2 hex>/<64 hex>`, so a bucket reads without Nightfox.
//!
//! Landing uploads the verified staged copy: one PUT up to a part's size, above it a multipart upload with parts of
//! `max(64 MiB, ceil(size / 1000))`, a few at a time. Each part's MD5 is computed here and compared with the ETag
//! the store answers (the MD5 of what it received), and the upload's id and finished parts are kept in
//! `tmp/<hash>.s3upload`, so an upload cut by a kill or a dropped store resumes at its first missing part. Before
//! `land` returns, a HEAD checks the size and the object's ETag (the MD5 of the part MD5s, `-N`): the store proves
//! it holds exactly the bytes sent. A store whose ETags are not MD5s (server-side encryption) gets the object read
//! back and re-hashed instead. Nothing relies on `If-None-Match`: keys are content addresses, a re-PUT is harmless.
//!
//! Reading goes through a local, content-addressed cache ([`Cache`]: never stale, LRU under a size limit). A blob
//! not cached is served by ranged GETs of 256 KiB pieces, with a read-ahead that doubles while reads are sequential
//! (up to 32 MiB), into a per-open range cache that survives seeks, so playback starts at once and a scrubbing
//! editor fetches little. A reader that has gone 16 MiB sequentially (playback, a copy) starts the blob's hydration
//! into the cache in the background; reads the hydration has passed are served from its file, and once it is
//! complete (and checked against the hash) the mount hands the kernel the cached file (passthrough or
//! `O_DIRECT`). `rehash` (verify) always reads the store, never the cache.
//!
//! Credentials come from the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`) or
//! from `s3.env` in the archive (those lines, mode 0600); never from a URL or an argument, never logged. Every
//! async call runs on a private runtime; the rest of Nightfox stays sync.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use hashlink::LruCache;
use md5::{Digest as _, Md5};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as Key;
use object_store::{BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, RetryConfig};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::local::FileBlob;
use super::staging::remove_if_exists;
use super::{BlobReader, BlobStore, Durability, HashHex};
use crate::error::{Error, IoContext, Result};

/// The smallest multipart part (and the largest single PUT).
const MIN_PART: u64 = 64 << 20;
/// Parts of one upload in flight at once.
const PARTS_IN_FLIGHT: usize = 4;
/// What a ranged read fetches and keeps per piece.
const CHUNK: u64 = 64 << 10;
/// The largest read-ahead of a sequential reader, in pieces (32 MiB).
const MAX_WINDOW: u64 = 512;
/// Pieces an open blob keeps (its range cache: 96 MiB).
const CHUNKS_KEPT: usize = 1536;
/// Sequential bytes after which a reader has the blob hydrated into the cache.
const HYDRATE_AFTER: u64 = 8 << 20;
/// What one GET of a hydration asks for (its progress moves by these).
const HYDRATE_PIECE: u64 = 8 << 20;
/// What one GET of a whole-blob read (verify) asks for: bounded, so no request outlives its timeout.
const READ_PIECE: u64 = 16 << 20;
/// GETs of a whole-blob read (verify, hydration) in flight at once.
const PIECES_IN_FLIGHT: usize = 4;
/// How far ahead of a hydration a reader waits for it rather than fetching the range itself.
const WAIT_AHEAD: u64 = 64 << 20;
/// The default cache size (bytes).
pub const DEFAULT_CACHE_SIZE: u64 = 20 << 30;

/// The part size of an upload of `size` bytes: at least 64 MiB, and at most 1,000 parts (some stores allow no
/// more; S3 allows 10,000).
pub fn part_size(size: u64) -> u64 {
    MIN_PART.max(size.div_ceil(1000))
}

/// Where the local cache of a remote store is and how large it may grow (`--cache-dir`, `--cache-size`).
#[derive(Clone, Debug, Default)]
pub struct CacheOptions {
    pub dir: Option<PathBuf>,
    pub size: Option<u64>,
}

static CACHE_OPTIONS: OnceLock<CacheOptions> = OnceLock::new();

/// Sets the cache options for every S3 store this process opens (the CLI's flags); the first call wins.
pub fn set_cache_options(o: CacheOptions) {
    let _ = CACHE_OPTIONS.set(o);
}

fn store_err(what: &str, e: object_store::Error) -> Error {
    use object_store::Error as E;
    let msg = e.to_string();
    let denied = ["403", "Forbidden", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "NoSuchBucket"];
    // A 4xx answer is final (bad bucket, refused credentials), except a timeout (408) or throttling (429); 5xx,
    // SlowDown and network failures are worth a retry.
    let client_error = msg
        .split("status code: ")
        .nth(1)
        .and_then(|r| r.get(..3))
        .is_some_and(|code| code.starts_with('4') && code != "408" && code != "429");
    let transient = match &e {
        E::Generic { .. } => !client_error && !denied.iter().any(|d| msg.contains(d)),
        E::JoinError { .. } => true,
        _ => false,
    };
    Error::Store { context: what.to_string(), transient, message: one_line(&msg) }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn is_not_found(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::NotFound { .. })
}

fn md5_hex(b: &[u8]) -> String {
    super::vault::to_hex(&Md5::digest(b))
}

/// An ETag as compared: no quotes, lowercase.
fn etag(s: &str) -> String {
    s.trim().trim_matches('"').to_ascii_lowercase()
}

fn is_md5_etag(s: &str) -> bool {
    let s = etag(s);
    let base = s.split_once('-').map_or(s.as_str(), |(b, _)| b);
    base.len() == 32 && base.bytes().all(|c| c.is_ascii_hexdigit())
}

/// What the store must answer for an object once landed: the ETag of an upload whose ETags are MD5s, or `None`
/// (read the object back and re-hash it).
type Expected = Option<String>;

/// An unfinished multipart upload, as kept in `tmp/<hash>.s3upload`.
#[derive(Serialize, Deserialize)]
struct UploadState {
    upload_id: String,
    size: u64,
    part_size: u64,
    /// Part index → (ETag, MD5 hex).
    parts: BTreeMap<usize, (String, String)>,
}

struct Inner {
    store: AmazonS3,
    rt: tokio::runtime::Runtime,
    describe: String,
    prefix: String,
    tmp: PathBuf,
    cache: Option<Cache>,
    /// Bytes fetched from the store by reads (what the benchmark divides by the bytes served).
    fetched: AtomicU64,
}

/// The S3 blob store. Cheap to clone.
#[derive(Clone)]
pub struct S3Blobs {
    inner: Arc<Inner>,
}

/// The settings of an `s3://` URL.
struct Url {
    bucket: String,
    prefix: String,
    endpoint: Option<String>,
    region: String,
}

fn parse_url(url: &str) -> Result<Url> {
    // The URL itself is never echoed: it might carry credentials by mistake.
    let bad = |why: &str| Error::Invalid(format!("the s3:// blob store URL: {why}"));
    let u = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    if u.scheme() != "s3" {
        return Err(bad("not an s3:// URL"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(bad("credentials never go in the URL: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or s3.env"));
    }
    let bucket = u.host_str().filter(|b| !b.is_empty()).ok_or_else(|| bad("no bucket"))?.to_string();
    let prefix = u.path().trim_matches('/').to_string();
    let (mut endpoint, mut region) = (None, "us-east-1".to_string());
    for (k, v) in u.query_pairs() {
        match k.as_ref() {
            "endpoint" => endpoint = Some(v.trim_end_matches('/').to_string()),
            "region" => region = v.to_string(),
            other => return Err(bad(&format!("unknown setting {other:?} (known: endpoint, region)"))),
        }
    }
    Ok(Url { bucket, prefix, endpoint, region })
}

/// Credentials from `s3.env` in the archive (only when the environment has none): `KEY=VALUE` lines, mode 0600.
fn env_file_credentials(archive_root: &Path) -> Result<Vec<(String, String)>> {
    let p = archive_root.join("s3.env");
    let Ok(meta) = fs::metadata(&p) else { return Ok(Vec::new()) };
    if let Some(m) = crate::secrets::readable_by_others(&p, meta.mode(), "S3 credentials file") {
        return Err(Error::Invalid(m));
    }
    let text = fs::read_to_string(&p).at(&p)?;
    Ok(text
        .lines()
        .filter_map(|l| l.trim().split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        .collect())
}

impl S3Blobs {
    /// Opens the store an `s3://` URL names, for the archive at `archive_root` (its `tmp/` keeps upload states,
    /// its `cache/` the local cache), with the process's cache options (`--cache-dir`, `--cache-size`).
    pub fn open(url: &str, archive_root: &Path) -> Result<S3Blobs> {
        S3Blobs::open_with(url, archive_root, CACHE_OPTIONS.get().cloned().unwrap_or_default())
    }

    /// [`S3Blobs::open`] with these cache options (size 0: no cache).
    pub fn open_with(url: &str, archive_root: &Path, opts: CacheOptions) -> Result<S3Blobs> {
        let u = parse_url(url)?;
        let mut b = AmazonS3Builder::from_env().with_bucket_name(&u.bucket).with_region(&u.region);
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
            let creds = env_file_credentials(archive_root)?;
            if !creds.iter().any(|(k, _)| k == "AWS_ACCESS_KEY_ID") {
                // Never the instance-metadata fallback: that is a request to an address off this machine.
                return Err(Error::Invalid(format!(
                    "S3 store {}: no credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or write them \
                     to s3.env in the archive, mode 0600)",
                    u.bucket
                )));
            }
            for (k, v) in creds {
                b = match k.as_str() {
                    "AWS_ACCESS_KEY_ID" => b.with_access_key_id(v),
                    "AWS_SECRET_ACCESS_KEY" => b.with_secret_access_key(v),
                    "AWS_SESSION_TOKEN" => b.with_token(v),
                    _ => b,
                };
            }
        }
        let http = u.endpoint.as_deref().is_some_and(|e| e.starts_with("http://"));
        if let Some(e) = &u.endpoint {
            b = b.with_endpoint(e).with_virtual_hosted_style_request(false);
        }
        // allow_http inside the client options: `with_allow_http` before `with_client_options` is reset by it.
        let client = ClientOptions::new()
            .with_allow_http(http)
            .with_timeout(Duration::from_secs(120))
            .with_connect_timeout(Duration::from_secs(5));
        let retry =
            RetryConfig { backoff: BackoffConfig::default(), max_retries: 3, retry_timeout: Duration::from_secs(30) };
        let store = b.with_client_options(client).with_retry(retry).build().map_err(|e| {
            let msg = e.to_string();
            if msg.contains("credential") || msg.contains("Missing") {
                Error::Invalid(format!(
                    "S3 store {}: no credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or write them to \
                     s3.env in the archive, mode 0600)",
                    u.bucket
                ))
            } else {
                store_err("open the S3 store", e)
            }
        })?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("nightfox-s3")
            .enable_all()
            .build()
            .at(Path::new("tokio runtime"))?;
        let cache_dir = opts.dir.unwrap_or_else(|| archive_root.join("cache"));
        let size = opts.size.unwrap_or(DEFAULT_CACHE_SIZE);
        let cache = (size > 0).then(|| Cache::new(cache_dir, size));
        let describe = match &u.endpoint {
            Some(e) => format!("s3://{}/{} ({e})", u.bucket, u.prefix),
            None => format!("s3://{}/{}", u.bucket, u.prefix),
        };
        let prefix = if u.prefix.is_empty() { String::new() } else { format!("{}/", u.prefix) };
        let inner =
            Inner { store, rt, describe, prefix, tmp: archive_root.join("tmp"), cache, fetched: AtomicU64::new(0) };
        Ok(S3Blobs { inner: Arc::new(inner) })
    }

    /// Bytes reads have fetched from the store so far.
    pub fn fetched_bytes(&self) -> u64 {
        self.inner.fetched.load(Ordering::Relaxed)
    }
}

impl Inner {
    fn key(&self, hash: &str) -> Key {
        let (a, b) = (hash.get(..2).unwrap_or("xx"), hash.get(2..4).unwrap_or("xx"));
        Key::from(format!("{}objects/{a}/{b}/{hash}", self.prefix))
    }

    fn head(&self, hash: &str) -> Result<Option<object_store::ObjectMeta>> {
        match self.rt.block_on(self.store.head(&self.key(hash))) {
            Ok(m) => Ok(Some(m)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(store_err(&format!("look up blob {hash}"), e)),
        }
    }

    fn get_range(&self, hash: &str, from: u64, to: u64) -> Result<bytes::Bytes> {
        let key = self.key(hash);
        let r = self.rt.block_on(async {
            let opts = GetOptions { range: Some(GetRange::Bounded(from..to)), ..Default::default() };
            let got = self.store.get_opts(&key, opts).await?;
            got.bytes().await
        });
        r.map_err(|e| store_err(&format!("read blob {hash}"), e))
    }

    /// Reads the whole object from the store in bounded pieces, a few in flight, each handed to `f` in order.
    fn read_all(&self, hash: &str, size: u64, piece: u64, mut f: impl FnMut(&[u8]) -> Result<()>) -> Result<()> {
        use futures::StreamExt;
        let key = self.key(hash);
        let ranges: Vec<(u64, u64)> =
            (0..size.div_ceil(piece)).map(|i| (i * piece, ((i + 1) * piece).min(size))).collect();
        self.rt.block_on(async {
            let key = &key;
            let mut pieces = futures::stream::iter(ranges.into_iter().map(|(a, b)| async move {
                let opts = GetOptions { range: Some(GetRange::Bounded(a..b)), ..Default::default() };
                let got = self.store.get_opts(key, opts).await?.bytes().await?;
                Ok::<_, object_store::Error>((b - a, got))
            }))
            .buffered(PIECES_IN_FLIGHT);
            while let Some(r) = pieces.next().await {
                let (want, got) = r.map_err(|e| store_err(&format!("read blob {hash}"), e))?;
                if got.len() as u64 != want {
                    return Err(Error::Store {
                        context: format!("read blob {hash}"),
                        transient: true,
                        message: format!("short read: {} bytes of {want}", got.len()),
                    });
                }
                f(&got)?;
            }
            Ok(())
        })
    }

    fn rehash_store(&self, hash: &str) -> Result<HashHex> {
        let meta = self.head(hash)?.ok_or_else(|| self.missing(hash))?;
        let mut h = blake3::Hasher::new();
        self.read_all(hash, meta.size, READ_PIECE, |b| {
            h.update(b);
            Ok(())
        })?;
        Ok(h.finalize().to_hex().to_string())
    }

    fn missing(&self, hash: &str) -> Error {
        Error::io(
            format!("{}: blob {hash}", self.describe),
            std::io::Error::new(std::io::ErrorKind::NotFound, "blob not stored"),
        )
    }

    fn state_path(&self, hash: &str) -> PathBuf {
        self.tmp.join(format!("{hash}.s3upload"))
    }

    fn save_state(&self, hash: &str, st: &UploadState) -> Result<()> {
        let p = self.state_path(hash);
        let json = serde_json::to_vec(st).map_err(|e| Error::Invalid(format!("upload state: {e}")))?;
        super::staging::write_atomic(&p, &json)
    }

    /// Uploads a staged file to the blob's key; returns what the store must then answer for it.
    fn upload(&self, staged: &Path, hash: &str, size: u64) -> Result<Expected> {
        let key = self.key(hash);
        let part = part_size(size);
        if size <= part {
            let bytes = fs::read(staged).at(staged)?;
            let md5 = md5_hex(&bytes);
            let put = self.rt.block_on(self.store.put(&key, bytes.into()));
            let r = put.map_err(|e| store_err(&format!("upload blob {hash}"), e))?;
            return self.expect_etag(hash, r.e_tag.as_deref(), &md5);
        }
        let file = File::open(staged).at(staged)?;
        let nparts = size.div_ceil(part) as usize;
        let kept = fs::read(self.state_path(hash)).ok().and_then(|b| serde_json::from_slice::<UploadState>(&b).ok());
        let mut st = match kept.filter(|s| s.size == size && s.part_size == part) {
            Some(s) => {
                tracing::info!(blob = hash, parts = s.parts.len(), of = nparts, "resuming an upload");
                s
            }
            None => {
                let id = self.rt.block_on(self.store.create_multipart(&key));
                let id = id.map_err(|e| store_err(&format!("start the upload of blob {hash}"), e))?;
                let s = UploadState { upload_id: id, size, part_size: part, parts: BTreeMap::new() };
                self.save_state(hash, &s)?;
                s
            }
        };
        let todo: Vec<usize> = (0..nparts).filter(|i| !st.parts.contains_key(i)).collect();
        // A stream of parts, a few in flight: each read (and its MD5 taken) on a blocking thread, then sent; the
        // state is written as each one is acknowledged, so a kill loses at most the parts in flight.
        let file = Arc::new(file);
        let id = st.upload_id.clone();
        let failed = self.rt.block_on(async {
            use futures::StreamExt;
            let (key, id) = (&key, &id);
            let mut sent = futures::stream::iter(todo.into_iter().map(|i| {
                let file = Arc::clone(&file);
                async move {
                    let from = i as u64 * part;
                    let len = (size - from).min(part) as usize;
                    let read = tokio::task::spawn_blocking(move || {
                        let mut buf = vec![0u8; len];
                        file.read_exact_at(&mut buf, from).map(|_| {
                            let md5 = md5_hex(&buf);
                            (buf, md5)
                        })
                    })
                    .await;
                    let (buf, md5) = match read {
                        Ok(Ok(x)) => x,
                        Ok(Err(e)) => return (i, String::new(), Err(Error::io(staged, e))),
                        Err(e) => return (i, String::new(), Err(Error::io(staged, std::io::Error::other(e)))),
                    };
                    let r = self.store.put_part(key, id, i, bytes::Bytes::from(buf).into()).await;
                    (
                        i,
                        md5,
                        r.map_err(|e| {
                            if e.to_string().contains("NoSuchUpload") || is_not_found(&e) {
                                // The store forgot the upload: start over on the next try.
                                let _ = remove_if_exists(&self.state_path(hash));
                            }
                            store_err(&format!("upload part {i} of blob {hash}"), e)
                        }),
                    )
                }
            }))
            .buffer_unordered(PARTS_IN_FLIGHT);
            let mut failed = None;
            while let Some((i, md5, r)) = sent.next().await {
                match r {
                    Ok(PartId { content_id }) if is_md5_etag(&content_id) && etag(&content_id) != md5 => {
                        failed.get_or_insert(Error::Store {
                            context: format!("upload blob {hash}"),
                            transient: true,
                            message: format!("part {i}: the store received other bytes (ETag mismatch)"),
                        });
                    }
                    Ok(PartId { content_id }) => {
                        st.parts.insert(i, (content_id, md5));
                        if self.state_path(hash).exists() {
                            if let Err(e) = self.save_state(hash, &st) {
                                failed.get_or_insert(e);
                            }
                        }
                    }
                    Err(e) => {
                        failed.get_or_insert(e);
                    }
                }
            }
            failed
        });
        if let Some(e) = failed {
            return Err(e);
        }
        let parts: Vec<PartId> = st.parts.values().map(|(e, _)| PartId { content_id: e.clone() }).collect();
        let done = self.rt.block_on(self.store.complete_multipart(&key, &st.upload_id, parts));
        let r = match done {
            Ok(r) => r,
            Err(e) => {
                let err = store_err(&format!("finish the upload of blob {hash}"), e);
                if !err.is_transient() {
                    let _ = self.rt.block_on(self.store.abort_multipart(&key, &st.upload_id));
                    let _ = remove_if_exists(&self.state_path(hash));
                }
                return Err(err);
            }
        };
        remove_if_exists(&self.state_path(hash))?;
        let all_md5 = st.parts.values().all(|(e, _)| is_md5_etag(e));
        if !all_md5 {
            return Ok(None);
        }
        let mut cat = Vec::new();
        for (_, md5) in st.parts.values() {
            cat.extend((0..md5.len() / 2).filter_map(|i| u8::from_str_radix(&md5[2 * i..2 * i + 2], 16).ok()));
        }
        let composite = format!("{}-{}", md5_hex(&cat), st.parts.len());
        self.expect_etag(hash, r.e_tag.as_deref(), &composite)
    }

    /// The ETag a landed object must have: `want` when the store answers MD5 ETags (a mismatch is an error: the
    /// store holds other bytes), else `None` (read back).
    fn expect_etag(&self, hash: &str, got: Option<&str>, want: &str) -> Result<Expected> {
        match got {
            Some(g) if is_md5_etag(g) && etag(g) != want => Err(Error::Store {
                context: format!("upload blob {hash}"),
                transient: true,
                message: "the store received other bytes (ETag mismatch)".into(),
            }),
            Some(g) if is_md5_etag(g) => Ok(Some(want.to_string())),
            _ => Ok(None),
        }
    }

    /// Proves the store holds the blob whole: the size, and the ETag expected (or, without one, the bytes read
    /// back and re-hashed). A wrong object is deleted.
    fn verify_stored(&self, hash: &str, size: u64, expected: &Expected) -> Result<()> {
        let meta = self.head(hash)?.ok_or_else(|| self.missing(hash))?;
        let ok = meta.size == size
            && match expected {
                Some(want) => meta.e_tag.as_deref().map(etag).as_deref() == Some(want.as_str()),
                None => self.rehash_store(hash)? == hash,
            };
        if ok {
            return Ok(());
        }
        let _ = self.rt.block_on(self.store.delete(&self.key(hash)));
        Err(Error::Store {
            context: format!("land blob {hash}"),
            transient: true,
            message: "the stored object is not the staged copy (removed; the landing is retried)".into(),
        })
    }

    fn put_verified(&self, staged: &Path, hash: &str) -> Result<()> {
        let size = fs::metadata(staged).at(staged)?.len();
        let expected = self.upload(staged, hash, size)?;
        self.verify_stored(hash, size, &expected)?;
        match &self.cache {
            Some(c) => c.adopt(staged, hash, size),
            None => remove_if_exists(staged),
        }
    }
}

impl BlobStore for S3Blobs {
    fn describe(&self) -> String {
        self.inner.describe.clone()
    }

    fn contains(&self, hash: &str) -> Result<bool> {
        Ok(self.inner.head(hash)?.is_some())
    }

    fn size(&self, hash: &str) -> Result<Option<u64>> {
        Ok(self.inner.head(hash)?.map(|m| m.size))
    }

    fn land(&self, staged: &Path, hash: &str, _durability: Durability) -> Result<()> {
        let i = &self.inner;
        let size = fs::metadata(staged).at(staged)?.len();
        if let Some(m) = i.head(hash)? {
            // Stored already (content-addressed): proven by its bytes before the staged copy goes.
            if m.size == size && i.rehash_store(hash)? == hash {
                return remove_if_exists(staged);
            }
        }
        i.put_verified(staged, hash)
    }

    fn replace(&self, staged: &Path, hash: &str) -> Result<()> {
        if let Some(c) = &self.inner.cache {
            c.forget(hash);
        }
        self.inner.put_verified(staged, hash)
    }

    fn sync(&self) -> Result<()> {
        Ok(())
    }

    fn open(&self, hash: &str) -> Result<Box<dyn BlobReader>> {
        let i = &self.inner;
        if let Some(p) = i.cache.as_ref().and_then(|c| c.get(hash)) {
            if let Ok(f) = File::open(&p) {
                return Ok(Box::new(FileBlob::new(p, f)?));
            }
        }
        let meta = i.head(hash)?.ok_or_else(|| i.missing(hash))?;
        Ok(Box::new(S3Reader {
            inner: Arc::clone(&self.inner),
            hash: hash.to_string(),
            len: meta.size,
            st: Mutex::new(Ranges {
                chunks: LruCache::new(CHUNKS_KEPT),
                fetched_until: u64::MAX,
                window: 1,
                read_until: 0,
                sequential: 0,
            }),
            local: OnceLock::new(),
            partial: OnceLock::new(),
        }))
    }

    fn rehash(&self, hash: &str) -> Result<HashHex> {
        self.inner.rehash_store(hash)
    }

    fn local_path(&self, hash: &str) -> Option<PathBuf> {
        self.inner.cache.as_ref().and_then(|c| c.get(hash))
    }

    fn is_remote(&self) -> bool {
        true
    }

    fn remove(&self, hash: &str) -> Result<()> {
        let i = &self.inner;
        if let Some(c) = &i.cache {
            c.forget(hash);
        }
        match i.rt.block_on(i.store.delete(&i.key(hash))) {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(store_err(&format!("delete blob {hash}"), e)),
        }
    }
}

/// What an open blob keeps of the store's bytes: pieces by index, and the read-ahead of a sequential reader.
struct Ranges {
    chunks: LruCache<u64, bytes::Bytes>,
    /// The piece after the last fetch (a read there is sequential).
    fetched_until: u64,
    /// Pieces the next fetch asks for.
    window: u64,
    /// Where the last read ended, and how far reads have gone on from each other without a seek.
    read_until: u64,
    sequential: u64,
}

/// A blob read from the store by ranges until its cached copy is there.
struct S3Reader {
    inner: Arc<Inner>,
    hash: String,
    len: u64,
    st: Mutex<Ranges>,
    local: OnceLock<FileBlob>,
    /// The file a hydration under way writes (its first `done` bytes are there).
    partial: OnceLock<(FileBlob, Arc<Hydration>)>,
}

impl S3Reader {
    /// The hydration's file, once it holds `[.., end)`: waited for (bounded) when the hydration is close behind,
    /// so a sequential reader and the hydration do not fetch the same bytes.
    fn hydrated_to(&self, end: u64) -> Option<&FileBlob> {
        if self.partial.get().is_none() {
            let h = self.inner.cache.as_ref()?.hydration(&self.hash)?;
            let f = FileBlob::new(h.part.clone(), File::open(&h.part).ok()?).ok()?;
            let _ = self.partial.set((f, h));
        }
        let (f, h) = self.partial.get()?;
        let started = std::time::Instant::now();
        loop {
            let done = h.done.load(Ordering::Acquire);
            if done >= end {
                return Some(f);
            }
            let failed = h.failed.load(Ordering::Acquire);
            if failed || done + WAIT_AHEAD < end || started.elapsed() > Duration::from_secs(10) {
                return None;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Counts a read; a reader gone far enough sequentially starts the hydration.
    fn note_read(&self, offset: u64, end: u64) {
        let go = {
            let mut st = self.st.lock();
            st.sequential = if offset == st.read_until { st.sequential + (end - offset) } else { 0 };
            st.read_until = end;
            st.sequential >= HYDRATE_AFTER
        };
        if go {
            if let Some(c) = &self.inner.cache {
                c.hydrate(Arc::clone(&self.inner), &self.hash, self.len);
            }
        }
    }

    fn local(&self) -> Option<&FileBlob> {
        if let Some(f) = self.local.get() {
            return Some(f);
        }
        let p = self.inner.cache.as_ref()?.cached(&self.hash)?;
        let f = FileBlob::new(p.clone(), File::open(p).ok()?).ok()?;
        Some(self.local.get_or_init(|| f))
    }

    fn piece(&self, idx: u64) -> Result<bytes::Bytes> {
        let mut st = self.st.lock();
        if let Some(c) = st.chunks.get(&idx) {
            return Ok(c.clone());
        }
        st.window = if st.fetched_until == idx { (st.window * 2).min(MAX_WINDOW) } else { 1 };
        let pieces = self.len.div_ceil(CHUNK);
        let mut to = (idx + st.window).min(pieces);
        if let Some(held) = (idx + 1..to).find(|i| st.chunks.contains_key(i)) {
            to = held;
        }
        let (from_b, to_b) = (idx * CHUNK, (to * CHUNK).min(self.len));
        let got = self.inner.get_range(&self.hash, from_b, to_b)?;
        self.inner.fetched.fetch_add(got.len() as u64, Ordering::Relaxed);
        let mut first = None;
        for (k, i) in (idx..to).enumerate() {
            let a = k * CHUNK as usize;
            let b = (a + CHUNK as usize).min(got.len());
            if a >= b {
                break;
            }
            let c = got.slice(a..b);
            if i == idx {
                first = Some(c.clone());
            }
            st.chunks.insert(i, c);
        }
        st.fetched_until = to;
        first.ok_or_else(|| Error::Store {
            context: format!("read blob {}", self.hash),
            transient: true,
            message: "short ranged read".into(),
        })
    }
}

impl BlobReader for S3Reader {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        if let Some(f) = self.local() {
            return f.read_at(buf, offset);
        }
        let end = (offset.saturating_add(buf.len() as u64)).min(self.len);
        if offset >= end {
            return Ok(0);
        }
        self.note_read(offset, end);
        if let Some(f) = self.hydrated_to(end) {
            return f.read_at(&mut buf[..(end - offset) as usize], offset);
        }
        let mut pos = offset;
        while pos < end {
            let idx = pos / CHUNK;
            let piece = self.piece(idx)?;
            let within = (pos - idx * CHUNK) as usize;
            if within >= piece.len() {
                break;
            }
            let take = (piece.len() - within).min((end - pos) as usize);
            let at = (pos - offset) as usize;
            buf[at..at + take].copy_from_slice(&piece[within..within + take]);
            pos += take as u64;
        }
        Ok((pos.saturating_sub(offset)) as usize)
    }
}

/// The local cache of a remote store: blobs as files `<2 hex>/<2 hex>/<64 hex>` (content-addressed: a cached
/// file is never stale), each written through a temp name and checked against its hash, the least recently
/// opened dropped while the total is above the limit.
pub struct Cache {
    dir: PathBuf,
    limit: u64,
    /// The bytes held (counted at first use).
    used: Mutex<Option<u64>>,
    hydrating: Mutex<HashMap<String, Arc<Hydration>>>,
}

/// A blob being fetched into the cache: its temp file, and how many bytes from the start are written there.
struct Hydration {
    part: PathBuf,
    done: AtomicU64,
    failed: std::sync::atomic::AtomicBool,
}

impl Cache {
    fn new(dir: PathBuf, limit: u64) -> Cache {
        Cache { dir, limit, used: Mutex::new(None), hydrating: Mutex::new(HashMap::new()) }
    }

    fn path(&self, hash: &str) -> PathBuf {
        let (a, b) = (hash.get(..2).unwrap_or("xx"), hash.get(2..4).unwrap_or("xx"));
        self.dir.join(a).join(b).join(hash)
    }

    /// The cached file, if there (without touching it).
    fn cached(&self, hash: &str) -> Option<PathBuf> {
        let p = self.path(hash);
        p.exists().then_some(p)
    }

    /// The cached file, if there, marked as used now.
    fn get(&self, hash: &str) -> Option<PathBuf> {
        let p = self.cached(hash)?;
        if let Ok(f) = File::options().append(true).open(&p) {
            let _ = f.set_modified(SystemTime::now());
        }
        Some(p)
    }

    fn forget(&self, hash: &str) {
        let p = self.path(hash);
        if let Ok(m) = fs::metadata(&p) {
            if fs::remove_file(&p).is_ok() {
                if let Some(u) = self.used.lock().as_mut() {
                    *u = u.saturating_sub(m.len());
                }
            }
        }
    }

    /// Takes a verified local file as the cached copy (a landing's staged copy), else removes it.
    fn adopt(&self, staged: &Path, hash: &str, size: u64) -> Result<()> {
        if size > self.limit / 2 {
            return remove_if_exists(staged);
        }
        let p = self.path(hash);
        let placed = p.parent().is_some_and(|d| fs::create_dir_all(d).is_ok()) && fs::rename(staged, &p).is_ok();
        if !placed {
            return remove_if_exists(staged);
        }
        self.added(size);
        Ok(())
    }

    fn added(&self, size: u64) {
        let over = {
            let mut used = self.used.lock();
            let u = used.get_or_insert_with(|| self.scan().iter().map(|(_, s, _)| s).sum());
            *u += size;
            *u > self.limit
        };
        if over {
            self.evict();
        }
    }

    /// Every cached file: (last used, size, path).
    fn scan(&self) -> Vec<(SystemTime, u64, PathBuf)> {
        let mut out = Vec::new();
        let Ok(top) = fs::read_dir(&self.dir) else { return out };
        for a in top.flatten() {
            let Ok(mid) = fs::read_dir(a.path()) else { continue };
            for b in mid.flatten() {
                let Ok(files) = fs::read_dir(b.path()) else { continue };
                for f in files.flatten() {
                    let name = f.file_name();
                    if !super::is_hash(&name.to_string_lossy()) {
                        continue;
                    }
                    if let Ok(m) = f.metadata() {
                        out.push((m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len(), f.path()));
                    }
                }
            }
        }
        out
    }

    /// Drops the least recently used files until the cache is at 90% of its limit.
    fn evict(&self) {
        let mut files = self.scan();
        files.sort();
        let mut total: u64 = files.iter().map(|(_, s, _)| s).sum();
        let goal = self.limit / 10 * 9;
        for (_, size, p) in files {
            if total <= goal {
                break;
            }
            if fs::remove_file(&p).is_ok() {
                total -= size;
            }
        }
        *self.used.lock() = Some(total);
    }

    /// The hydration of a blob under way, if any.
    fn hydration(&self, hash: &str) -> Option<Arc<Hydration>> {
        self.hydrating.lock().get(hash).cloned()
    }

    /// Fetches a blob into the cache in the background (once at a time per blob), checked against its hash.
    fn hydrate(&self, inner: Arc<Inner>, hash: &str, size: u64) {
        let p = self.path(hash);
        if size > self.limit / 2 || p.exists() {
            return;
        }
        let dir = p.parent().unwrap_or(&self.dir).to_path_buf();
        let part = dir.join(format!(".{hash}.part"));
        // Under the lock: a second reader must not truncate the file of a hydration under way.
        let (job, file) = {
            let mut h = self.hydrating.lock();
            if h.contains_key(hash) || p.exists() || fs::create_dir_all(&dir).is_err() {
                return;
            }
            let Ok(file) = File::create(&part) else { return };
            let job = Arc::new(Hydration { part, done: AtomicU64::new(0), failed: Default::default() });
            h.insert(hash.to_string(), Arc::clone(&job));
            (job, file)
        };
        let h = hash.to_string();
        let spawned = std::thread::Builder::new().name("nightfox-hydrate".into()).spawn(move || {
            let Some(cache) = inner.cache.as_ref() else { return };
            if let Err(e) = cache.fetch(&inner, &h, size, file, &job) {
                job.failed.store(true, Ordering::Release);
                tracing::warn!("caching blob {h} failed (reads go to the store): {e}");
            }
            cache.hydrating.lock().remove(&h);
        });
        if spawned.is_err() {
            self.hydrating.lock().remove(hash);
        }
    }

    fn fetch(&self, inner: &Inner, hash: &str, size: u64, mut f: File, job: &Hydration) -> Result<()> {
        let p = self.path(hash);
        let tmp = job.part.clone();
        let mut h = blake3::Hasher::new();
        let r = inner.read_all(hash, size, HYDRATE_PIECE, |b| {
            h.update(b);
            inner.fetched.fetch_add(b.len() as u64, Ordering::Relaxed);
            f.write_all(b).at(&tmp)?;
            job.done.fetch_add(b.len() as u64, Ordering::Release);
            Ok(())
        });
        if let Err(e) = r {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        if h.finalize().to_hex().as_str() != hash {
            let _ = fs::remove_file(&tmp);
            return Err(Error::Mismatch { path: p, expected: hash.to_string(), actual: "other bytes".into() });
        }
        let mut perm = f.metadata().at(&tmp)?.permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o444);
        let _ = fs::set_permissions(&tmp, perm);
        drop(f);
        fs::rename(&tmp, &p).at(&p)?;
        self.added(size);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_sizes_keep_uploads_under_a_thousand_parts() {
        assert_eq!(part_size(1), 64 << 20);
        assert_eq!(part_size(64_000 << 20), 64 << 20);
        let big = 200u64 << 30;
        assert!(big.div_ceil(part_size(big)) <= 1000);
    }

    #[test]
    fn urls_say_bucket_prefix_endpoint_and_region_and_never_credentials() {
        let u = parse_url("s3://footage/studio-a?endpoint=http://127.0.0.1:8333&region=eu-1").unwrap();
        assert_eq!((u.bucket.as_str(), u.prefix.as_str(), u.region.as_str()), ("footage", "studio-a", "eu-1"));
        assert_eq!(u.endpoint.as_deref(), Some("http://127.0.0.1:8333"));
        assert!(parse_url("s3://key:secret@footage/x").is_err());
        assert!(parse_url("s3://footage/x?colour=blue").is_err());
        assert!(parse_url("s3:///x").is_err());
    }

    #[test]
    fn a_4xx_answer_is_final_and_a_5xx_or_throttling_is_worth_a_retry() {
        let generic = |m: &str| object_store::Error::Generic { store: "S3", source: m.to_string().into() };
        let transient = |m: &str| store_err("x", generic(m)).is_transient();
        assert!(!transient("Server returned non-2xx status code: 400 Bad Request: InvalidBucketName"));
        assert!(!transient("Server returned non-2xx status code: 403 Forbidden"));
        assert!(transient("Server returned non-2xx status code: 503 Service Unavailable: SlowDown"));
        assert!(transient("Server returned non-2xx status code: 429 Too Many Requests"));
        assert!(transient("error sending request: connection refused"));
    }

    #[test]
    fn etags_compare_without_quotes_and_case() {
        assert!(is_md5_etag("\"d41d8cd98f00b204e9800998ecf8427e\""));
        assert!(is_md5_etag("d41d8cd98f00b204e9800998ecf8427e-3"));
        assert!(!is_md5_etag("abc"));
        assert_eq!(etag("\"ABC\""), "abc");
    }
}
