//! Character Cards in and out: every shape and container, mapped as the
//! roster wants it; round trips; and bad input refused with nothing written.

use std::io::Write as _;

use panel_actors::cards::mapping::{self, Draft};
use panel_actors::cards::{self, CardError, png};
use panel_actors::roster::{Roster, write};
use serde_json::{Value, json};

use crate::helpers::character;

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn draft_of(bytes: &[u8]) -> Draft {
    let imported = cards::read(bytes).unwrap_or_else(|e| panic!("{e}"));
    mapping::draft(&imported, Some("card.png")).expect("a usable name")
}

fn v2() -> Value {
    json!({
        "spec": "chara_card_v2", "spec_version": "2.0",
        "data": {
            "name": "Zed", "description": "{{char}} is a lighthouse keeper. {{user}} visits at dusk.",
            "personality": "Taciturn, precise.", "scenario": "A storm is coming.",
            "first_mes": "*looks up* Oh. It's you, {{user}}.",
            "mes_example": "<START>\n{{user}}: Any ships?\n{{char}}: Two. Both late.\n<START>\n<USER>: Tea?\n<BOT>: Black.",
            "creator_notes": "Best with slow scenes.", "system_prompt": "You are Zed. Never break character.",
            "post_history_instructions": "", "alternate_greetings": "The lamp needs oil.",
            "tags": ["sea"], "creator": "kit", "character_version": 3,
            "character_book": { "entries": [
                { "keys": [], "content": "The light has never failed.", "constant": true, "enabled": true, "insertion_order": 0, "extensions": {} },
                { "keys": ["wreck"], "content": "The wreck of 1893.", "enabled": true, "insertion_order": 1, "extensions": {} }
            ] },
            "extensions": { "talkativeness": "0.5", "unknown_tool": { "keep": true } }
        }
    })
}

#[test]
fn a_v2_card_maps_into_the_roster_as_described() {
    let d = draft_of(v2().to_string().as_bytes());
    assert_eq!(d.name, "Zed");
    assert_eq!(d.tagline, "Zed is a lighthouse keeper.");
    assert!(
        d.materials.contains("## Description\nZed is a lighthouse keeper. the floor visits at dusk."),
        "{}",
        d.materials
    );
    assert!(d.materials.contains("## Personality\nTaciturn, precise."));
    assert!(
        d.materials.contains("- *looks up* Oh. It's you, the floor.") && d.materials.contains("- The lamp needs oil.")
    );
    assert!(d.materials.contains("### Exchange 1\nThe floor: Any ships?\nZed: Two. Both late."), "{}", d.materials);
    assert!(d.materials.contains("### Exchange 2\nThe floor: Tea?\nZed: Black."));
    assert!(d.materials.contains("## Lore") && d.materials.contains("The light has never failed."));
    assert!(!d.materials.contains("wreck of 1893"), "keyed lore is kept, not used");
    assert!(!d.materials.contains("Never break character"), "a card's system prompt is not panel's rules");
    assert!(!d.materials.contains("slow scenes"), "creator notes are for people");
    assert_eq!(d.creator_notes.as_deref(), Some("Best with slow scenes."));
    let source = d.source.unwrap();
    assert_eq!(
        (source.format.as_str(), source.creator.as_str(), source.version.as_str()),
        ("chara_card_v2", "kit", "3")
    );
    assert_eq!(source.kept.len(), 2, "{:?}", source.kept);
    assert!(d.colour.starts_with('#') && d.colour.len() == 7);
    assert_eq!(d.colour, mapping::colour_of("Zed"), "stable from the name");
}

