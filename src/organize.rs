//! Organizing footage: couple folder names and camera slugs, which file is a sidecar of which clip, and the
//! display names files get in the tree. A display name is the original file name; on a collision in the same
//! directory it gets a deterministic ` (n)` suffix before the extension, and a sidecar follows its clip's suffix
//! so the pair still matches. Collisions are judged on a key (Unicode NFC, lowercase) so the tree stays valid on
//! case-insensitive and normalising filesystems; the name itself is kept byte for byte. Routing picks a clip's
//! camera from its metadata: a camera whose match rule fits (serial first), else a new camera named after the
//! detected make and model.

use unicode_normalization::UnicodeNormalization;

use crate::catalog::Camera;
use crate::error::{Error, Result};
use crate::media::MediaInfo;

/// Longest name a directory entry may have on Linux (and in the FUSE protocol).
pub const NAME_MAX: usize = 255;

/// Folders that operating systems write onto cards and shares; nothing inside them is footage.
const LITTER_DIRS: &[(&str, &str)] = &[
    (".Spotlight-V100", "macOS Spotlight index"),
    (".Trashes", "macOS trash"),
    (".fseventsd", "macOS file system event log"),
    (".TemporaryItems", "macOS temporary items"),
    (".DocumentRevisions-V100", "macOS document versions"),
    ("System Volume Information", "Windows system folder"),
    ("$RECYCLE.BIN", "Windows recycle bin"),
    ("lost+found", "fsck's lost+found"),
];

/// Files that operating systems write next to footage.
const LITTER_FILES: &[(&str, &str)] = &[
    (".DS_Store", "macOS Finder metadata"),
    (".apdisk", "macOS AirPort disk metadata"),
    ("Icon\r", "macOS custom folder icon"),
    ("Thumbs.db", "Windows thumbnail cache"),
    ("desktop.ini", "Windows folder settings"),
];

/// Why a path (relative, `/`-separated) is operating-system litter and never footage, or `None` when it may be
/// footage: macOS `.DS_Store`, AppleDouble `._*` files (resource forks and xattrs of the file of the same name),
/// Spotlight, trash and event-log folders; Windows `Thumbs.db`, `desktop.ini`, `System Volume Information`,
/// `$RECYCLE.BIN`; Linux `.Trash-<uid>` and `lost+found`. The same list serves imports, sources and `/ingest`.
/// Names are compared case-insensitively (FAT and exFAT cards do not keep case).
pub fn litter_reason(rel_path: &[u8]) -> Option<&'static str> {
    let comps: Vec<&[u8]> = rel_path.split(|&c| c == b'/').filter(|c| !c.is_empty()).collect();
    let (last, dirs) = comps.split_last()?;
    for d in dirs {
        if let Some((_, why)) = LITTER_DIRS.iter().find(|(n, _)| d.eq_ignore_ascii_case(n.as_bytes())) {
            return Some(why);
        }
        if let Some(uid) = d.strip_prefix(b".Trash-") {
            if !uid.is_empty() && uid.iter().all(u8::is_ascii_digit) {
                return Some("Linux desktop trash");
            }
        }
    }
    if last.starts_with(b"._") {
        return Some("macOS AppleDouble file (resource fork and attributes of another file)");
    }
    LITTER_FILES.iter().find(|(n, _)| last.eq_ignore_ascii_case(n.as_bytes())).map(|(_, why)| *why)
}

/// Extensions of files that belong to a clip rather than standing alone.
const SIDECAR_EXTS: &[&str] = &["xml", "thm", "lrv", "srt", "xmp", "bim", "ppn", "cpi", "smi", "bin"];

/// Lowercase ASCII-and-Unicode slug: alphanumerics kept, everything else folded into single dashes.
pub fn slugify(s: &str) -> String {
    let mut out = String::new();
    let mut dash = false;
    for c in s.nfc().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.push(c);
        } else {
            dash = true;
        }
    }
    out
}

/// Checks a `YYYY-MM-DD` calendar date.
pub fn validate_date(s: &str) -> Result<()> {
    let bad = || Error::Invalid(format!("invalid date {s:?}: expected YYYY-MM-DD"));
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(bad());
    }
    // The shape is checked first (jiff also reads `+002025-12-31`); the calendar is jiff's.
    let date: jiff::civil::Date = s.parse().map_err(|_| bad())?;
    if date.year() < 1900 {
        return Err(bad());
    }
    Ok(())
}

/// `2025-12-31-julia-sven` from a date and a display name.
pub fn couple_folder_base(date: &str, name: &str) -> String {
    let slug = slugify(name);
    if slug.is_empty() {
        date.to_string()
    } else {
        format!("{date}-{slug}")
    }
}

