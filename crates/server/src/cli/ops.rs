//! The operators' commands around a running deployment: `backup` (the embedded SQLite file)
//! and `healthcheck` (for container engines, which have no HTTP client in a minimal image).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};
use directory::Directory;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::app::master_key;
use crate::config::Config;

/// How long `healthcheck` waits for the whole answer: less than the container engines' usual
/// probe timeouts, so that a hung node reads as unhealthy rather than as a timed-out probe.
const HEALTHCHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// `caducee backup --to FILE`: a consistent copy of the SQLite database, taken while the
/// provider serves.
pub(super) async fn backup(config: Config, to: &Path) -> anyhow::Result<()> {
    let url = config.database_url();
    if !url.starts_with("sqlite:") {
        bail!(
            "database_url is PostgreSQL: back it up with pg_dump (docs/operations.md#backups); this command copies \
             the embedded SQLite database"
        );
    }
    if config.database_url.is_empty() {
        // Opening the database would create an empty one, and reading the master key would
        // make up a new one: a backup of either would be worthless and look fine.
        let db = config.data_dir.join("caducee.db");
        if !db.is_file() {
            bail!("no database at {}: nothing to back up (is data_dir right?)", db.display());
        }
        if config.master_key.is_empty() && !config.data_dir.join("master.key").is_file() {
            bail!(
                "no master key: neither master_key (CADUCEE_MASTER_KEY) nor {} is there",
                config.data_dir.join("master.key").display()
            );
        }
    }
    // No migration: a backup taken before an upgrade must be of the schema as it was.
    let directory = Directory::connect(&url, master_key(&config)?).await?;
    let bytes = directory.backup_to(to).await?;
    super::audit_operator(
        &directory,
        "admin.backup",
        None,
        serde_json::json!({ "file": to.display().to_string(), "bytes": bytes }),
    )
    .await?;
    println!("database copied to {} ({bytes} bytes)", to.display());
    eprintln!("The master key is not in the copy: keep it apart, it is needed to restore.");
    Ok(())
}

/// `caducee healthcheck`: `GET path` on the configured listen address; an error unless 200.
pub(super) async fn healthcheck(config: &Config, path: &str) -> anyhow::Result<()> {
    if !path.starts_with('/') {
        bail!("--path must start with /");
    }
    let addr = probe_address(config.listen);
    let status = tokio::time::timeout(HEALTHCHECK_TIMEOUT, status_of(addr, path))
        .await
        .with_context(|| format!("no answer from {addr} within {} s", HEALTHCHECK_TIMEOUT.as_secs()))??;
    if status != 200 {
        bail!("GET {path} on {addr} answered {status}");
    }
    Ok(())
}

/// Where to reach a server listening on `listen`: the same port on loopback when it listens on
/// every address (`0.0.0.0`, `::`), as it does in a container.
fn probe_address(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// The status code of a plain HTTP/1.1 `GET` (the provider answers health checks in clear,
/// behind its proxy).
async fn status_of(addr: SocketAddr, path: &str) -> anyhow::Result<u16> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.with_context(|| format!("cannot connect to {addr}"))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.context("sending the request")?;
    // The status line is all that is read; 64 bytes hold it.
    let mut head = [0u8; 64];
    let mut read = 0;
    while read < head.len() {
        let n = stream.read(&mut head[read..]).await.context("reading the answer")?;
        if n == 0 {
            break;
        }
        read += n;
        if head[..read].contains(&b'\n') {
            break;
        }
    }
    let line = String::from_utf8_lossy(&head[..read]);
    // `HTTP/1.1 200 OK`
    line.split_whitespace()
        .nth(1)
        .filter(|_| line.starts_with("HTTP/"))
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("not an HTTP answer from {addr}: {:?}", line.lines().next().unwrap_or("")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_server_on_every_address_is_probed_on_loopback() {
        let probe = |s: &str| probe_address(s.parse().unwrap()).to_string();
        assert_eq!(probe("0.0.0.0:8080"), "127.0.0.1:8080");
        assert_eq!(probe("[::]:8080"), "[::1]:8080");
        assert_eq!(probe("10.0.0.11:8080"), "10.0.0.11:8080");
    }
}