#[test]
fn v1_v3_and_pygmalion_json_are_read_too() {
    let v1 = json!({ "name": "Old", "description": "From TavernAI.", "personality": "", "scenario": "", "first_mes": "Hi <USER>.", "mes_example": "" });
    let d = draft_of(v1.to_string().as_bytes());
    assert_eq!((d.name.as_str(), d.source.unwrap().format.as_str()), ("Old", "tavern_v1"));
    assert!(d.materials.contains("- Hi the floor."));

    let v3 = json!({ "spec": "chara_card_v3", "spec_version": "3.0", "data": {
        "name": "Captain Nemo", "nickname": "Nemo", "description": "{{char}} commands the Nautilus.",
        "personality": "", "scenario": "", "first_mes": "", "mes_example": "", "creator_notes": "", "system_prompt": "",
        "post_history_instructions": "", "alternate_greetings": [], "group_only_greetings": [], "tags": [],
        "creator": "", "character_version": "1.0", "character_book": null, "extensions": {} } });
    let d = draft_of(v3.to_string().as_bytes());
    assert_eq!(d.name, "Nemo", "the nickname is the display name");
    assert!(d.materials.contains("Nemo commands the Nautilus."));

    let pyg = json!({ "char_name": "Pyg", "char_persona": "A test persona.", "char_greeting": "Hello.", "world_scenario": "A lab.", "example_dialogue": "You: hi\nPyg: hello" });
    let d = draft_of(pyg.to_string().as_bytes());
    assert_eq!((d.name.as_str(), d.source.unwrap().format.as_str()), ("Pyg", "pygmalion"));
    assert!(d.materials.contains("A test persona.") && d.materials.contains("A lab."));
}

/// A PNG with `chunk` (type, data) inserted before IEND.
fn png_with(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let base = png::generated_avatar("#336699");
    let iend = base.len() - 12;
    let mut out = base[..iend].to_vec();
    out.extend((data.len() as u32).to_be_bytes());
    out.extend(kind);
    out.extend(data);
    let mut h = crc32fast::Hasher::new();
    h.update(kind);
    h.update(data);
    out.extend(h.finalize().to_be_bytes());
    out.extend(&base[iend..]);
    out
}

fn zlib(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn pngs_carry_cards_in_text_ztxt_and_itxt_chunks() {
    let card = v2().to_string();
    let text = png_with(b"tEXt", &[b"Chara\0".as_slice(), b64(&card).as_bytes()].concat());
    assert_eq!(draft_of(&text).name, "Zed", "the keyword in any case");
    let ztxt = png_with(b"zTXt", &[b"chara\0\0".as_slice(), &zlib(b64(&card).as_bytes())].concat());
    assert_eq!(draft_of(&ztxt).name, "Zed");
    let itxt = png_with(b"iTXt", &[b"chara\0\x01\0en\0\0".as_slice(), &zlib(b64(&card).as_bytes())].concat());
    assert_eq!(draft_of(&itxt).name, "Zed");
    let plain_itxt = png_with(b"iTXt", &[b"chara\0\0\0\0\0".as_slice(), b64(&card).as_bytes()].concat());
    assert_eq!(draft_of(&plain_itxt).name, "Zed");
    // Both chunks, different content: ccv3 wins.
    let mut v3 = v2();
    v3["spec"] = json!("chara_card_v3");
    v3["data"]["name"] = json!("Zed Three");
    let both = png::with_card(&png::generated_avatar("#000000"), &card, &v3.to_string()).unwrap();
    assert_eq!(draft_of(&both).name, "Zed Three");
    // The PNG is the avatar.
    let imported = cards::read(&text).unwrap();
    assert_eq!(imported.avatar.unwrap().ext, "png");
}

fn charx(entries: &[(&str, &[u8])], method: zip::CompressionMethod) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut z = zip::ZipWriter::new(&mut out);
    for (name, bytes) in entries {
        z.start_file(*name, zip::write::SimpleFileOptions::default().compression_method(method)).unwrap();
        z.write_all(bytes).unwrap();
    }
    z.finish().unwrap();
    out.into_inner()
}

