//! `unblock`: lifts the block on push requests for the account (set by «ce n'était pas moi»,
//! the wallet's switch or an administrator): `POST /push/v1/blocks`, `action: "unblock"`.

use serde_json::{Value, json};

use super::{Context, Report};
use crate::Error;
use crate::http::{TIMEOUT, paths};

pub async fn run(cx: &Context) -> Result<Report, Error> {
    let device = cx.unlock()?;
    let answer = device.call(paths::BLOCKS, json!({ "action": "unblock" }), TIMEOUT).await?;
    if answer.get("outcome").and_then(Value::as_str) != Some("unblocked") {
        return Err(Error::Protocol { status: 200, detail: format!("réponse inattendue : {answer}") });
    }
    let human = match answer.get("lifted").and_then(Value::as_bool) {
        Some(false) => "Aucun blocage en cours : les demandes d'approbation sont possibles.",
        _ => "Les demandes d'approbation sont débloquées.",
    };
    Ok(Report::ok(answer, human.to_owned()))
}
