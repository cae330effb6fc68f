//! The conformance suite every [`BlobStore`] must pass, written against the trait alone so each backend runs the
//! same checks (the local store and the memory store here; an object store against a real server in its own
//! test). Each check panics with what the contract says, so a new backend learns the rule it broke.

use std::fs;

use super::{BlobStore, Durability, Staging};

/// Runs every check on `store`, staging test files in `staging`. `corrupt(hash)` must flip a byte of the stored
/// blob behind the store's back (rot on the medium).
pub fn run(store: &dyn BlobStore, staging: &Staging, corrupt: &dyn Fn(&str)) {
    landing_twice_is_idempotent(store, staging);
    read_at_bounds(store, staging);
    deferred_landings_are_visible_after_sync(store, staging);
    rehash_finds_a_flipped_byte_and_replace_heals(store, staging, corrupt);
    missing_blobs(store);
    remove_is_for_good_and_idempotent(store, staging);
    a_copy_staged_as_the_store_asks_lands(store, staging);
}

fn stage(staging: &Staging, name: &str, bytes: &[u8]) -> (std::path::PathBuf, String) {
    let (_, path) = staging.create(name).expect("create a staged file");
    fs::write(&path, bytes).expect("write a staged file");
    (path, blake3::hash(bytes).to_hex().to_string())
}

fn content(store: &dyn BlobStore, hash: &str) -> Vec<u8> {
    let r = store.open(hash).expect("open a stored blob");
    let mut buf = vec![0u8; r.len() as usize];
    let n = r.read_at(&mut buf, 0).expect("read a stored blob");
    buf.truncate(n);
    buf
}

/// `land` removes the staged file; landing the same content again is `Ok`, removes the new staged file and leaves
/// one blob with that content.
pub fn landing_twice_is_idempotent(store: &dyn BlobStore, staging: &Staging) {
    let bytes = b"conformance: landing twice".repeat(1000);
    let (p, h) = stage(staging, "conf-twice-1", &bytes);
    assert!(!store.contains(&h).expect("contains"), "{}: a blob never landed is not contained", store.describe());
    store.land(&p, &h, Durability::Now).expect("first landing");
    assert!(!p.exists(), "{}: the staged file is gone after land", store.describe());
    assert!(store.contains(&h).expect("contains"), "{}: contains after land", store.describe());
    let (p2, h2) = stage(staging, "conf-twice-2", &bytes);
    store.land(&p2, &h2, Durability::Now).expect("landing the same blob again is Ok");
    assert!(!p2.exists(), "{}: a second landing removes its staged file", store.describe());
    assert_eq!(store.size(&h).expect("size"), Some(bytes.len() as u64));
    assert_eq!(content(store, &h), bytes, "{}: the blob's bytes are what was landed", store.describe());
}

/// A copy staged as the store asks ([`BlobStore::stage_seal`]: sealed as it is written for the vault) validates
/// from the disk to its hash and lands, or replaces, reading back as what was copied.
pub fn a_copy_staged_as_the_store_asks_lands(store: &dyn BlobStore, staging: &Staging) {
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 249) as u8).collect();
    let seal = store.stage_seal();
    for (i, replace) in [false, true].into_iter().enumerate() {
        let (mut f, p) = staging.create(&format!("conf-staged-{i}")).expect("create a staged file");
        let c = super::copy_hashing(
            Box::new(std::io::Cursor::new(bytes.clone())),
            std::path::Path::new("src"),
            &mut f,
            &p,
            super::CopyStart::fresh(seal.as_ref()),
            &mut |_| true,
            &mut |_, e| Err(e),
            None,
            true,
        )
        .expect("copy into staging");
        drop(f);
        let (h, _) = super::validate_staged(&p, true, seal.as_ref()).expect("validate");
        assert_eq!(h, c.hash, "{}: a staged copy validates to its hash", store.describe());
        match replace {
            false => store.land(&p, &h, Durability::Now).expect("land a staged copy"),
            true => store.replace(&p, &h).expect("replace with a staged copy"),
        }
        assert!(!p.exists(), "{}: the staged copy is gone", store.describe());
        assert_eq!(content(store, &h), bytes, "{}: a staged copy reads back", store.describe());
        assert_eq!(store.rehash(&h).expect("rehash"), h);
    }
}