/// True when two couple names are one name as the folder name sees it (case, Unicode normalisation, spaces and
/// punctuation aside): `Julia & Sven` and `julia + sven`.
pub fn same_couple_name(a: &str, b: &str) -> bool {
    slugify(a) == slugify(b)
}

/// The first of `base`, `base-2`, `base-3`... for which `taken` says no.
pub fn first_free(base: &str, mut taken: impl FnMut(&str) -> Result<bool>) -> Result<String> {
    if !taken(base)? {
        return Ok(base.to_string());
    }
    for n in 2.. {
        let c = format!("{base}-{n}");
        if !taken(&c)? {
            return Ok(c);
        }
    }
    unreachable!("the integers are unbounded")
}

/// The collision key of a display name: NFC, lowercase; invalid UTF-8 is compared with replacement characters.
pub fn name_key(name: &[u8]) -> String {
    String::from_utf8_lossy(name).nfc().flat_map(char::to_lowercase).collect()
}

/// Splits a name into stem and extension (with its dot). A leading dot is part of the stem.
pub fn split_ext(name: &[u8]) -> (&[u8], &[u8]) {
    match name.iter().rposition(|&c| c == b'.') {
        Some(0) | None => (name, &[]),
        Some(i) => (&name[..i], &name[i..]),
    }
}

fn ext_lower(name: &[u8]) -> String {
    let (_, ext) = split_ext(name);
    String::from_utf8_lossy(ext).trim_start_matches('.').to_ascii_lowercase()
}

pub fn is_sidecar_name(name: &[u8]) -> bool {
    SIDECAR_EXTS.contains(&ext_lower(name).as_str())
}

/// Shortens `stem` (at a character boundary when it is UTF-8) so that `stem + tail` fits in NAME_MAX bytes.
fn fit(stem: &[u8], tail: &[u8]) -> Vec<u8> {
    let room = NAME_MAX.saturating_sub(tail.len());
    let mut cut = stem.len().min(room);
    if let Ok(s) = std::str::from_utf8(stem) {
        while cut > 0 && !s.is_char_boundary(cut) {
            cut -= 1;
        }
    }
    let mut out = stem[..cut].to_vec();
    out.extend_from_slice(tail);
    out
}

/// `C0001.MP4` with n = 2 gives `C0001 (2).MP4` (the stem is shortened if the result would be too long).
pub fn with_suffix(name: &[u8], n: u32) -> Vec<u8> {
    let (stem, ext) = split_ext(name);
    let mut tail = format!(" ({n})").into_bytes();
    tail.extend_from_slice(ext);
    fit(stem, &tail)
}

/// The suffix number a display name got relative to its original name, if any.
pub fn suffix_of(original: &[u8], display: &[u8]) -> Option<u32> {
    if original == display {
        return None;
    }
    let (dstem, _) = split_ext(display);
    let s = String::from_utf8_lossy(dstem);
    let open = s.rfind(" (")?;
    s[open + 2..].strip_suffix(')')?.parse().ok()
}

/// The name a sidecar should get so it still pairs with its clip after the clip got suffix `n`:
/// `C0001M01.XML` beside `C0001 (2).MP4` becomes `C0001 (2)M01.XML`; other sidecars get the same suffix.
pub fn sidecar_name(sidecar: &[u8], clip_original: &[u8], n: u32) -> Vec<u8> {
    let (cstem, _) = split_ext(clip_original);
    let (sstem, sext) = split_ext(sidecar);
    let suffix = format!(" ({n})").into_bytes();
    if sstem.len() >= cstem.len() && sstem[..cstem.len()].eq_ignore_ascii_case(cstem) {
        let mut tail = suffix;
        tail.extend_from_slice(&sidecar[cstem.len()..]);
        fit(&sidecar[..cstem.len()], &tail)
    } else {
        let mut tail = suffix;
        tail.extend_from_slice(sext);
        fit(sstem, &tail)
    }
}

/// For each name of one directory, the index of the clip it is a sidecar of: a sidecar extension and a stem
/// that starts with a non-sidecar file's stem (the longest such stem wins; GoPro `GL` proxies pair with `GX`/`GH`).
pub fn pair_sidecars(names: &[&[u8]]) -> Vec<Option<usize>> {
    let stems: Vec<Vec<u8>> = names.iter().map(|n| split_ext(n).0.to_ascii_uppercase()).collect();
    let clips: Vec<usize> = (0..names.len()).filter(|&i| !is_sidecar_name(names[i])).collect();
    names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            if !is_sidecar_name(n) {
                return None;
            }
            let s = &stems[i];
            let mut alts = vec![s.clone()];
            if s.starts_with(b"GL") {
                for p in [b"GX", b"GH"] {
                    let mut a = p.to_vec();
                    a.extend_from_slice(&s[2..]);
                    alts.push(a);
                }
            }
            clips
                .iter()
                .copied()
                .filter(|&c| !stems[c].is_empty() && alts.iter().any(|a| a.starts_with(&stems[c])))
                .max_by_key(|&c| stems[c].len())
        })
        .collect()
}

