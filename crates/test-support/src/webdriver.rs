//! ChromeDriver for browser tests: Debian's `chromedriver` on a free loopback port, driving
//! Debian's headless `chromium` (never a browser downloaded by a test tool), killed on drop.
//! Also locates axe-core (installed from npm by `make test-assets`) for accessibility checks.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{HarnessError, free_port};

const DRIVERS: [&str; 2] = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"];
const BROWSERS: [&str; 2] = ["/usr/bin/chromium", "/usr/bin/chromium-browser"];

fn find(candidates: &[&str], name: &str) -> Result<PathBuf, HarnessError> {
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or_else(|| HarnessError::MissingProgram(format!("{name} (Debian packages chromium and chromium-driver)")))
}

pub struct ChromeDriver {
    port: u16,
    child: Child,
    browser: PathBuf,
    profile: tempfile::TempDir,
}

impl ChromeDriver {
    pub fn start() -> Result<ChromeDriver, HarnessError> {
        let driver = find(&DRIVERS, "chromedriver")?;
        let browser = find(&BROWSERS, "chromium")?;
        let profile =
            tempfile::tempdir().map_err(|source| HarnessError::Io { context: "browser profile".into(), source })?;
        let port = free_port()?;
        // The driver and the browser it starts write their temporary and per-user files in the
        // profile's folder, removed with it, not in the machine's (a virtual authenticator's
        // keys included).
        let mut own = Vec::new();
        for name in ["tmp", "config", "cache", "data"] {
            let dir = profile.path().join(name);
            std::fs::create_dir_all(&dir)
                .map_err(|source| HarnessError::Io { context: "browser folders".into(), source })?;
            own.push(dir);
        }
        let child = Command::new(&driver)
            .env("TMPDIR", &own[0])
            .env("XDG_CONFIG_HOME", &own[1])
            .env("XDG_CACHE_HOME", &own[2])
            .env("XDG_DATA_HOME", &own[3])
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| HarnessError::Io { context: "starting chromedriver".into(), source })?;
        let mut me = ChromeDriver { port, child, browser, profile };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if me.ready() {
                return Ok(me);
            }
            if let Ok(Some(status)) = me.child.try_wait() {
                return Err(HarnessError::NotReady("chromedriver", format!("exited with {status}")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(HarnessError::NotReady("chromedriver", "no answer on /status".into()))
    }

    fn ready(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        // ChromeDriver refuses a Host without the port (a DNS-rebinding guard).
        let request = format!("GET /status HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n", self.port);
        if s.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        answer.contains("\"ready\":true") || answer.contains("\"ready\": true")
    }

    /// The WebDriver URL to connect to.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// W3C capabilities for a headless Chromium that stays off the network (this machine's
    /// network is closed: background services would only fail), in a fresh profile.
    pub fn capabilities(&self) -> serde_json::Map<String, serde_json::Value> {
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--window-size=1200,1000",
            "--lang=fr-FR",
        ]
        .iter()
        .map(|a| a.to_string())
        .chain([format!("--user-data-dir={}", self.profile.path().display())])
        .collect::<Vec<_>>();
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), "chrome".into());
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({ "binary": self.browser.display().to_string(), "args": args }),
        );
        caps
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// axe-core's browser script (`axe.min.js`), from `CADUCEE_AXE_JS` or the npm cache that
/// `make test-assets` fills (`.cache/npm/node_modules/axe-core/axe.min.js` in the workspace).
pub fn axe_script(workspace: &Path) -> Result<String, HarnessError> {
    let path = std::env::var_os("CADUCEE_AXE_JS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join(".cache/npm/node_modules/axe-core/axe.min.js"));
    std::fs::read_to_string(&path).map_err(|source| HarnessError::Io {
        context: format!("reading axe-core at {} (run `make test-assets`)", path.display()),
        source,
    })
}

/// Where failing browser tests save their screenshots.
pub fn screenshot_dir(workspace: &Path) -> PathBuf {
    workspace.join("target/browser-screenshots")
}
