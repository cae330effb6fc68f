//! A synthetic archive for scale tests and benchmarks (`nightfox generate`, hidden): couples × cameras × files
//! catalogued in bulk through the catalog traits (one finalize transaction per camera folder), as an import
//! would record them. Each file's content is a short deterministic text; with `blobs` those blobs are stored too
//! (staged, landed deferred, one sync), otherwise the catalog points at blobs that are absent (an external disk
//! that is not mounted). Never used by an import.

use crate::archive::Archive;
use crate::blobs::{Durability, HashHex};
use crate::catalog::{FootageType, NewCamera, NewFile};
use crate::error::{Error, IoContext, Result};

/// What to generate.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub couples: u32,
    pub cameras: u32,
    pub files: u32,
    /// Store each file's (tiny) blob as well.
    pub blobs: bool,
}

/// The content of generated file `i` of camera `k` of couple `c`.
pub fn content(c: u32, k: u32, i: u32) -> Vec<u8> {
    format!("nightfox generated clip: couple {c}, camera {k}, file {i}\n").into_bytes()
}

/// The display name of generated file `i`.
pub fn file_name(i: u32) -> String {
    format!("C{i:05}.MP4")
}

/// Catalogues `spec` into `archive` (which should be empty of couples named `gen-*`); returns the files made.
pub fn generate(archive: &Archive, spec: Spec, mut progress: impl FnMut(u64)) -> Result<u64> {
    if spec.couples == 0 || spec.cameras == 0 {
        return Err(Error::Invalid("generate: give at least one couple and one camera".into()));
    }
    let mut cat = archive.catalog()?;
    let mut cams = Vec::new();
    for k in 0..spec.cameras {
        let slug = format!("gen-cam{k:03}");
        let id = match cat.cameras()?.into_iter().find(|c| c.slug == slug) {
            Some(c) => c.id,
            None => cat.add_camera(&NewCamera {
                slug: &slug,
                name: &slug,
                footage_type: FootageType::Modern,
                make: Some("Nightfox"),
                model: Some("Generator"),
                serial: Some(&format!("GEN{k:05}")),
                auto: false,
            })?,
        };
        cams.push(id);
    }
    let mut made = 0u64;
    for c in 0..spec.couples {
        let folder = format!("2020-01-01-gen-{c:05}");
        let couple = cat.add_couple(&format!("Generated {c}"), "2020-01-01", &folder)?;
        for (k, cam) in cams.iter().enumerate() {
            let k = k as u32;
            let mut staged: Vec<(std::path::PathBuf, HashHex)> = Vec::new();
            let mut tx = cat.begin_finalize()?;
            for i in 0..spec.files {
                let bytes = content(c, k, i);
                let mut hashers = crate::blobs::Hashers::new();
                hashers.update(&bytes);
                let crate::blobs::Digest { hash, sums } = hashers.finalize();
                let name = file_name(i);
                let original = format!("/generated/{folder}/cam{k:03}/{name}");
                tx.insert_file(&NewFile {
                    couple_id: couple,
                    footage_type: FootageType::Modern,
                    camera_id: Some(*cam),
                    blob_hash: &hash,
                    blob_size: bytes.len() as u64,
                    display_name: name.as_bytes(),
                    name_key: &crate::organize::name_key(name.as_bytes()),
                    original_path: original.as_bytes(),
                    source: "generated",
                    source_mtime_ns: 0,
                    session_id: None,
                    sidecar_of: None,
                    captured_at: None,
                    bad_ranges: None,
                    sums: sums.as_ref(),
                })?;
                if spec.blobs {
                    let (_, path) = archive.staging.create(&format!("generate-{c}-{k}-{i}.part"))?;
                    std::fs::write(&path, &bytes).at(&path)?;
                    staged.push((path, hash));
                }
            }
            // The blobs are stored (and durable) before the rows that name them are committed.
            for (path, hash) in &staged {
                archive.blobs.land(path, hash, Durability::Deferred)?;
            }
            if !staged.is_empty() {
                archive.blobs.sync()?;
            }
            tx.commit_for(0)?;
            made += u64::from(spec.files);
            progress(made);
        }
    }
    Ok(made)
}
