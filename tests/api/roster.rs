//! The character library over HTTP: importing cards (and refusing bad ones
//! with nothing written), making and editing characters, avatars, exports
//! that import back as the same character, and files edited by hand picked
//! up without a restart.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;

async fn app_with_roster() -> (TestApp, tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let roster = roster_copy(dir.path());
    let app = spawn_with(Options { roster: Some(roster.clone()), ..Options::default() }).await;
    (app, dir, roster)
}

async fn import(app: &TestApp, bytes: Vec<u8>, content_type: &str, filename: &str) -> (u16, Value) {
    let url = app.url(&format!("/api/roster/import?filename={filename}"));
    let mut res = app.client.post(url).insert_header(("content-type", content_type)).send_body(bytes).await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

fn zed() -> Value {
    json!({ "spec": "chara_card_v2", "spec_version": "2.0", "data": {
        "name": "Zed", "description": "{{char}} keeps the lighthouse.", "personality": "Taciturn.", "scenario": "",
        "first_mes": "Oh. It's you.", "mes_example": "", "creator_notes": "For slow scenes.",
        "system_prompt": "Never break character.", "post_history_instructions": "", "alternate_greetings": [],
        "tags": [], "creator": "kit", "character_version": "2", "extensions": { "x_tool": 1 } } })
}

fn files(dir: &std::path::Path) -> Vec<String> {
    let mut f: Vec<String> = std::fs::read_dir(dir.join("characters"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    f.sort();
    f
}

#[actix_web::test]
async fn an_imported_card_joins_the_library_and_exports_back_to_itself() {
    let (app, _dir, roster) = app_with_roster().await;
    let (status, c) = import(&app, zed().to_string().into_bytes(), "application/json", "zed.json").await;
    assert_eq!(status, 201, "{c}");
    assert_eq!((c["id"].as_str(), c["name"].as_str()), (Some("zed"), Some("Zed")));
    assert_eq!(c["library"]["creator_notes"], "For slow scenes.");
    assert_eq!(c["library"]["source"]["file"], "zed.json");
    assert!(c["library"]["source"]["kept"][0].as_str().unwrap().starts_with("system_prompt"));
    let (_, listed) = app.get("/api/roster").await;
    assert!(listed["characters"].as_array().unwrap().iter().any(|c| c["id"] == "zed"));

    // It can be cast at once.
    let id = app.create(&["ada", "zed"]).await;
    let mut sse = app.sse(&id, None).await;
    app.say(&id, "@Zed any ships tonight?").await;
    let events = sse.until("turn-end").await;
    assert!(events.iter().any(|e| e.event == "speak" && e.json()["speaker"] == "zed"), "{events:?}");

    // Its export is its original card, lifted to V3.
    let (status, card) = app.get("/api/roster/zed/card.json").await;
    assert_eq!(status, 200);
    assert_eq!(
        (card["spec"].as_str(), card["data"]["extensions"]["x_tool"].as_i64()),
        (Some("chara_card_v3"), Some(1))
    );
    let mut res = app.client.get(app.url("/api/roster/zed/card.png")).send().await.unwrap();
    assert_eq!(res.headers().get("content-type").unwrap(), "image/png");
    let png = res.body().await.unwrap().to_vec();
    // Imported again: the same character, under a new id (never overwritten).
    let (status, again) = import(&app, png, "image/png", "zed.png").await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(again["id"], "zed-2");
    assert_eq!((again["name"].clone(), again["materials"].clone()), (c["name"].clone(), c["materials"].clone()));
    assert_eq!(again["avatar_url"], "/api/roster/zed-2/avatar", "the PNG is its avatar");
    let mut res = app.client.get(app.url("/api/roster/zed-2/avatar")).send().await.unwrap();
    assert_eq!(
        (res.status().as_u16(), res.headers().get("content-type").unwrap().to_str().unwrap()),
        (200, "image/png")
    );
    assert!(!res.body().await.unwrap().is_empty());
    assert!(files(&roster).contains(&"zed.card.json".to_owned()));
}

#[actix_web::test]
async fn panels_own_characters_export_and_import_as_themselves() {
    let (app, _dir, _) = app_with_roster().await;
    let (_, roster) = app.get("/api/roster").await;
    let ada = roster["characters"].as_array().unwrap().iter().find(|c| c["id"] == "ada").unwrap().clone();
    let mut res = app.client.get(app.url("/api/roster/ada/card.png")).send().await.unwrap();
    let png = res.body().await.unwrap().to_vec();
    let (status, back) = import(&app, png, "image/png", "ada.png").await;
    assert_eq!(status, 201, "{back}");
    for field in ["name", "tagline", "colour", "farewell", "materials"] {
        assert_eq!(back[field], ada[field], "{field}");
    }
}

/// A PNG whose `ccv3` card chunk is a zTXt that inflates to `size` bytes.
fn png_inflating_to(size: usize) -> Vec<u8> {
    use std::io::Write as _;
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    zlib.write_all(&vec![b'A'; size]).unwrap();
    let data = [b"ccv3\0\0".as_slice(), &zlib.finish().unwrap()].concat();
    let base = panel_actors::cards::png::generated_avatar("#336699");
    let iend = base.len() - 12;
    let mut out = base[..iend].to_vec();
    out.extend((data.len() as u32).to_be_bytes());
    out.extend(b"zTXt");
    out.extend(&data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(b"zTXt");
    crc.update(&data);
    out.extend(crc.finalize().to_be_bytes());
    out.extend(&base[iend..]);
    out
}

#[actix_web::test]
async fn bad_cards_are_refused_clearly_and_nothing_is_written() {
    let (app, _dir, roster) = app_with_roster().await;
    let before = files(&roster);
    let cases: Vec<(Vec<u8>, &str, u16, &str)> = vec![
        (b"GIF89a not a card".to_vec(), "image/png", 415, "not-a-card"),
        (b"\x89PNG\r\n\x1a\n\0\0".to_vec(), "image/png", 422, "bad-png"),
        (b"{ nope".to_vec(), "application/json", 422, "bad-card-json"),
        (
            json!({ "spec": "chara_card_v2", "data": { "description": "x" } }).to_string().into_bytes(),
            "application/json",
            422,
            "card-without-name",
        ),
        (vec![b'{'; 20 << 20], "application/json", 413, "card-too-large"),
        (png_inflating_to(panel_actors::cards::png::MAX_INFLATE + 1), "image/png", 413, "card-inflates-too-far"),
    ];
    for (bytes, kind, status, code) in cases {
        let (got, body) = import(&app, bytes, kind, "bad").await;
        assert_eq!((got, body["error"]["code"].as_str()), (status, Some(code)), "{body}");
        assert!(!body.to_string().contains('/'), "no path in {body}");
    }
    assert_eq!(files(&roster), before, "nothing written");
    let (_, listed) = app.get("/api/roster").await;
    assert_eq!(listed["characters"].as_array().unwrap().len(), 6);
}

#[actix_web::test]
async fn html_in_a_cards_name_is_cleaned_and_shown_only_as_text() {
    let (app, _dir, _) = app_with_roster().await;
    let card = json!({ "name": "<img src=x onerror=alert(1)>Vex", "description": "A test." });
    let (status, c) = import(&app, card.to_string().into_bytes(), "application/json", "vex.json").await;
    assert_eq!(status, 201, "{c}");
    assert_eq!(c["name"], "Vex");
    assert_eq!(c["library"]["source"]["card_name"], "<img src=x onerror=alert(1)>Vex");
}

#[actix_web::test]
async fn characters_are_made_and_edited_in_the_app_for_new_sessions_only() {
    let (app, _dir, _) = app_with_roster().await;
    let body = json!({ "name": "Quinn", "tagline": "Economist", "materials": "# Quinn\n\n## Sample lines\n- Incentives first.", "colour": "#aa5500" });
    let (status, made) = app.post("/api/roster", body).await;
    assert_eq!(status, 201, "{made}");
    let id = app.create(&["ada", "quinn"]).await;
    let (_, before) = app.get(&format!("/api/sessions/{id}")).await;
    let hash = app.prefix_hash(&id).await;

    let edit = json!({ "name": "Quinn", "tagline": "Behavioural economist", "materials": "# Quinn\n\nNew materials.", "colour": "#aa5500" });
    let mut res = app.client.put(app.url("/api/roster/quinn")).send_json(&edit).await.unwrap();
    assert_eq!(res.status().as_u16(), 200, "{:?}", res.body().await);
    assert_eq!(app.prefix_hash(&id).await, hash, "a running session's head never changes");
    let (_, after) = app.get(&format!("/api/sessions/{id}")).await;
    assert_eq!(before["on_stage"], after["on_stage"]);
    let (_, roster) = app.get("/api/roster").await;
    let quinn = roster["characters"].as_array().unwrap().iter().find(|c| c["id"] == "quinn").unwrap().clone();
    assert_eq!(quinn["tagline"], "Behavioural economist", "new sessions get the edit");

    // A new avatar, twice: each gets its own file, and the old stays for the
    // sessions that recorded it.
    let avatar = |colour: &str| {
        let png = panel_actors::cards::png::generated_avatar(colour);
        format!("data:image/png;base64,{}", base64::Engine::encode(&base64::engine::general_purpose::STANDARD, png))
    };
    let mut names = Vec::new();
    for colour in ["#112233", "#445566"] {
        let mut with = edit.clone();
        with["avatar"] = json!(avatar(colour));
        let res = app.client.put(app.url("/api/roster/quinn")).send_json(&with).await.unwrap();
        assert_eq!(res.status().as_u16(), 200);
        let (_, roster) = app.get("/api/roster").await;
        let quinn = roster["characters"].as_array().unwrap().iter().find(|c| c["id"] == "quinn").unwrap().clone();
        names.push(quinn["avatar"].as_str().unwrap().to_owned());
    }
    assert_ne!(names[0], names[1], "a replaced avatar gets a new name");
    for name in &names {
        let mut res = app.client.get(app.url(&format!("/api/roster/quinn/avatar?file={name}"))).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 200, "{name} is still served");
        assert_eq!(res.body().await.unwrap()[..8], b"\x89PNG\r\n\x1a\n"[..]);
    }
    let res = app.client.get(app.url("/api/roster/quinn/avatar?file=quinn.md")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 400, "only avatars are served");

    let (status, body) = app.post("/api/roster", json!({ "name": "", "tagline": "x", "materials": "y" })).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("bad-character")), "{body}");
    let mut res = app.client.put(app.url("/api/roster/nobody")).send_json(&edit).await.unwrap();
    assert_eq!(res.status().as_u16(), 404, "{:?}", res.body().await);
}

#[actix_web::test]
async fn files_edited_by_hand_are_picked_up_and_a_malformed_one_reported() {
    let (app, _dir, roster) = app_with_roster().await;
    std::fs::write(
        roster.join("characters/wren.md"),
        "+++\nname = \"Wren\"\ntagline = \"Ornithologist\"\ncolour = \"#228844\"\n+++\n\n# Wren\n\nWatches birds.\n",
    )
    .unwrap();
    std::fs::write(roster.join("characters/broken.md"), "no front matter").unwrap();
    let deadline = Instant::now() + WAIT;
    let listed = loop {
        let (_, listed) = app.get("/api/roster").await;
        if listed["characters"].as_array().unwrap().iter().any(|c| c["id"] == "wren") {
            break listed;
        }
        assert!(Instant::now() < deadline, "the new file was never picked up: {listed}");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(listed["characters"].as_array().unwrap().len(), 7, "the others stay");
    assert!(
        listed["problems"].as_array().unwrap().iter().any(|p| p.as_str().unwrap().contains("broken.md")),
        "{listed}"
    );
    let id = app.create(&["wren"]).await;
    assert!(!id.is_empty());
}

#[actix_web::test]
async fn panel_roster_import_and_export_work_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let roster = roster_copy(dir.path());
    let card = dir.path().join("zed.json");
    std::fs::write(&card, zed().to_string()).unwrap();
    let bad = dir.path().join("bad.png");
    std::fs::write(&bad, b"not a png at all").unwrap();
    let panel = || std::process::Command::new(env!("CARGO_BIN_EXE_panel"));
    let out = panel().args(["roster", "import"]).arg(&card).arg(&bad).arg("--roster").arg(&roster).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "one file failed: the exit code says so");
    assert!(stdout.contains("zed.json: imported as zed"), "{stdout}");
    assert!(stderr.contains("bad.png: not a character card"), "{stderr}");
    assert!(roster.join("characters/zed.md").exists());

    let png = dir.path().join("ada.png");
    let out = panel()
        .args(["roster", "export", "ada", "--format", "png", "--out"])
        .arg(&png)
        .arg("--roster")
        .arg(&roster)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bytes = std::fs::read(&png).unwrap();
    let imported = panel_actors::cards::read(&bytes).unwrap();
    assert_eq!(imported.card.json["data"]["extensions"]["panel"]["id"], "ada");
    let json = dir.path().join("zed-out.json");
    let out = panel()
        .args(["roster", "export", "zed", "--format", "json", "--out"])
        .arg(&json)
        .arg("--roster")
        .arg(&roster)
        .output()
        .unwrap();
    assert!(out.status.success());
    let exported: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(exported["data"]["creator"], "kit");
}

