//! The test harness: a private `pcscd` (never the system one) with its own reader
//! configuration, the vpcd driver on free ports, and virtual cards attached to it; everything
//! is stopped and removed on drop.
//!
//! pcscd 1.9 ignores `PCSCLITE_CSOCK_NAME` for the socket it listens on, so the private
//! instance is socket-activated: the harness binds a Unix socket in a temporary folder and
//! hands it to pcscd as fd 3 (`LISTEN_FDS=1`, `LISTEN_PID` = pcscd's pid, set by the shell
//! that `exec`s it). Clients find it through `PCSCLITE_CSOCK_NAME` ([`SOCKET_ENV`]), which
//! libpcsclite reads once per process, at the first `SCardEstablishContext`: run PC/SC clients
//! as child processes ([`Pcscd::command`]), one private pcscd per test process.
//!
//! The harness knows when pcscd has seen a card inserted or removed from pcscd's own log
//! (`-f -i` prints "Card inserted into …" / "Card Removed From …"), so that it needs no PC/SC
//! context of its own and never sleeps on a guess.
//!
//! A test of another crate (the provider's, say) signs in with a card like this:
//!
//! ```no_run
//! use virtual_card::{Pcscd, TestIdentity, workspace_binary};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let pcscd = Pcscd::start()?; // private pcscd + vpcd reader, stopped on drop
//! let id = TestIdentity::generate("899700218896 Jean Dupont")?; // RSA-2048, client-auth cert, test CA
//! let mut card = pcscd.insert_card(&id.profile("1234")?)?; // returns once pcscd sees it
//! // The agent, a PC/SC client of this pcscd (PCSCLITE_CSOCK_NAME set by `command`):
//! let agent = pcscd
//!     .command(workspace_binary("card-agent")?)
//!     .args(["serve", "--listen", "127.0.0.1:0", "--allow-origin", "http://127.0.0.1:8080"])
//!     .spawn()?; // prints "listening on http://127.0.0.1:PORT" first
//! assert_eq!(card.status().pin_tries_left, 3);
//! card.remove_after_apdus(3); // pulled out in the middle of the next session
//! card.remove()?; // or at once; card.insert()? puts it back
//! # drop(agent);
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::profile::CardProfile;
use crate::vpcd::{CardError, VirtualCard};

/// The variable PC/SC clients need to reach a private pcscd: its socket's path.
pub const SOCKET_ENV: &str = "PCSCLITE_CSOCK_NAME";
/// The vpcd driver as Debian installs it (`vsmartcard-vpcd`).
pub const VPCD_DRIVER: &str = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so";
const FRIENDLY_NAME: &str = "Caducee Virtual CPS";
/// The key of pcscd's "daemon ready" in the events (no reader has this name).
const READY: &str = "\0ready";
/// The key of the count of ATRs pcscd logged, whatever the reader (no reader has this name).
const ATRS: &str = "\0atr";

/// Why the harness could not start.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("harness I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("the vpcd driver is missing ({VPCD_DRIVER}): apt-get install --no-install-recommends vsmartcard-vpcd")]
    NoDriver,
    #[error("no two consecutive free TCP ports for vpcd")]
    NoPorts,
    #[error("pcscd did not start (CADUCEE_PCSCD_LOG=1 shows its log)")]
    NotReady,
    #[error("vpcd could not listen on its port")]
    PortTaken,
    #[error(transparent)]
    Card(#[from] CardError),
    #[error(
        "the binary {0} is not built beside this test (cargo build -p card-agent, or run the tests of the whole workspace)"
    )]
    NoBinary(String),
}

/// A binary of this workspace built beside the running test (`target/<profile>/<name>`), for
/// tests outside the binary's own package (which have `env!("CARGO_BIN_EXE_<name>")`), e.g.
/// the provider's tests running `card-agent`. `cargo nextest run --workspace` builds every
/// binary; with `-p <crate>`, build it first (`cargo build -p card-agent`).
pub fn workspace_binary(name: &str) -> Result<PathBuf, HarnessError> {
    let exe = std::env::current_exe()?;
    // target/<profile>/deps/<test>-<hash> → target/<profile>/<name>
    let candidate = exe.parent().and_then(Path::parent).map(|dir| dir.join(name)).filter(|p| p.is_file());
    candidate.ok_or_else(|| HarnessError::NoBinary(name.to_owned()))
}

/// The events' key of "vpcd listens on `port`" (no reader has such a name).
fn listening_key(port: u16) -> String {
    format!("\0vpcd:{port}")
}

/// Card events pcscd logged, per reader name.
#[derive(Debug, Default)]
pub(crate) struct Events {
    counts: Mutex<HashMap<String, (u64, u64)>>,
    changed: Condvar,
}

