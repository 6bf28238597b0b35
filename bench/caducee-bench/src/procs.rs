//! Child processes: servers pinned to the server core, stopped when dropped; free ports;
//! readiness; resident memory.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::process::{Child, Command};

/// Cores as the bench uses them: the server on `SERVER_CORE`, this process (the load
/// generator) on `LOAD_CORE`, when the machine has two cores or more.
pub const SERVER_CORE: usize = 0;
pub const LOAD_CORE: usize = 1;

/// (cores of the machine, whether servers and load generator can be pinned apart), taken once,
/// before this process pins itself (after that it would see only its own core).
static MACHINE: std::sync::OnceLock<(usize, bool)> = std::sync::OnceLock::new();

fn machine() -> (usize, bool) {
    *MACHINE.get_or_init(|| {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        (cores, cores >= 2 && which("taskset"))
    })
}

pub fn cores() -> usize {
    machine().0
}

pub fn pinning() -> bool {
    machine().1
}

pub fn which(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// Pins this whole process (every thread) to the load generator's core.
pub fn pin_self() -> anyhow::Result<()> {
    pin(std::process::id(), LOAD_CORE)
}

/// Pins a running process (every thread; what it forks later inherits it) to `core`, when the
/// machine allows pinning.
pub fn pin(pid: u32, core: usize) -> anyhow::Result<()> {
    if !pinning() {
        return Ok(());
    }
    let status = std::process::Command::new("taskset")
        .args(["-a", "-c", "-p", &core.to_string(), &pid.to_string()])
        .stdout(Stdio::null())
        .status()
        .context("taskset")?;
    if !status.success() {
        bail!("taskset could not pin process {pid}");
    }
    Ok(())
}

/// A command for `program`, pinned to the server core when the machine allows.
pub fn server_command(program: &Path) -> Command {
    if pinning() {
        let mut c = Command::new("taskset");
        c.arg("-c").arg(SERVER_CORE.to_string()).arg(program);
        c
    } else {
        Command::new(program)
    }
}

pub fn free_addr() -> anyhow::Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?)
}

/// A running server; killed when dropped.
pub struct Server {
    pub addr: SocketAddr,
    child: Child,
}

impl Server {
    /// Spawns `command` (output to `log`) and waits until `GET ready_path` answers 200.
    pub async fn spawn(
        name: &str,
        mut command: Command,
        addr: SocketAddr,
        ready_path: &str,
        log: &Path,
    ) -> anyhow::Result<Server> {
        let out = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        command.stdout(out).stderr(err).stdin(Stdio::null()).kill_on_drop(true);
        let child = command.spawn().with_context(|| format!("starting {name}"))?;
        let mut server = Server { addr, child };
        let client = reqwest::Client::new();
        let url = format!("http://{addr}{ready_path}");
        let start = Instant::now();
        loop {
            if let Ok(r) = client.get(&url).send().await
                && r.status().is_success()
            {
                return Ok(server);
            }
            if let Some(status) = server.child.try_wait()? {
                bail!("{name} exited ({status}); its log: {}", log.display());
            }
            if start.elapsed() > Duration::from_secs(60) {
                bail!("{name} did not answer {url} within 60 s; its log: {}", log.display());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Spawns `command` and waits until `ready` says yes.
    pub async fn spawn_then<F, Fut>(
        mut command: Command,
        name: &str,
        addr: SocketAddr,
        log: &Path,
        ready: F,
    ) -> anyhow::Result<Server>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<bool>>,
    {
        let out = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        command.stdout(out).stderr(err).stdin(Stdio::null()).kill_on_drop(true);
        let child = command.spawn().with_context(|| format!("starting {name}"))?;
        let mut server = Server { addr, child };
        let start = Instant::now();
        loop {
            if ready().await.unwrap_or(false) {
                return Ok(server);
            }
            if let Some(status) = server.child.try_wait()? {
                bail!("{name} exited ({status}); its log: {}", log.display());
            }
            if start.elapsed() > Duration::from_secs(30) {
                bail!("{name} not ready within 30 s; its log: {}", log.display());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Resident memory in bytes.
    pub fn rss(&self) -> anyhow::Result<u64> {
        let pid = self.pid().context("server gone")?;
        rss_of(pid)
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }
}

pub fn rss_of(pid: u32) -> anyhow::Result<u64> {
    Ok(status_kib(pid, "VmRSS:")? * 1024)
}

/// A `/proc/PID/status` field given in kB (`VmRSS:`, `RssAnon:`…).
pub fn status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .with_context(|| field.to_owned())
}

/// Runs a command to completion, feeding `stdin`, and returns its standard output.
pub async fn output(mut command: Command, stdin: Option<&str>) -> anyhow::Result<String> {
    use tokio::io::AsyncWriteExt as _;
    command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn()?;
    if let Some(mut pipe) = child.stdin.take()
        && let Some(text) = stdin
    {
        pipe.write_all(text.as_bytes()).await?;
    }
    let out = child.wait_with_output().await?;
    if !out.status.success() {
        bail!("{:?} failed: {}", command.as_std(), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8(out.stdout)?)
}
