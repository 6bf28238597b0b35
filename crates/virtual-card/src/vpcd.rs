//! The card's side of vsmartcard's vpcd protocol: a TCP connection to the reader driver, each
//! message a 2-byte big-endian length then the payload (a 1-byte control code or an APDU).
//! Inserting the card is connecting; removing it is closing the connection.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::card::{Card, CardStatus};
use crate::harness::Events;
use crate::profile::{CardProfile, ProfileError};

const POWER_OFF: u8 = 0;
const POWER_ON: u8 = 1;
const RESET: u8 = 2;
const GET_ATR: u8 = 4;

/// Why the virtual card cannot be made or inserted.
#[derive(Debug, thiserror::Error)]
pub enum CardError {
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error("cannot reach vpcd on port {port}: {source}")]
    Connect { port: u16, source: std::io::Error },
    #[error("pcscd did not see the card {0} in time")]
    NotSeen(&'static str),
}

struct Link {
    stream: TcpStream,
    thread: JoinHandle<()>,
    /// Removals pcscd had logged for this reader when the card went in.
    removed_before: u64,
}

/// A virtual CPS3 attached (or not) to a vpcd reader.
pub struct VirtualCard {
    card: Arc<Mutex<Card>>,
    port: u16,
    link: Option<Link>,
    events: Option<(Arc<Events>, String)>,
    /// 0: off; n + 1: the card is pulled out when the (n + 1)-th APDU from now arrives.
    pull_after: Arc<AtomicUsize>,
}

impl std::fmt::Debug for VirtualCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualCard")
            .field("port", &self.port)
            .field("inserted", &self.link.is_some())
            .finish_non_exhaustive()
    }
}

fn lock(card: &Mutex<Card>) -> MutexGuard<'_, Card> {
    card.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl VirtualCard {
    /// A card for the vpcd reader listening on `port`, not inserted yet.
    pub fn new(profile: &CardProfile, port: u16) -> Result<VirtualCard, CardError> {
        Ok(VirtualCard {
            card: Arc::new(Mutex::new(Card::new(profile)?)),
            port,
            link: None,
            events: None,
            pull_after: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Makes [`VirtualCard::insert`] and [`VirtualCard::remove`] wait until pcscd has seen
    /// the change (the harness does this).
    pub(crate) fn watch(&mut self, events: Arc<Events>, reader: String) {
        self.events = Some((events, reader));
    }

    pub fn status(&self) -> CardStatus {
        lock(&self.card).status()
    }

    pub fn is_inserted(&self) -> bool {
        self.link.is_some()
    }

    /// Sends one APDU to the card directly, without PC/SC (for unit tests).
    pub fn transmit_direct(&self, apdu: &[u8]) -> Vec<u8> {
        lock(&self.card).process(apdu).to_bytes()
    }

    /// Simulates pulling the card out in the middle of a session: the card answers `apdus`
    /// more APDUs, then the connection to vpcd closes when the next one arrives (unanswered).
    /// [`VirtualCard::remove`] and [`VirtualCard::insert`] still work afterwards.
    pub fn remove_after_apdus(&self, apdus: usize) {
        self.pull_after.store(apdus + 1, Ordering::SeqCst);
    }

    /// Inserts the card: connects to vpcd (retrying while the driver starts), then, under the
    /// harness, waits until pcscd reports the card.
    pub fn insert(&mut self) -> Result<(), CardError> {
        if self.link.is_some() {
            return Ok(());
        }
        let seen = self.events.as_ref().map(|(e, r)| ((e.inserted(r), e.atrs()), e.clone(), r.clone()));
        let deadline = Instant::now() + Duration::from_secs(10);
        let stream = loop {
            match TcpStream::connect(("127.0.0.1", self.port)) {
                Ok(s) => break s,
                Err(e) if Instant::now() < deadline => {
                    tracing::debug!(error = %e, "vpcd not listening yet");
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(source) => return Err(CardError::Connect { port: self.port, source }),
            }
        };
        let _ = stream.set_nodelay(true);
        let reader = stream.try_clone().map_err(|source| CardError::Connect { port: self.port, source })?;
        let card = self.card.clone();
        let pull_after = self.pull_after.clone();
        let thread = std::thread::spawn(move || serve(reader, &card, &pull_after));
        let removed_before = self.events.as_ref().map_or(0, |(e, r)| e.removed(r));
        self.link = Some(Link { stream, thread, removed_before });
        if let Some(((before, atrs_before), events, reader)) = seen
            && !events.wait_inserted(&reader, before, atrs_before, Duration::from_secs(10))
        {
            return Err(CardError::NotSeen("inserted"));
        }
        Ok(())
    }

    /// Removes the card: closes the connection (vpcd then reports no card) and powers the
    /// card off; under the harness, waits until pcscd has seen the removal.
    pub fn remove(&mut self) -> Result<(), CardError> {
        let Some(link) = self.link.take() else {
            return Ok(());
        };
        // Counted from the insertion: the card may have been pulled out already
        // (`remove_after_apdus`).
        let seen = self.events.as_ref().map(|(e, r)| (link.removed_before, e.clone(), r.clone()));
        let _ = link.stream.shutdown(Shutdown::Both);
        let _ = link.thread.join();
        lock(&self.card).power_off();
        if let Some((before, events, reader)) = seen
            && !events.wait_removed(&reader, before, Duration::from_secs(10))
        {
            return Err(CardError::NotSeen("removed"));
        }
        Ok(())
    }
}

impl Drop for VirtualCard {
    fn drop(&mut self) {
        if let Some(link) = self.link.take() {
            let _ = link.stream.shutdown(Shutdown::Both);
            let _ = link.thread.join();
        }
    }
}

/// vpcd writes the length and the payload separately: without quick ACKs each read waits for
/// the delayed ACK timer (~40 ms an APDU). The option is re-armed around each read, since the
/// kernel drops it by itself.
fn quickack(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_tcp_quickack(true);
}

fn serve(mut stream: TcpStream, card: &Mutex<Card>, pull_after: &AtomicUsize) {
    loop {
        let mut len = [0u8; 2];
        quickack(&stream);
        if stream.read_exact(&mut len).is_err() {
            break;
        }
        let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
        quickack(&stream);
        if stream.read_exact(&mut msg).is_err() {
            break;
        }
        let answer = match msg.as_slice() {
            [POWER_OFF] => {
                lock(card).power_off();
                None
            }
            [POWER_ON] => {
                lock(card).power_on();
                None
            }
            [RESET] => {
                lock(card).reset();
                None
            }
            [GET_ATR] => Some(lock(card).atr().to_vec()),
            [other] => {
                tracing::debug!(code = other, "unknown vpcd control code");
                None
            }
            apdu => {
                let left = pull_after.load(Ordering::SeqCst);
                if left == 1 {
                    pull_after.store(0, Ordering::SeqCst);
                    let _ = stream.shutdown(Shutdown::Both);
                    break;
                }
                if left > 1 {
                    pull_after.store(left - 1, Ordering::SeqCst);
                }
                Some(lock(card).process(apdu).to_bytes())
            }
        };
        if let Some(answer) = answer {
            let Ok(n) = u16::try_from(answer.len()) else { break };
            let mut out = Vec::with_capacity(answer.len() + 2);
            out.extend_from_slice(&n.to_be_bytes());
            out.extend_from_slice(&answer);
            if stream.write_all(&out).is_err() {
                break;
            }
        }
    }
    lock(card).power_off();
}