impl Events {
    fn get(&self, reader: &str) -> (u64, u64) {
        let counts = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        counts.get(reader).copied().unwrap_or((0, 0))
    }

    pub(crate) fn inserted(&self, reader: &str) -> u64 {
        self.get(reader).0
    }

    pub(crate) fn removed(&self, reader: &str) -> u64 {
        self.get(reader).1
    }

    fn wait(&self, reader: &str, timeout: Duration, done: impl Fn((u64, u64)) -> bool) -> bool {
        self.wait_until(timeout, |counts| done(counts.get(reader).copied().unwrap_or((0, 0))))
    }

    /// Waits until `done` holds of the counts, or `timeout` passes.
    fn wait_until(&self, timeout: Duration, done: impl Fn(&HashMap<String, (u64, u64)>) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut counts = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        loop {
            if done(&counts) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            counts = match self.changed.wait_timeout(counts, deadline - now) {
                Ok((c, _)) => c,
                Err(p) => p.into_inner().0,
            };
        }
    }

    pub(crate) fn atrs(&self) -> u64 {
        self.get(ATRS).0
    }

    /// Waits until pcscd saw a card come into `reader` (its "Card inserted into" count passed
    /// `before`), or read a card's ATR (its count passed `atrs_before`): a card that is already
    /// there when the reader's event thread starts, on a busy machine, is logged by its ATR
    /// alone. A private pcscd has one card at a time, so an ATR after the connection is ours.
    pub(crate) fn wait_inserted(&self, reader: &str, before: u64, atrs_before: u64, timeout: Duration) -> bool {
        self.wait_until(timeout, |counts| {
            counts.get(reader).is_some_and(|c| c.0 > before) || counts.get(ATRS).is_some_and(|c| c.0 > atrs_before)
        })
    }

    pub(crate) fn wait_removed(&self, reader: &str, before: u64, timeout: Duration) -> bool {
        self.wait(reader, timeout, |(_, r)| r > before)
    }

    fn record(&self, line: &str) {
        if let Some(i) = line.find("Waiting for virtual ICC on port ") {
            let port = line[i + "Waiting for virtual ICC on port ".len()..].trim();
            if let Ok(port) = port.parse::<u16>() {
                let mut counts = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                counts.entry(listening_key(port)).or_default().0 = 1;
            }
            return;
        }
        if line.contains("Card ATR:") {
            let mut counts = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            counts.entry(ATRS.to_owned()).or_default().0 += 1;
            self.changed.notify_all();
            return;
        }
        if line.contains("daemon ready") {
            let mut counts = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            counts.entry(READY.to_owned()).or_default().0 = 1;
            self.changed.notify_all();
            return;
        }
        let (reader, inserted) = if let Some(i) = line.find("Card inserted into ") {
            (&line[i + "Card inserted into ".len()..], true)
        } else if let Some(i) = line.find("Card Removed From ") {
            (&line[i + "Card Removed From ".len()..], false)
        } else {
            return;
        };
        let mut counts = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = counts.entry(reader.trim().to_owned()).or_default();
        if inserted {
            entry.0 += 1;
        } else {
            entry.1 += 1;
        }
        self.changed.notify_all();
    }
}

/// A private pcscd with one vpcd reader slot pair, in a temporary folder.
pub struct Pcscd {
    child: Child,
    dir: tempfile::TempDir,
    socket: PathBuf,
    port: u16,
    events: Arc<Events>,
}

impl std::fmt::Debug for Pcscd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pcscd").field("socket", &self.socket).field("port", &self.port).finish()
    }
}

/// Two consecutive free ports (vpcd listens on its port and the next one, one per reader).
fn free_port_pair() -> Result<u16, HarnessError> {
    for _ in 0..50 {
        let a = TcpListener::bind(("127.0.0.1", 0))?;
        let port = a.local_addr()?.port();
        if port < u16::MAX && TcpListener::bind(("0.0.0.0", port + 1)).is_ok() {
            return Ok(port);
        }
    }
    Err(HarnessError::NoPorts)
}

fn pcscd_program() -> PathBuf {
    if let Some(p) = std::env::var_os("CADUCEE_PCSCD") {
        return PathBuf::from(p);
    }
    let sbin = Path::new("/usr/sbin/pcscd");
    if sbin.exists() { sbin.to_path_buf() } else { PathBuf::from("pcscd") }
}

