//! An ephemeral Redis server for tests: `redis-server` from the Debian package, on a free loopback
//! port, without persistence, in its own temporary directory.
//!
//! The handle can stop, restart (on the same port), pause and resume the server, so that tests can
//! check that their code fails closed while Redis is gone or hung and recovers when it is back.
//! Blocking std code only, so it is usable from any test, async or not.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::{HarnessError, free_port};

/// How long a starting server may take to answer. Generous because the test machines are small
/// and busy: a slow start is not a failure, a server that never answers is.
const READY_DEADLINE: Duration = Duration::from_secs(10);
/// Another process may grab the port between `free_port` and the server's bind; then we try again.
const PORT_ATTEMPTS: usize = 5;
const LOG_FILE: &str = "redis.log";

/// A running (or deliberately stopped) `redis-server`, killed and removed when dropped.
#[derive(Debug)]
pub struct RedisServer {
    program: PathBuf,
    // Canonical, because Redis reports its working directory canonicalised and we compare them.
    dir: PathBuf,
    port: u16,
    /// TLS and users besides the default one, as asked.
    options: RedisOptions,
    /// The TLS port, when TLS is on.
    tls_port: Option<u16>,
    child: Option<Child>,
    // Declared last so that the directory outlives the process using it.
    _tempdir: TempDir,
}

/// What a server runs with besides the plain port (which stays, for the harness's own probe).
#[derive(Debug, Clone, Default)]
pub struct RedisOptions {
    /// A TLS port too, with this certificate and key, trusting this CA for client certificates
    /// (which it does not ask for).
    pub tls: Option<RedisTls>,
    /// ACL users `(name, password)`, each allowed every command on every key.
    pub users: Vec<(String, String)>,
    /// More `redis-server` arguments (`--replicaof`, `--cluster-enabled`, ...), after the
    /// harness's own.
    pub extra_args: Vec<String>,
}

/// The PEM files of a TLS port.
#[derive(Debug, Clone)]
pub struct RedisTls {
    pub certificate: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

/// TLS for servers on loopback, as an operator would set it up: a CA of its own and one
/// certificate for `localhost` and `127.0.0.1` (the names clients, sentinels and cluster nodes
/// use here), written to `dir`. Returns the files and the CA's PEM, which clients trust.
pub fn loopback_tls(dir: &Path) -> Result<(RedisTls, Vec<u8>), HarnessError> {
    let ca = authority("CA Redis")?;
    let key = rcgen::KeyPair::generate().map_err(certificate_error)?;
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let cert = rcgen::CertificateParams::new(names).and_then(|p| p.signed_by(&key, &ca)).map_err(certificate_error)?;
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text)
            .map_err(|source| HarnessError::Io { context: format!("writing {name}"), source })?;
        Ok::<_, HarnessError>(path)
    };
    let tls = RedisTls {
        certificate: write("redis.pem", cert.pem())?,
        key: write("redis.key", key.serialize_pem())?,
        ca: write("ca.pem", ca.pem())?,
    };
    Ok((tls, ca.pem().into_bytes()))
}

/// The PEM of a CA that signed none of [`loopback_tls`]'s certificates: a client trusting it
/// must refuse those servers.
pub fn unrelated_ca_pem() -> Result<Vec<u8>, HarnessError> {
    Ok(authority("Autre CA")?.pem().into_bytes())
}

fn authority(name: &str) -> Result<rcgen::CertifiedIssuer<'static, rcgen::KeyPair>, HarnessError> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(certificate_error)?;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    let key = rcgen::KeyPair::generate().map_err(certificate_error)?;
    rcgen::CertifiedIssuer::self_signed(params, key).map_err(certificate_error)
}

