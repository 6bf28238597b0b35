//! What the server establishes of a request before anything else reads it: the client's
//! address (behind trusted proxies, from `X-Forwarded-For`), the client certificate a trusted
//! proxy passed (for the admin API and relying parties' mutual TLS), and the request's id.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use oidc_core::http::ClientIp;

/// What the server believes of the proxies in front of it.
pub(crate) struct Edge {
    pub(crate) trusted: Vec<IpAddr>,
    pub(crate) cert_header: axum::http::HeaderName,
    /// Relying parties' certificates are read from the header (mutual TLS behind a proxy).
    pub(crate) mtls: bool,
}

/// Establishes the client's address: the connection's peer, or, when the peer is a trusted
/// proxy, the last `X-Forwarded-For` entry that is not itself a trusted proxy. The client
/// certificate header is removed from every request, so that nothing downstream can read a
/// forged one; from a trusted proxy, every copy of it is kept aside, unparsed, for the admin
/// API (its only reader), which decides what it is worth.
pub(crate) async fn client_origin(
    State(edge): State<Arc<Edge>>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let certificate: Vec<axum::http::HeaderValue> =
        request.headers().get_all(&edge.cert_header).iter().cloned().collect();
    if !certificate.is_empty() {
        request.headers_mut().remove(&edge.cert_header);
    }
    if let Some(axum::extract::ConnectInfo(peer)) = request.extensions().get::<axum::extract::ConnectInfo<SocketAddr>>()
    {
        let peer = peer.ip();
        let ip = forwarded_client(peer, request.headers().get("x-forwarded-for"), &edge.trusted);
        request.extensions_mut().insert(ClientIp(ip));
        if edge.trusted.contains(&peer) && !certificate.is_empty() {
            // One copy only: of two, which is the proxy's cannot be told.
            // A certificate of the provider's own TLS listener is not replaced by a header.
            let from_listener = request.extensions().get::<oidc_core::mtls::ClientCertificate>().is_some();
            if let ([one], true, false) = (certificate.as_slice(), edge.mtls, from_listener)
                && let Some(cert) = one.to_str().ok().and_then(oidc_core::mtls::ClientCertificate::from_forwarded)
            {
                request.extensions_mut().insert(cert);
            }
            request.extensions_mut().insert(admin_api::ProxiedClientCertificate(certificate));
        }
    }
    next.run(request).await
}

/// Gives every request an id, for the logs and the answer (`X-Request-Id`): the one a trusted
/// proxy passed, or a new one (what anyone else sends is replaced: a caller must not choose
/// the id under which its requests are logged).
pub(crate) async fn request_id(
    State(edge): State<Arc<Edge>>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use crate::request_log::{REQUEST_ID, acceptable_request_id};
    let from_proxy = request
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .is_some_and(|axum::extract::ConnectInfo(peer)| edge.trusted.contains(&peer.ip()));
    let given = request.headers().get(REQUEST_ID).filter(|v| from_proxy && acceptable_request_id(v)).cloned();
    let id = match given {
        Some(id) => id,
        None => match axum::http::HeaderValue::from_str(&oidc_core::util::random_id()) {
            Ok(id) => id,
            Err(_) => return next.run(request).await,
        },
    };
    request.headers_mut().insert(REQUEST_ID, id.clone());
    let mut response = next.run(request).await;
    response.headers_mut().insert(REQUEST_ID, id);
    response
}

fn forwarded_client(peer: IpAddr, header: Option<&axum::http::HeaderValue>, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let Some(list) = header.and_then(|h| h.to_str().ok()) else {
        return peer;
    };
    let mut client = peer;
    for hop in list.rsplit(',') {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) if trusted.contains(&ip) => client = ip,
            Ok(ip) => return ip,
            // A malformed entry: stop at what is known for sure.
            Err(_) => return client,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_believed_from_trusted_proxies_only() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let header = axum::http::HeaderValue::from_static("198.51.100.7, 203.0.113.9, 10.0.0.1");
        let client = |peer: &str, trusted: &[IpAddr]| forwarded_client(peer.parse().unwrap(), Some(&header), trusted);
        assert_eq!(client("10.0.0.1", &[proxy]), "203.0.113.9".parse::<IpAddr>().unwrap(), "rightmost untrusted hop");
        assert_eq!(
            client("192.0.2.1", &[proxy]),
            "192.0.2.1".parse::<IpAddr>().unwrap(),
            "untrusted peer: header ignored"
        );
        assert_eq!(client("10.0.0.1", &[]), "10.0.0.1".parse::<IpAddr>().unwrap());
    }
}
