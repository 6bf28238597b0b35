//! A real SMTP server for tests: it speaks enough of RFC 5321 for a mail client (EHLO, MAIL,
//! RCPT, DATA, RSET, NOOP, QUIT), accepts every message on a free loopback port, and keeps them
//! for the test to read. Blocking std code, one thread per connection.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::HarnessError;

/// A message as received.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub from: String,
    pub to: Vec<String>,
    /// Headers and body, with the SMTP dot-stuffing undone.
    pub data: String,
}

impl ReceivedMail {
    /// A header's value (unfolded), e.g. `Subject`.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or("");
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(v) = value.as_mut() {
                if line.starts_with(' ') || line.starts_with('\t') {
                    v.push_str(line.trim_start_matches(['\t']));
                    continue;
                }
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case(name)
            {
                value = Some(v.trim_start().to_owned());
            }
        }
        value
    }

    /// The body after the headers, as transmitted.
    pub fn body(&self) -> &str {
        self.data.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("")
    }

    /// The subject with RFC 2047 encoded words decoded.
    pub fn subject(&self) -> String {
        decode_words(&self.header("subject").unwrap_or_default())
    }

    /// The body decoded from its Content-Transfer-Encoding (7bit, 8bit, quoted-printable, base64).
    pub fn text(&self) -> String {
        let encoding = self.header("content-transfer-encoding").unwrap_or_default().to_ascii_lowercase();
        let bytes = match encoding.as_str() {
            "base64" => STANDARD.decode(self.body().replace(['\r', '\n'], "")).unwrap_or_default(),
            "quoted-printable" => quoted_printable(self.body()),
            _ => self.body().as_bytes().to_vec(),
        };
        String::from_utf8_lossy(&bytes).replace("\r\n", "\n")
    }
}

fn quoted_printable(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'=' if bytes.get(i + 1) == Some(&b'\r') && bytes.get(i + 2) == Some(&b'\n') => i += 3,
            b'=' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'=');
                        i += 1;
                    }
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Decodes `=?charset?B|Q?text?=` words (UTF-8 only). White space between two encoded words
/// is dropped, as RFC 2047 6.2 says; elsewhere it is kept.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut previous_encoded = false;
    for (i, part) in value.split_whitespace().enumerate() {
        let decoded = part.strip_prefix("=?").and_then(|p| p.strip_suffix("?=")).and_then(|p| {
            let mut it = p.splitn(3, '?');
            let (_charset, enc, text) = (it.next()?, it.next()?, it.next()?);
            let bytes = match enc.to_ascii_lowercase().as_str() {
                "b" => STANDARD.decode(text).ok()?,
                "q" => quoted_printable(&text.replace('_', " ")),
                _ => return None,
            };
            String::from_utf8(bytes).ok()
        });
        let encoded = decoded.is_some();
        if i > 0 && !(encoded && previous_encoded) {
            out.push(' ');
        }
        out.push_str(decoded.as_deref().unwrap_or(part));
        previous_encoded = encoded;
    }
    out
}

#[derive(Default)]
struct Inbox {
    mails: Mutex<Vec<ReceivedMail>>,
    arrived: Condvar,
}

pub struct SmtpSink {
    port: u16,
    inbox: Arc<Inbox>,
    stop: Arc<AtomicBool>,
}

