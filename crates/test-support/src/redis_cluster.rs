//! An ephemeral three-node Redis Cluster for tests: three `redis-server` processes with
//! `--cluster-enabled yes` on free loopback ports (cluster bus ports chosen free too, not port +
//! 10000, which may not exist), joined by `redis-cli --cluster create` with no replicas, ready
//! once every node says `cluster_state:ok`. Killed, with their directories, when dropped.

use std::thread;
use std::time::{Duration, Instant};

use crate::redis::{RedisOptions, RedisServer, redis_cli};
use crate::{HarnessError, free_port};

const NODES: usize = 3;
/// Joining and agreeing on the slots takes a few seconds on a busy machine.
const READY_DEADLINE: Duration = Duration::from_secs(60);
/// `redis-cli --cluster create` may meet a node not yet ready to meet the others.
const CREATE_ATTEMPTS: usize = 3;

/// Three primaries sharing the 16384 slots.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts the nodes, creates the cluster and waits until every node serves every slot.
    pub fn start() -> Result<RedisCluster, HarnessError> {
        Self::start_with(RedisOptions::default())
    }

    /// [`RedisCluster::start`] with every node on `options` (a TLS port, ACL users). With TLS,
    /// the nodes talk to each other over TLS too, and tell TLS clients their TLS ports; the
    /// harness itself keeps to the plain ports.
    pub fn start_with(options: RedisOptions) -> Result<RedisCluster, HarnessError> {
        let mut nodes = Vec::with_capacity(NODES);
        for _ in 0..NODES {
            let mut extra_args: Vec<String> = if options.tls.is_some() {
                vec!["--tls-cluster".into(), "yes".into(), "--tls-replication".into(), "yes".into()]
            } else {
                Vec::new()
            };
            extra_args.extend(options.extra_args.iter().cloned());
            let options = RedisOptions {
                tls: options.tls.clone(),
                users: options.users.clone(),
                extra_args: [
                    extra_args,
                    vec![
                        "--cluster-enabled".into(),
                        "yes".into(),
                        // Relative to the node's own directory.
                        "--cluster-config-file".into(),
                        "nodes.conf".into(),
                        "--cluster-port".into(),
                        free_port()?.to_string(),
                        "--cluster-node-timeout".into(),
                        "5000".into(),
                    ],
                ]
                .concat(),
            };
            nodes.push(RedisServer::start_with(options)?);
        }
        let cluster = RedisCluster { nodes };
        cluster.create()?;
        cluster.wait_ok()?;
        Ok(cluster)
    }

    /// `redis://127.0.0.1:PORT/` of each node, for the cluster client's seed list.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// `rediss://USER:PASSWORD@localhost:TLS_PORT/` of each node, when they have TLS ports.
    pub fn tls_urls(&self, user: &str, password: &str) -> Option<Vec<String>> {
        self.nodes.iter().map(|n| n.tls_url(user, password)).collect()
    }

    /// The nodes, to inspect them (ports, logs).
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// Kills the node on `port` (as a crash would).
    pub fn stop_node(&mut self, port: u16) {
        if let Some(node) = self.nodes.iter_mut().find(|n| n.port() == port) {
            node.stop();
        }
    }

    /// Starts the node on `port` again: it keeps its place and slots (its `nodes.conf`), not its
    /// data. Returns once every node says `cluster_state:ok` again.
    pub fn restart_node(&mut self, port: u16) -> Result<(), HarnessError> {
        if let Some(node) = self.nodes.iter_mut().find(|n| n.port() == port) {
            node.restart()?;
        }
        self.wait_ok()
    }

    fn create(&self) -> Result<(), HarnessError> {
        let addresses: Vec<String> = self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port())).collect();
        let mut args: Vec<&str> = vec!["--cluster", "create"];
        args.extend(addresses.iter().map(String::as_str));
        args.extend(["--cluster-replicas", "0", "--cluster-yes"]);
        let first = self.nodes.first().map(RedisServer::port).unwrap_or_default();
        let mut last = None;
        for _ in 0..CREATE_ATTEMPTS {
            match redis_cli(first, &args, None) {
                Ok(output) if output.contains("[OK] All 16384 slots covered") => return Ok(()),
                Ok(output) => last = Some(HarnessError::NotReady("redis cluster", output)),
                Err(error) => last = Some(error),
            }
            // Slots already assigned by a half-done attempt make the next one fail: start again
            // from empty nodes.
            for node in &self.nodes {
                let _ = redis_cli(node.port(), &["CLUSTER", "RESET", "HARD"], None);
            }
            thread::sleep(Duration::from_millis(200));
        }
        Err(last.unwrap_or_else(|| HarnessError::NotReady("redis cluster", "not created".into())))
    }

    fn wait_ok(&self) -> Result<(), HarnessError> {
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            let states: Vec<String> = self
                .nodes
                .iter()
                .map(|n| redis_cli(n.port(), &["CLUSTER", "INFO"], None).unwrap_or_default())
                .collect();
            if states.iter().all(|s| s.contains("cluster_state:ok") && s.contains("cluster_known_nodes:3")) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::NotReady("redis cluster", format!("no cluster_state:ok: {states:?}")));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn three_nodes_share_every_slot() {
        let cluster = RedisCluster::start().unwrap();
        assert_eq!(cluster.urls().len(), 3);
        let slots = redis_cli(cluster.nodes()[0].port(), &["CLUSTER", "SLOTS"], None).unwrap();
        for node in cluster.nodes() {
            assert!(slots.contains(&node.port().to_string()), "{slots}");
        }
    }
}
