//! A headless Chromium driven over WebDriver: Debian's `chromedriver` on a loopback port, a
//! fantoccini session with a fresh profile, and page helpers whose failures show what a reader
//! needs (the action, the current URL, an excerpt of the page and the server's log tail).
//!
//! Needs `chromium` and `chromium-driver` (`apt-get install chromium chromium-driver`); a missing
//! browser fails the test, and no browser or driver is ever downloaded.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::error::CmdError;
use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tempfile::TempDir;

use super::free_port;
use super::process::ChildGuard;

/// How to get the browser and its driver.
pub const BROWSER_INSTALL_HINT: &str = "apt-get install chromium chromium-driver";

/// Debian's paths; fixed so that no other Chrome (or a downloaded one) is picked up by accident.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Desktop window size for screenshots.
pub const DESKTOP: (u32, u32) = (1440, 1000);

/// A phone-sized window for the mobile screenshot.
pub const MOBILE: (u32, u32) = (375, 812);

/// How long chromedriver may take to answer `/status`.
const DRIVER_READY_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a page may take to load after a click or a navigation.
const PAGE_TIMEOUT: Duration = Duration::from_secs(15);

/// Tallest full-page screenshot; a longer page is cut off rather than producing a huge image.
const MAX_SCREENSHOT_HEIGHT: u32 = 4000;

/// Characters of page source shown in a failure message.
const SOURCE_EXCERPT_CHARS: usize = 4000;

/// Chromium's switches: headless, no sandbox (tests may run as root in a container), and none of
/// the background traffic it would otherwise keep trying (DESIGN.md, "Real parts").
const CHROMIUM_ARGS: [&str; 9] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1440,1000",
];

/// Produces the log lines of the server under test, appended to every failure message.
pub type LogSource = Box<dyn Fn() -> String + Send + Sync>;

/// A WebDriver session on a headless Chromium; dropping it ends the session and the driver.
pub struct Browser {
    /// `None` once [`Browser::close`] has ended the session.
    client: Option<Client>,
    session_id: Option<String>,
    driver_port: u16,
    /// Dropped (killed) after `Drop::drop` has ended the session, so Chromium is not orphaned.
    _driver: ChildGuard,
    /// Removed only after the driver, and with it Chromium, has gone.
    _profile: TempDir,
    server_log: LogSource,
}

impl Browser {
    /// Starts chromedriver (its log in `dir`) and a Chromium session with a fresh profile.
    ///
    /// `server_log` is called on failure to show what the server under test logged.
    pub async fn start(dir: &Path, server_log: LogSource) -> Browser {
        require_browser();
        let driver_port = free_port();
        let driver = spawn_driver(dir, driver_port);
        wait_for_driver(driver_port).await;

        let profile = tempfile::Builder::new()
            .prefix("chromium-profile-")
            .tempdir_in(dir)
            .expect("create a Chromium profile directory");
        // chromedriver speaks plain HTTP on loopback: no TLS stack, so neither a rustls crypto
        // provider nor the system's root certificates can get in the way.
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities(profile.path()))
            .connect(&format!("http://127.0.0.1:{driver_port}"))
            .await
            .unwrap_or_else(|err| panic!("chromedriver could not start Chromium: {err}"));
        let session_id = client.session_id().await.ok().flatten();

