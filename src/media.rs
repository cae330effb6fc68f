//! Camera identity and capture time read straight from media bytes, without ffmpeg. This module owns
//! [`MediaInfo`] and the three ways of filling it: [`read_file`] (a bounded ISO-BMFF box walker for
//! MP4/MOV/M4V/3GP covering QuickTime `udta` text atoms, `mdta` keys/ilst metadata, `mvhd` times and the
//! Sony NonRealTimeMeta XML that XAVC embeds, plus kamadak-exif for JPEG/TIFF/HEIC stills),
//! [`parse_sony_xml`] (Sony `M01.XML` sidecars) and [`layout_hint`] (card folder layouts as a last resort).
//! Every read is capped, so damaged or hostile files cost bounded memory and I/O and never panic.
//!
//! The box walker is kept rather than `mp4-atom` (0.17) or `nom-exif` (3.8), tried on the ffmpeg clips the tests
//! make and on this module's fixtures: nom-exif found no make or model in any of them (it reads Apple keys only in
//! `moov/meta`, where ffmpeg writes `moov/udta/meta`, and no `©mak`/`©mod` text atoms), and gave 1904 for an unset
//! `mvhd` time; mp4-atom decodes the `mdta` keys but drops `udta` text atoms, leaves `xml ` as unknown bytes, and
//! both give nothing at all for a `moov` cut short (this walker keeps what came before the cut). Neither reads
//! serial numbers or Sony's NonRealTimeMeta, and both want the whole `moov` in memory.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use tracing::debug;

/// What a file says about the camera that made it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MediaInfo {
    pub make: Option<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
    /// Capture time, Unix seconds UTC.
    pub captured_at: Option<i64>,
}

impl MediaInfo {
    /// Fields of self win; missing ones are taken from other.
    pub fn or(self, other: MediaInfo) -> MediaInfo {
        MediaInfo {
            make: self.make.or(other.make),
            model: self.model.or(other.model),
            serial: self.serial.or(other.serial),
            captured_at: self.captured_at.or(other.captured_at),
        }
    }

    /// True when there is no make, model or serial (the capture time does not count).
    pub fn is_empty(&self) -> bool {
        self.make.is_none() && self.model.is_none() && self.serial.is_none()
    }

    fn is_blank(&self) -> bool {
        self.is_empty() && self.captured_at.is_none()
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------------------------------

/// Largest box that is ever read into memory whole.
const MAX_BOX_READ: u64 = 16 << 20;
/// Largest `ilst` item or `udta` text atom read whole: metadata strings are tiny, cover art is not wanted.
const MAX_ITEM_READ: u64 = 1 << 20;
/// Nesting limit for the box walker.
const MAX_DEPTH: u32 = 8;
/// Box headers read per file before giving up (stops a file of millions of tiny boxes).
const MAX_BOXES: u32 = 100_000;
/// Bytes searched for the Sony XML at each end of a file.
const XML_WINDOW: u64 = 4 << 20;
/// Bytes kamadak-exif may read from a HEIF, and bytes of a TIFF handed to it.
const MAX_EXIF_READ: u64 = 16 << 20;
/// JPEG marker segments walked before giving up.
const MAX_JPEG_SEGMENTS: u32 = 1024;
/// Seconds between 1904-01-01 (QuickTime epoch) and 1970-01-01.
const QT_EPOCH_OFFSET: i64 = 2_082_844_800;

// ---------------------------------------------------------------------------------------------------------------
// Sony NonRealTimeMeta XML
// ---------------------------------------------------------------------------------------------------------------

/// Sony NonRealTimeMeta XML (an M01.XML sidecar, or the same XML embedded in an XAVC MP4).
/// `<Device manufacturer=".." modelName=".." serialNo=".."/>` and `<CreationDate value="2025-12-31T14:03:00+01:00"/>`.
pub fn parse_sony_xml(xml: &[u8]) -> Option<MediaInfo> {
    let mut reader = quick_xml::Reader::from_reader(xml);
    {
        let cfg = reader.config_mut();
        cfg.check_end_names = false;
        cfg.allow_unmatched_ends = true;
    }
    let mut info = MediaInfo::default();
    loop {
        let ev = match reader.read_event() {
            Ok(ev) => ev,
            Err(e) => {
                // Keep whatever came before the damage.
                debug!(error = %e, "sony xml: parse stopped");
                break;
            }
        };
        let el = match ev {
            quick_xml::events::Event::Start(el) | quick_xml::events::Event::Empty(el) => el,
            quick_xml::events::Event::Eof => break,
            _ => continue,
        };
        let local = el.local_name();
        let is_device = local.as_ref() == b"Device";
        let is_date = local.as_ref() == b"CreationDate";
        if !is_device && !is_date {
            continue;
        }
        for attr in el.attributes().with_checks(false).flatten() {
            let value = match attr.normalized_value(quick_xml::XmlVersion::Implicit1_0) {
                Ok(v) => v,
                Err(_) => String::from_utf8_lossy(&attr.value).into_owned().into(),
            };
            let key = attr.key.local_name();
            match (is_device, key.as_ref()) {
                (true, b"manufacturer") => set_if_none(&mut info.make, clean_str(&value)),
                (true, b"modelName") => set_if_none(&mut info.model, clean_str(&value)),
                (true, b"serialNo") => set_if_none(&mut info.serial, clean_str(&value)),
                (false, b"value") if info.captured_at.is_none() => info.captured_at = parse_datetime(&value),
                _ => {}
            }
        }
    }
    (!info.is_blank()).then_some(info)
}

/// Finds `<?xml ...?><NonRealTimeMeta ...>...</NonRealTimeMeta>` (declaration optional) in a byte window.
fn find_sony_xml(buf: &[u8]) -> Option<MediaInfo> {
    const OPEN: &[u8] = b"<NonRealTimeMeta";
    const CLOSE: &[u8] = b"</NonRealTimeMeta>";
    let mut from = 0;
    while let Some(start) = find(buf, OPEN, from) {
        let end = find(buf, CLOSE, start)? + CLOSE.len();
        // Include the XML declaration when it sits just before the element.
        let decl_floor = start.saturating_sub(1024);
        let begin = rfind(&buf[decl_floor..start], b"<?xml").map_or(start, |i| decl_floor + i);
        if let Some(info) = parse_sony_xml(&buf[begin..end]) {
            return Some(info);
        }
        from = start + OPEN.len();
    }
    None
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let first = *needle.first()?;
    let mut i = from;
    while i + needle.len() <= hay.len() {
        let off = hay[i..hay.len() + 1 - needle.len()].iter().position(|&b| b == first)?;
        i += off;
        if hay[i..].starts_with(needle) {
            return Some(i);
        }
        i += 1;
    }
    None
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    (0..=hay.len() - needle.len()).rev().find(|&i| hay[i..].starts_with(needle))
}

// ---------------------------------------------------------------------------------------------------------------
// Card layout hints
// ---------------------------------------------------------------------------------------------------------------

/// Card layout as a hint when metadata is missing, from the file's path relative to the card root
/// (bytes, '/'-separated, match case-insensitively):
/// PRIVATE/M4ROOT/CLIP/... -> make "Sony"; DCIM/1xxGOPRO/... (1xx = three digits starting with 1) -> make "GoPro";
/// PRIVATE/AVCHD/BDMV/STREAM/... -> make "AVCHD" ; CONTENTS/CLIPS001/... (CLIPS followed by digits) -> make "Canon".
/// Model and serial None. The pattern may appear below any prefix (a card copied into a folder).
pub fn layout_hint(rel_path: &[u8]) -> Option<MediaInfo> {
    let parts: Vec<&[u8]> = rel_path.split(|&b| b == b'/').filter(|p| !p.is_empty()).collect();
    let is = |p: &[u8], name: &str| p.eq_ignore_ascii_case(name.as_bytes());
    let gopro_dir = |p: &[u8]| {
        p.len() == 8 && p[0] == b'1' && p[1..3].iter().all(u8::is_ascii_digit) && p[3..].eq_ignore_ascii_case(b"GOPRO")
    };
    let canon_dir =
        |p: &[u8]| p.len() > 5 && p[..5].eq_ignore_ascii_case(b"CLIPS") && p[5..].iter().all(u8::is_ascii_digit);
    // Each pattern needs at least one component (the file or a deeper folder) after it.
    for i in 0..parts.len() {
        let rest = &parts[i..];
        let make = match rest {
            [a, b, c, _, ..] if is(a, "PRIVATE") && is(b, "M4ROOT") && is(c, "CLIP") => "Sony",
            [a, b, c, d, _, ..] if is(a, "PRIVATE") && is(b, "AVCHD") && is(c, "BDMV") && is(d, "STREAM") => "AVCHD",
            [a, b, _, ..] if is(a, "DCIM") && gopro_dir(b) => "GoPro",
            [a, b, _, ..] if is(a, "CONTENTS") && canon_dir(b) => "Canon",
            _ => continue,
        };
        return Some(MediaInfo { make: Some(make.to_string()), ..MediaInfo::default() });
    }
    None
}

// ---------------------------------------------------------------------------------------------------------------
// File reading
// ---------------------------------------------------------------------------------------------------------------

/// Reads what a file's own bytes say. Never panics and never reads the whole of a large file: for ISO-BMFF
/// (MP4/MOV/M4V/3GP, detected by the `ftyp` box or a `moov`/`mdat`/`wide`/`free` first box) walk boxes with
/// 64-bit sizes and size 0 (to end of file), seeking past `mdat`; for JPEG/TIFF/HEIC-EXIF stills use kamadak-exif;
/// otherwise return Ok(MediaInfo::default()). Err(reason) only for I/O errors or a damaged structure that stopped
/// reading; a truncated file must give whatever was read before the damage as Ok if anything was found.
pub fn read_file(path: &Path) -> Result<MediaInfo, String> {
    let mut file = File::open(path).map_err(|e| format!("open: {e}"))?;
    let len = file.metadata().map_err(|e| format!("stat: {e}"))?.len();
    let res = read_stream(&mut file, len);
    match &res {
        Ok(info) => debug!(path = %path.display(), ?info, "media metadata"),
        Err(reason) => debug!(path = %path.display(), %reason, "media metadata unreadable"),
    }
    res
}

/// [`read_file`] over a stored blob of any blob store (read at offsets; nothing is read twice from the store).
pub fn read_blob(blob: &dyn crate::blobs::BlobReader) -> Result<MediaInfo, String> {
    read_stream(&mut crate::blobs::ReadAtCursor::new(blob), blob.len())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Bmff,
    Jpeg,
    Tiff,
    Other,
}

fn sniff(head: &[u8]) -> Kind {
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Kind::Jpeg
    } else if head.starts_with(b"II*\0") || head.starts_with(b"MM\0*") {
        Kind::Tiff
    } else if head.len() >= 8 && matches!(&head[4..8], b"ftyp" | b"moov" | b"mdat" | b"wide" | b"free" | b"skip") {
        Kind::Bmff
    } else {
        Kind::Other
    }
}

/// The whole reader over any seekable byte source of known length (a file in production, memory in tests).
fn read_stream<R: Read + Seek>(r: &mut R, len: u64) -> Result<MediaInfo, String> {
    let head = read_at(r, 0, 16.min(len)).map_err(io_err)?;
    match sniff(&head) {
        Kind::Bmff => read_bmff(r, len),
        Kind::Jpeg => read_jpeg(r, len),
        Kind::Tiff => {
            let data = read_at(r, 0, len.min(MAX_EXIF_READ)).map_err(io_err)?;
            exif_outcome(exif::Reader::new().continue_on_error(true).read_raw(data))
        }
        Kind::Other => Ok(MediaInfo::default()),
    }
}

fn io_err(e: io::Error) -> String {
    format!("I/O error: {e}")
}

/// Reads up to `len` bytes at `off` (fewer if the source ends early). Callers cap `len`.
fn read_at<R: Read + Seek>(r: &mut R, off: u64, len: u64) -> io::Result<Vec<u8>> {
    r.seek(SeekFrom::Start(off))?;
    let mut buf = Vec::with_capacity(usize::try_from(len.min(MAX_BOX_READ)).unwrap_or(0));
    r.by_ref().take(len).read_to_end(&mut buf)?;
    Ok(buf)
}

// ---------------------------------------------------------------------------------------------------------------
// ISO-BMFF
// ---------------------------------------------------------------------------------------------------------------

const TOP: [u8; 4] = [0; 4];

struct BoxHeader {
    typ: [u8; 4],
    /// Offset of the first payload byte.
    payload: u64,
    /// End of the box, clamped to its parent.
    end: u64,
    /// The box claimed to extend past its parent or the end of file.
    truncated: bool,
}

impl BoxHeader {
    fn payload_len(&self) -> u64 {
        self.end.saturating_sub(self.payload)
    }
}

/// One `meta` box's worth of `keys` and `ilst` items, resolved once the box is done (keys may follow ilst).
#[derive(Default)]
struct MetaBox {
    keys: Vec<String>,
    /// (item box type, data type, value)
    items: Vec<(u32, u32, Vec<u8>)>,
}

struct Bmff<'r, R> {
    r: &'r mut R,
    boxes_left: u32,
    damage: Option<String>,
    heif: bool,
    /// From `moov/udta/©mak|©mod|©day`.
    udta: MediaInfo,
    /// From `meta` keys/ilst.
    keys: MediaInfo,
    mvhd_time: Option<i64>,
    /// From an `xml ` box inside `meta`.
    xml: Option<MediaInfo>,
}

