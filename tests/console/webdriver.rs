//! A small W3C WebDriver client for the console tests: one `chromedriver` per test binary
//! (started on a free loopback port, stopped by PID), one headless Chromium session per test
//! with a fresh profile. It speaks the protocol's JSON over the crate's own HTTP client, so the
//! tests pull in no WebDriver library.

use cks_sim::client::ControlClient;
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The running `chromedriver`.
pub struct Driver {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    /// Sessions not yet closed, so [`Driver::stop`] can close what a failed test left open.
    open_sessions: Mutex<Vec<String>>,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

impl Driver {
    /// Start `chromedriver` (Debian's `chromium-driver`) and wait until it is ready.
    pub fn start() -> Driver {
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "start chromedriver (Debian package chromium-driver; scripts/test installs it)",
            );
        let driver = Driver {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            open_sessions: Mutex::new(Vec::new()),
        };
        let client = ControlClient::new(&driver.endpoint);
        let rt = runtime();
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = rt
                .block_on(client.raw("GET", "/status", &[], Vec::new()))
                .ok()
                .is_some_and(|(s, v)| s == 200 && v["value"]["ready"] == true);
            if ready {
                return driver;
            }
            assert!(Instant::now() < end, "chromedriver never became ready");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Close any session a failed test left open, then stop `chromedriver` by its PID.
    pub fn stop(mut self) {
        let rt = runtime();
        let client = ControlClient::new(&self.endpoint);
        let left = std::mem::take(&mut *self.open_sessions.lock().unwrap());
        for id in left {
            let _ = rt.block_on(client.raw("DELETE", &format!("/session/{id}"), &[], Vec::new()));
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// One headless Chromium session.
pub struct Browser<'d> {
    driver: &'d Driver,
    http: ControlClient,
    session: String,
    _profile: tempfile::TempDir,
}

/// An element reference.
#[derive(Debug, Clone)]
pub struct Element(String);

impl<'d> Browser<'d> {
    /// A new session at 1280×800 with a fresh profile.
    pub async fn open(driver: &'d Driver) -> Browser<'d> {
        let profile = tempfile::Builder::new()
            .prefix("cks-sim-chromium-")
            .tempdir()
            .expect("profile dir");
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,800",
        ];
        let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args},
        }}});
        let http = ControlClient::new(&driver.endpoint);
        let v = call(&http, "POST", "/session", Some(caps)).await;
        let session = v["sessionId"].as_str().expect("session id").to_string();
        driver.open_sessions.lock().unwrap().push(session.clone());
        Browser {
            driver,
            http,
            session,
            _profile: profile,
        }
    }

    async fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        call(&self.http, method, &path, body).await
    }

    /// Close the session.
    pub async fn quit(self) {
        self.cmd("DELETE", "", None).await;
        self.driver
            .open_sessions
            .lock()
            .unwrap()
            .retain(|s| s != &self.session);
    }

    /// Navigate to `url` and wait for the page to load.
    pub async fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url }))).await;
    }

    /// The current URL.
    pub async fn url(&self) -> String {
        self.cmd("GET", "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Resize the window.
    pub async fn resize(&self, width: u32, height: u32) {
        self.cmd(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await;
    }

    /// All elements matching a CSS selector.
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let v = self
            .cmd(
                "POST",
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e[ELEMENT].as_str().map(|s| Element(s.to_string())))
            .collect()
    }

    /// The one element matching `css`, waiting up to 10 s for it to appear.
    pub async fn find(&self, css: &str) -> Element {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(e) = self.find_all(css).await.into_iter().next() {
                return e;
            }
            assert!(Instant::now() < end, "no element matches {css:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Click `e`.
    pub async fn click(&self, e: &Element) {
        self.cmd("POST", &format!("/element/{}/click", e.0), Some(json!({})))
            .await;
    }

    /// Click the element matching `css`.
    pub async fn click_css(&self, css: &str) {
        let e = self.find(css).await;
        self.click(&e).await;
    }

    /// Type `text` into `e` after clearing it.
    pub async fn fill(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.cmd("POST", &format!("/element/{}/clear", e.0), Some(json!({})))
            .await;
        self.cmd(
            "POST",
            &format!("/element/{}/value", e.0),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// The rendered text of `e`, or `None` when the page replaced it (a stale element).
    pub async fn try_text(&self, e: &Element) -> Option<String> {
        let path = format!("/session/{}/element/{}/text", self.session, e.0);
        let v = try_call(&self.http, "GET", &path, None).await.ok()?;
        Some(v.as_str().unwrap_or_default().to_string())
    }

    /// The rendered text of the element matching `css` (found again if the page changes
    /// under it, for up to 10 s).
    pub async fn text_of(&self, css: &str) -> String {
        self.wait_text(css, 10, |_| true).await
    }

    /// Run `script` in the page and return its value.
    pub async fn run(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// Wait (up to `secs`) until the text of the element matching `css` satisfies `f`, and
    /// return it; a page that navigates meanwhile is simply looked at again.
    pub async fn wait_text(&self, css: &str, secs: u64, f: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + Duration::from_secs(secs);
        let mut last = None;
        loop {
            if let Some(e) = self.find_all(css).await.first() {
                last = self.try_text(e).await;
                if let Some(t) = last.as_deref().filter(|t| f(t)) {
                    return t.to_string();
                }
            }
            assert!(
                Instant::now() < end,
                "{css:?} never matched; last text {last:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Save a PNG screenshot of the viewport to `target/console-screenshots/<name>.png` and
    /// return its path.
    pub async fn screenshot(&self, name: &str) -> std::path::PathBuf {
        use base64::Engine;
        let v = self.cmd("GET", "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("screenshot data"))
            .expect("base64 PNG");
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }
}

/// One WebDriver command; panics with the driver's error on failure.
async fn call(http: &ControlClient, method: &str, path: &str, body: Option<Value>) -> Value {
    try_call(http, method, path, body)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// One WebDriver command; the driver's error as text on failure.
async fn try_call(
    http: &ControlClient,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    let (status, v) = http
        .raw(
            method,
            path,
            &[("content-type", "application/json; charset=utf-8")],
            bytes,
        )
        .await
        .map_err(|e| format!("WebDriver {method} {path}: {e}"))?;
    if status != 200 {
        return Err(format!(
            "WebDriver {method} {path}: {status} {}: {}",
            v["value"]["error"], v["value"]["message"]
        ));
    }
    Ok(v["value"].clone())
}
