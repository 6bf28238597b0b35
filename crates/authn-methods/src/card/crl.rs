//! The certificate revocation lists a card login is checked against: read from files or
//! fetched over HTTP (as a PKI publishes them), DER or PEM, refreshed on a schedule.
//!
//! Each source keeps its last good list: a fetch that fails, or answers a list older than the
//! one held (a replayed list, signed and not yet expired, that would forget a revocation), leaves
//! it in place. A list past its `nextUpdate` is refused at verification time unless the operator
//! said otherwise ([`super::pki::RevocationPolicy::allow_stale`]); a card whose issuer has no list
//! at all is refused too: revocation fails closed.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls_pki_types::CertificateRevocationListDer;
use rustls_pki_types::pem::PemObject as _;
use webpki::{CertRevocationList, OwnedCertRevocationList};
use x509_parser::prelude::FromDer as _;

/// The largest list accepted (IGC-Santé's are a few MB at most).
const MAX_CRL_BYTES: usize = 32 * 1024 * 1024;
/// How long one fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(15);

/// Where a list comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrlSource {
    File(PathBuf),
    Url(String),
}

impl std::fmt::Display for CrlSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CrlSource::File(p) => write!(f, "{}", p.display()),
            CrlSource::Url(u) => f.write_str(u),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CrlError {
    #[error("{source_name}: {message}")]
    Read { source_name: String, message: String },
    #[error("{source_name}: not a certificate revocation list: {message}")]
    Parse { source_name: String, message: String },
}

struct Held {
    list: Arc<CertRevocationList<'static>>,
    /// `thisUpdate`, seconds since the epoch.
    issued: i64,
}

/// The lists in force, one slot per source.
pub struct CrlSet {
    sources: Vec<CrlSource>,
    held: RwLock<Vec<Option<Held>>>,
    http: reqwest::Client,
}

impl std::fmt::Debug for CrlSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrlSet").field("sources", &self.sources).finish()
    }
}

fn parse(source: &CrlSource, bytes: &[u8]) -> Result<(CertRevocationList<'static>, i64), CrlError> {
    let parse_error = |message: String| CrlError::Parse { source_name: source.to_string(), message };
    let der: Vec<u8> = if bytes.starts_with(b"-----BEGIN") {
        let first = CertificateRevocationListDer::pem_slice_iter(bytes)
            .next()
            .ok_or_else(|| parse_error("no X509 CRL block".into()))?
            .map_err(|e| parse_error(e.to_string()))?;
        first.as_ref().to_vec()
    } else {
        bytes.to_vec()
    };
    let (_, parsed) = x509_parser::revocation_list::CertificateRevocationList::from_der(&der)
        .map_err(|e| parse_error(e.to_string()))?;
    let issued = parsed.last_update().timestamp();
    let owned = OwnedCertRevocationList::from_der(&der).map_err(|e| parse_error(e.to_string()))?;
    Ok((CertRevocationList::from(owned), issued))
}

impl CrlSet {
    /// A set with nothing loaded yet ([`CrlSet::refresh`] loads it).
    pub fn new(sources: Vec<CrlSource>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .unwrap_or_default();
        let held = RwLock::new(sources.iter().map(|_| None).collect());
        CrlSet { sources, held, http }
    }

    pub fn sources(&self) -> &[CrlSource] {
        &self.sources
    }

    /// The lists in force now.
    pub fn current(&self) -> Vec<Arc<CertRevocationList<'static>>> {
        match self.held.read() {
            Ok(held) => held.iter().flatten().map(|h| h.list.clone()).collect(),
            Err(poisoned) => poisoned.into_inner().iter().flatten().map(|h| h.list.clone()).collect(),
        }
    }

    async fn fetch(&self, source: &CrlSource) -> Result<Vec<u8>, CrlError> {
        let read_error = |message: String| CrlError::Read { source_name: source.to_string(), message };
        match source {
            CrlSource::File(path) => {
                let bytes = tokio::fs::read(path).await.map_err(|e| read_error(e.to_string()))?;
                if bytes.len() > MAX_CRL_BYTES {
                    return Err(read_error("larger than 32 MB".into()));
                }
                Ok(bytes)
            }
            CrlSource::Url(url) => {
                let mut response = self.http.get(url).send().await.map_err(|e| read_error(e.to_string()))?;
                if !response.status().is_success() {
                    return Err(read_error(format!("HTTP {}", response.status())));
                }
                let mut body = Vec::new();
                while let Some(chunk) = response.chunk().await.map_err(|e| read_error(e.to_string()))? {
                    if body.len() + chunk.len() > MAX_CRL_BYTES {
                        return Err(read_error("larger than 32 MB".into()));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(body)
            }
        }
    }

    /// Reads every source again; a source that fails keeps its last good list. Returns the
    /// failures (each is also logged).
    pub async fn refresh(&self) -> Vec<CrlError> {
        let mut errors = Vec::new();
        for (index, source) in self.sources.iter().enumerate() {
            let loaded = match self.fetch(source).await {
                Ok(bytes) => parse(source, &bytes),
                Err(e) => Err(e),
            };
            match loaded {
                Ok((list, issued)) => self.install(index, source, list, issued),
                Err(e) => {
                    tracing::error!(error = %e, "card revocation list not refreshed; the last good one stays");
                    metrics::counter!("caducee_card_crl_refresh_failures_total").increment(1);
                    errors.push(e);
                }
            }
        }
        errors
    }

    fn install(&self, index: usize, source: &CrlSource, list: CertRevocationList<'static>, issued: i64) {
        let mut held = match self.held.write() {
            Ok(h) => h,
            Err(poisoned) => poisoned.into_inner(),
        };
        let Some(slot) = held.get_mut(index) else {
            return;
        };
        if let Some(current) = slot
            && current.issued > issued
        {
            tracing::warn!(source = %source, "an older revocation list was served; the newer one stays");
            return;
        }
        *slot = Some(Held { list: Arc::new(list), issued });
    }

    /// Refreshes every `every` in the background, for the process's life.
    pub fn spawn_refresh(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let set = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(set) = set.upgrade() else { return };
                set.refresh().await;
            }
        })
    }
}