#[test]
fn a_charx_zip_gives_its_card_and_its_main_icon() {
    let mut card = v2();
    card["spec"] = json!("chara_card_v3");
    card["data"]["assets"] =
        json!([{ "type": "icon", "uri": "embeded://assets/icon/images/main.png", "name": "main", "ext": "png" }]);
    let icon = png::generated_avatar("#aa3300");
    let zip = charx(
        &[("card.json", card.to_string().as_bytes()), ("assets/icon/images/main.png", &icon)],
        zip::CompressionMethod::Stored,
    );
    let imported = cards::read(&zip).unwrap();
    assert_eq!(imported.card.name, "Zed");
    assert_eq!(imported.avatar.unwrap().bytes, icon);
    // Data before the zip (a JPEG, say) is skipped.
    let prefixed = [b"\xff\xd8\xff\xe0 some jpeg bytes".as_slice(), &zip].concat();
    assert_eq!(cards::read(&prefixed).unwrap().card.name, "Zed");
}

#[test]
fn bad_inputs_are_refused_each_with_its_own_reason() {
    let card = v2().to_string();
    let good = png::with_card(&png::generated_avatar("#123456"), &card, &card).unwrap();
    let mut crc = good.clone();
    let at = crc.len() - 20;
    crc[at] ^= 0xff;
    let bomb =
        charx(&[("card.json", card.as_bytes()), ("big.bin", &vec![0u8; 17 << 20])], zip::CompressionMethod::Deflated);
    let traversal = charx(&[("../evil.json", b"{}"), ("card.json", card.as_bytes())], zip::CompressionMethod::Stored);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("random bytes", b"hello, world".to_vec(), "not-a-card"),
        ("a truncated PNG", good[..good.len() / 2].to_vec(), "bad-png"),
        ("a CRC mismatch", crc, "bad-png"),
        ("a PNG without a card", png::generated_avatar("#123456"), "no-card-in-png"),
        ("invalid base64", png_with(b"tEXt", b"chara\0!!!!"), "bad-base64"),
        ("invalid JSON", b"{ not json".to_vec(), "bad-card-json"),
        (
            "a card without a name",
            json!({ "spec": "chara_card_v2", "data": { "name": "  " } }).to_string().into_bytes(),
            "card-without-name",
        ),
        ("a 20 MB payload", vec![b' '; 20 << 20], "card-too-large"),
        ("a zip bomb", bomb, "bad-charx"),
        ("a ../ zip entry", traversal, "bad-charx"),
        ("RisuAI's encrypted card", b"rcc||abcdef".to_vec(), "encrypted-card"),
    ];
    for (what, bytes, code) in cases {
        // The bomb's big entry is only read if it is the icon; make it so.
        let result = if what == "a zip bomb" { read_bomb(&bytes) } else { cards::read(&bytes).map(|_| ()) };
        match result {
            Err(e) => assert_eq!(e.code(), code, "{what}: {e}"),
            Ok(()) => panic!("{what} was accepted"),
        }
    }
}

/// Reads a zip whose card names its big entry as the icon.
fn read_bomb(bytes: &[u8]) -> Result<(), CardError> {
    let mut card = v2();
    card["spec"] = json!("chara_card_v3");
    card["data"]["assets"] = json!([{ "type": "icon", "uri": "embeded://big.bin", "name": "main", "ext": "png" }]);
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut big = Vec::new();
    std::io::Read::read_to_end(&mut z.by_name("big.bin").unwrap(), &mut big).unwrap();
    let rebuilt =
        charx(&[("card.json", card.to_string().as_bytes()), ("big.bin", &big)], zip::CompressionMethod::Deflated);
    cards::read(&rebuilt).map(|_| ())
}

#[test]
fn html_in_a_name_is_cleaned_and_the_cards_own_name_kept() {
    let card = json!({ "name": "<img src=x onerror=alert(1)>Zed <b>the</b> Keeper", "description": "x" });
    let d = draft_of(card.to_string().as_bytes());
    assert_eq!(d.name, "Zed the Keeper");
    assert_eq!(d.source.unwrap().card_name.as_deref(), Some("<img src=x onerror=alert(1)>Zed <b>the</b> Keeper"));
}

