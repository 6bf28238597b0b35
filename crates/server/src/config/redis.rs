//! The Redis deployment of the shared session store: `redis_url` (one server),
//! `redis_cluster_nodes` (a Redis Cluster) or `[redis_sentinel]` (a primary and replicas under
//! Redis Sentinel), which exclude one another (docs/configuration.md).

use serde::{Deserialize, Serialize};
use session_store::{RedisTopology, SentinelSettings};

use super::{Config, ConfigError, redact_url};

/// `[redis_sentinel]`: the service Redis Sentinel watches, and how to reach its nodes.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisSentinelConfig {
    /// The master name the sentinels monitor (`sentinel monitor <master_name> ...`).
    pub master_name: String,
    /// The sentinels: `redis://[user:password@]host:26379`, or `rediss://` for TLS; one user and
    /// one scheme for all.
    pub sentinels: Vec<String>,
    /// The ACL user of the data nodes (primary and replicas); empty: none.
    pub username: String,
    /// Their password; empty: none.
    pub password: String,
    /// Whether the data nodes speak TLS (CA: `redis_ca_file`).
    pub tls: bool,
}

impl std::fmt::Debug for RedisSentinelConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSentinelConfig")
            .field("master_name", &self.master_name)
            .field("sentinels", &self.sentinels.iter().map(|s| redact_url(s)).collect::<Vec<_>>())
            .field("username", &self.username)
            .field("password", &super::redacted(&self.password))
            .field("tls", &self.tls)
            .finish()
    }
}

impl RedisSentinelConfig {
    fn is_set(&self) -> bool {
        !self.master_name.is_empty()
            || !self.sentinels.is_empty()
            || !self.username.is_empty()
            || !self.password.is_empty()
            || self.tls
    }
}

impl Config {
    /// The Redis deployment the configuration names; `None`: the in-process store.
    pub fn redis_topology(&self) -> Option<RedisTopology> {
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        if !self.redis_url.is_empty() {
            Some(RedisTopology::Single(self.redis_url.clone()))
        } else if !self.redis_cluster_nodes.is_empty() {
            Some(RedisTopology::Cluster(self.redis_cluster_nodes.clone()))
        } else if self.redis_sentinel.is_set() {
            let s = &self.redis_sentinel;
            Some(RedisTopology::Sentinel(SentinelSettings {
                service: s.master_name.clone(),
                sentinels: s.sentinels.clone(),
                username: non_empty(&s.username),
                password: non_empty(&s.password),
                tls: s.tls,
            }))
        } else {
            None
        }
    }

    /// Whether sessions live in a Redis that several nodes (and the CLI) share.
    pub fn shared_store(&self) -> bool {
        self.redis_topology().is_some()
    }

