//! `approve ID --number N` and `deny ID [--not-me]`: the phone's answer to a request
//! (`POST /push/v1/answers`, `action: "answer"`, `decision` `approve`, `deny` or `not_me`).

use serde_json::{Value, json};

use super::{Context, Report, text};
use crate::Error;
use crate::http::{TIMEOUT, paths};

#[derive(Debug, clap::Args)]
pub struct ApproveArgs {
    /// L'identifiant de la demande (voir `pushes`).
    pub id: String,
    /// Le nombre affiché par la page de connexion.
    #[arg(long, value_name = "N")]
    pub number: String,
}

#[derive(Debug, clap::Args)]
pub struct DenyArgs {
    /// L'identifiant de la demande (voir `pushes`).
    pub id: String,
    /// « Ce n'était pas moi » : bloque les demandes et ferme toutes les sessions du compte.
    #[arg(long)]
    pub not_me: bool,
}

pub async fn approve(cx: &Context, args: ApproveArgs) -> Result<Report, Error> {
    let number = args.number.trim();
    if number.is_empty() || number.len() > 8 || !number.chars().all(|c| c.is_ascii_digit()) {
        return Err(Error::Usage("--number : le nombre affiché par la page de connexion (des chiffres)".into()));
    }
    send(cx, &args.id, json!({ "decision": "approve", "number": number })).await
}

pub async fn deny(cx: &Context, args: DenyArgs) -> Result<Report, Error> {
    let decision = if args.not_me { "not_me" } else { "deny" };
    send(cx, &args.id, json!({ "decision": decision })).await
}

async fn send(cx: &Context, id: &str, mut claims: Value) -> Result<Report, Error> {
    if id.trim().is_empty() {
        return Err(Error::Usage("identifiant de demande vide".into()));
    }
    let device = cx.unlock()?;
    claims["action"] = json!("answer");
    claims["challenge"] = json!(id.trim());
    let mut answer = device.call(paths::ANSWERS, claims, TIMEOUT).await?;
    let outcome = text(&answer, "outcome").unwrap_or_default().to_owned();
    let (human, exit_code) = match outcome.as_str() {
        "approved" => ("Connexion approuvée.".to_owned(), 0),
        "denied" => ("Demande refusée.".to_owned(), 0),
        "wrong_number" => {
            ("Ce n'est pas le nombre affiché par la page de connexion : la demande est refusée.".to_owned(), 1)
        }
        "blocked" => (
            format!(
                "« Ce n'était pas moi » : les demandes d'approbation sont bloquées pour votre compte et \
                 {} session(s) fermée(s). Changez votre mot de passe, puis levez le blocage (unblock).",
                answer.get("sessions_ended").and_then(Value::as_u64).unwrap_or(0)
            ),
            0,
        ),
        other => {
            return Err(Error::Protocol { status: 200, detail: format!("issue inconnue : {other:?}") });
        }
    };
    answer["challenge"] = json!(id.trim());
    Ok(Report { json: answer, human, exit_code })
}