/// `read_at` reads up to the buffer, fewer only at the end, 0 at and past the end.
pub fn read_at_bounds(store: &dyn BlobStore, staging: &Staging) {
    let bytes: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let (p, h) = stage(staging, "conf-read", &bytes);
    store.land(&p, &h, Durability::Now).expect("land");
    let r = store.open(&h).expect("open");
    assert_eq!(r.len(), 10_000);
    let mut buf = [0u8; 100];
    assert_eq!(r.read_at(&mut buf, 0).expect("read at 0"), 100);
    assert_eq!(&buf[..], &bytes[..100]);
    assert_eq!(r.read_at(&mut buf, 5_000).expect("read inside"), 100);
    assert_eq!(&buf[..], &bytes[5_000..5_100]);
    assert_eq!(r.read_at(&mut buf, 9_950).expect("read across the end"), 50, "a short read only at the end");
    assert_eq!(&buf[..50], &bytes[9_950..]);
    assert_eq!(r.read_at(&mut buf, 10_000).expect("read at the end"), 0, "0 bytes at the end");
    assert_eq!(r.read_at(&mut buf, 1 << 40).expect("read past the end"), 0, "0 bytes past the end");
}

/// Deferred landings are visible at once and durable after `sync`.
pub fn deferred_landings_are_visible_after_sync(store: &dyn BlobStore, staging: &Staging) {
    let mut hashes = Vec::new();
    for i in 0..5 {
        let (p, h) = stage(staging, &format!("conf-deferred-{i}"), format!("deferred blob {i}").as_bytes());
        store.land(&p, &h, Durability::Deferred).expect("deferred landing");
        hashes.push(h);
    }
    store.sync().expect("sync");
    for h in &hashes {
        assert!(store.contains(h).expect("contains"), "{}: a deferred landing is stored after sync", store.describe());
        assert_eq!(store.rehash(h).expect("rehash"), *h);
    }
}

/// `rehash` reads the medium: a flipped byte changes its answer; `replace` with a verified copy heals it.
pub fn rehash_finds_a_flipped_byte_and_replace_heals(store: &dyn BlobStore, staging: &Staging, corrupt: &dyn Fn(&str)) {
    let bytes = b"conformance: rot".repeat(5000);
    let (p, h) = stage(staging, "conf-rot", &bytes);
    store.land(&p, &h, Durability::Now).expect("land");
    assert_eq!(store.rehash(&h).expect("rehash"), h);
    corrupt(&h);
    assert_ne!(
        store.rehash(&h).expect("rehash of a damaged blob"),
        h,
        "{}: rehash finds a flipped byte",
        store.describe()
    );
    let (p2, _) = stage(staging, "conf-rot-heal", &bytes);
    store.replace(&p2, &h).expect("replace");
    assert!(!p2.exists(), "{}: the staged copy is gone after replace", store.describe());
    assert_eq!(store.rehash(&h).expect("rehash after replace"), h, "{}: replace heals", store.describe());
    assert_eq!(content(store, &h), bytes);
}

/// A blob never landed: not contained, no size, open and rehash fail.
pub fn missing_blobs(store: &dyn BlobStore) {
    let h = "0".repeat(64);
    assert!(!store.contains(&h).expect("contains"));
    assert_eq!(store.size(&h).expect("size"), None);
    assert!(store.open(&h).is_err(), "{}: opening a missing blob fails", store.describe());
    assert!(store.rehash(&h).is_err(), "{}: re-hashing a missing blob fails", store.describe());
}

