//! `scan PAYLOAD [--approve | --deny]`: QR-code login. The login page's QR code
//! ([`crate::login_qr`]) is checked (this phone's server, not expired) before the PIN is
//! asked; then `POST /push/v1/qr` `action: "lookup"` gives what the provider knows of the
//! login (service, address, browser, when, the operator's warning), shown in full, and
//! `action: "answer"` approves or refuses it. Without `--approve` or `--deny` the question is
//! asked on the terminal; with no terminal, nothing is answered.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use serde_json::{Value, json};

use super::{Context, Report, local_time, text};
use crate::Error;
use crate::device::now;
use crate::http::{TIMEOUT, paths};
use crate::login_qr::LoginPayload;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// La charge utile du QR code de la page de connexion (caducee-auth://login?…).
    pub payload: String,
    /// Approuver sans poser la question.
    #[arg(long, conflicts_with = "deny")]
    pub approve: bool,
    /// Refuser sans poser la question.
    #[arg(long)]
    pub deny: bool,
}

/// The answer to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Approve,
    Deny,
}

impl Decision {
    fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Deny => "deny",
        }
    }
}

pub async fn run(cx: &Context, args: Args) -> Result<Report, Error> {
    let payload = LoginPayload::parse(&args.payload)?;
    let state = cx.state.load()?;
    payload.check(&state.server, now())?;
    let given = match (args.approve, args.deny) {
        (true, _) => Some(Decision::Approve),
        (false, true) => Some(Decision::Deny),
        (false, false) if std::io::stdin().is_terminal() => None,
        (false, false) => {
            return Err(Error::Usage(
                "pas de terminal pour demander s'il faut approuver : passez --approve ou --deny".into(),
            ));
        }
    };
    let device = cx.unlock()?;
    let lookup = json!({ "action": "lookup", "challenge": payload.challenge });
    let context = device.call(paths::QR, lookup, TIMEOUT).await?;
    if text(&context, "challenge").is_some_and(|c| c != payload.challenge) {
        return Err(Error::Protocol { status: 200, detail: "le serveur décrit une autre connexion".into() });
    }
    let client_name = text(&context, "client_name").unwrap_or(&payload.client).to_owned();
    let description = describe(&context, &payload);
    let decision = match given {
        Some(decision) => decision,
        None => ask(&description, &client_name)?,
    };
    let answer = json!({ "action": "answer", "challenge": payload.challenge, "decision": decision.as_str() });
    let outcome = device.call(paths::QR, answer, TIMEOUT).await?;
    let outcome = text(&outcome, "outcome").unwrap_or_default().to_owned();
    let said = match outcome.as_str() {
        "approved" => format!("Connexion approuvée : la page de connexion à {client_name} continue."),
        "denied" => "Connexion refusée.".to_owned(),
        other => {
            return Err(Error::Protocol { status: 200, detail: format!("issue inconnue : {other:?}") });
        }
    };
    // The context was shown before the question when one was asked.
    let human = if given.is_some() { format!("{description}\n{said}") } else { said };
    let json = json!({
        "challenge": payload.challenge,
        "context": context,
        "decision": decision.as_str(),
        "outcome": outcome,
    });
    Ok(Report::ok(json, human))
}

/// Shows the login on the terminal (standard error, so that `--json` keeps standard output to
/// its one object) and asks; anything but «o» or «oui» refuses.
fn ask(description: &str, client_name: &str) -> Result<Decision, Error> {
    let mut err = std::io::stderr().lock();
    let shown = writeln!(err, "{description}").and_then(|()| {
        write!(err, "Approuver la connexion à {client_name} ? [o/N] ")?;
        err.flush()
    });
    shown.map_err(|e| Error::Usage(format!("écriture sur le terminal impossible : {e}")))?;
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::Usage(format!("lecture de la réponse impossible : {e}")))?;
    Ok(parse_answer(&line))
}

fn parse_answer(line: &str) -> Decision {
    match line.trim().to_lowercase().as_str() {
        "o" | "oui" => Decision::Approve,
        _ => Decision::Deny,
    }
}

/// The login as the professional reads it: everything the provider said, the QR code's own
/// claim only where the provider said nothing.
fn describe(c: &Value, payload: &LoginPayload) -> String {
    let unknown = "inconnu";
    let mut lines = vec!["Connexion par QR code".to_owned()];
    lines.push(format!("  Service : {}", text(c, "client_name").unwrap_or(unknown)));
    if let Some(name) = text(c, "client_name").filter(|name| *name != payload.client) {
        lines.push(format!(
            "  ⚠ Le QR code annonce « {} », le serveur indique « {name} » : seul le serveur fait foi.",
            payload.client
        ));
    }
    lines.push(format!("  Adresse : {}", text(c, "source_ip").unwrap_or(unknown)));
    lines.push(format!("  Navigateur : {}", text(c, "browser").unwrap_or(unknown)));
    lines.push(format!("  User-Agent : {}", text(c, "user_agent").unwrap_or(unknown)));
    if let Some(at) = c.get("created_at").and_then(Value::as_i64) {
        lines.push(format!("  Demandée le : {}", local_time(at)));
    }
    let expires_at = c.get("expires_at").and_then(Value::as_i64).unwrap_or(payload.expires_at);
    lines.push(format!("  Expire le : {}", local_time(expires_at)));
    if let Some(warning) = text(c, "warning") {
        lines.push(format!("  ⚠ {warning}"));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_yes_approves() {
        for yes in ["o", "O\n", " oui \r\n", "OUI"] {
            assert_eq!(parse_answer(yes), Decision::Approve, "{yes:?}");
        }
        for no in ["", "\n", "n", "non", "y", "yes", "o o", "0"] {
            assert_eq!(parse_answer(no), Decision::Deny, "{no:?}");
        }
    }

    #[test]
    fn the_description_shows_what_the_server_says() {
        let payload = LoginPayload {
            server: "https://idp.example/push/v1".into(),
            challenge: "0123456789abcdef0123456789abcdef".into(),
            client: "Faux service".into(),
            expires_at: 1_800_000_060,
        };
        let context = json!({
            "challenge": payload.challenge, "client_name": "Messagerie sécurisée", "source_ip": "203.0.113.7",
            "user_agent": "Mozilla/5.0 (X11; Linux x86_64)", "browser": "Firefox (Linux)",
            "created_at": 1_800_000_000, "expires_at": 1_800_000_060,
            "warning": "Nous ne vous demanderons jamais ce code.",
        });
        let shown = describe(&context, &payload);
        for part in [
            "Service : Messagerie sécurisée",
            "Faux service",
            "seul le serveur fait foi",
            "203.0.113.7",
            "Firefox (Linux)",
            "Mozilla/5.0 (X11; Linux x86_64)",
            "Nous ne vous demanderons jamais ce code.",
        ] {
            assert!(shown.contains(part), "{part}: {shown}");
        }
        let same = LoginPayload { client: "Messagerie sécurisée".into(), ..payload };
        assert!(!describe(&context, &same).contains("fait foi"));
    }
}