#[test]
fn panels_own_character_exported_and_imported_is_the_same_character() {
    for id in ["ada", "byron", "cleo"] {
        let c = character(id);
        let v3 = mapping::card_of(&c, None);
        let png =
            png::with_card(&png::generated_avatar(&c.colour), &mapping::v2_backfill(&v3).to_string(), &v3.to_string())
                .unwrap();
        let d = draft_of(&png);
        assert_eq!(
            (d.name, d.tagline, d.colour, d.farewell, d.materials),
            (c.name, c.tagline, c.colour, c.farewell, c.materials)
        );
    }
}

#[test]
fn an_imported_card_written_to_the_roster_exports_its_original_fields() {
    let dir = tempfile::tempdir().unwrap();
    let card = v2();
    let imported = cards::read(card.to_string().as_bytes()).unwrap();
    let draft = mapping::draft(&imported, Some("zed.json")).unwrap();
    let id = write::add(dir.path(), &draft, None, Some(&imported.card.json)).unwrap();
    assert_eq!(id.as_str(), "zed");
    let roster = Roster::load(dir.path()).unwrap();
    let c = roster.get(&id).unwrap();
    let sidecar: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("zed.card.json")).unwrap()).unwrap();
    let out = mapping::card_of(c, Some(&sidecar));
    assert_eq!(out["spec"], "chara_card_v3");
    let (mut a, b) = (out["data"].clone(), card["data"].clone());
    a.as_object_mut().unwrap().remove("group_only_greetings");
    assert_eq!(a, b, "every original field, unknown extensions included");
    // And imported again, it is the same character.
    let again = mapping::draft(&cards::read(out.to_string().as_bytes()).unwrap(), Some("zed.json")).unwrap();
    assert_eq!((again.name, again.materials), (draft.name, draft.materials));
}

#[test]
fn a_clashing_name_gets_a_new_id_and_nothing_is_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let d = draft_of(v2().to_string().as_bytes());
    let first = write::add(dir.path(), &d, None, None).unwrap();
    let before = std::fs::read_to_string(dir.path().join("zed.md")).unwrap();
    let second = write::add(dir.path(), &d, None, None).unwrap();
    assert_eq!((first.as_str(), second.as_str()), ("zed", "zed-2"));
    assert_eq!(std::fs::read_to_string(dir.path().join("zed.md")).unwrap(), before);
    // A draft the roster would refuse writes nothing at all.
    let bad = Draft { colour: "blue".into(), ..d };
    let avatar = cards::Avatar::sniff(png::generated_avatar("#000000"));
    assert!(write::add(dir.path(), &bad, avatar.as_ref(), Some(&json!({}))).is_err());
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(files.len(), 2, "{files:?}");
}

/// The files in `dir`, sorted.
fn listing(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[test]
fn two_additions_of_one_name_at_once_each_land_whole_under_their_own_id() {
    let d = draft_of(v2().to_string().as_bytes());
    let avatar = cards::Avatar::sniff(png::generated_avatar("#336699")).unwrap();
    for round in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let barrier = std::sync::Barrier::new(2);
        let ids: Vec<String> = std::thread::scope(|s| {
            let add = || {
                barrier.wait();
                write::add(dir.path(), &d, Some(&avatar), Some(&v2())).unwrap().to_string()
            };
            let (a, b) = (s.spawn(add), s.spawn(add));
            vec![a.join().unwrap(), b.join().unwrap()]
        });
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(sorted, ["zed", "zed-2"], "round {round}");
        let mut expected: Vec<String> = ["zed", "zed-2"]
            .iter()
            .flat_map(|id| [format!("{id}.card.json"), format!("{id}.md"), format!("{id}.png")])
            .collect();
        expected.sort();
        assert_eq!(listing(dir.path()), expected, "round {round}: whole, and nothing left behind");
        let roster = Roster::load(dir.path()).unwrap();
        assert_eq!(roster.characters().count(), 2, "round {round}: {:?}", roster.problems());
    }
}