    /// One deployment at most, and one that can be used as written.
    pub(super) fn validate_redis(&self) -> Result<(), ConfigError> {
        let given = [
            (!self.redis_url.is_empty()).then_some("redis_url"),
            (!self.redis_cluster_nodes.is_empty()).then_some("redis_cluster_nodes"),
            self.redis_sentinel.is_set().then_some("[redis_sentinel]"),
        ];
        let given: Vec<&str> = given.into_iter().flatten().collect();
        if given.len() > 1 {
            return Err(ConfigError::Invalid(format!(
                "{} are set: they are alternatives (one Redis server, a Redis Cluster, or Redis Sentinel); set one",
                given.join(" and ")
            )));
        }
        if self.redis_sentinel.is_set()
            && (self.redis_sentinel.master_name.is_empty() || self.redis_sentinel.sentinels.is_empty())
        {
            return Err(ConfigError::Invalid(
                "[redis_sentinel] needs both master_name and sentinels (at least one sentinel; three or more in \
                 production)"
                    .into(),
            ));
        }
        for url in self.redis_cluster_nodes.iter().chain(&self.redis_sentinel.sentinels) {
            let scheme = url.split_once("://").map(|(scheme, _)| scheme);
            if !matches!(scheme, Some("redis" | "rediss")) {
                return Err(ConfigError::Invalid(format!(
                    "Redis node {}: a redis:// or rediss:// URL is expected",
                    redact_url(url)
                )));
            }
        }
        // The single server's URL is checked when the store is opened, as it always was.
        match self.redis_topology() {
            Some(topology @ (RedisTopology::Cluster(_) | RedisTopology::Sentinel(_))) => {
                topology.check().map_err(|e| {
                    let setting =
                        if self.redis_cluster_nodes.is_empty() { "[redis_sentinel]" } else { "redis_cluster_nodes" };
                    ConfigError::Invalid(format!("{setting}: {e}"))
                })
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn contradictory_or_incomplete_redis_settings_are_refused() {
        let mut c = Config { redis_url: "redis://a:6379/".into(), ..Config::default() };
        c.redis_cluster_nodes = vec!["redis://b:6379".into()];
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("redis_url and redis_cluster_nodes"), "{e}");

        let mut c = Config { redis_cluster_nodes: vec!["redis://b:6379".into()], ..Config::default() };
        c.redis_sentinel.master_name = "caducee".into();
        c.redis_sentinel.sentinels = vec!["redis://s:26379".into()];
        assert!(c.validate().unwrap_err().to_string().contains("redis_cluster_nodes and [redis_sentinel]"));

        let mut c = Config::default();
        c.redis_sentinel.sentinels = vec!["redis://s:26379".into()];
        assert!(c.validate().unwrap_err().to_string().contains("master_name"), "no master name");
        c.redis_sentinel.master_name = "caducee".into();
        c.validate().unwrap();
        c.redis_sentinel.sentinels.push("rediss://t:26379".into());
        assert!(c.validate().is_err(), "TLS to one sentinel, not to the other");
        c.redis_sentinel.sentinels = vec!["http://s:26379".into()];
        assert!(c.validate().is_err(), "not a Redis URL");

        let c = Config {
            redis_cluster_nodes: vec!["redis://:a@b:6379".into(), "redis://:b@c:6379".into()],
            ..Config::default()
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(!e.contains(":a@") && !e.contains(":b@"), "no password echoed: {e}");
        let c = Config {
            redis_cluster_nodes: vec!["redis://:a@b:6379".into(), "redis://:a@c:6379".into()],
            ..Config::default()
        };
        c.validate().unwrap();
        assert!(matches!(c.redis_topology(), Some(RedisTopology::Cluster(n)) if n.len() == 2));
        assert!(c.shared_store());
        assert!(!Config::default().shared_store());
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn cluster_and_sentinel_settings_come_from_the_file_and_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "sentinel.toml",
                "[redis_sentinel]\nmaster_name = \"caducee\"\nsentinels = [\"redis://s1:26379\", \"redis://s2:26379\"]\n\
                 username = \"caducee\"\n",
            )?;
            jail.set_env("CADUCEE_REDIS_SENTINEL__PASSWORD", "S3NT-PASS-99");
            jail.set_env("CADUCEE_REDIS_SENTINEL__TLS", "true");
            let c = Config::load(Some(Path::new("sentinel.toml"))).map_err(|e| e.to_string())?;
            let Some(RedisTopology::Sentinel(s)) = c.redis_topology() else { panic!("{c:?}") };
            assert_eq!(s.service, "caducee");
            assert_eq!(s.sentinels.len(), 2);
            assert_eq!(
                (s.username.as_deref(), s.password.as_deref(), s.tls),
                (Some("caducee"), Some("S3NT-PASS-99"), true)
            );
            assert!(!format!("{c:?}").contains("S3NT-PASS-99"));

            jail.create_file("empty.toml", "")?;
            jail.set_env("CADUCEE_REDIS_CLUSTER_NODES", "[\"redis://a:6379\", \"redis://b:6379\"]");
            jail.set_env("CADUCEE_REDIS_SENTINEL__PASSWORD", "");
            jail.set_env("CADUCEE_REDIS_SENTINEL__TLS", "false");
            let c = Config::load(Some(Path::new("empty.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(c.redis_cluster_nodes, vec!["redis://a:6379".to_owned(), "redis://b:6379".to_owned()]);
            Ok(())
        });
    }
}
