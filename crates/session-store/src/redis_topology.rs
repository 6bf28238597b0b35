//! Which Redis the [`crate::RedisStore`] talks to, as deployed: one server (a URL), a Redis Cluster
//! (seed nodes), or a primary and its replicas watched by Redis Sentinel (the service name and the
//! sentinels). Owns the parsing and checking of those settings and the building of the `redis`
//! crate's clients from them; never shows a password in `Debug` or in an error.

use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{ConnectionAddr, IntoConnectionInfo, TlsCertificates, TlsMode};

use crate::{StoreError, StoreResult};

/// Where the shared store lives.
#[derive(Clone)]
pub enum RedisTopology {
    /// One server: `redis://[user:password@]host[:port][/db]`, or `rediss://` for TLS.
    Single(String),
    /// A Redis Cluster, found from these seed nodes (`redis://` or `rediss://` URLs, all with the
    /// same ACL user and the same scheme; the other nodes are learnt from the cluster).
    Cluster(Vec<String>),
    /// A primary and replicas under Redis Sentinel.
    Sentinel(SentinelSettings),
}

/// A service watched by Redis Sentinel: the store asks the sentinels which node is the primary,
/// and asks again when that node stops answering or turns out to be a replica (after a failover).
#[derive(Clone, Default)]
pub struct SentinelSettings {
    /// The service name the sentinels monitor (`sentinel monitor <name> ...`).
    pub service: String,
    /// The sentinels, as `redis://[user:password@]host:port` (or `rediss://` for TLS). Their ACL
    /// user, if any, is the same on every sentinel, and so is their scheme.
    pub sentinels: Vec<String>,
    /// The ACL user of the data nodes (primary and replicas), if they ask for one.
    pub username: Option<String>,
    /// The password of the data nodes, if they ask for one.
    pub password: Option<String>,
    /// Whether the data nodes speak TLS. Their certificates must name the address the sentinels
    /// give for them (an IP address unless the sentinels announce host names).
    pub tls: bool,
}

impl RedisTopology {
    /// Checks the settings as far as can be done without connecting (URLs, schemes alike, one
    /// user for every seed node or sentinel, a service name), so that a configuration mistake
    /// shows at start-up rather than as an outage.
    pub fn check(&self) -> StoreResult<()> {
        match self {
            RedisTopology::Single(url) => single_client(url, None).map(drop),
            RedisTopology::Cluster(nodes) => cluster_builder(nodes, None)?
                .build()
                .map(drop)
                .map_err(invalid("the Redis Cluster nodes must share one scheme, one user and one password")),
            RedisTopology::Sentinel(settings) => sentinel_client(settings, None).map(drop),
        }
    }
}

impl std::fmt::Debug for RedisTopology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RedisTopology::Single(url) => f.debug_tuple("Single").field(&redact(url)).finish(),
            RedisTopology::Cluster(nodes) => {
                f.debug_tuple("Cluster").field(&nodes.iter().map(|n| redact(n)).collect::<Vec<_>>()).finish()
            }
            RedisTopology::Sentinel(settings) => f.debug_tuple("Sentinel").field(settings).finish(),
        }
    }
}

impl std::fmt::Debug for SentinelSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentinelSettings")
            .field("service", &self.service)
            .field("sentinels", &self.sentinels.iter().map(|s| redact(s)).collect::<Vec<_>>())
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls)
            .finish()
    }
}

/// A Redis URL fit for logs: what comes before the host (user and password) is replaced. A URL
/// whose host cannot be found is not shown at all.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<unreadable URL>".to_owned();
    };
    match rest.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}"),
        None => url.to_owned(),
    }
}

/// The error of a setting that cannot be read: names the setting, never echoes the value (which
/// may carry a password).
fn invalid(what: &'static str) -> impl Fn(redis::RedisError) -> StoreError {
    move |_| StoreError::Invalid(what)
}

/// Two rustls back-ends are compiled in (through other crates): without a choice, the first TLS
/// connection would panic. Idempotent.
pub(crate) fn choose_tls_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

fn certificates(ca_pem: Option<&[u8]>) -> Option<TlsCertificates> {
    ca_pem.map(|ca| TlsCertificates { client_tls: None, root_cert: Some(ca.to_vec()) })
}

/// The client of one server.
pub(crate) fn single_client(url: &str, ca_pem: Option<&[u8]>) -> StoreResult<redis::Client> {
    choose_tls_provider();
    let invalid = invalid("the Redis URL cannot be parsed");
    match certificates(ca_pem) {
        None => redis::Client::open(url).map_err(invalid),
        Some(certificates) => redis::Client::build_with_tls(url, certificates).map_err(invalid),
    }
}

/// The builder of a cluster client from its seed nodes; the caller sets the timeouts.
pub(crate) fn cluster_builder(
    nodes: &[String],
    ca_pem: Option<&[u8]>,
) -> StoreResult<redis::cluster::ClusterClientBuilder> {
    choose_tls_provider();
    if nodes.is_empty() {
        return Err(StoreError::Invalid("a Redis Cluster needs at least one seed node"));
    }
    let mut infos = Vec::with_capacity(nodes.len());
    for node in nodes {
        let info =
            node.as_str().into_connection_info().map_err(invalid("a Redis Cluster node URL cannot be parsed"))?;
        if !matches!(info.addr(), ConnectionAddr::Tcp(..) | ConnectionAddr::TcpTls { .. }) {
            return Err(StoreError::Invalid("Redis Cluster nodes are reached over TCP"));
        }
        if info.redis_settings().db() != 0 {
            // A cluster has database 0 only.
            return Err(StoreError::Invalid("a Redis Cluster node URL names no database"));
        }
        infos.push(info);
    }
    let mut builder = redis::cluster::ClusterClient::builder(infos);
    if let Some(certificates) = certificates(ca_pem) {
        builder = builder.certs(certificates);
    }
    Ok(builder)
}

