//! Ephemeral PostgreSQL servers for tests.
//!
//! `initdb` is slow (about a second even with `--no-sync`) and nextest runs every test in its own
//! process, so the cluster is initialised once per PostgreSQL version into a cached template
//! directory (guarded by a file lock so that concurrent test processes do not race), and each
//! server starts from a copy of it.
//!
//! PostgreSQL refuses to run as root; tests run as root in the development container and in CI, so
//! when the effective uid is 0 every PostgreSQL program runs as the `postgres` system user and the
//! directories it needs are handed over to that user.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::{HarnessError, free_port};

/// Server directories go to this tmpfs when it has room: copying the template's thousand files
/// takes about a second on a disk-backed ext4 and a few tens of milliseconds in memory.
const SHM: &str = "/dev/shm";
/// Docker's default `/dev/shm` is 64 MiB, too small for several servers of ~40 MiB each.
const SHM_MIN_FREE_KIB: u64 = 1024 * 1024;
/// The role created by `initdb -U`, a superuser that trusts every local connection.
const USER: &str = "caducee";
/// `initdb` always creates this database; using it saves a `CREATE DATABASE` per server.
const DATABASE: &str = "postgres";
/// How many times to retry with a fresh port when another process grabbed ours meanwhile.
const START_ATTEMPTS: usize = 3;

/// A running PostgreSQL server on 127.0.0.1, stopped and deleted on drop.
pub struct PostgresServer {
    port: u16,
    bin: PathBuf,
    run_as: Option<RunAs>,
    data_dir: PathBuf,
    log_file: PathBuf,
    durable: bool,
    // Dropped last (after `Drop::drop` stopped the server), which removes every file.
    dir: tempfile::TempDir,
}

/// Owner of the PostgreSQL processes and files when we run as root.
#[derive(Clone, Copy, Debug)]
struct RunAs {
    uid: u32,
    gid: u32,
}

impl PostgresServer {
    /// Starts a fresh server with an empty `postgres` database owned by the superuser `caducee`.
    /// For tests: in memory where there is room, and without syncing anything to disk.
    pub fn start() -> Result<PostgresServer, HarnessError> {
        Self::start_with(false)
    }

    /// Starts a server as production runs one, for benchmarks: its files on disk, every commit
    /// synced (PostgreSQL's defaults: `fsync`, `synchronous_commit`, `full_page_writes` on), and
    /// `pg_stat_statements` loaded, so that what each request costs the database can be counted.
    pub fn start_durable() -> Result<PostgresServer, HarnessError> {
        Self::start_with(true)
    }