#[actix_web::test]
async fn a_character_with_a_long_name_is_addressed_by_it_or_by_its_first_word() {
    let (app, _dir, _) = app_with_roster().await;
    let card = json!({ "name": "Zed the Keeper", "description": "Keeps the lighthouse." });
    let (status, _) = import(&app, card.to_string().into_bytes(), "application/json", "zed.json").await;
    assert_eq!(status, 201);
    let id = app.create(&["ada", "zed-the-keeper"]).await;
    let mut sse = app.sse(&id, None).await;
    for line in ["@Zed the Keeper, any ships?", "@Zed and tomorrow?", "@zed-the-keeper one more?"] {
        app.say(&id, line).await;
        let events = sse.until("turn-end").await;
        let floor = events.iter().find(|e| e.event == "human-speak").unwrap().json();
        assert_eq!(floor["to"], "zed-the-keeper", "{line}");
        assert!(
            !floor["text"].as_str().unwrap().to_lowercase().contains("zed"),
            "the address is not part of the line: {floor}"
        );
    }
    let (status, body) = app.post(&format!("/api/sessions/{id}/say"), json!({ "text": "@Nobody hello" })).await;
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("not-addressable")), "{body}");
}

#[actix_web::test]
async fn two_imports_of_one_name_at_once_give_two_whole_characters_every_round() {
    let (app, _dir, roster) = app_with_roster().await;
    let png = |n: usize| {
        let mut card = zed();
        card["data"]["name"] = json!(format!("Racer {n}"));
        let image = panel_actors::cards::png::generated_avatar("#336699");
        let v3 = card.to_string();
        panel_actors::cards::png::with_card(&image, &v3, &v3).unwrap()
    };
    for round in 0..20 {
        let (a, b) = futures_util::future::join(
            import(&app, png(round), "image/png", "racer.png"),
            import(&app, png(round), "image/png", "racer.png"),
        )
        .await;
        for (status, body) in [&a, &b] {
            assert_eq!(*status, 201, "round {round}: {body}");
            assert!(!body.to_string().contains("/tmp") && !body.to_string().contains("characters/"), "{body}");
        }
        let mut ids = [a.1["id"].as_str().unwrap().to_owned(), b.1["id"].as_str().unwrap().to_owned()];
        ids.sort();
        assert_eq!(ids, [format!("racer-{round}"), format!("racer-{round}-2")], "round {round}");
        let present = files(&roster);
        for id in &ids {
            for file in [format!("{id}.md"), format!("{id}.png"), format!("{id}.card.json")] {
                assert!(present.contains(&file), "round {round}: {file} missing from {present:?}");
            }
        }
    }
    assert!(files(&roster).iter().all(|f| !f.ends_with(".tmp") && !f.ends_with(".reserved")), "{:?}", files(&roster));
}