fn same(a: &Option<String>, b: &Option<String>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.trim().eq_ignore_ascii_case(b.trim()),
        (None, None) => true,
        _ => false,
    }
}

/// How well a camera's rule fits a file's metadata; `None` when it does not fit. A rule from `camera add` fits
/// when every field it sets equals the file's (a serial rule also fits a file that carries no serial); a camera
/// that routing created fits only the same make and model. A rule with a different serial never fits.
fn rule_fit(cam: &Camera, info: &MediaInfo) -> Option<u32> {
    if cam.make.is_none() && cam.model.is_none() && cam.serial.is_none() {
        return None;
    }
    let mut score = 0;
    if let Some(s) = &cam.serial {
        match &info.serial {
            Some(f) if s.trim().eq_ignore_ascii_case(f.trim()) => score += 4,
            Some(_) => return None,
            None => {}
        }
    }
    for (rule, file, points) in [(&cam.model, &info.model, 2), (&cam.make, &info.make, 1)] {
        if cam.auto {
            if !same(rule, file) {
                return None;
            }
            score += if rule.is_some() { points } else { 0 };
        } else if rule.is_some() {
            if !same(rule, file) {
                return None;
            }
            score += points;
        }
    }
    Some(score)
}

/// The camera whose rule fits the file best (serial match first, then the most specific rule, then the oldest).
pub fn match_camera<'c>(cams: &'c [Camera], info: &MediaInfo) -> Option<&'c Camera> {
    if info.is_empty() {
        return None;
    }
    cams.iter()
        .filter_map(|c| rule_fit(c, info).map(|s| (s, c)))
        .max_by(|(sa, ca), (sb, cb)| sa.cmp(sb).then(cb.id.cmp(&ca.id)))
        .map(|(_, c)| c)
}

/// Name and slug base for a camera created from metadata: `Sony ILCE-7SM3`, `sony-ilce-7sm3`.
pub fn camera_name(info: &MediaInfo) -> Option<(String, String)> {
    let make = info.make.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let model = info.model.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let name = match (make, model) {
        // Many models already start with the make ("Canon EOS R5").
        (Some(mk), Some(md)) if md.to_lowercase().starts_with(&mk.to_lowercase()) => md.to_string(),
        (Some(mk), Some(md)) => format!("{mk} {md}"),
        (Some(x), None) | (None, Some(x)) => x.to_string(),
        (None, None) => format!("camera {}", info.serial.as_deref()?.trim()),
    };
    let slug = slugify(&name);
    if slug.is_empty() || slug == "unknown" {
        return None;
    }
    Some((name, slug))
}

#[cfg(test)]
mod tests {
    #[test]
    fn litter_is_known_by_name_and_folder() {
        use super::litter_reason as l;
        for p in [
            "PRIVATE/.DS_Store",
            "._C0001.MP4",
            "PRIVATE/M4ROOT/CLIP/._C0001.MP4",
            ".Spotlight-V100/Store-V2/x/0.indexHead",
            ".Trashes/501/old.MP4",
            ".fseventsd/fseventsd-uuid",
            "DCIM/Thumbs.db",
            "desktop.ini",
            "System Volume Information/IndexerVolumeGuid",
            "$RECYCLE.BIN/S-1-5/x.MP4",
            ".Trash-1000/files/C0003.MP4",
            "lost+found/#1234",
            "Icon\r",
            "THUMBS.DB",
        ] {
            assert!(l(p.as_bytes()).is_some(), "{p}");
        }
        for p in ["C0001.MP4", "PRIVATE/M4ROOT/CLIP/C0001M01.XML", ".Trash-x/a.MP4", "a._b.MP4", "Icon"] {
            assert_eq!(l(p.as_bytes()), None, "{p}");
        }
    }

    use super::*;

