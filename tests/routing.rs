//! Routing footage to cameras and footage types from card layout and metadata (issue 6).

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use common::*;

/// (tree directory, display name) of every file of a couple, e.g. ("modern/sony-ilce-7sm3", "C0001.MP4").
fn placed(env: &Env, couple: &str) -> BTreeSet<(String, String)> {
    let cat = env.catalog();
    let c = cat.couple_by_folder(couple).unwrap();
    let cams: std::collections::HashMap<i64, String> =
        cat.cameras().unwrap().into_iter().map(|c| (c.id, c.slug)).collect();
    cat.files(Some(c.id))
        .unwrap()
        .into_iter()
        .map(|f| {
            let cam = f.camera_id.map(|id| cams[&id].clone()).unwrap_or_else(|| "unknown".into());
            (format!("{}/{cam}", f.footage_type), String::from_utf8_lossy(&f.display_name).into_owned())
        })
        .collect()
}

fn has(set: &BTreeSet<(String, String)>, dir: &str, name: &str) -> bool {
    set.contains(&(dir.to_string(), name.to_string()))
}

fn sony_body(card: &Path, serial: &str, clips: usize, seed: u64) {
    for i in 1..=clips {
        let dir = card.join("PRIVATE/M4ROOT/CLIP");
        write(&dir.join(format!("C{i:04}.MP4")), &data(seed + i as u64, 40_000));
        write(
            &dir.join(format!("C{i:04}M01.XML")),
            &sony_xml("ILCE-7SM3", serial, &format!("2025-12-31T14:0{i}:00+01:00")),
        );
    }
}

