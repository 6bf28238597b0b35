//! The card's TLS listener: for sites whose browsers read the CPS card themselves (the card
//! maker's middleware, a PKCS#11 module in the browser), the card's certificate is presented as
//! a TLS client certificate here, and the login page's «card» step reads it from the handshake.
//!
//! The listener requires a client certificate and accepts any the client proves it holds the
//! key of (the handshake's signature); what the certificate is worth (its path to the card
//! trust anchors, revocation, usages, whose it is) is the card method's to decide, with the
//! same checks as a card answer through the agent, so that the page can say why a card is
//! refused instead of a bare TLS alert. TLS 1.2 is offered (and by default only it): a CPS3
//! signs PKCS#1 v1.5 only, which TLS 1.3's client authentication refuses, and a browser
//! offered TLS 1.3 would take it and fail.
//!
//! Serves the same router as the plain listener; the login page's cookie is shared with it
//! (same host, another port).

use std::sync::Arc;

use authn_methods::card::PresentedChain;
use axum::Router;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::ServerConfig;
use tokio::net::TcpListener;

use crate::config::CardConfig;
use crate::mtls_listener::{AnyClientCertificate, MtlsError};

/// The card listener's TLS settings.
#[derive(Clone)]
pub struct CardTlsServer {
    tls: Arc<ServerConfig>,
}

fn file_error(path: &std::path::Path, e: impl std::fmt::Display) -> MtlsError {
    MtlsError::File { path: path.display().to_string(), message: e.to_string() }
}

impl CardTlsServer {
    pub fn new(config: &CardConfig) -> Result<Self, MtlsError> {
        crate::app::install_crypto_provider();
        let pem = std::fs::read(&config.tls_certificate).map_err(|e| file_error(&config.tls_certificate, e))?;
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .map_err(|e| file_error(&config.tls_certificate, e))?;
        let key_pem = std::fs::read(&config.tls_private_key).map_err(|e| file_error(&config.tls_private_key, e))?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| file_error(&config.tls_private_key, e))?;
        let provider = rustls::crypto::CryptoProvider::get_default()
            .cloned()
            .ok_or_else(|| MtlsError::Tls("no crypto provider".into()))?;
        let versions: &[&'static rustls::SupportedProtocolVersion] =
            if config.tls13 { &[&rustls::version::TLS13, &rustls::version::TLS12] } else { &[&rustls::version::TLS12] };
        // A certificate is required; any whose key signed the handshake is taken, the rest is
        // the card method's to judge.
        let any = Arc::new(AnyClientCertificate { provider: provider.clone(), mandatory: true });
        let mut tls = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .map_err(|e| MtlsError::Tls(e.to_string()))?
            .with_client_cert_verifier(any)
            .with_single_cert(chain, key)
            .map_err(|e| MtlsError::Tls(format!("card.tls_certificate: {e}")))?;
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(CardTlsServer { tls: Arc::new(tls) })
    }

    /// Serves `router` over TLS on `listener` until the task is dropped.
    pub async fn serve(self, listener: TcpListener, router: Router) {
        let extract = |connection: &rustls::ServerConnection| {
            let chain = connection.peer_certificates()?;
            Some(PresentedChain(chain.iter().map(|c| c.to_vec()).collect()))
        };
        crate::mtls_listener::serve_tls(self.tls, listener, router, extract).await;
    }
}
