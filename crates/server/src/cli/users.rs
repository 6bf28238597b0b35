//! `caducee user` and `caducee totp`: professionals (add, import, passwords) and their TOTP apps.

use super::*;

pub(super) fn read_password_stdin() -> anyhow::Result<String> {
    let mut line = zeroize::Zeroizing::new(String::new());
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        bail!("empty password on standard input");
    }
    Ok(password)
}

fn check_password(password: &str) -> anyhow::Result<()> {
    if password.chars().count() < 12 {
        bail!("passwords must have at least 12 characters");
    }
    Ok(())
}

async fn hash(password: String) -> anyhow::Result<String> {
    check_password(&password)?;
    Ok(tokio::task::spawn_blocking(move || authn_methods::password::hash_password(&password)).await??)
}

pub(super) async fn user(config: Config, command: UserCommand) -> anyhow::Result<()> {
    let directory = open_directory(&config).await?;
    match command {
        UserCommand::Add(add) => {
            let password = match (add.password.clone(), add.password_stdin) {
                (Some(p), _) => Some(p.expose_secret().to_owned()),
                (None, true) => Some(read_password_stdin()?),
                (None, false) => None,
            };
            let password_hash = match password {
                Some(p) => Some(hash(p).await?),
                None => None,
            };
            let practices = match &add.profession {
                None => Vec::new(),
                Some(code) => vec![Practice {
                    code_profession: code.clone(),
                    code_categorie_professionnelle: add.category.clone(),
                    code_civilite_dexercice: add.civility.clone(),
                    nom_dexercice: add.family_name.clone(),
                    prenom_dexercice: add.given_name.clone(),
                    code_type_savoir_faire: if add.specialty.is_some() { "S".into() } else { String::new() },
                    code_savoir_faire: add.specialty.clone().unwrap_or_default(),
                    activities: add
                        .organization
                        .iter()
                        .map(|o| Activity { raison_sociale_site: o.clone(), ..Activity::default() })
                        .collect(),
                }],
            };
            let p = directory
                .professionals()
                .create(NewProfessional {
                    subject: None,
                    national_id: add.national_id,
                    given_name: add.given_name,
                    family_name: add.family_name,
                    email: add.email,
                    civility: add.civility,
                    practices,
                    other_ids: Vec::new(),
                    password_hash,
                })
                .await?;
            audit_operator(&directory, "admin.account.create", Some(&p.subject), serde_json::Value::Null).await?;
            println!("national_id: {}\nsubject: {}", p.national_id, p.subject);
        }
        UserCommand::List { offset, limit } => {
            for p in directory.professionals().list(offset, limit).await? {
                println!("{}\t{}\t{} {}\t{}", p.national_id, p.status.as_str(), p.given_name, p.family_name, p.subject);
            }
        }
        UserCommand::SetPassword { national_id } => {
            let p = directory
                .professionals()
                .get_by_national_id(&national_id)
                .await?
                .with_context(|| format!("no professional {national_id}"))?;
            let h = hash(read_password_stdin()?).await?;
            directory.professionals().set_password_hash(&p.id, Some(h)).await?;
            audit_operator(&directory, "admin.account.set_password", Some(&p.subject), serde_json::Value::Null).await?;
            println!("password set for {national_id}");
        }
        UserCommand::Import { file } => {
            let mut text = String::new();
            std::fs::File::open(&file)
                .with_context(|| format!("opening {}", file.display()))?
                .read_to_string(&mut text)?;
            let records: Vec<ImportRecord> =
                serde_json::from_str(&text).with_context(|| format!("parsing {}", file.display()))?;
            let mut created = 0usize;
            for r in records {
                let password_hash = match r.password {
                    Some(p) => Some(hash(p).await?),
                    None => None,
                };
                let id = r.national_id.clone();
                let p = directory
                    .professionals()
                    .create(NewProfessional {
                        subject: r.subject,
                        national_id: r.national_id,
                        given_name: r.given_name,
                        family_name: r.family_name,
                        email: r.email,
                        civility: r.civility,
                        practices: r.exercices,
                        other_ids: r.other_ids,
                        password_hash,
                    })
                    .await
                    .with_context(|| format!("importing {id}"))?;
                audit_operator(
                    &directory,
                    "admin.account.create",
                    Some(&p.subject),
                    serde_json::json!({ "import": true }),
                )
                .await?;
                created += 1;
            }
            println!("imported {created} professional(s)");
        }
    }
    Ok(())
}

/// One professional in an import file (docs/cli.md shows an example).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportRecord {
    national_id: String,
    #[serde(default)]
    subject: Option<String>,
    given_name: String,
    family_name: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    civility: String,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    exercices: Vec<Practice>,
    #[serde(default, rename = "otherIds")]
    other_ids: Vec<OtherId>,
}

pub(super) async fn totp_enroll(config: Config, national_id: &str) -> anyhow::Result<()> {
    let directory = open_directory(&config).await?;
    let p = directory
        .professionals()
        .get_by_national_id(national_id)
        .await?
        .with_context(|| format!("no professional {national_id}"))?;
    let enrolment =
        authn_methods::totp::enroll(&directory, &p.subject, &p.national_id, &config.login.totp_issuer, true, now())
            .await?;
    audit_operator(&directory, "admin.authenticator.enrol", Some(&p.subject), serde_json::json!({ "kind": "totp" }))
        .await?;
    println!("{}", enrolment.otpauth_uri.as_str());
    eprintln!(
        "Scan this URI as a QR code with FreeOTP or Google Authenticator, or type the secret: {}",
        enrolment.secret_base32.as_str()
    );
    Ok(())
}