#[test]
fn two_bodies_of_the_same_model_are_told_apart_by_serial() {
    let env = Env::new();
    let c = env.couple("Julia & Sven", "2025-12-31");
    let (a, b) = (env.path("cardA"), env.path("cardB"));
    sony_body(&a, "1111111", 2, 10);
    sony_body(&b, "2222222", 2, 20);
    env.ok(&["import", "--couple", &c, a.to_str().unwrap()]);
    env.ok(&["import", "--couple", &c, b.to_str().unwrap()]);
    let p = placed(&env, &c);
    for (dir, _) in [("modern/sony-ilce-7sm3", "1111111"), ("modern/sony-ilce-7sm3-2", "2222222")] {
        for n in ["C0001.MP4", "C0001M01.XML", "C0002.MP4", "C0002M01.XML"] {
            assert!(has(&p, dir, n), "{dir}/{n} missing in {p:?}");
        }
    }
    assert_eq!(p.len(), 8, "both bodies keep all their clips, no suffixes: {p:?}");
    let cams = env.catalog().cameras().unwrap();
    let serial_of = |slug: &str| cams.iter().find(|c| c.slug == slug).unwrap().serial.clone();
    assert_eq!(serial_of("sony-ilce-7sm3").as_deref(), Some("1111111"));
    assert_eq!(serial_of("sony-ilce-7sm3-2").as_deref(), Some("2222222"));
    // Capture time from the XML (14:01 at +01:00 is 13:01 UTC); the sidecar is linked to its clip.
    let rows = env.catalog().files(None).unwrap();
    let clip = rows.iter().find(|f| f.display_name == b"C0001.MP4" && f.original_path.starts_with(b"PRIVATE")).unwrap();
    assert_eq!(clip.captured_at, Some(1_767_186_060));
    // Camera list counts files per camera; a camera without files counts none.
    env.ok(&["camera", "add", "--name", "Spare body", "--type", "modern"]);
    let list = env.ok(&["camera", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&list).unwrap();
    let counts: Vec<(String, u64)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["slug"].as_str().unwrap().to_string(), c["file_count"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        counts,
        [("sony-ilce-7sm3".to_string(), 4), ("sony-ilce-7sm3-2".to_string(), 4), ("spare-body".to_string(), 0)],
        "{list}"
    );
}

#[test]
fn a_match_rule_with_a_serial_wins() {
    let env = Env::new();
    let c = env.couple("Rules", "2025-12-31");
    let slug = env
        .ok(&[
            "camera",
            "add",
            "--name",
            "B Cam",
            "--type",
            "modern",
            "--make",
            "Sony",
            "--model",
            "ILCE-7SM3",
            "--serial",
            "2222222",
        ])
        .trim()
        .to_string();
    assert_eq!(slug, "b-cam");
    let (a, b) = (env.path("cardA"), env.path("cardB"));
    sony_body(&a, "1111111", 1, 30);
    sony_body(&b, "2222222", 1, 40);
    env.ok(&["import", "--couple", &c, a.to_str().unwrap(), b.to_str().unwrap()]);
    let p = placed(&env, &c);
    assert!(has(&p, "modern/b-cam", "C0001.MP4") && has(&p, "modern/b-cam", "C0001M01.XML"), "{p:?}");
    assert!(has(&p, "modern/sony-ilce-7sm3", "C0001.MP4"), "{p:?}");
    // A rule's footage type is used when the import names none; an explicit --type wins.
    env.ok(&["camera", "add", "--name", "Dad", "--type", "dadcam", "--make", "JVC", "--model", "GR-DVL9800"]);
    let still = env.path("dad/IMG_0001.JPG");
    write(&still, &exif_jpeg("JVC", "GR-DVL9800", "", "2001:06:30 15:00:00"));
    env.ok(&["import", "--couple", &c, still.to_str().unwrap()]);
    assert!(has(&placed(&env, &c), "dadcam/dad", "IMG_0001.JPG"));
}

#[test]
fn gopro_card_keeps_proxies_and_thumbnails_with_their_clip() {
    let env = Env::new();
    let c = env.couple("GoPro", "2025-12-31");
    let card = env.path("gopro");
    let dir = card.join("DCIM/100GOPRO");
    write(&dir.join("GX010001.MP4"), &data(1, 30_000));
    write(&dir.join("GL010001.LRV"), &data(2, 10_000));
    write(&dir.join("GX010001.THM"), &data(3, 2_000));
    write(&dir.join("GX020001.MP4"), &data(4, 30_000));
    env.ok(&["import", "--couple", &c, card.to_str().unwrap()]);
    let p = placed(&env, &c);
    for n in ["GX010001.MP4", "GL010001.LRV", "GX010001.THM", "GX020001.MP4"] {
        assert!(has(&p, "modern/gopro", n), "{n} in {p:?}");
    }
    let rows = env.catalog().files(None).unwrap();
    let clip = rows.iter().find(|f| f.display_name == b"GX010001.MP4").unwrap();
    for n in [&b"GL010001.LRV"[..], b"GX010001.THM"] {
        assert_eq!(rows.iter().find(|f| f.display_name == n).unwrap().sidecar_of, Some(clip.id));
    }
}

#[test]
fn quicktime_make_and_model_in_both_layouts() {
    let env = Env::new();
    let c = env.couple("Phones", "2025-12-31");
    let src = env.path("media");
    ffmpeg_clip(
        &src.join("IMG_0001.MOV"),
        440,
        &[
            "-movflags",
            "use_metadata_tags",
            "-metadata",
            "com.apple.quicktime.make=Apple",
            "-metadata",
            "com.apple.quicktime.model=iPhone 15 Pro",
            "-metadata",
            "com.apple.quicktime.creationdate=2025-12-31T14:03:00+0100",
        ],
    );
    ffmpeg_clip(&src.join("MVI_0001.MOV"), 550, &["-metadata", "make=Canon", "-metadata", "model=Canon EOS R5"]);
    ffmpeg_clip(
        &src.join("DJI_0001.MP4"),
        660,
        &[
            "-movflags",
            "use_metadata_tags",
            "-metadata",
            "com.apple.quicktime.make=DJI",
            "-metadata",
            "com.apple.quicktime.model=Osmo Pocket 3",
        ],
    );
    env.ok(&["import", "--couple", &c, src.to_str().unwrap()]);
    let p = placed(&env, &c);
    assert!(has(&p, "modern/apple-iphone-15-pro", "IMG_0001.MOV"), "{p:?}");
    assert!(has(&p, "modern/canon-eos-r5", "MVI_0001.MOV"), "{p:?}");
    assert!(has(&p, "modern/dji-osmo-pocket-3", "DJI_0001.MP4"), "{p:?}");
    let rows = env.catalog().files(None).unwrap();
    let iphone = rows.iter().find(|f| f.display_name == b"IMG_0001.MOV").unwrap();
    assert_eq!(iphone.captured_at, Some(1_767_186_180));
}

#[test]
fn card_layouts_types_and_explicit_cameras() {
    let env = Env::new();
    let c = env.couple("Mixed", "2025-12-31");
    let avchd = env.path("camcorder");
    write(&avchd.join("PRIVATE/AVCHD/BDMV/STREAM/00000.MTS"), &data(1, 20_000));
    write(&avchd.join("PRIVATE/AVCHD/BDMV/STREAM/00001.MTS"), &data(2, 20_000));
    env.ok(&["import", "--couple", &c, avchd.to_str().unwrap()]);
    let dv = env.path("tapes/tape01.dv");
    write(&dv, &data(3, 50_000));
    env.ok(&["import", "--couple", &c, "--type", "dadcam", dv.to_str().unwrap()]);
    let nizo = env.ok(&["camera", "add", "--name", "Nizo 801", "--type", "super8"]).trim().to_string();
    let scans = env.path("scans");
    write(&scans.join("reel01.mov"), &data(4, 50_000));
    write(&scans.join("reel02.mov"), &data(5, 50_000));
    env.ok(&["import", "--couple", &c, "--camera", &nizo, scans.to_str().unwrap()]);
    let canon = env.path("canon");
    write(&canon.join("CONTENTS/CLIPS001/A001C001_251231AB_CANON.MXF"), &data(6, 20_000));
    env.ok(&["import", "--couple", &c, canon.to_str().unwrap()]);
    let p = placed(&env, &c);
    assert!(has(&p, "modern/avchd", "00000.MTS") && has(&p, "modern/avchd", "00001.MTS"), "{p:?}");
    assert!(has(&p, "dadcam/unknown", "tape01.dv"), "{p:?}");
    assert!(has(&p, "super8/nizo-801", "reel01.mov") && has(&p, "super8/nizo-801", "reel02.mov"), "{p:?}");
    assert!(has(&p, "modern/canon", "A001C001_251231AB_CANON.MXF"), "{p:?}");
}

#[test]
fn stills_with_exif_and_damaged_files_route_on_what_can_be_read() {
    let env = Env::new();
    let c = env.couple("Stills", "2025-12-31");
    let src = env.path("stills");
    write(&src.join("DSCF0001.JPG"), &exif_jpeg("FUJIFILM", "X-T4", "9AB12345", "2025:12:31 16:20:00"));
    write(&src.join("DSCF0002.JPG"), &exif_jpeg("FUJIFILM", "X-T4", "9AB12345", "2025:12:31 16:21:00"));
    // A truncated MP4 (moov first, cut in the media) and one cut before its moov (no metadata left).
    let full = env.path("full.MP4");
    ffmpeg_clip(
        &full,
        770,
        &[
            "-movflags",
            "+faststart+use_metadata_tags",
            "-metadata",
            "com.apple.quicktime.make=Apple",
            "-metadata",
            "com.apple.quicktime.model=iPhone 12",
        ],
    );
    let bytes = fs::read(&full).unwrap();
    write(&src.join("cut_late.MP4"), &bytes[..bytes.len() * 3 / 4]);
    let late = env.path("late.MP4");
    ffmpeg_clip(&late, 880, &["-movflags", "use_metadata_tags", "-metadata", "com.apple.quicktime.make=Apple"]);
    let lb = fs::read(&late).unwrap();
    write(&src.join("cut_early.MP4"), &lb[..lb.len() / 3]);
    write(&src.join("garbage.MOV"), b"\x00\x00\x00\x08free\x00\x00\xff\xffmoov");
    let out = env.ok(&["import", "--couple", &c, src.to_str().unwrap()]);
    assert!(out.contains("5 imported"), "{out}");
    let p = placed(&env, &c);
    assert!(
        has(&p, "modern/fujifilm-x-t4", "DSCF0001.JPG") && has(&p, "modern/fujifilm-x-t4", "DSCF0002.JPG"),
        "{p:?}"
    );
    assert!(has(&p, "modern/apple-iphone-12", "cut_late.MP4"), "{p:?}");
    assert!(has(&p, "modern/unknown", "cut_early.MP4") && has(&p, "modern/unknown", "garbage.MOV"), "{p:?}");
    let cams = env.catalog().cameras().unwrap();
    assert_eq!(cams.iter().find(|c| c.slug == "fujifilm-x-t4").unwrap().serial.as_deref(), Some("9AB12345"));
    env.assert_consistent();
}

#[test]
fn routing_of_a_reimport_is_identical() {
    let env = Env::new();
    let a = env.couple("First", "2025-12-31");
    let b = env.couple("Second", "2026-01-01");
    let card = env.path("card");
    sony_body(&card.join("A"), "1111111", 2, 50);
    sony_body(&card.join("B"), "2222222", 2, 60);
    let g = card.join("C/DCIM/101GOPRO");
    write(&g.join("GX010001.MP4"), &data(70, 9000));
    write(&g.join("GL010001.LRV"), &data(71, 900));
    write(&card.join("D/IMG_0001.JPG"), &exif_jpeg("Canon", "Canon EOS R6", "", "2025:12:31 10:00:00"));
    env.ok(&["import", "--couple", &a, card.to_str().unwrap()]);
    env.ok(&["import", "--couple", &b, card.to_str().unwrap()]);
    let (pa, pb) = (placed(&env, &a), placed(&env, &b));
    assert_eq!(pa, pb);
    assert_eq!(pa.len(), 11);
    // Re-importing into the same couple again: everything is a duplicate, nothing moves.
    let out = env.ok(&["import", "--couple", &a, card.to_str().unwrap()]);
    assert!(out.contains("0 imported, 11 duplicate"), "{out}");
    assert_eq!(placed(&env, &a), pa);
}

#[test]
fn info_shows_a_file_by_tree_path_and_by_mount_path() {
    let env = Env::new();
    let c = env.couple("Info", "2025-12-31");
    let card = env.path("card");
    sony_body(&card, "5012345", 1, 80);
    env.ok(&["import", "--couple", &c, card.to_str().unwrap()]);
    let tree = format!("{c}/source/modern/sony-ilce-7sm3/C0001.MP4");
    let v: serde_json::Value = serde_json::from_str(&env.ok(&["info", "--json", &tree])).unwrap();
    assert_eq!(v["blake3"], b3(&data(81, 40_000)));
    assert_eq!(v["size"], 40_000);
    assert_eq!(v["original_path"], "PRIVATE/M4ROOT/CLIP/C0001.MP4");
    assert_eq!(v["camera"], "sony-ilce-7sm3");
    assert_eq!(v["camera_serial"], "5012345");
    assert_eq!(v["captured_at"], "2025-12-31T13:01:00Z");
    assert_eq!(v["session"], 1);
    assert_eq!(v["sidecars"][0], "C0001M01.XML");
    let text = env.ok(&["info", &format!("{c}/source/modern/sony-ilce-7sm3/C0001M01.XML")]);
    assert!(text.contains("sidecar of") && text.contains("C0001.MP4"), "{text}");
    let out = env.run(&["info", &format!("{c}/source/modern/sony-ilce-7sm3/nope.MP4")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no file at"));
    // Inside a mount, without --archive: the mount says which archive it serves.
    let mp = env.path("mnt");
    let _m = Mount::start(&env, &mp, &[]);
    let out = std::process::Command::new(BIN)
        .env_remove("NIGHTFOX_ARCHIVE")
        .arg("info")
        .arg("--json")
        .arg(mp.join(&tree))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let w: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(w["blake3"], v["blake3"]);
    // The capture time is an xattr in the mount.
    let got = std::process::Command::new("getfattr")
        .args(["--only-values", "-n", "user.nightfox.captured_at"])
        .arg(mp.join(&tree))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&got.stdout), "2025-12-31T13:01:00Z");
}