    fn start_with(durable: bool) -> Result<PostgresServer, HarnessError> {
        let bin = find_bin_dir()?;
        let run_as = run_as()?;
        let template = ensure_template(&bin, run_as)?;

        let root = if durable { std::env::temp_dir() } else { scratch_root() };
        let dir = tempfile::Builder::new()
            .prefix("caducee-pg-")
            .tempdir_in(root)
            .map_err(|source| io_err("creating the server directory", source))?;
        if let Some(owner) = run_as {
            chown(dir.path(), owner)?;
        }
        let data_dir = dir.path().join("data");
        // `cp -a` keeps the owner (when root) and the 0700 mode PostgreSQL insists on.
        let out = run(Command::new("cp").arg("-a").arg(&template).arg(&data_dir), "copying the PostgreSQL template")?;
        if !out.status.success() {
            return Err(HarnessError::NotReady(
                "postgres",
                format!("cp -a failed: {}", String::from_utf8_lossy(&out.stderr)),
            ));
        }

        let mut server =
            PostgresServer { port: 0, bin, run_as, data_dir, log_file: dir.path().join("postgres.log"), durable, dir };
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            server.port = free_port()?;
            match server.pg_ctl_start() {
                Ok(()) => return Ok(server),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| HarnessError::NotReady("postgres", "never attempted".into())))
    }

    /// `postgres://caducee@127.0.0.1:PORT/postgres` (trust authentication, no password).
    pub fn url(&self) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{DATABASE}", self.port)
    }

    /// A client program of the same PostgreSQL version (`pg_dump`, `pg_restore`, `psql`), to
    /// run as any user against [`PostgresServer::url`].
    pub fn client_program(&self, name: &str) -> PathBuf {
        self.bin.join(name)
    }

    /// The TCP port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The postmaster's process id (from `postmaster.pid`); the backends it forks later inherit
    /// what is set on it, such as the CPU affinity a benchmark pins servers with.
    pub fn postmaster_pid(&self) -> Result<u32, HarnessError> {
        let text = fs::read_to_string(self.data_dir.join("postmaster.pid"))
            .map_err(|source| io_err("reading postmaster.pid", source))?;
        text.lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| HarnessError::NotReady("postgres", "postmaster.pid has no process id".into()))
    }

    /// Stops the server but keeps its files, so that tests can check how clients behave while
    /// the database is unreachable; [`PostgresServer::restart`] brings it back on the same port.
    pub fn stop(&self) -> Result<(), HarnessError> {
        let out = self.pg_ctl(&["stop", "-w", "-m", "fast"], "stopping PostgreSQL")?;
        if out.status.success() { Ok(()) } else { Err(HarnessError::NotReady("postgres", self.failure_report(&out))) }
    }

    /// Starts again a server stopped with [`PostgresServer::stop`], on the same port.
    pub fn restart(&self) -> Result<(), HarnessError> {
        self.pg_ctl_start()
    }

    fn pg_ctl_start(&self) -> Result<(), HarnessError> {
        let mut options = format!("-p {} -k {} -c listen_addresses=127.0.0.1", self.port, self.dir.path().display());
        if self.durable {
            options.push_str(" -c shared_preload_libraries=pg_stat_statements");
        } else {
            options.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
        }
        let log = self.log_file.to_string_lossy().into_owned();
        let out = self.pg_ctl(&["start", "-w", "-t", "60", "-l", &log, "-o", &options], "starting PostgreSQL")?;
        if out.status.success() {
            Ok(())
        } else {
            // A half-started postmaster would keep the data directory locked for the next attempt.
            let _ = self.pg_ctl(&["stop", "-w", "-m", "immediate"], "stopping PostgreSQL");
            Err(HarnessError::NotReady("postgres", self.failure_report(&out)))
        }
    }

    fn pg_ctl(&self, args: &[&str], context: &str) -> Result<Output, HarnessError> {
        let mut cmd = command(&self.bin.join("pg_ctl"), self.run_as);
        cmd.arg("-D").arg(&self.data_dir).args(args).current_dir(self.dir.path());
        run(&mut cmd, context)
    }

    fn failure_report(&self, out: &Output) -> String {
        format!(
            "pg_ctl exited with {}; stdout: {}; stderr: {}; log tail:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim(),
            tail(&self.log_file, 4000)
        )
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["stop", "-w", "-m", "immediate"], "stopping PostgreSQL");
    }
}

