//! A small TCP load balancer for tests of several provider nodes behind one address, as a
//! production deployment has: each new connection goes to the next node in turn, and to the one
//! after when a node refuses connections (killed, stopping), the way a proxy's retry on connect
//! failure behaves. It balances connections, not requests: clients that must reach another node
//! on each request open a new connection each time.
//!
//! Blocking std code with a thread per connection direction: tests open few connections, and
//! the soak one per request (about 150 a second at its half load).

use std::io;
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use crate::HarnessError;

/// How long the balancer waits for a node to accept before trying the next one.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// A running balancer; stops accepting when dropped (connections already made run to their end).
#[derive(Debug)]
pub struct Balancer {
    address: SocketAddr,
    stopping: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
}

impl Balancer {
    /// Listens on a free loopback port and spreads connections over `backends`, in turn.
    pub fn start(backends: Vec<SocketAddr>) -> Result<Balancer, HarnessError> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|source| HarnessError::Io { context: "binding the balancer".into(), source })?;
        let address = listener
            .local_addr()
            .map_err(|source| HarnessError::Io { context: "reading the balancer's address".into(), source })?;
        let stopping = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (stop, count) = (stopping.clone(), accepted.clone());
        thread::spawn(move || accept_loop(&listener, &backends, &stop, &count));
        Ok(Balancer { address, stopping, accepted })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://127.0.0.1:<port>`: the one public address of the nodes behind.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect_timeout(&self.address, CONNECT_TIMEOUT);
    }
}

fn accept_loop(listener: &TcpListener, backends: &[SocketAddr], stopping: &AtomicBool, accepted: &AtomicUsize) {
    let mut next = 0usize;
    for client in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        accepted.fetch_add(1, Ordering::SeqCst);
        let first = next;
        next = next.wrapping_add(1);
        let order: Vec<SocketAddr> =
            (0..backends.len()).filter_map(|i| backends.get((first + i) % backends.len()).copied()).collect();
        thread::spawn(move || {
            // No node answers: the client sees its connection closed, as behind a real proxy
            // with every backend down.
            if let Some(node) = order.iter().find_map(|a| TcpStream::connect_timeout(a, CONNECT_TIMEOUT).ok()) {
                let _ = relay(client, node);
            }
        });
    }
}

/// Copies both ways until each side has closed its half.
fn relay(client: TcpStream, node: TcpStream) -> io::Result<()> {
    let (mut client_read, mut node_write) = (client.try_clone()?, node.try_clone()?);
    let upstream = thread::spawn(move || {
        let _ = io::copy(&mut client_read, &mut node_write);
        let _ = node_write.shutdown(Shutdown::Write);
    });
    let (mut node_read, mut client_write) = (node, client);
    let _ = io::copy(&mut node_read, &mut client_write);
    let _ = client_write.shutdown(Shutdown::Write);
    let _ = upstream.join();
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    fn echo_server(tag: u8) -> SocketAddr {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let address = listener.local_addr().unwrap();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let mut stream = stream.unwrap();
                let mut byte = [0u8; 1];
                stream.read_exact(&mut byte).unwrap();
                stream.write_all(&[tag, byte[0]]).unwrap();
            }
        });
        address
    }

    fn ask(balancer: &Balancer) -> Option<u8> {
        let mut stream = TcpStream::connect(balancer.address()).unwrap();
        stream.write_all(b"x").unwrap();
        let mut answer = Vec::new();
        // Closed with our byte unread: a reset, which is also "no answer".
        stream.read_to_end(&mut answer).ok()?;
        (answer.len() == 2 && answer[1] == b'x').then(|| answer[0])
    }

    #[test]
    fn connections_go_round_and_skip_a_node_that_refuses() {
        let (a, b) = (echo_server(b'a'), echo_server(b'b'));
        // A port nobody listens on: a killed node.
        let dead = SocketAddr::from((Ipv4Addr::LOCALHOST, crate::free_port().unwrap()));
        let balancer = Balancer::start(vec![a, dead, b]).unwrap();
        let seen: Vec<u8> = (0..6).map(|_| ask(&balancer).unwrap()).collect();
        // The dead node's turns go to the node after it.
        assert_eq!(seen, b"abbabb");
        assert_eq!(balancer.accepted(), 6);
    }

    #[test]
    fn with_every_node_down_the_connection_is_closed() {
        let dead = SocketAddr::from((Ipv4Addr::LOCALHOST, crate::free_port().unwrap()));
        let balancer = Balancer::start(vec![dead]).unwrap();
        assert_eq!(ask(&balancer), None);
    }
}