fn read_bmff<R: Read + Seek>(r: &mut R, len: u64) -> Result<MediaInfo, String> {
    let mut w = Bmff {
        r,
        boxes_left: MAX_BOXES,
        damage: None,
        heif: false,
        udta: MediaInfo::default(),
        keys: MediaInfo::default(),
        mvhd_time: None,
        xml: None,
    };
    w.walk(0, len, 0, TOP).map_err(io_err)?;
    let (heif, damage) = (w.heif, w.damage.take());
    let (udta, keys, mvhd_time, box_xml) = (w.udta, w.keys, w.mvhd_time, w.xml);

    let xml = match box_xml {
        Some(x) => Some(x),
        None => search_sony_xml(r, len).map_err(io_err)?,
    };
    let mut info = xml.unwrap_or_default().or(keys).or(udta);
    info.captured_at = info.captured_at.or(mvhd_time);

    if heif {
        r.seek(SeekFrom::Start(0)).map_err(io_err)?;
        let mut src = BufReader::new(Capped { inner: &mut *r, left: MAX_EXIF_READ });
        match exif_outcome(exif::Reader::new().continue_on_error(true).read_from_container(&mut src)) {
            Ok(still) => info = still.or(info),
            Err(e) if info.is_blank() => return Err(e),
            Err(e) => debug!(reason = %e, "heif exif unreadable; keeping box metadata"),
        }
    }

    match damage {
        Some(reason) if info.is_blank() => Err(reason),
        Some(reason) => {
            debug!(%reason, "damaged ISO-BMFF file; returning what was read before the damage");
            Ok(info)
        }
        None => Ok(info),
    }
}

/// Searches the first and last [`XML_WINDOW`] bytes for embedded NonRealTimeMeta.
fn search_sony_xml<R: Read + Seek>(r: &mut R, len: u64) -> io::Result<Option<MediaInfo>> {
    if len <= 2 * XML_WINDOW {
        let all = read_at(r, 0, len)?;
        return Ok(find_sony_xml(&all));
    }
    let head = read_at(r, 0, XML_WINDOW)?;
    if let Some(info) = find_sony_xml(&head) {
        return Ok(Some(info));
    }
    drop(head);
    let tail = read_at(r, len - XML_WINDOW, XML_WINDOW)?;
    Ok(find_sony_xml(&tail))
}