/// Initialises (once per PostgreSQL version and user) the cluster every server is copied from,
/// and returns its data directory.
fn ensure_template(bin: &Path, run_as: Option<RunAs>) -> Result<PathBuf, HarnessError> {
    let version = pg_version(bin)?;
    let uid = run_as.map_or_else(current_uid_label, |r| Ok(r.uid.to_string()))?;
    let root = std::env::temp_dir().join(format!("caducee-pg-template-{version}-{uid}"));
    let data = root.join("data");
    let ready = root.join("ready");

    let lock_path = std::env::temp_dir().join(format!("caducee-pg-template-{version}-{uid}.lock"));
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| io_err("opening the template lock file", source))?;
    lock.lock().map_err(|source| io_err("locking the template lock file", source))?;

    if ready.exists() {
        return Ok(data);
    }
    // A previous run died half-way: start over.
    if root.exists() {
        fs::remove_dir_all(&root).map_err(|source| io_err("removing a stale template", source))?;
    }
    fs::create_dir_all(&root).map_err(|source| io_err("creating the template directory", source))?;
    if let Some(owner) = run_as {
        chown(&root, owner)?;
    }
    let mut cmd = command(&bin.join("initdb"), run_as);
    cmd.arg("-D")
        .arg(&data)
        .args(["-A", "trust", "-U", USER, "--no-sync", "-E", "UTF8", "--locale=C"])
        .current_dir(&root);
    let out = run(&mut cmd, "running initdb")?;
    if !out.status.success() {
        return Err(HarnessError::NotReady(
            "postgres",
            format!(
                "initdb exited with {}: {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        ));
    }
    File::create(&ready).map_err(|source| io_err("marking the template ready", source))?;
    // The lock is released when `lock` is dropped here.
    Ok(data)
}

/// Where per-server directories are created: `/dev/shm` if it has at least 1 GiB free, else the
/// usual temporary directory.
fn scratch_root() -> PathBuf {
    let shm_free_kib =
        Command::new("df").args(["-Pk", SHM]).output().ok().filter(|out| out.status.success()).and_then(|out| {
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            // POSIX format: a header line, then `fs blocks used available capacity mountpoint`.
            text.lines().nth(1)?.split_whitespace().nth(3)?.parse::<u64>().ok()
        });
    match shm_free_kib {
        Some(free) if free >= SHM_MIN_FREE_KIB => PathBuf::from(SHM),
        _ => std::env::temp_dir(),
    }
}

/// The highest `/usr/lib/postgresql/<version>/bin` holding `initdb`, else the directory of the
/// `initdb` found on `PATH`.
fn find_bin_dir() -> Result<PathBuf, HarnessError> {
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
        .ok_or_else(|| HarnessError::MissingProgram("initdb".into()))
}

/// The full version (e.g. `15.18` from `initdb (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)`), so
/// that a minor upgrade gets a fresh template.
fn pg_version(bin: &Path) -> Result<String, HarnessError> {
    let out = run(Command::new(bin.join("initdb")).arg("--version"), "running initdb --version")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text
        .split_whitespace()
        .nth(2)
        .filter(|v| v.chars().all(|c| c.is_ascii_alphanumeric() || c == '.'))
        .ok_or_else(|| HarnessError::NotReady("postgres", format!("unexpected initdb --version: {text}")))?;
    Ok(version.to_owned())
}

/// `Some(postgres user)` when we are root, `None` otherwise.
fn run_as() -> Result<Option<RunAs>, HarnessError> {
    if current_uid_label()? != "0" {
        return Ok(None);
    }
    let uid = id_number("-u")?;
    let gid = id_number("-g")?;
    Ok(Some(RunAs { uid, gid }))
}

// `id` rather than libc: the workspace forbids unsafe code and this runs once per test.
fn current_uid_label() -> Result<String, HarnessError> {
    let out = run(Command::new("id").arg("-u"), "running id -u")?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn id_number(flag: &str) -> Result<u32, HarnessError> {
    let out = run(Command::new("id").args([flag, "postgres"]), "looking up the postgres user")?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| HarnessError::MissingProgram("a `postgres` system user (PostgreSQL cannot run as root)".into()))
}

fn command(program: &Path, run_as: Option<RunAs>) -> Command {
    match run_as {
        Some(_) => {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        }
        None => Command::new(program),
    }
}

fn chown(path: &Path, owner: RunAs) -> Result<(), HarnessError> {
    std::os::unix::fs::chown(path, Some(owner.uid), Some(owner.gid))
        .map_err(|source| io_err("handing a directory over to the postgres user", source))
}

fn run(cmd: &mut Command, context: &str) -> Result<Output, HarnessError> {
    cmd.output().map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            HarnessError::MissingProgram(format!("{:?}", cmd.get_program()))
        } else {
            io_err(context, source)
        }
    })
}

fn io_err(context: &str, source: std::io::Error) -> HarnessError {
    HarnessError::Io { context: context.into(), source }
}

/// The last `max` bytes of a log file, for error messages.
fn tail(path: &Path, max: u64) -> String {
    let Ok(mut file) = File::open(path) else {
        return format!("(no log at {})", path.display());
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut buf = Vec::new();
    let _ = file.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use std::net::TcpStream;

    #[test]
    fn starts_listens_and_cleans_up() {
        let server = PostgresServer::start().unwrap();
        assert!(server.url().starts_with("postgres://caducee@127.0.0.1:"));
        TcpStream::connect(("127.0.0.1", server.port())).unwrap();

        server.stop().unwrap();
        assert!(TcpStream::connect(("127.0.0.1", server.port())).is_err());
        server.restart().unwrap();
        TcpStream::connect(("127.0.0.1", server.port())).unwrap();

        let dir = server.dir.path().to_path_buf();
        drop(server);
        assert!(!dir.exists());
    }

    #[test]
    fn two_servers_side_by_side() {
        let a = PostgresServer::start().unwrap();
        let b = PostgresServer::start().unwrap();
        assert_ne!(a.port(), b.port());
        TcpStream::connect(("127.0.0.1", a.port())).unwrap();
        TcpStream::connect(("127.0.0.1", b.port())).unwrap();
    }
}