fn certificate_error(e: rcgen::Error) -> HarnessError {
    HarnessError::Certificate(e.to_string())
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers.
    pub fn start() -> Result<RedisServer, HarnessError> {
        Self::start_with(RedisOptions::default())
    }

    /// Starts a server with `options` (a TLS port, ACL users) and waits until it answers.
    pub fn start_with(options: RedisOptions) -> Result<RedisServer, HarnessError> {
        let program = find_program("redis-server")?;
        let tempdir = tempfile::Builder::new()
            .prefix("caducee-redis-")
            .tempdir()
            .map_err(|source| io_error("creating the Redis directory", source))?;
        let dir = tempdir.path().canonicalize().map_err(|source| io_error("resolving the Redis directory", source))?;

        let mut server = RedisServer { program, dir, port: 0, options, tls_port: None, child: None, _tempdir: tempdir };
        let mut last_detail = String::new();
        for _ in 0..PORT_ATTEMPTS {
            server.port = free_port()?;
            if server.options.tls.is_some() {
                server.tls_port = Some(free_port()?);
            }
            match server.spawn_and_wait() {
                Ok(()) => return Ok(server),
                Err(StartError::PortTaken(detail)) => {
                    server.stop();
                    last_detail = detail;
                }
                Err(StartError::Failed(error)) => return Err(error),
            }
        }
        Err(HarnessError::NotReady(
            "redis-server",
            format!("no usable port after {PORT_ATTEMPTS} attempts; last: {last_detail}"),
        ))
    }

    /// `redis://127.0.0.1:PORT/`, for `redis::Client::open` and friends.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// `rediss://USER:PASSWORD@localhost:TLS_PORT/`, when the server has a TLS port.
    pub fn tls_url(&self, user: &str, password: &str) -> Option<String> {
        self.tls_port.map(|port| format!("rediss://{user}:{password}@localhost:{port}/"))
    }

    /// The TLS port, when the server has one.
    pub fn tls_port(&self) -> Option<u16> {
        self.tls_port
    }

    /// The loopback port the server listens on (kept across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's own temporary directory (its log is `redis.log` there).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The last lines of the server's log, for error messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.dir.join(LOG_FILE))
    }

    /// The operating system's id of the running server, if it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server (as a crash would: no clean shutdown) and waits for it to be gone.
    /// Does nothing if it is already stopped.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A paused process still dies of SIGKILL, so no need to resume it first.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (stopping it first if it runs). Its data is gone:
    /// like the production setup, this server keeps nothing on disk.
    pub fn restart(&mut self) -> Result<(), HarnessError> {
        self.stop();
        match self.spawn_and_wait() {
            Ok(()) => Ok(()),
            Err(StartError::PortTaken(detail)) => {
                self.stop();
                Err(HarnessError::NotReady("redis-server", detail))
            }
            Err(StartError::Failed(error)) => {
                self.stop();
                Err(error)
            }
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open but nothing answers, as with a hung
    /// or overloaded Redis. Undo with [`RedisServer::resume`].
    pub fn pause(&self) -> Result<(), HarnessError> {
        self.signal("-STOP")
    }

    /// Lets a paused server run again (SIGCONT).
    pub fn resume(&self) -> Result<(), HarnessError> {
        self.signal("-CONT")
    }

    fn signal(&self, signal: &str) -> Result<(), HarnessError> {
        let pid = self.pid().ok_or_else(|| HarnessError::NotReady("redis-server", "the server is stopped".into()))?;
        // std cannot send signals other than SIGKILL and this workspace forbids `unsafe`, so ask
        // procps' `kill`, present on every Debian system.
        let status = Command::new(find_program("kill")?)
            .arg(signal)
            .arg(pid.to_string())
            .status()
            .map_err(|source| io_error("running kill", source))?;
        if status.success() {
            Ok(())
        } else {
            Err(HarnessError::NotReady("redis-server", format!("kill {signal} {pid} failed: {status}")))
        }
    }

    fn spawn_and_wait(&mut self) -> Result<(), StartError> {
        let log_path = self.dir.join(LOG_FILE);
        let log = open_log(&log_path).map_err(StartError::Failed)?;
        let log_err = log
            .try_clone()
            .map_err(|source| StartError::Failed(io_error("duplicating the Redis log handle", source)))?;
        let mut command = Command::new(&self.program);
        if let (Some(tls), Some(port)) = (&self.options.tls, self.tls_port) {
            command
                .arg("--tls-port")
                .arg(port.to_string())
                .arg("--tls-cert-file")
                .arg(&tls.certificate)
                .arg("--tls-key-file")
                .arg(&tls.key)
                .arg("--tls-ca-cert-file")
                .arg(&tls.ca)
                .args(["--tls-auth-clients", "no"]);
        }
        for (name, password) in &self.options.users {
            command.args(["--user", name, "on", &format!(">{password}"), "~*", "&*", "+@all"]);
        }
        let child = command
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--daemonize", "no"])
            .args(["--protected-mode", "yes"])
            .args(&self.options.extra_args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|source| StartError::Failed(io_error("starting redis-server", source)))?;
        self.child = Some(child);
        self.wait_ready(&log_path)
    }

    fn wait_ready(&mut self, log_path: &Path) -> Result<(), StartError> {
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                let tail = log_tail(log_path);
                let detail = format!("exited with {status} on port {}; log:\n{tail}", self.port);
                return Err(if tail.contains("Address already in use") {
                    StartError::PortTaken(detail)
                } else {
                    StartError::Failed(HarnessError::NotReady("redis-server", detail))
                });
            }
            match probe(self.port, &self.dir) {
                Probe::Ours => return Ok(()),
                // Someone else's server answers on "our" port: ours will fail to bind and exit.
                Probe::Foreign => {
                    return Err(StartError::PortTaken(format!("port {} is used by another server", self.port)));
                }
                Probe::NotYet => {}
            }
            if Instant::now() >= deadline {
                return Err(StartError::Failed(HarnessError::NotReady(
                    "redis-server",
                    format!("no PONG on port {} within {READY_DEADLINE:?}; log:\n{}", self.port, log_tail(log_path)),
                )));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

enum StartError {
    /// The port was taken by someone else: worth another try on another port.
    PortTaken(String),
    Failed(HarnessError),
}

enum Probe {
    Ours,
    Foreign,
    NotYet,
}

/// Asks the server on `port` for PING, then for its working directory, which tells our server
/// from another test's server that won the race for the same port.
fn probe(port: u16, dir: &Path) -> Probe {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return Probe::NotYet;
    };
    if stream.set_read_timeout(Some(Duration::from_secs(1))).is_err() {
        return Probe::NotYet;
    }
    match exchange(&mut stream, b"PING\r\n", 1) {
        Some(reply) if reply.starts_with(b"+PONG") => {}
        // "-LOADING" and the like: up but not ready yet.
        _ => return Probe::NotYet,
    }
    // The reply is `*2`, `$3`, `dir`, `$N`, the path: five lines.
    match exchange(&mut stream, b"CONFIG GET dir\r\n", 5) {
        Some(reply) if contains(&reply, dir.as_os_str().as_encoded_bytes()) => Probe::Ours,
        Some(_) => Probe::Foreign,
        None => Probe::NotYet,
    }
}

/// Sends `request` and reads a reply of `lines` CRLF-terminated lines (or what came before the
/// socket timed out or closed).
fn exchange(stream: &mut TcpStream, request: &[u8], lines: usize) -> Option<Vec<u8>> {
    stream.write_all(request).ok()?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 512];
    while reply.windows(2).filter(|w| w == b"\r\n").count() < lines {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => reply.extend_from_slice(buf.get(..n)?),
        }
        if reply.len() > 64 * 1024 {
            break;
        }
    }
    (!reply.is_empty()).then_some(reply)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

pub(crate) fn open_log(path: &Path) -> Result<File, HarnessError> {
    // Append, so that a restart keeps the history of the previous run for error messages.
    OpenOptions::new().create(true).append(true).open(path).map_err(|source| io_error("opening the Redis log", source))
}

/// The last lines of the server's log, for error messages.
pub(crate) fn log_tail(path: &Path) -> String {
    let text = std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Looks for `name` in `PATH`, then in the Debian locations (`PATH` is minimal under some runners).
pub(crate) fn find_program(name: &str) -> Result<PathBuf, HarnessError> {
    let from_path =
        std::env::var_os("PATH").map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>()).unwrap_or_default();
    from_path
        .into_iter()
        .chain(["/usr/bin", "/usr/sbin", "/bin", "/usr/local/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| HarnessError::MissingProgram(name.to_owned()))
}

pub(crate) fn io_error(context: &str, source: std::io::Error) -> HarnessError {
    HarnessError::Io { context: context.to_owned(), source }
}

/// How long one `redis-cli` call may take before it is killed: a hung server must not hang the
/// harness.
const CLI_DEADLINE: Duration = Duration::from_secs(10);

/// Runs `redis-cli -h 127.0.0.1 -p PORT ARGS...` (with `stdin` fed to it, when given: the lines are
/// then commands sent on one connection) and returns what it printed. Fails if it does not end
/// within a few seconds or ends in failure.
pub fn redis_cli(port: u16, args: &[&str], stdin: Option<&str>) -> Result<String, HarnessError> {
    let program = find_program("redis-cli")?;
    let dir = tempfile::tempdir().map_err(|source| io_error("creating a directory for redis-cli", source))?;
    let out_path = dir.path().join("out");
    let out = File::create(&out_path).map_err(|source| io_error("creating redis-cli's output", source))?;
    let err = out.try_clone().map_err(|source| io_error("duplicating redis-cli's output", source))?;
    let input = match stdin {
        Some(text) => {
            let path = dir.path().join("in");
            std::fs::write(&path, text).map_err(|source| io_error("writing redis-cli's input", source))?;
            Stdio::from(File::open(&path).map_err(|source| io_error("opening redis-cli's input", source))?)
        }
        None => Stdio::null(),
    };
    let mut child = Command::new(program)
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(input)
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|source| io_error("starting redis-cli", source))?;
    let deadline = Instant::now() + CLI_DEADLINE;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(HarnessError::NotReady("redis-cli", format!("no answer from port {port} to {args:?}")));
            }
        }
    };
    let output = std::fs::read_to_string(&out_path).unwrap_or_default();
    if status.success() {
        Ok(output)
    } else {
        Err(HarnessError::NotReady("redis-cli", format!("{args:?} on port {port} failed ({status}): {output}")))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn ping(port: u16) -> bool {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
            return false;
        };
        stream.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        exchange(&mut stream, b"PING\r\n", 1).is_some_and(|r| r.starts_with(b"+PONG"))
    }

    #[test]
    fn starts_stops_and_restarts_on_the_same_port() {
        let mut server = RedisServer::start().unwrap();
        let port = server.port();
        assert_eq!(server.url(), format!("redis://127.0.0.1:{port}/"));
        assert!(ping(port));

        server.stop();
        assert!(server.pid().is_none());
        assert!(!ping(port));

        server.restart().unwrap();
        assert_eq!(server.port(), port);
        assert!(ping(port));
    }

    #[test]
    fn two_servers_get_two_ports_and_drop_removes_the_directory() {
        let a = RedisServer::start().unwrap();
        let b = RedisServer::start().unwrap();
        assert_ne!(a.port(), b.port());
        let dir = a.dir.clone();
        let port = a.port();
        drop(a);
        assert!(!dir.exists());
        assert!(!ping(port));
        assert!(ping(b.port()));
    }

    #[test]
    fn paused_server_does_not_answer_until_resumed() {
        let server = RedisServer::start().unwrap();
        server.pause().unwrap();
        assert!(!ping(server.port()));
        server.resume().unwrap();
        assert!(ping(server.port()));
    }

    #[test]
    fn a_port_taken_by_another_server_is_not_mistaken_for_ours() {
        let other = RedisServer::start().unwrap();
        assert!(matches!(probe(other.port(), Path::new("/nonexistent")), Probe::Foreign));
        assert!(matches!(probe(other.port(), &other.dir), Probe::Ours));
    }
}