#[actix_web::test]
async fn an_imported_character_edited_in_the_app_exports_its_edits_and_keeps_the_rest() {
    let (app, _dir, _) = app_with_roster().await;
    let (status, _) = import(&app, zed().to_string().into_bytes(), "application/json", "zed.json").await;
    assert_eq!(status, 201);
    let materials = "# Zed Prime\n\nKeeps the new lighthouse.\n\n## Sample lines\n- Storm's early.\n- Lamp's lit.";
    let edit = json!({ "name": "Zed Prime", "tagline": "Keeper", "materials": materials, "colour": "#225588" });
    let res = app.client.put(app.url("/api/roster/zed")).send_json(&edit).await.unwrap();
    assert_eq!(res.status().as_u16(), 200);

    let (status, card) = app.get("/api/roster/zed/card.json").await;
    assert_eq!(status, 200);
    let mut res = app.client.get(app.url("/api/roster/zed/card.png")).send().await.unwrap();
    let png = res.body().await.unwrap().to_vec();
    let from_png = panel_actors::cards::read(&png).unwrap().card.json;
    assert_eq!(from_png, card, "the PNG carries the same card");
    let d = &card["data"];
    assert_eq!((d["name"].as_str(), d["description"].as_str()), (Some("Zed Prime"), Some(materials)), "{card}");
    assert_eq!(
        (d["first_mes"].as_str(), d["alternate_greetings"].clone()),
        (Some("Storm's early."), json!(["Lamp's lit."]))
    );
    assert_eq!(d["personality"], "", "the old personality is in no field any more");
    assert_eq!((d["creator"].as_str(), d["extensions"]["x_tool"].as_i64()), (Some("kit"), Some(1)), "the rest kept");
    assert_eq!(d["system_prompt"], "Never break character.");

    // Imported again, it is the character as edited.
    let (status, again) = import(&app, png, "image/png", "zed.png").await;
    assert_eq!(status, 201, "{again}");
    for (field, want) in [("name", "Zed Prime"), ("tagline", "Keeper"), ("materials", materials), ("colour", "#225588")]
    {
        assert_eq!(again[field], want, "{field}");
    }
}

#[actix_web::test]
async fn long_names_are_imported_each_under_an_id_that_fits() {
    let (app, _dir, _) = app_with_roster().await;
    let forty = "Abcdefghij Klmnopqrst Uvwxyzabcd Efghijk";
    let mut ids = Vec::new();
    for name in ["Hatsune Miku (Vocaloid Virtual Singer)", forty, forty] {
        let card = json!({ "name": name, "description": "Sings." });
        let (status, c) = import(&app, card.to_string().into_bytes(), "application/json", "long.json").await;
        assert_eq!(status, 201, "{name}: {c}");
        ids.push(c["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        ids,
        ["hatsune-miku-vocaloid-virtual-si", "abcdefghij-klmnopqrst-uvwxyzabcd", "abcdefghij-klmnopqrst-uvwxyzab-2"]
    );
    let (_, listed) = app.get("/api/roster").await;
    assert_eq!(listed["characters"].as_array().unwrap().len(), 9, "{listed}");
}
