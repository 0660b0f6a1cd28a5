//! The Dynamics view: six charts, each in a `data-chart` element, drawn by
//! the vendored Vega-Lite from the metrics module's `dynamics.json`, in the
//! viewer served by panel, in an export served by a plain static server,
//! and in the live app's drawer (redrawn when a turn ends), with no console
//! errors.

use std::process::{Child, Command, Stdio};

use crate::helpers::*;

const CHARTS: [&str; 6] = ["share", "leads", "passes", "pickups", "cost", "context"];

struct StaticServer(Child);

impl Drop for StaticServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn static_server(dir: &std::path::Path) -> (StaticServer, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new("python3")
        .args(["-m", "http.server", &port.to_string(), "--bind", "127.0.0.1", "--directory"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 serves the export");
    let deadline = std::time::Instant::now() + WAIT;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "the static server did not start");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    (StaticServer(child), port)
}

/// Opens `base`'s viewer, catches console errors, then routes to the charts.
async fn six_charts(browser: &Browser, base: &str, id: &str) {
    browser.goto(&format!("{base}/viewer.html#/")).await;
    browser.until("the viewer loads", "document.querySelector('.sessions-page')").await;
    catch_errors(browser).await;
    browser.js(&format!("location.hash = '#/s/{id}/dynamics'; return true;")).await;
    charts_drawn(browser, "").await;
}

async fn catch_errors(browser: &Browser) {
    browser
        .js("window.__errors = []; const e = console.error; console.error = (...a) => { window.__errors.push(a.join(' ')); e(...a); }; window.addEventListener('error', (x) => window.__errors.push(String(x.message))); return true;")
        .await;
}

/// The six charts under `scope` (a CSS prefix) have drawn, with their downloads.
async fn charts_drawn(browser: &Browser, scope: &str) {
    for chart in CHARTS {
        // Drawn marks, not just an empty frame: a sized SVG with at least one mark item.
        let drawn = format!(
            "(() => {{ const s = document.querySelector('{scope} [data-chart={chart}] svg'); \
             return s && s.getBoundingClientRect().width > 100 && \
             s.querySelectorAll('.mark-rect path, .mark-symbol path, .mark-line path').length > 0; }})()"
        );
        browser.until(&format!("the {chart} chart draws"), &drawn).await;
        let links = browser.count(&format!("{scope} [data-chart={chart}] a[download]")).await;
        assert_eq!(links, 2, "{chart}: its CSV and its spec");
    }
    assert_eq!(browser.count(&format!("{scope} [data-chart]")).await, 6);
    assert_eq!(browser.count(".error-text").await, 0);
    let errors = browser.js("return window.__errors").await;
    assert_eq!(errors, serde_json::json!([]), "no console errors");
}

#[actix_web::test]
async fn the_six_charts_render_in_the_viewer_and_in_an_export_on_a_plain_static_server() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let app = spawn_with(Options { logs: Some(logs.clone()), ..Options::default() }).await;
    let id = app.create(&["ada", "byron", "cleo"]).await;
    let mut sse = app.sse(&id, Some(0)).await;
    for text in ["What should a city automate first?", "@Cleo has this happened before?"] {
        app.say(&id, text).await;
        sse.until("turn-end").await;
    }
    let (status, _) = app.post_empty(&format!("/api/sessions/{id}/close")).await;
    assert_eq!(status, 200);

    let browser = Browser::launch("dynamics-viewer").await;
    six_charts(&browser, &app.address, &id).await;

    let site = dir.path().join("site");
    let out = Command::new(env!("CARGO_BIN_EXE_panel"))
        .args(["export", &id, "--out"])
        .arg(&site)
        .arg("--logs")
        .arg(&logs)
        .arg("--static")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/static"))
        .arg("--roster")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/roster"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    drop(app);
    let (_server, port) = static_server(&site).await;
    six_charts(&browser, &format!("http://127.0.0.1:{port}"), &id).await;
    browser.finish().await;
}

#[actix_web::test]
async fn the_live_drawer_draws_the_six_charts_and_redraws_when_a_turn_ends() {
    let app = spawn_app().await;
    let id = app.create(&["ada", "byron", "cleo"]).await;
    let mut sse = app.sse(&id, Some(0)).await;
    app.say(&id, "What should a city automate first?").await;
    sse.until("turn-end").await;

    let browser = Browser::launch("dynamics-drawer").await;
    browser.goto(&format!("{}/#/s/{id}", app.address)).await;
    browser.until("the chat loads", "document.querySelector('#dynamics-toggle:not([hidden])')").await;
    catch_errors(&browser).await;
    browser.click("#dynamics-toggle").await;
    browser.until("the drawer shows turn 1", "document.getElementById('dynamics-drawer').dataset.turns === '1'").await;
    charts_drawn(&browser, "#dynamics-drawer").await;

    app.say(&id, "@Cleo has this happened before?").await;
    sse.until("turn-end").await;
    browser
        .until("the drawer redraws for turn 2", "document.getElementById('dynamics-drawer').dataset.turns === '2'")
        .await;
    charts_drawn(&browser, "#dynamics-drawer").await;
    let leads = browser
        .js("return document.querySelectorAll('#dynamics-drawer [data-chart=leads] .mark-rect path').length")
        .await;
    assert_eq!(leads, 2, "a lead cell per turn");
    browser.finish().await;
}