#[test]
fn every_name_the_roster_takes_gives_an_id_that_fits_with_its_suffix() {
    let dir = tempfile::tempdir().unwrap();
    let forty = "Abcdefghij Klmnopqrst Uvwxyzabcd Efghijk".to_owned();
    assert_eq!(forty.chars().count(), 40);
    for name in ["Hatsune Miku (Vocaloid Virtual Singer)", forty.as_str(), forty.as_str()] {
        let card = json!({ "name": name, "description": "Sings." });
        let d = draft_of(card.to_string().as_bytes());
        write::add(dir.path(), &d, None, None).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let roster = Roster::load(dir.path()).unwrap();
    let ids: Vec<&str> = roster.characters().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        ["abcdefghij-klmnopqrst-uvwxyzab-2", "abcdefghij-klmnopqrst-uvwxyzabcd", "hatsune-miku-vocaloid-virtual-si"]
    );
    // The cut never leaves a dash before the suffix.
    assert_eq!(write::slug("abcdefghij abcdefghij abcdefghi x"), "abcdefghij-abcdefghij-abcdefghi");
}

#[test]
fn a_write_that_fails_names_the_character_and_no_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-folder");
    let e = write::add(&missing, &draft_of(v2().to_string().as_bytes()), None, None).unwrap_err().to_string();
    assert!(e.contains("zed") && !e.contains('/'), "{e}");
}

/// A PNG with `chunks` (type, data) inserted before IEND.
fn png_with_all(chunks: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
    let base = png::generated_avatar("#336699");
    let iend = base.len() - 12;
    let mut out = base[..iend].to_vec();
    for (kind, data) in chunks {
        out.extend((data.len() as u32).to_be_bytes());
        out.extend(*kind);
        out.extend(*data);
        let mut h = crc32fast::Hasher::new();
        h.update(*kind);
        h.update(data);
        out.extend(h.finalize().to_be_bytes());
    }
    out.extend(&base[iend..]);
    out
}

#[test]
fn only_the_card_chunk_is_inflated_within_one_budget_for_the_file() {
    let card = b64(&v2().to_string());
    // Three thousand chunks of another keyword, each a megabyte inflated.
    let other = [b"comment\0\0".as_slice(), &zlib(&vec![0u8; 1 << 20])].concat();
    let ztxt_card = [b"chara\0\0".as_slice(), &zlib(card.as_bytes())].concat();
    let mut chunks: Vec<(&[u8; 4], &[u8])> = vec![(b"zTXt", other.as_slice()); 3000];
    chunks.push((b"zTXt", &ztxt_card));
    let bytes = png_with_all(&chunks);
    assert!(bytes.len() < cards::MAX_FILE, "{} bytes", bytes.len());
    let (text, inflated) = png::card_text_within(&bytes, png::MAX_INFLATE).unwrap();
    assert_eq!(inflated, card.len(), "the card chunk alone was inflated");
    assert!(text.contains("\"Zed\""));
    assert_eq!(draft_of(&bytes).name, "Zed");

    // Past the budget: refused with its own code, whatever chunk it is.
    let refused = png::card_text_within(&bytes, card.len() - 1).unwrap_err();
    assert_eq!(refused.code(), "card-inflates-too-far", "{refused}");
    let bomb = [b"ccv3\0\0".as_slice(), &zlib(&vec![b'A'; png::MAX_INFLATE + 1])].concat();
    let e = cards::read(&png_with(b"zTXt", &bomb)).map(|_| ()).unwrap_err();
    assert_eq!(e.code(), "card-inflates-too-far", "{e}");
    let itxt_bomb = [b"chara\0\x01\0en\0\0".as_slice(), &zlib(&vec![b'A'; png::MAX_INFLATE + 1])].concat();
    let e = cards::read(&png_with(b"iTXt", &itxt_bomb)).map(|_| ()).unwrap_err();
    assert_eq!(e.code(), "card-inflates-too-far", "{e}");
}