/// The client that asks the sentinels for the primary.
pub(crate) fn sentinel_client(settings: &SentinelSettings, ca_pem: Option<&[u8]>) -> StoreResult<SentinelClient> {
    choose_tls_provider();
    if settings.service.is_empty() {
        return Err(StoreError::Invalid("Redis Sentinel needs the name of the service it watches"));
    }
    if settings.sentinels.is_empty() {
        return Err(StoreError::Invalid("Redis Sentinel needs at least one sentinel"));
    }
    let mut addresses = Vec::with_capacity(settings.sentinels.len());
    let mut credentials: Option<(Option<String>, Option<String>)> = None;
    for url in &settings.sentinels {
        let info = url.as_str().into_connection_info().map_err(invalid("a sentinel URL cannot be parsed"))?;
        let addr = match info.addr() {
            ConnectionAddr::Tcp(host, port) => ConnectionAddr::Tcp(host.clone(), *port),
            // Certificates are set below, for every sentinel at once.
            ConnectionAddr::TcpTls { host, port, .. } => {
                ConnectionAddr::TcpTls { host: host.clone(), port: *port, insecure: false, tls_params: None }
            }
            _ => return Err(StoreError::Invalid("sentinels are reached over TCP")),
        };
        if info.redis_settings().db() != 0 {
            return Err(StoreError::Invalid("a sentinel URL names no database"));
        }
        let these =
            (info.redis_settings().username().map(str::to_owned), info.redis_settings().password().map(str::to_owned));
        // The crate authenticates to every sentinel alike.
        if credentials.as_ref().is_some_and(|first| *first != these) {
            return Err(StoreError::Invalid("every sentinel URL must carry the same user and password"));
        }
        credentials = Some(these);
        addresses.push(addr);
    }
    let tls_sentinels = addresses.iter().filter(|a| matches!(a, ConnectionAddr::TcpTls { .. })).count();
    if tls_sentinels != 0 && tls_sentinels != addresses.len() {
        return Err(StoreError::Invalid("the sentinel URLs must be all redis:// or all rediss://"));
    }

    let mut builder = SentinelClientBuilder::new(addresses, &settings.service, SentinelServerType::Master)
        .map_err(invalid("the Redis Sentinel settings are not usable"))?;
    if let Some((username, password)) = credentials {
        if let Some(username) = username {
            builder = builder.set_client_to_sentinel_username(username);
        }
        if let Some(password) = password {
            builder = builder.set_client_to_sentinel_password(password);
        }
    }
    if let Some(certificates) = certificates(ca_pem) {
        if tls_sentinels != 0 {
            builder = builder.set_client_to_sentinel_certificates(certificates.clone());
        }
        if settings.tls {
            builder = builder.set_client_to_redis_certificates(certificates);
        }
    }
    if settings.tls {
        builder = builder.set_client_to_redis_tls_mode(TlsMode::Secure);
    }
    if let Some(username) = &settings.username {
        builder = builder.set_client_to_redis_username(username);
    }
    if let Some(password) = &settings.password {
        builder = builder.set_client_to_redis_password(password);
    }
    builder.build().map_err(invalid("the Redis Sentinel settings are not usable"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn debug_never_shows_a_password() {
        let topologies = [
            RedisTopology::Single("redis://u:s3cret@h:6379/".into()),
            RedisTopology::Cluster(vec!["rediss://u:s3cret@a:1".into(), "rediss://:s3cret@b:2".into()]),
            RedisTopology::Sentinel(SentinelSettings {
                service: "svc".into(),
                sentinels: vec!["redis://:s3cret@s1:26379".into()],
                username: Some("caducee".into()),
                password: Some("s3cret".into()),
                tls: true,
            }),
        ];
        for t in topologies {
            let shown = format!("{t:?}");
            assert!(!shown.contains("s3cret"), "{shown}");
        }
        assert_eq!(redact("redis://h:1/"), "redis://h:1/");
        assert_eq!(redact("rediss://u:p@h:1/"), "rediss://***@h:1/");
    }

    #[test]
    fn contradictory_sentinel_urls_are_refused() {
        let mut s = SentinelSettings {
            service: "svc".into(),
            sentinels: vec!["redis://:a@s1:26379".into(), "redis://:b@s2:26379".into()],
            ..SentinelSettings::default()
        };
        assert!(sentinel_client(&s, None).is_err(), "two passwords");
        s.sentinels = vec!["redis://s1:26379".into(), "rediss://s2:26379".into()];
        assert!(sentinel_client(&s, None).is_err(), "TLS and not");
        s.sentinels = vec!["redis://s1:26379".into(), "redis://s2:26379".into()];
        assert!(sentinel_client(&s, None).is_ok());
        s.service.clear();
        assert!(sentinel_client(&s, None).is_err(), "no service");
        let cluster = |nodes: &[&str]| RedisTopology::Cluster(nodes.iter().map(|n| (*n).to_owned()).collect()).check();
        assert!(cluster(&[]).is_err());
        assert!(cluster(&["redis://a:1/2"]).is_err(), "a database in a cluster");
        assert!(cluster(&["redis://a:1", "rediss://b:2"]).is_err(), "TLS and not");
        assert!(cluster(&["redis://:x@a:1", "redis://:y@b:2"]).is_err(), "two passwords");
        assert!(cluster(&["redis://:x@a:1", "redis://:x@b:2"]).is_ok());
        assert!(RedisTopology::Single("redis://:x@[oops/".into()).check().is_err());
    }
}
