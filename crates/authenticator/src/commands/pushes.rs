//! `pushes [--wait SECONDS]`: what waits for this phone's approval (`POST /push/v1/challenges`,
//! `action: "list"`). With `--wait`, an empty list is asked again (the provider holds each
//! request up to its own `max_wait`) until a request comes or the time is up.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Context, Report, local_time, text};
use crate::Error;
use crate::http::{TIMEOUT, paths};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Attendre jusqu'à SECONDS secondes qu'une demande arrive quand aucune n'est en attente.
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    pub wait: u64,
}

/// Below this, an empty answer came back too fast to ask again at once (a provider that does
/// not hold requests).
const MIN_ROUND: Duration = Duration::from_secs(1);

pub async fn run(cx: &Context, args: Args) -> Result<Report, Error> {
    let device = cx.unlock()?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.wait);
    let challenges = loop {
        let started = tokio::time::Instant::now();
        let remaining = deadline.saturating_duration_since(started).as_secs();
        let mut claims = json!({ "action": "list" });
        if remaining > 0 {
            claims["wait"] = json!(remaining);
        }
        let answer = device.call(paths::CHALLENGES, claims, TIMEOUT + Duration::from_secs(remaining)).await?;
        let list =
            answer.get("challenges").and_then(Value::as_array).cloned().ok_or_else(|| Error::Protocol {
                status: 200,
                detail: "pas de liste challenges dans la réponse".into(),
            })?;
        if !list.is_empty() || tokio::time::Instant::now() >= deadline {
            break list;
        }
        if started.elapsed() < MIN_ROUND {
            tokio::time::sleep(MIN_ROUND).await;
        }
    };
    let human = if challenges.is_empty() {
        "Aucune demande en attente.".to_owned()
    } else {
        challenges.iter().map(describe).collect::<Vec<_>>().join("\n")
    };
    // Everything the server sent, as it sent it.
    Ok(Report::ok(json!({ "challenges": challenges }), human))
}

/// One request as the professional reads it: who asks, from where, when, and the warning.
fn describe(c: &Value) -> String {
    let unknown = "inconnu";
    let mut lines = vec![format!("Demande {}", text(c, "id").unwrap_or(unknown))];
    lines.push(format!("  Service : {}", text(c, "client_name").unwrap_or(unknown)));
    lines.push(format!("  Adresse : {}", text(c, "source_ip").unwrap_or(unknown)));
    lines.push(format!("  Navigateur : {}", text(c, "browser").unwrap_or(unknown)));
    lines.push(format!("  User-Agent : {}", text(c, "user_agent").unwrap_or(unknown)));
    if let Some(at) = c.get("created_at").and_then(Value::as_i64) {
        lines.push(format!("  Demandée le : {}", local_time(at)));
    }
    if let Some(at) = c.get("expires_at").and_then(Value::as_i64) {
        lines.push(format!("  Expire le : {}", local_time(at)));
    }
    if let Some(warning) = text(c, "warning") {
        lines.push(format!("  ⚠ {warning}"));
    }
    let id = text(c, "id").unwrap_or("ID");
    lines.push(format!(
        "  Approuver : caducee-authenticator approve {id} --number NN (le nombre affiché par la page de connexion)"
    ));
    lines.push(format!("  Refuser : caducee-authenticator deny {id} [--not-me]"));
    lines.join("\n")
}
