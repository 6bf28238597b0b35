//! The provider's own TLS listener for mutual TLS (RFC 8705): it asks every client for a
//! certificate, accepts any that the client proves it holds the key of (the TLS handshake's
//! signature), and hands the protocol a [`ClientCertificate`] saying whether the certificate
//! chains to a CA of `mtls.client_ca` (what `tls_client_auth` needs) or not (a
//! `self_signed_tls_client_auth` client's own). Who the client is, and whether this
//! certificate is its, is decided by the protocol, per request.
//!
//! Serves the same router as the plain listener; a client without a certificate is served
//! too (a resource server calling introspection with a secret, say).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use oidc_core::mtls::ClientCertificate;
use rustls::DistinguishedName;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use tokio::net::TcpListener;

use crate::config::MtlsConfig;

#[derive(Debug, thiserror::Error)]
pub enum MtlsError {
    #[error("mtls: reading {path}: {message}")]
    File { path: String, message: String },
    #[error("mtls: {0}")]
    Tls(String),
}

/// The listener's TLS settings and the check of client chains.
#[derive(Clone)]
pub struct MtlsServer {
    tls: Arc<ServerConfig>,
    /// Verifies a client's chain against `mtls.client_ca`; none: no CA is trusted.
    chains: Option<Arc<dyn ClientCertVerifier>>,
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, MtlsError> {
    std::fs::read(path).map_err(|e| MtlsError::File { path: path.display().to_string(), message: e.to_string() })
}

fn certificates(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, MtlsError> {
    let pem = read(path)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| MtlsError::File { path: path.display().to_string(), message: e.to_string() })?;
    if certs.is_empty() {
        return Err(MtlsError::File { path: path.display().to_string(), message: "no certificate".into() });
    }
    Ok(certs)
}

impl MtlsServer {
    pub fn new(config: &MtlsConfig) -> Result<Self, MtlsError> {
        crate::app::install_crypto_provider();
        let chain = certificates(&config.certificate)?;
        let key = PrivateKeyDer::from_pem_slice(&read(&config.private_key)?)
            .map_err(|e| MtlsError::File { path: config.private_key.display().to_string(), message: e.to_string() })?;
        let provider = rustls::crypto::CryptoProvider::get_default()
            .cloned()
            .ok_or_else(|| MtlsError::Tls("no crypto provider".into()))?;
        let chains = if config.client_ca.as_os_str().is_empty() {
            None
        } else {
            let mut roots = rustls::RootCertStore::empty();
            for ca in certificates(&config.client_ca)? {
                roots.add(ca).map_err(|e| MtlsError::Tls(format!("mtls.client_ca: {e}")))?;
            }
            let verifier = WebPkiClientVerifier::builder(Arc::new(roots))
                .build()
                .map_err(|e| MtlsError::Tls(format!("mtls.client_ca: {e}")))?;
            Some(verifier)
        };
        let any = Arc::new(AnyClientCertificate { provider: provider.clone(), mandatory: false });
        let mut tls = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| MtlsError::Tls(e.to_string()))?
            .with_client_cert_verifier(any)
            .with_single_cert(chain, key)
            .map_err(|e| MtlsError::Tls(e.to_string()))?;
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(MtlsServer { tls: Arc::new(tls), chains })
    }

    /// Serves `router` over TLS on `listener` until the task is dropped.
    pub async fn serve(self, listener: TcpListener, router: Router) {
        let chains = self.chains.clone();
        let extract = move |connection: &rustls::ServerConnection| {
            let (end_entity, intermediates) = connection.peer_certificates()?.split_first()?;
            let verified = chains
                .as_ref()
                .is_some_and(|v| v.verify_client_cert(end_entity, intermediates, UnixTime::now()).is_ok());
            Some(ClientCertificate::new(end_entity.to_vec(), verified))
        };
        serve_tls(self.tls.clone(), listener, router, extract).await;
    }
}

/// Accepts TLS connections on `listener` and serves `router` on each, with what `extract`
/// reads of the handshake (the client's certificate) in every request's extensions, until the
/// task is dropped.
pub(crate) async fn serve_tls<E, F>(tls: Arc<ServerConfig>, listener: TcpListener, router: Router, extract: F)
where
    E: Clone + Send + Sync + 'static,
    F: Fn(&rustls::ServerConnection) -> Option<E> + Clone + Send + Sync + 'static,
{
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "tls listener: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        let extract = extract.clone();
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(stream)).await;
            let tls = match handshake {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, %peer, "tls listener: handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let extension = extract(tls.get_ref().1);
            serve_connection(tls, peer, extension, router).await;
        });
    }
}

async fn serve_connection<E: Clone + Send + Sync + 'static>(
    tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    peer: SocketAddr,
    extension: Option<E>,
    router: Router,
) {
    use tower::ServiceExt as _;
    let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
        if let Some(extension) = extension.clone() {
            request.extensions_mut().insert(extension);
        }
        router.clone().oneshot(request.map(axum::body::Body::new))
    });
    let builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    if let Err(e) = builder.serve_connection(hyper_util::rt::TokioIo::new(tls), service).await {
        tracing::debug!(error = %e, %peer, "tls listener: connection ended");
    }
}

/// Asks for a client certificate (requires one when `mandatory`), takes any (the handshake
/// still proves the key), and leaves what it is worth to the protocol.
#[derive(Debug)]
pub(crate) struct AnyClientCertificate {
    pub provider: Arc<rustls::crypto::CryptoProvider>,
    pub mandatory: bool,
}

impl ClientCertVerifier for AnyClientCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}