impl SmtpSink {
    pub fn start() -> Result<SmtpSink, HarnessError> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .map_err(|source| HarnessError::Io { context: "binding the SMTP sink".into(), source })?;
        let port = listener
            .local_addr()
            .map_err(|source| HarnessError::Io { context: "reading the SMTP sink port".into(), source })?
            .port();
        let inbox = Arc::new(Inbox::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (inbox2, stop2) = (inbox.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let inbox = inbox2.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &inbox);
                });
            }
        });
        Ok(SmtpSink { port, inbox, stop })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every message received so far.
    pub fn mails(&self) -> Vec<ReceivedMail> {
        self.inbox.mails.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Waits until `count` messages have arrived (or `timeout`), then returns them all.
    pub fn wait_for(&self, count: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = Instant::now() + timeout;
        let Ok(mut mails) = self.inbox.mails.lock() else {
            return Vec::new();
        };
        while mails.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            mails = match self.inbox.arrived.wait_timeout(mails, left) {
                Ok((m, _)) => m,
                Err(_) => return Vec::new(),
            };
        }
        mails.clone()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(stream: TcpStream, inbox: &Inbox) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    out.write_all(b"220 caducee-test-sink ESMTP\r\n")?;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        let upper = command.to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            out.write_all(b"250-caducee-test-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")?;
        } else if upper.starts_with("HELO") {
            out.write_all(b"250 caducee-test-sink\r\n")?;
        } else if upper.starts_with("MAIL FROM:") {
            from = address(&command[10..]);
            to.clear();
            out.write_all(b"250 OK\r\n")?;
        } else if upper.starts_with("RCPT TO:") {
            to.push(address(&command[8..]));
            out.write_all(b"250 OK\r\n")?;
        } else if upper == "DATA" {
            out.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")?;
            let mut data = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line)? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                let unstuffed = line.strip_prefix('.').unwrap_or(&line);
                data.push_str(unstuffed);
            }
            if let Ok(mut mails) = inbox.mails.lock() {
                mails.push(ReceivedMail { from: from.clone(), to: to.clone(), data });
                inbox.arrived.notify_all();
            }
            out.write_all(b"250 OK: queued\r\n")?;
        } else if upper == "RSET" || upper == "NOOP" {
            out.write_all(b"250 OK\r\n")?;
        } else if upper == "QUIT" {
            out.write_all(b"221 Bye\r\n")?;
            return Ok(());
        } else {
            out.write_all(b"502 Command not implemented\r\n")?;
        }
    }
}

fn address(arg: &str) -> String {
    let arg = arg.trim();
    match (arg.find('<'), arg.find('>')) {
        (Some(a), Some(b)) if a < b => arg[a + 1..b].to_owned(),
        _ => arg.split_whitespace().next().unwrap_or("").to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receives_a_message_over_smtp() {
        let sink = SmtpSink::start().unwrap();
        let mut s = TcpStream::connect(("127.0.0.1", sink.port())).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert!(line.starts_with("220"));
        for cmd in ["EHLO t\r\n", "MAIL FROM:<a@x.org>\r\n", "RCPT TO:<b@y.org>\r\n", "DATA\r\n"] {
            s.write_all(cmd.as_bytes()).unwrap();
            loop {
                line.clear();
                r.read_line(&mut line).unwrap();
                if line.as_bytes().get(3) != Some(&b'-') {
                    break;
                }
            }
        }
        s.write_all(b"Subject: Hello\r\n\r\n..dot\r\nbody\r\n.\r\nQUIT\r\n").unwrap();
        let mails = sink.wait_for(1, Duration::from_secs(5));
        assert_eq!(mails.len(), 1);
        assert_eq!(mails[0].from, "a@x.org");
        assert_eq!(mails[0].to, vec!["b@y.org"]);
        assert_eq!(mails[0].header("subject").as_deref(), Some("Hello"));
        assert_eq!(mails[0].body(), ".dot\r\nbody\r\n");
    }

    #[test]
    fn decodes_encoded_subjects_and_bodies() {
        let mail = ReceivedMail {
            from: String::new(),
            to: Vec::new(),
            data: "Subject: =?utf-8?b?w6AgbGE=?=\r\n =?utf-8?b?IGNsw6k=?= ok\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nd=C3=A9j=\r\n=C3=A0\r\n".into(),
        };
        assert_eq!(mail.subject(), "à la clé ok");
        assert_eq!(mail.text(), "déjà\n");
    }
}