impl<R: Read + Seek> Bmff<'_, R> {
    fn note_damage(&mut self, reason: String) {
        if self.damage.is_none() {
            self.damage = Some(reason);
        }
    }

    /// Reads the header of the box at `pos` inside a parent ending at `end`.
    fn next_box(&mut self, pos: u64, end: u64) -> io::Result<Option<BoxHeader>> {
        // Fewer than 8 bytes left: padding or a QuickTime udta terminator (u32 0), not a box.
        if end.saturating_sub(pos) < 8 {
            return Ok(None);
        }
        if self.boxes_left == 0 {
            self.note_damage(format!("more than {MAX_BOXES} boxes; stopped at offset {pos}"));
            return Ok(None);
        }
        self.boxes_left -= 1;
        let hdr = read_at(self.r, pos, 16.min(end - pos))?;
        if hdr.len() < 8 {
            self.note_damage(format!("file ended inside a box header at offset {pos}"));
            return Ok(None);
        }
        let typ = [hdr[4], hdr[5], hdr[6], hdr[7]];
        let (size, header_len) = match be_u32(&hdr[0..4]) {
            0 => (end - pos, 8),
            1 => match hdr.get(8..16) {
                Some(b) => (be_u64(b), 16),
                None => {
                    self.note_damage(format!("box '{}' at offset {pos}: missing 64-bit size", fourcc(&typ)));
                    return Ok(None);
                }
            },
            n => (u64::from(n), 8),
        };
        if size < header_len {
            self.note_damage(format!("box '{}' at offset {pos} has invalid size {size}", fourcc(&typ)));
            return Ok(None);
        }
        let claimed_end = pos.saturating_add(size);
        let truncated = claimed_end > end;
        if truncated {
            self.note_damage(format!(
                "box '{}' at offset {pos} claims {size} bytes, past the end of its parent or the file at {end}",
                fourcc(&typ)
            ));
        }
        Ok(Some(BoxHeader { typ, payload: pos + header_len, end: claimed_end.min(end), truncated }))
    }

    /// Walks the boxes in `[start, end)`, the children of `parent`.
    fn walk(&mut self, start: u64, end: u64, depth: u32, parent: [u8; 4]) -> io::Result<()> {
        if depth >= MAX_DEPTH {
            return Ok(());
        }
        let mut pos = start;
        while let Some(h) = self.next_box(pos, end)? {
            self.visit(&h, depth, parent)?;
            if h.truncated {
                break;
            }
            pos = h.end;
        }
        Ok(())
    }

    /// Reads a leaf box's payload whole, or None if it is truncated (a cut leaf would give wrong values)
    /// or larger than `cap`.
    fn leaf(&mut self, h: &BoxHeader, cap: u64) -> io::Result<Option<Vec<u8>>> {
        if h.truncated || h.payload_len() > cap {
            return Ok(None);
        }
        read_at(self.r, h.payload, h.payload_len()).map(Some)
    }

    fn visit(&mut self, h: &BoxHeader, depth: u32, parent: [u8; 4]) -> io::Result<()> {
        match (&parent, &h.typ) {
            (&TOP, b"ftyp") => {
                if let Some(p) = self.leaf(h, 4096)? {
                    self.heif = ftyp_is_heif(&p);
                }
            }
            (&TOP, b"moov") => self.walk(h.payload, h.end, depth + 1, h.typ)?,
            (b"moov", b"mvhd") => {
                if let Some(p) = self.leaf(h, 4096)? {
                    if self.mvhd_time.is_none() {
                        self.mvhd_time = parse_mvhd(&p);
                    }
                }
            }
            (b"moov", b"udta") => self.walk(h.payload, h.end, depth + 1, h.typ)?,
            (b"moov" | b"udta", b"meta") => self.meta(h, depth + 1)?,
            (b"udta", b"\xA9mak" | b"\xA9mod" | b"\xA9day") => {
                if let Some(p) = self.leaf(h, MAX_ITEM_READ)? {
                    let text = parse_qt_text(&p);
                    match &h.typ {
                        b"\xA9mak" => set_if_none(&mut self.udta.make, text),
                        b"\xA9mod" => set_if_none(&mut self.udta.model, text),
                        _ if self.udta.captured_at.is_none() => {
                            self.udta.captured_at = text.as_deref().and_then(parse_datetime)
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// A `meta` box: a plain container in QuickTime, a full box (4 bytes version/flags first) in MP4.
    fn meta(&mut self, h: &BoxHeader, depth: u32) -> io::Result<()> {
        if depth >= MAX_DEPTH {
            return Ok(());
        }
        let avail = h.payload_len();
        let peek = read_at(self.r, h.payload, 8.min(avail))?;
        let start = if looks_like_box(&peek, avail) { h.payload } else { h.payload + 4 };

        let mut meta = MetaBox::default();
        let mut pos = start;
        while let Some(c) = self.next_box(pos, h.end)? {
            match &c.typ {
                b"keys" => {
                    if let Some(p) = self.leaf(&c, MAX_BOX_READ)? {
                        meta.keys = parse_keys(&p);
                    }
                }
                b"ilst" => self.ilst(&c, &mut meta)?,
                b"xml " => {
                    if let Some(p) = self.leaf(&c, MAX_BOX_READ)? {
                        if self.xml.is_none() {
                            // Full box: skip version/flags if the text does not start right away.
                            let text = p.iter().position(|&b| b == b'<').map_or(&p[..0], |i| &p[i..]);
                            self.xml = parse_sony_xml(text);
                        }
                    }
                }
                _ => {}
            }
            if c.truncated {
                break;
            }
            pos = c.end;
        }
        self.resolve_meta(meta);
        Ok(())
    }

    fn ilst(&mut self, h: &BoxHeader, meta: &mut MetaBox) -> io::Result<()> {
        let mut pos = h.payload;
        while let Some(item) = self.next_box(pos, h.end)? {
            if let Some(p) = self.leaf(&item, MAX_ITEM_READ)? {
                if let Some((_, data)) = child_boxes(&p).into_iter().find(|(t, b)| t == b"data" && b.len() >= 8) {
                    let dtype = be_u32(&data[0..4]) & 0x00FF_FFFF;
                    meta.items.push((be_u32(&item.typ), dtype, data[8..].to_vec()));
                }
            }
            if item.truncated {
                break;
            }
            pos = item.end;
        }
        Ok(())
    }

    fn resolve_meta(&mut self, meta: MetaBox) {
        for (typ, dtype, value) in meta.items {
            let role = match typ.to_be_bytes() {
                [0xA9, b'm', b'a', b'k'] => Some(Role::Make),
                [0xA9, b'm', b'o', b'd'] => Some(Role::Model),
                [0xA9, b'd', b'a', b'y'] => Some(Role::Date),
                _ => usize::try_from(typ)
                    .ok()
                    .and_then(|i| i.checked_sub(1))
                    .and_then(|i| meta.keys.get(i))
                    .and_then(|k| key_role(k)),
            };
            let Some(role) = role else { continue };
            let text = decode_data(dtype, &value);
            match role {
                Role::Make => set_if_none(&mut self.keys.make, text),
                Role::Model => set_if_none(&mut self.keys.model, text),
                Role::Serial => set_if_none(&mut self.keys.serial, text),
                Role::Date => {
                    if self.keys.captured_at.is_none() {
                        self.keys.captured_at = text.as_deref().and_then(parse_datetime);
                    }
                }
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Make,
    Model,
    Serial,
    Date,
}

/// Maps a metadata key (`com.apple.quicktime.make`, ...) to what it carries.
fn key_role(key: &str) -> Option<Role> {
    let k = key.to_ascii_lowercase();
    if k.ends_with(".make") || k.ends_with(".manufacturer") {
        Some(Role::Make)
    } else if k.ends_with(".model") {
        Some(Role::Model)
    } else if k.ends_with(".creationdate") {
        Some(Role::Date)
    } else if k.ends_with(".serial") || k.ends_with("serialnumber") {
        Some(Role::Serial)
    } else {
        None
    }
}

/// True when the 8 bytes look like a child box header (sane size, printable type).
fn looks_like_box(b: &[u8], avail: u64) -> bool {
    let Some(hdr) = b.get(0..8) else { return false };
    let size = u64::from(be_u32(&hdr[0..4]));
    let size_ok = size == 1 || (8..=avail).contains(&size);
    size_ok && hdr[4..8].iter().all(|&c| c == 0xA9 || c == b' ' || c.is_ascii_graphic())
}

/// `ftyp` payload: major brand, minor version, compatible brands. HEIF stills list `mif1`/`msf1`.
fn ftyp_is_heif(p: &[u8]) -> bool {
    let major = p.get(0..4);
    let compat = p.get(8..).unwrap_or(&[]);
    major.is_some_and(|m| matches!(m, b"heic" | b"heix" | b"mif1" | b"msf1" | b"avif"))
        || compat.chunks_exact(4).any(|b| b == b"mif1" || b == b"msf1")
}

/// `mvhd` creation time (version 0: u32, version 1: u64, seconds since 1904). 0 means unset.
fn parse_mvhd(p: &[u8]) -> Option<i64> {
    let secs = match p.first()? {
        0 => u64::from(be_u32(p.get(4..8)?)),
        1 => be_u64(p.get(4..12)?),
        _ => return None,
    };
    if secs == 0 {
        return None;
    }
    i64::try_from(secs).ok()?.checked_sub(QT_EPOCH_OFFSET)
}

/// Parses a `keys` payload. Apple's layout is a full box (version/flags, then u32 entry count); some writers
/// omit the version/flags, so both are tried.
fn parse_keys(p: &[u8]) -> Vec<String> {
    fn try_at(p: &[u8], at: usize) -> Option<Vec<String>> {
        let count = be_u32(p.get(at..at + 4)?);
        let mut i = at + 4;
        let mut out = Vec::new();
        for _ in 0..count {
            let size = usize::try_from(be_u32(p.get(i..i + 4)?)).ok()?;
            if size < 8 {
                return None;
            }
            let ns = p.get(i + 4..i + 8)?;
            if !ns.iter().all(u8::is_ascii_graphic) {
                return None;
            }
            out.push(String::from_utf8_lossy(p.get(i + 8..i.checked_add(size)?)?).into_owned());
            i += size;
        }
        Some(out)
    }
    try_at(p, 4).or_else(|| try_at(p, 0)).unwrap_or_default()
}

/// Boxes inside an in-memory payload, clamped to it; stops at the first invalid size.
fn child_boxes(p: &[u8]) -> Vec<([u8; 4], &[u8])> {
    let mut out = Vec::new();
    let mut i = 0usize;
    while p.len() - i >= 8 && out.len() < 256 {
        let typ = [p[i + 4], p[i + 5], p[i + 6], p[i + 7]];
        let (size, hl) = match be_u32(&p[i..i + 4]) {
            0 => ((p.len() - i) as u64, 8),
            1 => match p.get(i + 8..i + 16) {
                Some(b) => (be_u64(b), 16),
                None => break,
            },
            n => (u64::from(n), 8),
        };
        if size < hl {
            break;
        }
        let end = usize::try_from(size).ok().and_then(|s| i.checked_add(s)).map_or(p.len(), |e| e.min(p.len()));
        out.push((typ, &p[i + hl as usize..end]));
        i = end;
    }
    out
}

/// Payload of a QuickTime `©xxx` user-data atom: either QuickTime text atoms (u16 length, u16 language, text)
/// or an iTunes-style `data` box. Returns the first non-empty string.
fn parse_qt_text(p: &[u8]) -> Option<String> {
    if p.get(4..8) == Some(b"data") {
        return child_boxes(p)
            .into_iter()
            .filter(|(t, b)| t == b"data" && b.len() >= 8)
            .find_map(|(_, b)| decode_data(be_u32(&b[0..4]) & 0x00FF_FFFF, &b[8..]));
    }
    let mut i = 0usize;
    while let Some(hdr) = p.get(i..i + 4) {
        let n = usize::from(u16::from_be_bytes([hdr[0], hdr[1]]));
        let start = i + 4;
        let text = &p[start..(start + n).min(p.len())];
        // Language codes below 0x400 mean Mac text encodings; ASCII is the same in all of them.
        if let Some(s) = clean_bytes(text) {
            return Some(s);
        }
        i = start + n;
    }
    None
}

/// Decodes an iTunes/QuickTime `data` value by its well-known type.
fn decode_data(dtype: u32, v: &[u8]) -> Option<String> {
    match dtype {
        0 | 1 => clean_bytes(v),
        2 => {
            let units: Vec<u16> = v.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
            clean_str(&String::from_utf16_lossy(&units))
        }
        21 => match v.len() {
            1 | 2 | 4 | 8 => {
                let mut n = if v[0] & 0x80 != 0 { -1i64 } else { 0 };
                for &b in v {
                    n = (n << 8) | i64::from(b);
                }
                Some(n.to_string())
            }
            _ => None,
        },
        22 => match v.len() {
            1 | 2 | 4 | 8 => Some(v.iter().fold(0u64, |n, &b| (n << 8) | u64::from(b)).to_string()),
            _ => None,
        },
        _ => None,
    }
}

/// A read-only source that errors after `left` bytes, so a library cannot read a whole large file.
struct Capped<'r, R> {
    inner: &'r mut R,
    left: u64,
}

impl<R: Read> Read for Capped<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Err(io::Error::other("read limit reached"));
        }
        let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

impl<R: Seek> Seek for Capped<'_, R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// JPEG / EXIF
// ---------------------------------------------------------------------------------------------------------------

/// Walks JPEG marker segments up to the first scan, looking for APP1 "Exif\0\0". Never scans entropy data.
fn read_jpeg<R: Read + Seek>(r: &mut R, len: u64) -> Result<MediaInfo, String> {
    let mut pos = 2u64;
    for _ in 0..MAX_JPEG_SEGMENTS {
        let hdr = read_at(r, pos, 4.min(len.saturating_sub(pos))).map_err(io_err)?;
        if hdr.len() < 2 || hdr[0] != 0xFF {
            break;
        }
        let code = hdr[1];
        match code {
            // Fill byte: the marker code follows.
            0xFF => {
                pos += 1;
                continue;
            }
            // Stand-alone markers without a length.
            0x01 | 0xD0..=0xD7 => {
                pos += 2;
                continue;
            }
            // SOI again, EOI, or start of scan: no EXIF before the image data.
            0xD8..=0xDA => break,
            _ => {}
        }
        if hdr.len() < 4 {
            break;
        }
        let seg_len = u64::from(u16::from_be_bytes([hdr[2], hdr[3]]));
        if seg_len < 2 {
            return Err(format!("JPEG segment at offset {pos} has invalid length {seg_len}"));
        }
        if code == 0xE1 {
            let seg = read_at(r, pos + 4, seg_len - 2).map_err(io_err)?;
            if let Some(tiff) = seg.strip_prefix(b"Exif\0\0") {
                return exif_outcome(exif::Reader::new().continue_on_error(true).read_raw(tiff.to_vec()));
            }
        }
        pos += 2 + seg_len;
    }
    Ok(MediaInfo::default())
}

fn exif_outcome(res: Result<exif::Exif, exif::Error>) -> Result<MediaInfo, String> {
    let res = res.or_else(|e| {
        e.distill_partial_result(|errors| {
            for e in errors {
                debug!(error = %e, "exif: ignored error");
            }
        })
    });
    match res {
        Ok(exif) => Ok(exif_info(&exif)),
        Err(exif::Error::NotFound(_)) => Ok(MediaInfo::default()),
        Err(exif::Error::Io(e)) => Err(io_err(e)),
        Err(e) => Err(format!("EXIF: {e}")),
    }
}

fn exif_info(exif: &exif::Exif) -> MediaInfo {
    use exif::{Context, In, Tag};
    let text = |tag: Tag| -> Option<String> {
        match &exif.get_field(tag, In::PRIMARY)?.value {
            exif::Value::Ascii(parts) => parts.iter().find_map(|p| clean_bytes(p)),
            exif::Value::Undefined(bytes, _) => clean_bytes(bytes.split(|&b| b == 0).next().unwrap_or(&[])),
            _ => None,
        }
    };
    // DNG/others keep CameraSerialNumber (0xC62F) in IFD0; Canon's own lives in the MakerNote, not parsed here.
    let serial = text(Tag::BodySerialNumber).or_else(|| text(Tag(Context::Tiff, 0xC62F)));
    let captured_at =
        [(Tag::DateTimeOriginal, Tag::OffsetTimeOriginal), (Tag::DateTimeDigitized, Tag::OffsetTimeDigitized)]
            .into_iter()
            .find_map(|(dt, off)| {
                let local = text(dt)?;
                // Without an offset tag the wall-clock time is taken as UTC: EXIF carries no zone, and guessing
                // the machine's zone would make results depend on where the archive runs.
                match text(off) {
                    Some(o) => parse_datetime(&format!("{local}{o}")).or_else(|| parse_datetime(&local)),
                    None => parse_datetime(&local),
                }
            });
    MediaInfo { make: text(Tag::Make), model: text(Tag::Model), serial, captured_at }
}

// ---------------------------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------------------------

fn be_u32(b: &[u8]) -> u32 {
    b.iter().take(4).fold(0, |n, &x| (n << 8) | u32::from(x))
}

fn be_u64(b: &[u8]) -> u64 {
    b.iter().take(8).fold(0, |n, &x| (n << 8) | u64::from(x))
}

fn fourcc(t: &[u8; 4]) -> String {
    t.iter()
        .map(|&c| {
            if c == 0xA9 {
                '©'
            } else if c.is_ascii_graphic() || c == b' ' {
                c as char
            } else {
                '?'
            }
        })
        .collect()
}

fn set_if_none(slot: &mut Option<String>, value: Option<String>) {
    if slot.is_none() {
        *slot = value;
    }
}

/// Trims NULs and whitespace; empty becomes None.
fn clean_str(s: &str) -> Option<String> {
    let t = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!t.is_empty()).then(|| t.to_string())
}

/// Like [`clean_str`] for bytes: UTF-8 when valid, otherwise Latin-1 (close to Mac Roman for camera names).
fn clean_bytes(b: &[u8]) -> Option<String> {
    match std::str::from_utf8(b) {
        Ok(s) => clean_str(s),
        Err(_) => clean_str(&b.iter().map(|&c| c as char).collect::<String>()),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Dates
// ---------------------------------------------------------------------------------------------------------------

/// Parses `YYYY-MM-DDTHH:MM:SS` (or a space for `T`) with an optional `.fraction` and an optional `Z`, `+hh`,
/// `+hhmm` or `+hh:mm` offset, and EXIF's `YYYY:MM:DD HH:MM:SS` (same optional suffixes), into Unix seconds.
/// No offset means UTC. Returns None for anything malformed or out of range (including EXIF's all-zero date).
/// The syntax is read here, the calendar by jiff: jiff's own parsers do not take EXIF's colons, and they take
/// more than cameras write (`14:03` without seconds, offsets up to 25 hours).
fn parse_datetime(s: &str) -> Option<i64> {
    let b = s.trim_matches(|c: char| c == '\0' || c.is_whitespace()).as_bytes();
    let mut p = Cursor { b, i: 0 };
    let year = p.num(4)?;
    let sep = p.byte_in(b"-:")?;
    let month = p.num(2)?;
    p.byte_in(&[sep])?;
    let day = p.num(2)?;
    p.byte_in(b"Tt ")?;
    let hour = p.num(2)?;
    p.byte_in(b":")?;
    let minute = p.num(2)?;
    p.byte_in(b":")?;
    let second = p.num(2)?;
    if p.byte_in(b".,").is_some() {
        if !p.peek().is_some_and(|c| c.is_ascii_digit()) {
            return None;
        }
        while p.peek().is_some_and(|c| c.is_ascii_digit()) {
            p.i += 1;
        }
    }
    let offset = match p.peek() {
        None => 0,
        Some(b'Z' | b'z') => {
            p.i += 1;
            0
        }
        Some(sign @ (b'+' | b'-')) => {
            p.i += 1;
            let oh = p.num(2)?;
            let om = if p.peek().is_none() {
                0
            } else {
                let _ = p.byte_in(b":");
                p.num(2)?
            };
            if oh > 23 || om > 59 {
                return None;
            }
            let secs = oh * 3600 + om * 60;
            if sign == b'-' {
                -secs
            } else {
                secs
            }
        }
        Some(_) => return None,
    };
    if p.peek().is_some() {
        return None;
    }
    // The calendar (month lengths, leap years) is jiff's; a leap second (`:60`) is read as `:59`, as jiff does.
    let n = |v: i64| i8::try_from(v).ok();
    let dt = jiff::civil::DateTime::new(
        i16::try_from(year).ok()?,
        n(month)?,
        n(day)?,
        n(hour)?,
        n(minute)?,
        n(second.min(59))?,
        0,
    )
    .ok()?;
    let offset = jiff::tz::Offset::from_seconds(i32::try_from(offset).ok()?).ok()?;
    Some(offset.to_timestamp(dt).ok()?.as_second())
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn byte_in(&mut self, set: &[u8]) -> Option<u8> {
        let c = self.peek().filter(|c| set.contains(c))?;
        self.i += 1;
        Some(c)
    }

    /// Exactly `n` ASCII digits.
    fn num(&mut self, n: usize) -> Option<i64> {
        let digits = self.b.get(self.i..self.i + n)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.i += n;
        Some(digits.iter().fold(0, |v, &d| v * 10 + i64::from(d - b'0')))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor as IoCursor;
    use std::path::PathBuf;

    /// 2025-12-31T14:03:00+01:00
    const T: i64 = 1_767_186_180;

    // ----- fixture builders --------------------------------------------------------------------------------------

    fn bx(typ: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut v = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(typ);
        v.extend_from_slice(payload);
        v
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    fn ftyp(major: &[u8; 4], compat: &[&[u8; 4]]) -> Vec<u8> {
        let mut p = major.to_vec();
        p.extend_from_slice(&[0, 0, 2, 0]);
        for c in compat {
            p.extend_from_slice(*c);
        }
        bx(b"ftyp", &p)
    }

    fn mvhd_v0(unix: i64) -> Vec<u8> {
        let qt = (unix + QT_EPOCH_OFFSET) as u32;
        let mut p = vec![0, 0, 0, 0];
        p.extend_from_slice(&qt.to_be_bytes()); // creation
        p.extend_from_slice(&qt.to_be_bytes()); // modification
        p.extend_from_slice(&1000u32.to_be_bytes()); // timescale
        p.extend_from_slice(&5000u32.to_be_bytes()); // duration
        p.extend_from_slice(&[0; 80]); // rate, volume, matrix, next track id, ...
        bx(b"mvhd", &p)
    }

    fn mvhd_v1(unix: i64) -> Vec<u8> {
        let qt = (unix + QT_EPOCH_OFFSET) as u64;
        let mut p = vec![1, 0, 0, 0];
        p.extend_from_slice(&qt.to_be_bytes());
        p.extend_from_slice(&qt.to_be_bytes());
        p.extend_from_slice(&1000u32.to_be_bytes());
        p.extend_from_slice(&5000u64.to_be_bytes());
        p.extend_from_slice(&[0; 80]);
        bx(b"mvhd", &p)
    }

    /// QuickTime text atom: u16 length, u16 language, text.
    fn text_atom(s: &str) -> Vec<u8> {
        let mut v = (s.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(&0x55C4u16.to_be_bytes()); // packed "und"
        v.extend_from_slice(s.as_bytes());
        v
    }

    fn data_box(s: &str) -> Vec<u8> {
        let mut p = vec![0, 0, 0, 1, 0, 0, 0, 0];
        p.extend_from_slice(s.as_bytes());
        bx(b"data", &p)
    }

    fn hdlr_mdta() -> Vec<u8> {
        let mut p = vec![0; 8]; // version/flags, pre_defined
        p.extend_from_slice(b"mdta");
        p.extend_from_slice(&[0; 12]);
        p.push(0);
        bx(b"hdlr", &p)
    }

    fn keys_box(keys: &[&str]) -> Vec<u8> {
        let mut p = vec![0, 0, 0, 0];
        p.extend_from_slice(&(keys.len() as u32).to_be_bytes());
        for k in keys {
            p.extend_from_slice(&((k.len() + 8) as u32).to_be_bytes());
            p.extend_from_slice(b"mdta");
            p.extend_from_slice(k.as_bytes());
        }
        bx(b"keys", &p)
    }

    /// `ilst` whose items are 1-based key indexes.
    fn ilst_box(items: &[(u32, &str)]) -> Vec<u8> {
        let body: Vec<u8> = items.iter().flat_map(|(i, s)| bx(&i.to_be_bytes(), &data_box(s))).collect();
        bx(b"ilst", &body)
    }

    const APPLE_KEYS: [&str; 4] = [
        "com.apple.quicktime.location.ISO6709",
        "com.apple.quicktime.make",
        "com.apple.quicktime.model",
        "com.apple.quicktime.creationdate",
    ];

    fn apple_ilst(date: &str) -> Vec<u8> {
        ilst_box(&[(4, date), (2, "Apple"), (3, "iPhone 15 Pro"), (1, "+52.3700+004.8900/")])
    }

    fn sony_xml(model: &str, serial: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<NonRealTimeMeta xmlns="urn:schemas-professionalDisc:nonRealTimeMeta:ver.2.00" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" lastUpdate="2025-12-31T14:05:12+01:00">
	<TargetMaterial umidRef="060A2B340101010501010D43130000009C4B2A2D80060000080046020117F1C2"/>
	<Duration value="4211"/>
	<LtcChangeTable tcFps="25" halfStep="false">
		<LtcChange frameCount="0" value="14030000" status="increment"/>
		<LtcChange frameCount="4210" value="10451614" status="end"/>
	</LtcChangeTable>
	<CreationDate value="2025-12-31T14:03:00+01:00"/>
	<VideoFormat>
		<VideoRecPort port="DIRECT"/>
		<VideoFrame videoCodec="AVC_3840_2160_HP@L51" captureFps="25p" formatFps="25p"/>
		<VideoLayout pixel="3840" numOfVerticalLine="2160" aspectRatio="16:9"/>
	</VideoFormat>
	<Device manufacturer="Sony" modelName="{model}" serialNo="{serial}"/>
	<RecordingMode type="normal" cacheRec="false"/>
	<Lens modelName="FE 24-70mm F2.8 GM II"/>
</NonRealTimeMeta>
"#
        )
    }

    struct TmpFile(PathBuf);

    impl TmpFile {
        fn new(name: &str, bytes: &[u8]) -> Self {
            let p = std::env::temp_dir().join(format!("nightfox-media-{}-{name}", std::process::id()));
            std::fs::write(&p, bytes).expect("write fixture");
            TmpFile(p)
        }
    }

    impl Drop for TmpFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn read_bytes(bytes: &[u8]) -> Result<MediaInfo, String> {
        read_stream(&mut IoCursor::new(bytes), bytes.len() as u64)
    }

    fn info(make: &str, model: &str, serial: Option<&str>, t: Option<i64>) -> MediaInfo {
        MediaInfo { make: Some(make.into()), model: Some(model.into()), serial: serial.map(Into::into), captured_at: t }
    }

    // ----- fixtures ----------------------------------------------------------------------------------------------

    fn mp4_udta(mdat_len: usize) -> Vec<u8> {
        let mak = bx(b"\xA9mak", &cat(&[&text_atom(""), &text_atom("Panasonic")]));
        let udta = bx(b"udta", &cat(&[&mak, &bx(b"\xA9mod", &text_atom("DC-GH5")), &[0, 0, 0, 0]]));
        let moov = bx(b"moov", &cat(&[&mvhd_v0(T), &udta]));
        cat(&[&ftyp(b"isom", &[b"isom", b"mp42"]), &bx(b"mdat", &vec![0u8; mdat_len]), &moov])
    }

    fn mov_keys() -> Vec<u8> {
        let meta = bx(b"meta", &cat(&[&hdlr_mdta(), &keys_box(&APPLE_KEYS), &apple_ilst("2025-12-31T14:03:00+0100")]));
        let moov = bx(b"moov", &cat(&[&mvhd_v0(T - 999), &meta]));
        cat(&[&ftyp(b"qt  ", &[b"qt  "]), &bx(b"wide", &[]), &bx(b"mdat", &[7; 64]), &moov])
    }

    fn mp4_udta_meta_fullbox() -> Vec<u8> {
        let mut keys = APPLE_KEYS.to_vec();
        keys.push("com.nightfox.test.serial");
        // ilst before keys: resolution must wait for the whole meta box.
        let ilst = ilst_box(&[(2, "Apple"), (3, "iPhone 15 Pro"), (4, "2025-12-31T14:03:00+01:00"), (5, "F2LXK123")]);
        let meta_payload = cat(&[&[0, 0, 0, 0], &hdlr_mdta(), &ilst, &keys_box(&keys)]);
        let udta = bx(b"udta", &bx(b"meta", &meta_payload));
        let moov = bx(b"moov", &cat(&[&mvhd_v1(T - 999), &udta]));
        cat(&[&ftyp(b"mp42", &[b"mp42", b"isom"]), &moov, &bx(b"mdat", &[1; 128])])
    }

    fn sony_uuid_after_mdat(mdat_len: usize) -> Vec<u8> {
        let udta = bx(b"udta", &cat(&[&bx(b"\xA9mak", &text_atom("SONY")), &bx(b"\xA9mod", &text_atom("XAVC"))]));
        let moov = bx(b"moov", &cat(&[&mvhd_v0(T - 999), &udta]));
        let mut uuid = b"PROF\x21\xd2\x4f\xce\xbb\x88\x69\x5c\xfa\xc9\xc7\x40".to_vec();
        uuid.extend_from_slice(sony_xml("ILCE-7SM3", "5012345").as_bytes());
        cat(&[
            &ftyp(b"XAVC", &[b"XAVC", b"mp42", b"iso2"]),
            &moov,
            &bx(b"mdat", &vec![0; mdat_len]),
            &bx(b"uuid", &uuid),
        ])
    }

    /// Big-endian TIFF: IFD0 with the given ASCII tags plus an ExifIFD pointer to the second list.
    fn tiff_be(ifd0: &[(u16, &str)], exif_ifd: &[(u16, &str)]) -> Vec<u8> {
        let ifd0_len = 2 + 12 * (ifd0.len() + 1) + 4;
        let exif_off = 8 + ifd0_len;
        let data_off = exif_off + 2 + 12 * exif_ifd.len() + 4;
        let mut data = Vec::new();
        let mut entry = |out: &mut Vec<u8>, tag: u16, s: &str| {
            let mut bytes = s.as_bytes().to_vec();
            bytes.push(0);
            out.extend_from_slice(&tag.to_be_bytes());
            out.extend_from_slice(&2u16.to_be_bytes());
            out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            if bytes.len() <= 4 {
                bytes.resize(4, 0);
                out.extend_from_slice(&bytes);
            } else {
                out.extend_from_slice(&((data_off + data.len()) as u32).to_be_bytes());
                data.extend_from_slice(&bytes);
            }
        };
        let mut out = b"MM\0\x2a\0\0\0\x08".to_vec();
        out.extend_from_slice(&((ifd0.len() + 1) as u16).to_be_bytes());
        for (tag, s) in ifd0 {
            entry(&mut out, *tag, s);
        }
        out.extend_from_slice(&0x8769u16.to_be_bytes());
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(&1u32.to_be_bytes());
        out.extend_from_slice(&(exif_off as u32).to_be_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&(exif_ifd.len() as u16).to_be_bytes());
        for (tag, s) in exif_ifd {
            entry(&mut out, *tag, s);
        }
        out.extend_from_slice(&[0; 4]);
        assert_eq!(out.len(), data_off);
        out.extend_from_slice(&data);
        out
    }

    fn jpeg(offset: Option<&str>) -> Vec<u8> {
        let mut exif_tags = vec![(0x9003, "2025:12:31 14:03:00")];
        if let Some(o) = offset {
            exif_tags.push((0x9011, o));
        }
        exif_tags.push((0xA431, "  3121804\0"));
        let tiff = tiff_be(&[(0x010F, "Canon"), (0x0110, "Canon EOS R5")], &exif_tags);
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&tiff);
        let mut v = vec![0xFF, 0xD8];
        v.extend_from_slice(&[0xFF, 0xE0, 0x00, 0x10]);
        v.extend_from_slice(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
        v.extend_from_slice(&[0xFF, 0xE1]);
        v.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
        v.extend_from_slice(&app1);
        v.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x08, 1, 1, 0, 0, 0x3F, 0]);
        v.extend_from_slice(&[0x12, 0x34, 0xFF, 0x00, 0x56]);
        v.extend_from_slice(&[0xFF, 0xD9]);
        v
    }

    // ----- ISO-BMFF ----------------------------------------------------------------------------------------------

    #[test]
    fn mp4_udta_text_atoms_mvhd_and_1mib_mdat() {
        let f = TmpFile::new("udta.mp4", &mp4_udta(1 << 20));
        assert_eq!(read_file(&f.0), Ok(info("Panasonic", "DC-GH5", None, Some(T))));
    }

    #[test]
    fn mov_moov_meta_mdta_keys() {
        let f = TmpFile::new("keys.mov", &mov_keys());
        // creationdate wins over mvhd.
        assert_eq!(read_file(&f.0), Ok(info("Apple", "iPhone 15 Pro", None, Some(T))));
    }

    #[test]
    fn mp4_udta_meta_full_box_with_serial_key() {
        let f = TmpFile::new("fullbox.mp4", &mp4_udta_meta_fullbox());
        assert_eq!(read_file(&f.0), Ok(info("Apple", "iPhone 15 Pro", Some("F2LXK123"), Some(T))));
    }

    #[test]
    fn sony_xml_in_uuid_after_mdat_wins() {
        let f = TmpFile::new("sony.mp4", &sony_uuid_after_mdat(64 << 10));
        assert_eq!(read_file(&f.0), Ok(info("Sony", "ILCE-7SM3", Some("5012345"), Some(T))));
    }

    #[test]
    fn sony_xml_in_meta_xml_box() {
        let mut xml_payload = vec![0, 0, 0, 0];
        xml_payload.extend_from_slice(sony_xml("ILME-FX3", "4400001").as_bytes());
        let meta = bx(b"meta", &cat(&[&[0, 0, 0, 0], &bx(b"xml ", &xml_payload)]));
        let bytes = cat(&[&ftyp(b"XAVC", &[b"XAVC"]), &bx(b"moov", &cat(&[&mvhd_v0(T - 5), &meta]))]);
        assert_eq!(read_bytes(&bytes), Ok(info("Sony", "ILME-FX3", Some("4400001"), Some(T))));
    }

    #[test]
    fn itunes_style_data_in_udta_atom() {
        let udta = bx(
            b"udta",
            &cat(&[
                &bx(b"\xA9mak", &data_box("GoPro")),
                &bx(b"\xA9mod", &data_box("HERO12 Black")),
                &bx(b"\xA9day", &text_atom("2025-12-31T14:03:00+0100")),
            ]),
        );
        // ©day beats mvhd.
        let bytes = cat(&[&ftyp(b"mp41", &[b"mp41"]), &bx(b"moov", &cat(&[&mvhd_v0(T - 999), &udta]))]);
        assert_eq!(read_bytes(&bytes), Ok(info("GoPro", "HERO12 Black", None, Some(T))));
    }

    #[test]
    fn truncated_moov_keeps_what_came_before_the_cut() {
        let full = mp4_udta(0);
        // Cut inside the text of ©mod, the last leaf of moov.
        let cut = full.len() - 8;
        let f = TmpFile::new("cut.mp4", &full[..cut]);
        let got = read_file(&f.0).expect("partial result is Ok");
        assert_eq!(got, MediaInfo { make: Some("Panasonic".into()), model: None, serial: None, captured_at: Some(T) });
    }

    #[test]
    fn truncation_with_nothing_found_is_an_error() {
        let full = mp4_udta(0);
        let ftyp_len = ftyp(b"isom", &[b"isom", b"mp42"]).len();
        // ftyp, the empty mdat, and the first 20 bytes of moov (its header and part of mvhd).
        let cut = ftyp_len + 8 + 20;
        let err = read_bytes(&full[..cut]).expect_err("nothing readable");
        assert!(err.contains("moov"), "{err}");
        // A recording cut inside mdat, moov never written.
        let mut bytes = ftyp(b"isom", &[b"isom"]);
        bytes.extend_from_slice(&bx(b"mdat", &[0; 100])[..50]);
        assert!(read_bytes(&bytes).unwrap_err().contains("mdat"));
    }

    #[test]
    fn truncated_mdat_after_moov_is_ok() {
        let full = sony_uuid_after_mdat(4096);
        let cut = full.len() - 3000; // inside mdat; the uuid box with the XML is lost
        assert_eq!(read_bytes(&full[..cut]), Ok(info("SONY", "XAVC", None, Some(T - 999))));
    }

    #[test]
    fn garbage_and_empty_files_are_default() {
        let empty = TmpFile::new("empty.bin", &[]);
        assert_eq!(read_file(&empty.0), Ok(MediaInfo::default()));
        let mut x = 0x1234_5678u32;
        let garbage: Vec<u8> = (0..8192)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let g = TmpFile::new("garbage.bin", &garbage);
        assert_eq!(read_file(&g.0), Ok(MediaInfo::default()));
        assert_eq!(read_bytes(b"\0\0\0"), Ok(MediaInfo::default()));
        assert!(read_file(Path::new("/nonexistent/nightfox/clip.mp4")).is_err());
    }

    #[test]
    fn hostile_box_sizes_do_not_panic() {
        let cases: Vec<Vec<u8>> = vec![
            // size 1 with a huge largesize
            cat(&[&ftyp(b"isom", &[]), &[0, 0, 0, 1], b"moov", &u64::MAX.to_be_bytes()]),
            // size 1 without room for the largesize
            cat(&[&ftyp(b"isom", &[]), &[0, 0, 0, 1], b"moov", &[0, 0]]),
            // sizes smaller than the header
            cat(&[&ftyp(b"isom", &[]), &[0, 0, 0, 4], b"moov", &[0; 16]]),
            // size 0 (to end of file) on moov
            cat(&[&ftyp(b"isom", &[]), &[0, 0, 0, 0], b"moov", &bx(b"udta", &bx(b"\xA9mak", &text_atom("Zed")))]),
            // a child claiming more than its parent
            cat(&[&ftyp(b"isom", &[]), &bx(b"moov", &cat(&[&[0, 0, 0x10, 0], b"udta", &[0; 8]]))]),
            // deeply nested boxes
            (0..40).fold(Vec::new(), |inner, _| bx(b"meta", &inner)),
        ];
        for (i, c) in cases.iter().enumerate() {
            let got = read_bytes(c);
            if i == 3 {
                assert_eq!(got, Ok(MediaInfo { make: Some("Zed".into()), ..MediaInfo::default() }));
            }
        }
    }

    #[test]
    fn every_truncation_and_byte_flip_is_safe() {
        let fixtures =
            [mp4_udta(16), mov_keys(), mp4_udta_meta_fullbox(), sony_uuid_after_mdat(16), jpeg(Some("+01:00"))];
        for f in &fixtures {
            for cut in 0..f.len() {
                let _ = read_bytes(&f[..cut]);
            }
            for i in 0..f.len() {
                for v in [0x00, 0x01, 0x7F, 0xFF] {
                    let mut g = f.clone();
                    g[i] = v;
                    let _ = read_bytes(&g);
                }
            }
        }
    }

    /// A 6 GiB sparse source: ftyp, a 64-bit mdat, and moov at the end. Reading must stay small.
    #[test]
    fn large_64bit_mdat_is_seeked_past() {
        struct Sparse {
            parts: Vec<(u64, Vec<u8>)>,
            len: u64,
            pos: u64,
            read: u64,
        }
        impl Read for Sparse {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = (self.len.saturating_sub(self.pos)).min(buf.len() as u64) as usize;
                buf[..n].fill(0);
                for (off, bytes) in &self.parts {
                    let (a, b) = (self.pos.max(*off), (self.pos + n as u64).min(off + bytes.len() as u64));
                    if a < b {
                        let dst = (a - self.pos) as usize..(b - self.pos) as usize;
                        buf[dst].copy_from_slice(&bytes[(a - off) as usize..(b - off) as usize]);
                    }
                }
                self.pos += n as u64;
                self.read += n as u64;
                Ok(n)
            }
        }
        impl Seek for Sparse {
            fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
                self.pos = match to {
                    SeekFrom::Start(p) => p,
                    SeekFrom::End(d) => self.len.checked_add_signed(d).ok_or(io::ErrorKind::InvalidInput)?,
                    SeekFrom::Current(d) => self.pos.checked_add_signed(d).ok_or(io::ErrorKind::InvalidInput)?,
                };
                Ok(self.pos)
            }
        }
        let head = ftyp(b"isom", &[b"isom"]);
        let mdat_len: u64 = 6 << 30;
        let mut mdat_hdr = vec![0, 0, 0, 1];
        mdat_hdr.extend_from_slice(b"mdat");
        mdat_hdr.extend_from_slice(&mdat_len.to_be_bytes());
        let moov = bx(b"moov", &cat(&[&mvhd_v1(T), &bx(b"udta", &bx(b"\xA9mak", &text_atom("DJI")))]));
        let moov_at = head.len() as u64 + mdat_len;
        let len = moov_at + moov.len() as u64;
        let mut src = Sparse {
            parts: vec![(0, head.clone()), (head.len() as u64, mdat_hdr), (moov_at, moov)],
            len,
            pos: 0,
            read: 0,
        };
        let got = read_stream(&mut src, len);
        assert_eq!(got, Ok(MediaInfo { make: Some("DJI".into()), captured_at: Some(T), ..MediaInfo::default() }));
        assert!(src.read < 2 * XML_WINDOW + (1 << 16), "read {} bytes", src.read);
    }

    #[test]
    fn keys_with_and_without_version_flags() {
        let with = keys_box(&["com.apple.quicktime.make", "x.model"]);
        assert_eq!(parse_keys(&with[8..]), vec!["com.apple.quicktime.make", "x.model"]);
        let without = &with[12..];
        assert_eq!(parse_keys(without), vec!["com.apple.quicktime.make", "x.model"]);
        assert!(parse_keys(&[0, 0, 0, 0, 0, 0, 0, 9]).is_empty());
    }

    #[test]
    fn meta_full_box_detection() {
        let hdlr = hdlr_mdta();
        assert!(looks_like_box(&hdlr, hdlr.len() as u64));
        assert!(!looks_like_box(&cat(&[&[0, 0, 0, 0], &hdlr]), hdlr.len() as u64 + 4));
        assert!(!looks_like_box(b"\0\0\0\x20\x01\x02\x03\x04", 64));
    }

    #[test]
    fn heic_exif_via_kamadak() {
        let tiff = tiff_be(
            &[(0x010F, "Apple"), (0x0110, "iPhone 15 Pro")],
            &[(0x9003, "2025:12:31 14:03:00"), (0x9011, "+01:00")],
        );
        let idat_payload = cat(&[&[0, 0, 0, 0], &tiff]);
        let mut infe = vec![2, 0, 0, 0, 0, 1, 0, 0];
        infe.extend_from_slice(b"Exif\0");
        let iinf = bx(b"iinf", &cat(&[&[0, 0, 0, 0, 0, 1], &bx(b"infe", &infe)]));
        let mut iloc = vec![1, 0, 0, 0, 0x44, 0x00, 0, 1, 0, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0];
        iloc.extend_from_slice(&(idat_payload.len() as u32).to_be_bytes());
        let mut hdlr = vec![0; 8];
        hdlr.extend_from_slice(b"pict");
        hdlr.extend_from_slice(&[0; 13]);
        let meta = bx(
            b"meta",
            &cat(&[&[0, 0, 0, 0], &bx(b"hdlr", &hdlr), &iinf, &bx(b"iloc", &iloc), &bx(b"idat", &idat_payload)]),
        );
        let bytes = cat(&[&ftyp(b"heic", &[b"mif1", b"heic"]), &meta, &bx(b"mdat", &[0; 32])]);
        let f = TmpFile::new("still.heic", &bytes);
        assert_eq!(read_file(&f.0), Ok(info("Apple", "iPhone 15 Pro", None, Some(T))));
    }

    // ----- JPEG / EXIF -------------------------------------------------------------------------------------------

    #[test]
    fn jpeg_exif_make_model_serial_time() {
        let f = TmpFile::new("still.jpg", &jpeg(Some("+01:00")));
        assert_eq!(read_file(&f.0), Ok(info("Canon", "Canon EOS R5", Some("3121804"), Some(T))));
        // No OffsetTimeOriginal: the wall clock is taken as UTC.
        let f = TmpFile::new("still-nooffset.jpg", &jpeg(None));
        assert_eq!(read_file(&f.0), Ok(info("Canon", "Canon EOS R5", Some("3121804"), Some(T + 3600))));
    }

    #[test]
    fn tiff_and_jpeg_without_exif() {
        let tiff = tiff_be(&[(0x010F, "NIKON CORPORATION"), (0x0110, "NIKON Z 8")], &[(0xA431, "")]);
        assert_eq!(
            read_bytes(&tiff),
            Ok(MediaInfo {
                make: Some("NIKON CORPORATION".into()),
                model: Some("NIKON Z 8".into()),
                ..Default::default()
            })
        );
        assert_eq!(read_bytes(&[0xFF, 0xD8, 0xFF, 0xDA, 0, 2, 0xFF, 0xD9]), Ok(MediaInfo::default()));
    }

    // ----- Sony XML ----------------------------------------------------------------------------------------------

    #[test]
    fn sony_sidecar_xml() {
        let got = parse_sony_xml(sony_xml("ILCE-7SM3", "5012345").as_bytes());
        assert_eq!(got, Some(info("Sony", "ILCE-7SM3", Some("5012345"), Some(1_767_186_180))));
    }

    #[test]
    fn sony_xml_damaged_or_empty() {
        assert_eq!(parse_sony_xml(b""), None);
        assert_eq!(parse_sony_xml(b"<NonRealTimeMeta><Duration value='3'/></NonRealTimeMeta>"), None);
        // Broken after the Device element: what came before is kept.
        let got = parse_sony_xml(b"<NonRealTimeMeta><Device manufacturer='Sony' modelName='FX6'/><CreationDate value=");
        assert_eq!(got, Some(MediaInfo { make: Some("Sony".into()), model: Some("FX6".into()), ..Default::default() }));
        // Embedded search without a declaration.
        let mut buf = vec![0u8; 100];
        buf.extend_from_slice(b"<NonRealTimeMeta><Device manufacturer=\"Sony\" serialNo=\" 77 \"/></NonRealTimeMeta>");
        assert_eq!(find_sony_xml(&buf).and_then(|i| i.serial), Some("77".into()));
    }

    // ----- layout hints ------------------------------------------------------------------------------------------

    #[test]
    fn layout_hints() {
        let make = |p: &[u8]| layout_hint(p).and_then(|i| i.make);
        assert_eq!(make(b"PRIVATE/M4ROOT/CLIP/C0001.MP4").as_deref(), Some("Sony"));
        assert_eq!(make(b"private/m4root/clip/C0001M01.XML").as_deref(), Some("Sony"));
        assert_eq!(make(b"DCIM/100GOPRO/GX010001.MP4").as_deref(), Some("GoPro"));
        assert_eq!(make(b"dcim/199gopro/GH010001.MP4").as_deref(), Some("GoPro"));
        assert_eq!(make(b"PRIVATE/AVCHD/BDMV/STREAM/00000.MTS").as_deref(), Some("AVCHD"));
        assert_eq!(make(b"CONTENTS/CLIPS001/A001C001_250101AB.MXF").as_deref(), Some("Canon"));
        assert_eq!(make(b"Wedding 2025/cam B/card2/PRIVATE/M4ROOT/CLIP/C0007.MP4").as_deref(), Some("Sony"));
        assert_eq!(make(b"/backup//A/DCIM/101GOPRO/GX010002.MP4").as_deref(), Some("GoPro"));
        let hint = layout_hint(b"x/CONTENTS/CLIPS12/a.MXF").expect("canon");
        assert_eq!((hint.model, hint.serial, hint.captured_at), (None, None, None));
        for miss in [
            &b"DCIM/100CANON/IMG_0001.JPG"[..],
            b"DCIM/200GOPRO/GX010001.MP4",
            b"DCIM/10GOPRO/GX010001.MP4",
            b"CONTENTS/CLIPS/a.MXF",
            b"CONTENTS/CLIPS0A1/a.MXF",
            b"PRIVATE/M4ROOT/CLIP",
            b"PRIVATE/M4ROOT/THMBNL/C0001T01.JPG",
            b"",
            b"\xff\xfe/\x00",
        ] {
            assert_eq!(layout_hint(miss), None, "{}", String::from_utf8_lossy(miss));
        }
    }

    // ----- helpers -----------------------------------------------------------------------------------------------

    #[test]
    fn dates() {
        assert_eq!(parse_datetime("2025-12-31T14:03:00+01:00"), Some(T));
        assert_eq!(parse_datetime("2025-12-31T14:03:00+0100"), Some(T));
        assert_eq!(parse_datetime("2025-12-31T14:03:00+01"), Some(T));
        assert_eq!(parse_datetime("2025-12-31T13:03:00Z"), Some(T));
        assert_eq!(parse_datetime("2025-12-31T13:03:00"), Some(T));
        assert_eq!(parse_datetime("2025-12-31 13:03:00.987654Z"), Some(T));
        assert_eq!(parse_datetime("2025-12-31T07:33:00-05:30"), Some(T));
        assert_eq!(parse_datetime("2025:12:31 13:03:00"), Some(T));
        assert_eq!(parse_datetime("2025:12:31 14:03:00+01:00"), Some(T));
        assert_eq!(parse_datetime(" 2025:12:31 13:03:00\0\0"), Some(T));
        assert_eq!(parse_datetime("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_datetime("1969-12-31T23:59:59Z"), Some(-1));
        assert_eq!(parse_datetime("1904-01-01T00:00:00Z"), Some(-QT_EPOCH_OFFSET));
        assert_eq!(parse_datetime("2024-02-29T00:00:00Z"), Some(1_709_164_800));
        assert_eq!(parse_datetime("2000-03-01T00:00:00Z"), Some(951_868_800));
        for bad in [
            "",
            "garbage",
            "0000:00:00 00:00:00",
            "    :  :     :  :  ",
            "2100-02-29T00:00:00Z",
            "2025-02-30T00:00:00",
            "2025-13-01T00:00:00",
            "2025-12-31T24:00:00",
            "2025-12-31T14:60:00",
            "2025-12-31T14:03:00+25:00",
            "2025-12-31T14:03:00+01:00xyz",
            "2025-12-31T14:03:00.",
            "2025-12-31T14:03",
            "2025-12:31T14:03:00",
            "2025-12-31T14:03:00+1",
            "２０２５-12-31T14:03:00",
            "2025-12-31T14:03:0é",
        ] {
            assert_eq!(parse_datetime(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn media_info_or_and_is_empty() {
        let a = MediaInfo { make: Some("Sony".into()), captured_at: Some(1), ..Default::default() };
        let b = info("Canon", "R5", Some("9"), Some(2));
        assert_eq!(a.clone().or(b), info("Sony", "R5", Some("9"), Some(1)));
        assert!(MediaInfo { captured_at: Some(5), ..Default::default() }.is_empty());
        assert!(!a.is_empty());
        assert!(MediaInfo::default().is_empty());
    }

    #[test]
    fn data_value_types() {
        assert_eq!(decode_data(1, b" Apple\0"), Some("Apple".into()));
        assert_eq!(decode_data(2, &[0, b'G', 0, b'o']), Some("Go".into()));
        assert_eq!(decode_data(21, &[0xFF, 0xFE]), Some("-2".into()));
        assert_eq!(decode_data(22, &[0x01, 0x00]), Some("256".into()));
        assert_eq!(decode_data(22, &[1, 2, 3]), None);
        assert_eq!(decode_data(13, b"\xFF\xD8"), None);
        assert_eq!(parse_qt_text(&[0, 200, 0, 0, b'a']), Some("a".into()));
        assert_eq!(parse_qt_text(&[0, 0]), None);
        assert_eq!(parse_mvhd(&[0, 0, 0, 0, 0, 0, 0, 0]), None);
    }
}
