//! `virtual-cps`: runs a virtual CPS3 against a vpcd reader, or sends raw APDUs to a reader
//! through PC/SC (for tests and for looking at a real card).

use std::ffi::CString;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use virtual_card::{CardProfile, VirtualCard};

#[derive(Parser)]
#[command(name = "virtual-cps", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Inserts a virtual CPS3 into the vpcd reader on PORT until the reader goes away.
    Run {
        #[arg(long, default_value_t = 35963)]
        port: u16,
        /// Authentication private key, PKCS#8 DER.
        #[arg(long)]
        key: PathBuf,
        /// Authentication certificate, DER.
        #[arg(long)]
        cert: PathBuf,
        /// CA certificates, DER.
        #[arg(long)]
        ca: Vec<PathBuf>,
        #[arg(long, requires = "sign_cert")]
        sign_key: Option<PathBuf>,
        #[arg(long, requires = "sign_key")]
        sign_cert: Option<PathBuf>,
        #[arg(long, env = "VIRTUAL_CPS_PIN")]
        pin: String,
        #[arg(long, env = "VIRTUAL_CPS_PUK", default_value = "12345678")]
        puk: String,
    },
    /// Sends APDUs (hex) to a reader's card in one transaction and prints each answer (hex,
    /// status word last). The word `reset` between APDUs resets the card.
    Apdu {
        /// Reader name; the first reader with a card otherwise.
        #[arg(long)]
        reader: Option<String>,
        apdus: Vec<String>,
    },
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn unhex(s: &str) -> anyhow::Result<Vec<u8>> {
    let s: String = s.chars().filter(|c| !c.is_whitespace() && *c != ':').collect();
    if !s.len().is_multiple_of(2) {
        bail!("odd number of hex digits in {s}");
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).with_context(|| format!("not hex: {s}")))
        .collect()
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Cmd::Run { port, key, cert, ca, sign_key, sign_cert, pin, puk } => {
            let mut profile = CardProfile::new(std::fs::read(key)?, std::fs::read(cert)?, &pin)?.with_puk(&puk)?;
            for c in ca {
                profile = profile.with_ca_cert(std::fs::read(c)?);
            }
            if let (Some(k), Some(c)) = (sign_key, sign_cert) {
                profile = profile.with_signature_key(std::fs::read(k)?, std::fs::read(c)?);
            }
            let mut card = VirtualCard::new(&profile, port)?;
            card.insert()?;
            eprintln!("virtual CPS3 inserted in the vpcd reader on port {port}; Ctrl-C to stop");
            loop {
                std::thread::park();
            }
        }
        Cmd::Apdu { reader, apdus } => {
            let ctx = pcsc::Context::establish(pcsc::Scope::User).context("PC/SC context")?;
            let reader = match reader {
                Some(r) => CString::new(r)?,
                None => {
                    let mut states: Vec<pcsc::ReaderState> = ctx
                        .list_readers_owned()?
                        .into_iter()
                        .map(|r| pcsc::ReaderState::new(r, pcsc::State::UNAWARE))
                        .collect();
                    ctx.get_status_change(std::time::Duration::from_secs(1), &mut states)?;
                    states
                        .iter()
                        .find(|s| s.event_state().contains(pcsc::State::PRESENT))
                        .map(|s| s.name().to_owned())
                        .context("no reader with a card")?
                }
            };
            let mut card = ctx.connect(&reader, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)?;
            let mut buf = [0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED];
            for a in apdus {
                if a == "reset" {
                    card.reconnect(pcsc::ShareMode::Shared, pcsc::Protocols::ANY, pcsc::Disposition::ResetCard)?;
                    println!("reset");
                    continue;
                }
                let apdu = unhex(&a)?;
                let tx = card.transaction()?;
                let answer = tx.transmit(&apdu, &mut buf)?;
                println!("{}", hex(answer));
                tx.end(pcsc::Disposition::LeaveCard).map_err(|(_, e)| e)?;
            }
            Ok(())
        }
    }
}