        let browser = Browser {
            client: Some(client),
            session_id,
            driver_port,
            _driver: driver,
            _profile: profile,
            server_log,
        };
        browser.resize(DESKTOP).await;
        browser
    }

    /// The WebDriver client, for anything the helpers below do not cover.
    pub fn client(&self) -> &Client {
        self.client.as_ref().expect("the browser session is open")
    }

    /// Ends the session (Chromium exits); chromedriver is killed when `self` drops.
    pub async fn close(mut self) {
        if let Some(client) = self.client.take() {
            let closed = client.close().await;
            closed.unwrap_or_else(|err| panic!("closing the WebDriver session failed: {err}"));
        }
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        let loaded = self.client().goto(url).await;
        self.ok(loaded, &format!("open {url}")).await;
    }

    /// Reloads the current page.
    pub async fn reload(&self) {
        let reloaded = self.client().refresh().await;
        self.ok(reloaded, "reload the page").await;
    }

    /// The path of the current URL, such as `/login`.
    pub async fn path(&self) -> String {
        let url = self.client().current_url().await;
        self.ok(url, "read the current URL").await.path().to_owned()
    }

    /// The HTTP status of the response that produced the current document.
    ///
    /// WebDriver does not expose it; Chromium's Navigation Timing entry does.
    pub async fn response_status(&self) -> u16 {
        let script = "const nav = performance.getEntriesByType('navigation')[0];
                      return nav ? nav.responseStatus : 0;";
        let status = self.script(script, "read the response status").await;
        status
            .as_u64()
            .and_then(|status| u16::try_from(status).ok())
            .unwrap_or(0)
    }

    /// Fails unless the current path is `expected`.
    pub async fn expect_path(&self, expected: &str, what: &str) {
        let path = self.path().await;
        if path != expected {
            self.fail(&format!(
                "{what}: expected to be on {expected}, but on {path}"
            ))
            .await;
        }
    }

    /// The element matching the CSS `selector`; fails when there is none.
    pub async fn find(&self, selector: &str) -> Element {
        let found = self.client().find(Locator::Css(selector)).await;
        self.ok(found, &format!("find `{selector}`")).await
    }

    /// Whether any element matches the CSS `selector`.
    pub async fn exists(&self, selector: &str) -> bool {
        let found = self.client().find_all(Locator::Css(selector)).await;
        !self
            .ok(found, &format!("look for `{selector}`"))
            .await
            .is_empty()
    }

    /// The visible text of the element matching `selector`.
    pub async fn text(&self, selector: &str) -> String {
        let text = self.find(selector).await.text().await;
        self.ok(text, &format!("read the text of `{selector}`"))
            .await
    }

    /// Fails unless the element matching `selector` shows text containing `expected`.
    pub async fn expect_text(&self, selector: &str, expected: &str) {
        let text = self.text(selector).await;
        if !text.contains(expected) {
            let message = format!("`{selector}` should contain {expected:?}, but shows {text:?}");
            self.fail(&message).await;
        }
    }

    /// Replaces the value of the input matching `selector` by typing `value`.
    pub async fn fill(&self, selector: &str, value: &str) {
        let input = self.find(selector).await;
        let what = format!("type into `{selector}`");
        self.ok(input.clear().await, &what).await;
        self.ok(input.send_keys(value).await, &what).await;
    }

    /// Chooses the option whose value is `value` in the select matching `selector`.
    pub async fn select(&self, selector: &str, value: &str) {
        let select = self.find(selector).await;
        let chosen = select.select_by_value(value).await;
        self.ok(chosen, &format!("choose {value:?} in `{selector}`"))
            .await;
    }

    /// Clicks the element matching `selector` and waits until the page it leads to has loaded.
    ///
    /// The old document is marked first; the wait ends when a document without the mark is
    /// complete, so a click that re-renders the same URL (a form with errors) is seen too.
    pub async fn click_and_wait(&self, selector: &str) {
        self.script("window.__portcullisOldPage = true;", "mark the page")
            .await;
        let element = self.find(selector).await;
        self.ok(element.click().await, &format!("click `{selector}`"))
            .await;

        let deadline = Instant::now() + PAGE_TIMEOUT;
        let check = "return !window.__portcullisOldPage && document.readyState === 'complete';";
        while Instant::now() < deadline {
            // While the navigation is under way a script can fail; that is not an error yet.
            let loaded = self.client().execute(check, Vec::new()).await;
            if matches!(loaded, Ok(Value::Bool(true))) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let waited = PAGE_TIMEOUT;
        self.fail(&format!(
            "clicking `{selector}` loaded no new page within {waited:?}"
        ))
        .await;
    }

    /// Resizes the window to `(width, height)` CSS pixels.
    pub async fn resize(&self, (width, height): (u32, u32)) {
        let resized = self.client().set_window_size(width, height).await;
        self.ok(resized, &format!("resize the window to {width}x{height}"))
            .await;
    }

    /// Saves a PNG of the whole page (up to a height limit) at the window's current width as
    /// `name` in every directory of `dirs`, and returns the first path.
    ///
    /// The window is made as tall as the page for the shot and restored afterwards.
    pub async fn screenshot(&self, name: &str, dirs: &[PathBuf]) -> PathBuf {
        let what = format!("take the screenshot {name}");
        let (width, height) = self.ok(self.client().get_window_size().await, &what).await;
        let page_height = self.page_height().await;
        let shot_height = page_height.max(height as u32).min(MAX_SCREENSHOT_HEIGHT);
        self.resize((width as u32, shot_height)).await;
        let png = self.client().screenshot().await;
        self.resize((width as u32, height as u32)).await;
        let png = self.ok(png, &what).await;

        for dir in dirs {
            std::fs::create_dir_all(dir)
                .unwrap_or_else(|err| panic!("cannot create {}: {err}", dir.display()));
            let path = dir.join(name);
            std::fs::write(&path, &png)
                .unwrap_or_else(|err| panic!("cannot write {}: {err}", path.display()));
        }
        dirs.first().map(|dir| dir.join(name)).unwrap_or_default()
    }

    /// Runs `script` in the page and returns its result.
    pub async fn script(&self, script: &str, what: &str) -> Value {
        let result = self.client().execute(script, Vec::new()).await;
        self.ok(result, what).await
    }

    /// Unwraps a WebDriver result, or fails the test saying `what` was being done.
    pub async fn ok<T>(&self, result: Result<T, CmdError>, what: &str) -> T {
        match result {
            Ok(value) => value,
            Err(err) => self.fail(&format!("{what}: {err}")).await,
        }
    }

    /// Fails the test with `message`, the current URL, a page excerpt and the server's log.
    pub async fn fail(&self, message: &str) -> ! {
        let context = self.context().await;
        panic!("{message}\n{context}\n{}", (self.server_log)());
    }

    /// The current URL and the start of the page source, for failure messages.
    pub async fn context(&self) -> String {
        let Some(client) = self.client.as_ref() else {
            return "(the browser session is closed)".to_owned();
        };
        let url = match client.current_url().await {
            Ok(url) => url.to_string(),
            Err(err) => format!("(unknown: {err})"),
        };
        let source = match client.source().await {
            Ok(source) => excerpt(&source),
            Err(err) => format!("(unavailable: {err})"),
        };
        format!("  current URL: {url}\n----- page source (excerpt) -----\n{source}")
    }

    /// Height of the rendered document in CSS pixels, plus the window's own chrome.
    async fn page_height(&self) -> u32 {
        let script = "return Math.ceil(document.documentElement.scrollHeight
                          + (window.outerHeight - window.innerHeight));";
        let height = self.script(script, "measure the page height").await;
        height
            .as_u64()
            .and_then(|height| u32::try_from(height).ok())
            .unwrap_or(0)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // An open session here means the test failed before `close`. Killing chromedriver would
        // leave Chromium running, and the async client cannot be awaited in `drop`, so the
        // session is ended with one plain blocking request.
        if self.client.take().is_some()
            && let Some(session_id) = &self.session_id
        {
            delete_session(self.driver_port, session_id);
        }
    }
}