/// `remove` deletes one blob (gone whole: not contained, no size, open fails), leaves the others, and removing
/// a blob that is not stored is `Ok`; the same content can land again after.
pub fn remove_is_for_good_and_idempotent(store: &dyn BlobStore, staging: &Staging) {
    let (a, ha) = stage(staging, "remove-a", b"removed for good");
    let (b, hb) = stage(staging, "remove-b", b"kept");
    store.land(&a, &ha, Durability::Now).expect("land");
    store.land(&b, &hb, Durability::Now).expect("land");
    store.remove(&ha).expect("remove");
    assert!(!store.contains(&ha).expect("contains"), "{}: a removed blob is gone", store.describe());
    assert_eq!(store.size(&ha).expect("size"), None);
    assert!(store.open(&ha).is_err(), "{}: opening a removed blob fails", store.describe());
    assert_eq!(content(store, &hb), b"kept", "{}: the other blob stays", store.describe());
    store.remove(&ha).expect("removing again is Ok");
    store.remove(&"0".repeat(64)).expect("removing a blob never stored is Ok");
    let (a, _) = stage(staging, "remove-a2", b"removed for good");
    store.land(&a, &ha, Durability::Now).expect("land again");
    assert_eq!(content(store, &ha), b"removed for good");
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{FileExt, PermissionsExt};

    use super::super::local::LocalBlobs;
    use super::super::memory::{Fault, MemoryBlobs};
    use super::*;

    /// Flips a bit of the (read-only) file at `p`, behind the store's back.
    fn flip_byte(p: &std::path::Path, at: u64) {
        fs::set_permissions(p, fs::Permissions::from_mode(0o644)).unwrap();
        let f = fs::OpenOptions::new().read(true).write(true).open(p).unwrap();
        let mut b = [0u8; 1];
        f.read_at(&mut b, at).unwrap();
        f.write_at(&[b[0] ^ 0x80], at).unwrap();
        f.sync_all().unwrap();
    }

    #[test]
    fn local_store_conforms() {
        let root = tempfile::tempdir().unwrap();
        let staging = Staging::open(root.path()).unwrap();
        let store = LocalBlobs::open(&root.path().join("objects")).unwrap();
        let s2 = store.clone();
        run(&store, &staging, &move |h| flip_byte(&s2.path(h), 7));
        // Today's layout exactly: objects/<2>/<2>/<64>, read-only.
        let h = blake3::hash(b"conformance: landing twice".repeat(1000).as_slice()).to_hex().to_string();
        let p = root.path().join("objects").join(&h[0..2]).join(&h[2..4]).join(&h);
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o444);
        assert_eq!(store.local_path(&h), Some(p));
    }

    #[test]
    fn vault_over_local_and_over_memory_conforms() {
        use super::super::vault::{DataKey, VaultBlobs};
        let root = tempfile::tempdir().unwrap();
        let staging = Staging::open(root.path()).unwrap();
        let local = LocalBlobs::open(&root.path().join("objects")).unwrap();
        let vault = VaultBlobs::new(std::sync::Arc::new(local.clone()), DataKey::from_bytes([3; 32]));
        // A byte of the first chunk's ciphertext (past the 40-byte header).
        run(&vault, &staging, &move |h| flip_byte(&local.path(h), 47));
        assert_eq!(vault.local_path(&"0".repeat(64)), None, "a sealed blob is never handed out as a file");
        let mem = MemoryBlobs::new();
        let vault = VaultBlobs::new(std::sync::Arc::new(mem.clone()), DataKey::from_bytes([4; 32]));
        run(&vault, &staging, &move |h| mem.corrupt(h));
    }

    #[test]
    fn local_remove_takes_the_outboard_with_the_blob() {
        let root = tempfile::tempdir().unwrap();
        let staging = Staging::open(root.path()).unwrap();
        let outboards = root.path().join("outboards");
        let store = LocalBlobs::open(&root.path().join("objects")).unwrap().with_outboards(&outboards);
        let (staged, h) = stage(&staging, "with-outboard", b"a blob with an outboard");
        store.land(&staged, &h, Durability::Now).unwrap();
        let ob = super::super::outboard::path_in(&outboards, &h);
        fs::create_dir_all(ob.parent().unwrap()).unwrap();
        fs::write(&ob, b"tree").unwrap();
        store.remove(&h).unwrap();
        assert!(!ob.exists(), "the outboard goes with its blob");
        assert!(!store.path(&h).exists());
        assert!(store.remove("not-a-hash").is_err(), "only blob names are removed");
    }

    #[test]
    fn memory_store_conforms() {
        let root = tempfile::tempdir().unwrap();
        let staging = Staging::open(root.path()).unwrap();
        let store = MemoryBlobs::new();
        let s2 = store.clone();
        run(&store, &staging, &move |h| s2.corrupt(h));
        assert_eq!(store.local_path(&"0".repeat(64)), None);
    }

    #[test]
    fn memory_store_forgets_unsynced_landings_in_a_crash_and_keeps_synced_ones() {
        let root = tempfile::tempdir().unwrap();
        let staging = Staging::open(root.path()).unwrap();
        let store = MemoryBlobs::new();
        let (a, ha) = stage(&staging, "a", b"synced");
        store.land(&a, &ha, Durability::Deferred).unwrap();
        store.sync().unwrap();
        let (b, hb) = stage(&staging, "b", b"not synced");
        store.land(&b, &hb, Durability::Deferred).unwrap();
        let (c, hc) = stage(&staging, "c", b"durable now");
        store.land(&c, &hc, Durability::Now).unwrap();
        store.crash();
        assert!(store.contains(&ha).unwrap());
        assert!(!store.contains(&hb).unwrap(), "a deferred landing is not durable before sync");
        assert!(store.contains(&hc).unwrap());
    }

    #[test]
    fn injected_faults_fail_as_the_pipeline_classifies_them() {
        let root = tempfile::tempdir().unwrap();
        let staging = Staging::open(root.path()).unwrap();
        let store = MemoryBlobs::new();
        let (p, h) = stage(&staging, "f", b"faulty");
        store.fail_lands(Fault::NoSpace, 1);
        let e = store.land(&p, &h, Durability::Now).unwrap_err();
        assert!(e.is_disk_full(), "ENOSPC from a store is a full disk: {e}");
        assert!(p.exists(), "a failed landing leaves the staged file");
        store.fail_lands(Fault::Timeout, 1);
        assert!(store.land(&p, &h, Durability::Now).unwrap_err().is_transient());
        store.land(&p, &h, Durability::Now).unwrap();
        store.fail_reads(Some(Fault::Io));
        assert!(store.rehash(&h).is_err() && store.open(&h).is_err());
        store.clear_faults();
        assert_eq!(store.rehash(&h).unwrap(), h);
    }
}