    #[test]
    fn slugs_and_dates() {
        assert_eq!(slugify("Julia & Sven"), "julia-sven");
        assert_eq!(slugify("  Jürgen + Ömer!! "), "jürgen-ömer");
        assert_eq!(couple_folder_base("2025-12-31", "Julia & Sven"), "2025-12-31-julia-sven");
        assert!(same_couple_name("Julia & Sven", " julia + SVEN"));
        assert!(!same_couple_name("Julia & Sven", "Julia & Sven 2") && !same_couple_name("Jürgen", "Jurgen"));
        assert!(validate_date("2024-02-29").is_ok());
        assert!(validate_date("2023-02-29").is_err());
        assert!(validate_date("2023-13-01").is_err());
        assert!(validate_date("31.12.2025").is_err());
    }

    #[test]
    fn suffixes() {
        assert_eq!(with_suffix(b"C0001.MP4", 2), b"C0001 (2).MP4");
        assert_eq!(with_suffix(b".hidden", 3), b".hidden (3)");
        assert_eq!(suffix_of(b"C0001.MP4", b"C0001 (2).MP4"), Some(2));
        assert_eq!(suffix_of(b"C0001.MP4", b"C0001.MP4"), None);
        let long = vec![b'a'; 251];
        let mut name = long.clone();
        name.extend_from_slice(b".MP4");
        let s = with_suffix(&name, 12);
        assert_eq!(s.len(), NAME_MAX);
        assert!(s.ends_with(b" (12).MP4"));
        assert_eq!(sidecar_name(b"C0001M01.XML", b"C0001.MP4", 2), b"C0001 (2)M01.XML");
        assert_eq!(sidecar_name(b"GL010001.LRV", b"GX010001.MP4", 2), b"GL010001 (2).LRV");
    }

    #[test]
    fn keys_fold_case_and_normalisation() {
        let nfd = "Cafe\u{301}.mov".as_bytes();
        let nfc = "Caf\u{e9}.MOV".as_bytes();
        assert_eq!(name_key(nfd), name_key(nfc));
    }

    fn cam(id: i64, make: Option<&str>, model: Option<&str>, serial: Option<&str>, auto: bool) -> Camera {
        Camera {
            id,
            slug: format!("c{id}"),
            name: String::new(),
            footage_type: crate::catalog::FootageType::Modern,
            make: make.map(String::from),
            model: model.map(String::from),
            serial: serial.map(String::from),
            auto,
            merged_into: None,
        }
    }

    fn info(make: &str, model: Option<&str>, serial: Option<&str>) -> MediaInfo {
        MediaInfo {
            make: Some(make.into()),
            model: model.map(String::from),
            serial: serial.map(String::from),
            captured_at: None,
        }
    }

    #[test]
    fn serial_wins_and_other_serials_never_fit() {
        let cams = vec![
            cam(1, Some("Sony"), Some("ILCE-7SM3"), None, false),
            cam(2, Some("Sony"), Some("ILCE-7SM3"), Some("B"), false),
            cam(3, None, None, None, false),
        ];
        assert_eq!(match_camera(&cams, &info("SONY", Some("ILCE-7SM3"), Some("B"))).map(|c| c.id), Some(2));
        assert_eq!(match_camera(&cams, &info("Sony", Some("ILCE-7SM3"), Some("A"))).map(|c| c.id), Some(1));
        assert_eq!(match_camera(&cams, &info("Sony", Some("FX3"), None)).map(|c| c.id), None);
        // A serial-only rule.
        let cams = vec![cam(4, None, None, Some("X1"), false)];
        assert_eq!(match_camera(&cams, &info("Canon", Some("R5"), Some("X1"))).map(|c| c.id), Some(4));
        // A camera routing created from a layout hint (make only) does not swallow richer metadata.
        let cams = vec![cam(5, Some("Sony"), None, None, true)];
        assert!(match_camera(&cams, &info("Sony", Some("FX3"), None)).is_none());
        assert_eq!(match_camera(&cams, &info("Sony", None, None)).map(|c| c.id), Some(5));
    }

    #[test]
    fn camera_names() {
        assert_eq!(camera_name(&info("Sony", Some("ILCE-7SM3"), None)).unwrap().1, "sony-ilce-7sm3");
        assert_eq!(camera_name(&info("Canon", Some("Canon EOS R5"), None)).unwrap().0, "Canon EOS R5");
        assert_eq!(camera_name(&info("GoPro", None, None)).unwrap().1, "gopro");
    }

    #[test]
    fn sidecars_pair_with_clips() {
        let names: Vec<&[u8]> = vec![
            b"C0001.MP4",
            b"C0001M01.XML",
            b"C0002.MP4",
            b"GX010001.MP4",
            b"GL010001.LRV",
            b"GX010001.THM",
            b"README.XML",
        ];
        let p = pair_sidecars(&names);
        assert_eq!(p, vec![None, Some(0), None, None, Some(3), Some(3), None]);
    }
}
