//! A real headless Chromium for the tests, driven over W3C WebDriver: [`Browser`] starts Debian's `chromedriver`
//! on a free 127.0.0.1 port (chromedriver starts `chromium` for the session, with a fresh profile directory and
//! the flags a root user on a closed network needs), and speaks the protocol's JSON with a blocking HTTP client.
//! It owns the driver process (stopped by its pid when dropped, after the session, and so the browser, is closed).
//! A machine without `chromium` and `chromium-driver` fails the test loudly: `scripts/setup.sh test` installs them.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const CHROMIUM: &str = "/usr/bin/chromium";
const DRIVER: &str = "chromedriver";
/// The key of an element reference in W3C WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A headless Chromium under chromedriver, with one session open.
pub struct Browser {
    driver: Option<Child>,
    base: String,
    session: String,
    http: reqwest::blocking::Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a browser session (bounded waits; panics with the reason).
    pub fn start() -> Browser {
        assert!(
            Path::new(CHROMIUM).exists(),
            "{CHROMIUM} is missing: the dashboard tests need Debian's chromium and chromium-driver (scripts/setup.sh test)"
        );
        let port = super::nfsd::free_port();
        let log = super::test_root().join(format!("chromedriver-{port}.log"));
        let driver = Command::new(DRIVER)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {DRIVER}: {e}; the dashboard tests need chromium-driver (scripts/setup.sh test)")
            });
        let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().expect("http client");
        let profile = tempfile::Builder::new().prefix("chromium-profile-").tempdir_in(super::test_root()).unwrap();
        let mut b = Browser {
            driver: Some(driver),
            base: format!("http://127.0.0.1:{port}"),
            session: String::new(),
            http,
            _profile: profile,
        };
        let start = Instant::now();
        loop {
            let ready = b.http.get(format!("{}/status", b.base)).send().ok().and_then(|r| r.text().ok());
            let ready = ready.and_then(|t| serde_json::from_str::<Value>(&t).ok());
            if ready.is_some_and(|v| v["value"]["ready"] == true) {
                break;
            }
            if let Some(Ok(Some(st))) = b.driver.as_mut().map(|c| c.try_wait()) {
                panic!("chromedriver exited at start ({st}); see {}", log.display());
            }
            assert!(start.elapsed() < Duration::from_secs(30), "chromedriver did not answer; see {}", log.display());
            std::thread::sleep(Duration::from_millis(50));
        }
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
            "--window-size=1280,900",
            &format!("--user-data-dir={}", b._profile.path().display()),
        ];
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
                }
            }
        });
        let v = b.call("POST", "/session", Some(caps));
        b.session = v["sessionId"].as_str().unwrap_or_else(|| panic!("no session in {v}")).to_string();
        b
    }

    /// One WebDriver command; returns its `value` (panics on a WebDriver error).
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        match self.try_call(method, path, body) {
            Ok(v) => v,
            Err(e) => panic!("webdriver {method} {path}: {e}"),
        }
    }

    fn try_call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self
                .http
                .post(url)
                .header("Content-Type", "application/json")
                .body(body.unwrap_or(json!({})).to_string()),
        };
        let resp = req.send().map_err(|e| e.to_string())?;
        let ok = resp.status().is_success();
        let text = resp.text().map_err(|e| e.to_string())?;
        let v: Value = serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
        if ok {
            Ok(v["value"].clone())
        } else {
            Err(format!("{}: {}", v["value"]["error"], v["value"]["message"]))
        }
    }

    fn at(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Opens `url` (returns once the page loaded).
    pub fn goto(&self, url: &str) {
        self.call("POST", &self.at("/url"), Some(json!({ "url": url })));
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page; returns what it returns.
    pub fn exec(&self, script: &str, args: Vec<Value>) -> Value {
        self.call("POST", &self.at("/execute/sync"), Some(json!({ "script": script, "args": args })))
    }

    /// Clicks the first element matching `css` with a real pointer click, once it is there (bounded). The page
    /// redraws every second: an element that went stale between the look-up and the click is looked up again.
    pub fn click(&self, css: &str) {
        let start = Instant::now();
        loop {
            let found =
                self.try_call("POST", &self.at("/element"), Some(json!({ "using": "css selector", "value": css })));
            if let Ok(el) = found {
                let id = el[ELEMENT].as_str().unwrap_or_else(|| panic!("no element id in {el}")).to_string();
                match self.try_call("POST", &self.at(&format!("/element/{id}/click")), None) {
                    Ok(_) => return,
                    Err(e) if e.contains("stale element") => {}
                    Err(e) => panic!("clicking {css}: {e}"),
                }
            }
            assert!(start.elapsed() < Duration::from_secs(30), "no clickable {css:?} on the page");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Calls `look` until it gives a value (bounded by `timeout`, every 100 ms); returns that value.
    pub fn wait_for<T>(&self, what: &str, timeout: Duration, mut look: impl FnMut(&Browser) -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            if let Some(v) = look(self) {
                return v;
            }
            assert!(
                start.elapsed() < timeout,
                "timed out after {timeout:?} waiting for {what}; the page shows:\n{}",
                self.exec("return document.body ? document.body.innerText : ''", vec![])
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.try_call("DELETE", &self.at(""), None);
        }
        if let Some(mut c) = self.driver.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
