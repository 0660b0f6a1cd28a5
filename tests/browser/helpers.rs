//! A headless Chromium per test, through a chromedriver the test starts.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

pub use crate::app::*;

pub const WAIT: Duration = Duration::from_secs(20);

pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    name: String,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn binary(env: &str, candidates: &[&str]) -> String {
    if let Ok(path) = std::env::var(env) {
        return path;
    }
    candidates
        .iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or_else(|| {
            panic!("no {candidates:?}: install Debian's chromium and chromium-driver, or run scripts/test, which does")
        })
        .to_string()
}

impl Browser {
    /// Starts chromedriver and a fresh headless Chromium; `name` names the screenshot.
    pub async fn launch(name: &str) -> Self {
        Self::launch_with(name, &[]).await
    }

    /// Like [`Browser::launch`], with extra Chromium flags.
    pub async fn launch_with(name: &str, extra: &[&str]) -> Self {
        let port = free_port();
        let driver = Command::new(binary("CHROMEDRIVER", &["/usr/bin/chromedriver"]))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = tempfile::tempdir().unwrap();
        let mut args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,900",
        ]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": binary("CHROMIUM", &["/usr/bin/chromium", "/usr/bin/chromium-browser"]),
                "args": args,
            },
        });
        let caps: fantoccini::wd::Capabilities = caps.as_object().unwrap().clone();
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + WAIT;
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector).capabilities(caps.clone()).connect(&url).await {
                Ok(c) => break c,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("no WebDriver session: {e}"),
            }
        };
        Self { client, driver, _profile: profile, name: name.to_owned() }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    pub async fn js(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Waits until `script` (a JS expression) is truthy; on timeout, saves
    /// a screenshot and fails with `what`.
    pub async fn until(&self, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let value = self.js(&format!("return ({script});")).await;
            if !matches!(value, Value::Null | Value::Bool(false)) && value != json!(0) && value != json!("") {
                return value;
            }
            if Instant::now() > deadline {
                self.screenshot(&format!("{}-timeout", self.name)).await;
                panic!("timed out waiting for {what}: {script}");
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    }

    /// Finds and clicks `css`. The live page re-renders parts of itself as
    /// events arrive, so an element found a moment ago may have been replaced
    /// by the time it is clicked: that is retried with the fresh element.
    pub async fn click(&self, css: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let el = self
                .client
                .wait()
                .at_most(WAIT)
                .for_element(Locator::Css(css))
                .await
                .unwrap_or_else(|e| panic!("{css}: {e}"));
            match el.click().await {
                Ok(()) => return,
                Err(fantoccini::error::CmdError::Standard(e))
                    if e.error == fantoccini::error::ErrorStatus::StaleElementReference
                        && Instant::now() < deadline => {}
                Err(e) => panic!("clicking {css}: {e}"),
            }
        }
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let el = self.client.wait().at_most(WAIT).for_element(Locator::Css(css)).await.unwrap();
        el.send_keys(text).await.unwrap();
    }

    pub async fn count(&self, css: &str) -> u64 {
        self.js(&format!("return document.querySelectorAll({css:?}).length;")).await.as_u64().unwrap()
    }

    pub async fn text(&self, css: &str) -> String {
        self.js(&format!("const e = document.querySelector({css:?}); return e ? e.textContent : null;"))
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub async fn screenshot(&self, name: &str) {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-output/browser");
        std::fs::create_dir_all(&dir).unwrap();
        if let Ok(png) = self.client.screenshot().await {
            std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
        }
    }

    /// Saves the test's screenshot and closes the browser.
    pub async fn finish(mut self) {
        self.screenshot(&self.name.clone()).await;
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}

/// Keys for `send_keys`: WebDriver's code points.
pub const ENTER: &str = "\u{E007}";
pub const TAB: &str = "\u{E004}";

/// Types `text` into the chat's composer and sends it.
pub async fn send(b: &Browser, text: &str) {
    b.type_into(".composer textarea", text).await;
    b.type_into(".composer textarea", ENTER).await;
}

/// A script true once turn `n` has ended in the chat, its cost shown.
pub fn turn_done(n: u32) -> String {
    format!(
        "document.querySelector('#turn-{n}') && !document.querySelector('#turn-{n}').classList.contains('in-flight') && document.querySelector('#turn-{n} .cost').textContent.startsWith('$')"
    )
}
