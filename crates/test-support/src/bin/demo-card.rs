//! `demo-card`: a CPS card sign-in anyone can try without hardware (`make demo-card`).
//!
//! Plays the professional's computer and the health PKI: makes a test PKI shaped like
//! IGC-Santé's (`test_support::card_pki`), starts a private pcscd with the virtual reader and a
//! virtual CPS3 holding a card certificate for the demo professional, the real card agent, and
//! the provider on its embedded default with the card on; then says what to open and which PIN
//! to type. Everything lives under the folder given (made afresh); Ctrl-C stops it all.

use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use test_support::card_pki::{CardFlaw, TEST_POLICY_OID, TestPki};
use time::Duration as Span;

const NATIONAL_ID: &str = "899700000001";
const PIN: &str = "1234";
const PUK: &str = "12345678";

struct Args {
    caducee: PathBuf,
    agent: PathBuf,
    dir: PathBuf,
    port: u16,
    agent_port: u16,
}

fn usage() -> ! {
    eprintln!("usage: demo-card --caducee PATH --card-agent PATH --dir DIR [--port 8080] [--agent-port 8765]");
    std::process::exit(2)
}

fn args() -> Args {
    let mut a = Args {
        caducee: PathBuf::new(),
        agent: PathBuf::new(),
        dir: PathBuf::from(".cache/demo-card"),
        port: 8080,
        agent_port: 8765,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let Some(value) = it.next() else { usage() };
        match flag.as_str() {
            "--caducee" => a.caducee = value.into(),
            "--card-agent" => a.agent = value.into(),
            "--dir" => a.dir = value.into(),
            "--port" => a.port = value.parse().unwrap_or_else(|_| usage()),
            "--agent-port" => a.agent_port = value.parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    if a.caducee.as_os_str().is_empty() || a.agent.as_os_str().is_empty() {
        usage();
    }
    a
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, bytes)?;
    Ok(path)
}

/// Kills the children it holds when the demo ends, however it ends.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn main() -> Result<()> {
    let a = args();
    let _ = std::fs::remove_dir_all(&a.dir);
    std::fs::create_dir_all(&a.dir)?;
    let dir = std::fs::canonicalize(&a.dir)?;
    let origin = format!("http://127.0.0.1:{}", a.port);

    eprintln!("demo-card: a test PKI (TEST AC RACINE IGC-SANTE FORT → TEST AC IGC-SANTE FORT PERSONNES)…");
    let pki = TestPki::new();
    let card = pki.issue(NATIONAL_ID, "MARTIN", "Jeanne", "Médecin", CardFlaw::None);
    let root = write(&dir, "root.pem", pki.root_pem().as_bytes())?;
    let people = write(&dir, "people.pem", pki.intermediate_pem().as_bytes())?;
    let root_crl = write(&dir, "root.crl", &pki.root_crl(false))?;
    let people_crl = write(&dir, "people.crl", &pki.people_crl(&[], Span::hours(1), Span::days(30), 1))?;
    let config = format!(
        "listen = \"127.0.0.1:{port}\"\nissuer = \"{origin}\"\ndata_dir = {data:?}\n\n[login]\nmethods = [\"otp\", \"card\"]\n\n\
         [card]\nagent_url = \"http://127.0.0.1:{agent_port}\"\ntrust_anchors = [{root:?}]\nintermediates = [{people:?}]\n\
         crls = [{root_crl:?}, {people_crl:?}]\nrequired_policies = [\"{TEST_POLICY_OID}\"]\n",
        port = a.port,
        agent_port = a.agent_port,
        data = dir.join("data").display().to_string(),
        root = root.display().to_string(),
        people = people.display().to_string(),
        root_crl = root_crl.display().to_string(),
        people_crl = people_crl.display().to_string(),
    );
    let config = write(&dir, "caducee.toml", config.as_bytes())?;

    let status = Command::new(&a.caducee)
        .arg("--config")
        .arg(&config)
        .args(["user", "add", "--national-id", NATIONAL_ID, "--given-name", "Jeanne", "--family-name", "MARTIN"])
        .args(["--civility", "MME", "--profession", "10"])
        .status()?;
    if !status.success() {
        return Err("caducee user add failed".into());
    }

    eprintln!("demo-card: a private pcscd with the virtual reader, and a virtual CPS3 in it…");
    let pcscd = virtual_card::Pcscd::start()?;
    let profile = virtual_card::CardProfile::new(card.key_pkcs8_der.clone(), card.certificate_der.clone(), PIN)?
        .with_puk(PUK)?
        .with_ca_cert(pki.intermediate_der());
    let _card = pcscd.insert_card(&profile)?;

    let mut children = Children(Vec::new());
    let mut agent = pcscd
        .command(&a.agent)
        .args(["serve", "--listen", &format!("127.0.0.1:{}", a.agent_port), "--allow-origin", &origin])
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = agent.stdout.take().ok_or("no stdout from the agent")?;
    children.0.push(agent);
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line)?;
    eprintln!("demo-card: card agent {}", line.trim());

    let server = Command::new(&a.caducee).arg("--config").arg(&config).arg("serve").spawn()?;
    children.0.push(server);
    let ready = format!("127.0.0.1:{}", a.port);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::net::TcpStream::connect(&ready).is_err() {
        if std::time::Instant::now() > deadline {
            return Err("the provider did not start".into());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    let mut out = std::io::stdout().lock();
    writeln!(out)?;
    writeln!(out, "  Ouvrez {origin}/wallet et choisissez «Carte CPS».")?;
    writeln!(
        out,
        "  Code porteur de la carte virtuelle : {PIN} (trois erreurs la bloquent ; code de déblocage {PUK})."
    )?;
    writeln!(out, "  Professionnelle : Jeanne MARTIN, identifiant national {NATIONAL_ID}.")?;
    writeln!(out)?;
    writeln!(out, "  Open {origin}/wallet and choose «Carte CPS»; the virtual card's PIN is {PIN}.")?;
    writeln!(out, "  Everything lives under {}; Ctrl-C stops it all.", dir.display())?;
    out.flush()?;
    drop(out);

    // Until the provider stops (Ctrl-C reaches the whole process group).
    if let Some(server) = children.0.last_mut() {
        let _ = server.wait();
    }
    drop(pcscd);
    Ok(())
}