impl Pcscd {
    /// Starts a private pcscd whose reader configuration is one vpcd reader on free ports, and
    /// waits until it is ready (its readers added).
    pub fn start() -> Result<Pcscd, HarnessError> {
        if !Path::new(VPCD_DRIVER).exists() {
            return Err(HarnessError::NoDriver);
        }
        // The ports are free when chosen, but another test may take one before vpcd binds
        // it: then start again on other ports.
        let mut last = HarnessError::NotReady;
        for _ in 0..5 {
            match Self::start_once() {
                Err(HarnessError::PortTaken) => last = HarnessError::PortTaken,
                other => return other,
            }
        }
        Err(last)
    }

    fn start_once() -> Result<Pcscd, HarnessError> {
        let dir = tempfile::Builder::new().prefix("caducee-pcscd-").tempdir()?;
        let port = free_port_pair()?;
        let conf = dir.path().join("reader.conf.d");
        std::fs::create_dir(&conf)?;
        std::fs::write(
            conf.join("vpcd"),
            format!(
                "FRIENDLYNAME \"{FRIENDLY_NAME}\"\nDEVICENAME /dev/null:{port}\nLIBPATH {VPCD_DRIVER}\nCHANNELID {port}\n"
            ),
        )?;
        let socket = dir.path().join("pcscd.comm");
        let listener = UnixListener::bind(&socket)?;
        let fd: OwnedFd = listener.into();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" -f -i -c \"$1\" 3<&0 0</dev/null")
            .arg(pcscd_program())
            .arg(&conf)
            .env_remove("LISTEN_FDNAMES")
            .stdin(Stdio::from(fd))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let events = Arc::new(Events::default());
        if let Some(out) = child.stdout.take() {
            let events = events.clone();
            let verbose = std::env::var_os("CADUCEE_PCSCD_LOG").is_some();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    if verbose {
                        eprintln!("pcscd: {line}");
                    }
                    events.record(&line);
                }
            });
        }
        let pcscd = Pcscd { child, dir, socket, port, events };
        // Readers are added before the daemon is ready; clients are served after.
        if !pcscd.events.wait(READY, Duration::from_secs(10), |(ready, _)| ready > 0) {
            return Err(HarnessError::NotReady);
        }
        // vpcd says "Waiting for virtual ICC on port N" once it listens.
        if pcscd.events.get(&listening_key(port)).0 == 0 {
            return Err(HarnessError::PortTaken);
        }
        Ok(pcscd)
    }

    /// The socket clients reach this pcscd by: the value of [`SOCKET_ENV`].
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `(SOCKET_ENV, socket path)`, for a client's environment.
    pub fn env(&self) -> (&'static str, &Path) {
        (SOCKET_ENV, &self.socket)
    }

    /// A command for a PC/SC client of this pcscd (its environment names the socket).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env(SOCKET_ENV, &self.socket);
        cmd
    }

    /// The temporary folder of this instance (for other private configuration files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The vpcd port of the first reader.
    pub fn vpcd_port(&self) -> u16 {
        self.port
    }

    /// The PC/SC name of the reader the cards of [`Pcscd::insert_card`] go in.
    pub fn reader_name(&self) -> String {
        format!("{FRIENDLY_NAME} 00 00")
    }

    /// Waits until pcscd has a card in its reader (a card inserted by another process, e.g.
    /// `virtual-cps run`); false after `timeout`.
    pub fn wait_card_present(&self, timeout: Duration) -> bool {
        self.events.wait(&self.reader_name(), timeout, |(inserted, removed)| inserted > removed)
    }

    /// A virtual card for this pcscd's reader, not inserted.
    pub fn card(&self, profile: &CardProfile) -> Result<VirtualCard, HarnessError> {
        let mut card = VirtualCard::new(profile, self.port)?;
        card.watch(self.events.clone(), self.reader_name());
        Ok(card)
    }

    /// A virtual card inserted in this pcscd's reader, once pcscd has seen it.
    pub fn insert_card(&self, profile: &CardProfile) -> Result<VirtualCard, HarnessError> {
        let mut card = self.card(profile)?;
        card.insert()?;
        Ok(card)
    }

    /// A private pcscd with a virtual card in its reader. On a busy machine a pcscd now and
    /// then never takes the card (its vpcd reader refuses the connection although it said it
    /// listens; the cause is in pcscd, not found): then a new pcscd is started, up to three
    /// times, as a workstation would be restarted.
    pub fn with_card(profile: &CardProfile) -> Result<(Pcscd, VirtualCard), HarnessError> {
        let mut last = HarnessError::NotReady;
        for _ in 0..3 {
            let pcscd = Pcscd::start()?;
            match pcscd.insert_card(profile) {
                Ok(card) => return Ok((pcscd, card)),
                Err(e @ HarnessError::Card(CardError::Connect { .. })) => {
                    tracing::warn!(error = %e, "pcscd did not take the card: starting another");
                    last = e;
                }
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }
}

impl Drop for Pcscd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