/// Fails the test, naming the packages, unless Chromium and its driver are installed.
fn require_browser() {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|path| !Path::new(path).is_file())
        .collect();
    assert!(
        missing.is_empty(),
        "missing {}; this test needs them: run `{BROWSER_INSTALL_HINT}`",
        missing.join(" and ")
    );
}

fn spawn_driver(dir: &Path, port: u16) -> ChildGuard {
    let mut command = Command::new(CHROMEDRIVER);
    command
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .current_dir(dir);
    ChildGuard::spawn("chromedriver", command, &dir.join("chromedriver.log"))
}

/// Waits until chromedriver reports itself ready.
async fn wait_for_driver(port: u16) {
    let url = format!("http://127.0.0.1:{port}/status");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + DRIVER_READY_TIMEOUT;
    let mut last = String::from("no answer yet");
    while Instant::now() < deadline {
        match client.get(&url).send().await {
            Ok(response) => match response.json::<Value>().await {
                Ok(status) if status["value"]["ready"] == true => return,
                Ok(status) => last = status.to_string(),
                Err(err) => last = err.to_string(),
            },
            Err(err) => last = err.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not answer {url} within {DRIVER_READY_TIMEOUT:?} (last: {last})");
}

fn capabilities(profile: &Path) -> Capabilities {
    let mut args: Vec<String> = CHROMIUM_ARGS.map(String::from).to_vec();
    args.push(format!("--user-data-dir={}", profile.display()));
    let options = json!({ "binary": CHROMIUM, "args": args });

    let mut capabilities = Capabilities::new();
    capabilities.insert("goog:chromeOptions".to_owned(), options);
    capabilities
}

/// Sends `DELETE /session/ID` to chromedriver and waits briefly for the answer.
fn delete_session(port: u16, session_id: &str) {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let timeout = Some(Duration::from_secs(10));
    let _ = stream.set_read_timeout(timeout);
    let _ = stream.set_write_timeout(timeout);
    let request = format!(
        "DELETE /session/{session_id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Connection: close\r\nContent-Length: 0\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_ok() {
        // The answer only matters as the sign that Chromium has been shut down.
        let _ = stream.read_to_end(&mut Vec::new());
    }
}

/// The page's main content (or else its body), cut to a readable length.
fn excerpt(source: &str) -> String {
    let start = ["<main", "<body"]
        .iter()
        .find_map(|tag| source.find(tag))
        .unwrap_or(0);
    let content = &source[start..];
    let cut: String = content.chars().take(SOURCE_EXCERPT_CHARS).collect();
    if cut.len() < content.len() {
        format!("{cut}\n… ({} more bytes)", content.len() - cut.len())
    } else {
        cut
    }
}
