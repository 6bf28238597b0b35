//! The professional's record and the PSC-shaped claims it produces.
//!
//! Field names follow Pro Santé Connect's JSON exactly (see `notes/psc-claims.md`), including
//! its spelling (`numeroFinessetablissementJuridique`): relying parties written for PSC index
//! into these keys directly. Every field is a string that defaults to `""`, because PSC sends
//! empty strings rather than omitting keys, and an import file may carry `null`s.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value, json};

/// OID qualifying `SubjectRole` profession codes.
const OID_PROFESSION: &str = "1.2.250.1.213.1.1.5.5";
/// OID qualifying `Secteur_Activite` sector codes.
const OID_SECTEUR: &str = "1.2.250.1.71.4.2.4";
const PSI_LOCALE: &str = "1.2.250.1.213.1.3.1.1";
const UIT_VERSION: &str = "1.0";

/// One profession exercised (an element of `SubjectRefPro.exercices`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Practice {
    #[serde(rename = "codeProfession", default, deserialize_with = "null_as_empty")]
    pub code_profession: String,
    #[serde(rename = "codeCategorieProfessionnelle", default, deserialize_with = "null_as_empty")]
    pub code_categorie_professionnelle: String,
    #[serde(rename = "codeCiviliteDexercice", default, deserialize_with = "null_as_empty")]
    pub code_civilite_dexercice: String,
    #[serde(rename = "nomDexercice", default, deserialize_with = "null_as_empty")]
    pub nom_dexercice: String,
    #[serde(rename = "prenomDexercice", default, deserialize_with = "null_as_empty")]
    pub prenom_dexercice: String,
    #[serde(rename = "codeTypeSavoirFaire", default, deserialize_with = "null_as_empty")]
    pub code_type_savoir_faire: String,
    #[serde(rename = "codeSavoirFaire", default, deserialize_with = "null_as_empty")]
    pub code_savoir_faire: String,
    #[serde(default, deserialize_with = "null_as_empty_vec")]
    pub activities: Vec<Activity>,
}

/// One place of practice (an element of a practice's `activities`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    #[serde(rename = "codeModeExercice", default, deserialize_with = "null_as_empty")]
    pub code_mode_exercice: String,
    #[serde(rename = "codeSecteurDactivite", default, deserialize_with = "null_as_empty")]
    pub code_secteur_dactivite: String,
    #[serde(rename = "codeSectionPharmacien", default, deserialize_with = "null_as_empty")]
    pub code_section_pharmacien: String,
    #[serde(rename = "codeRole", default, deserialize_with = "null_as_empty")]
    pub code_role: String,
    #[serde(rename = "codeGenreActivite", default, deserialize_with = "null_as_empty")]
    pub code_genre_activite: String,
    #[serde(rename = "numeroSiretSite", default, deserialize_with = "null_as_empty")]
    pub numero_siret_site: String,
    #[serde(rename = "numeroSirenSite", default, deserialize_with = "null_as_empty")]
    pub numero_siren_site: String,
    #[serde(rename = "numeroFinessSite", default, deserialize_with = "null_as_empty")]
    pub numero_finess_site: String,
    #[serde(rename = "numeroFinessetablissementJuridique", default, deserialize_with = "null_as_empty")]
    pub numero_finess_etablissement_juridique: String,
    #[serde(rename = "identifiantTechniqueDeLaStructure", default, deserialize_with = "null_as_empty")]
    pub identifiant_technique_de_la_structure: String,
    #[serde(rename = "raisonSocialeSite", default, deserialize_with = "null_as_empty")]
    pub raison_sociale_site: String,
    #[serde(rename = "enseigneCommercialeSite", default, deserialize_with = "null_as_empty")]
    pub enseigne_commerciale_site: String,
    #[serde(rename = "complementDestinataire", default, deserialize_with = "null_as_empty")]
    pub complement_destinataire: String,
    #[serde(rename = "complementPointGeographique", default, deserialize_with = "null_as_empty")]
    pub complement_point_geographique: String,
    #[serde(rename = "numeroVoie", default, deserialize_with = "null_as_empty")]
    pub numero_voie: String,
    #[serde(rename = "indiceRepetitionVoie", default, deserialize_with = "null_as_empty")]
    pub indice_repetition_voie: String,
    #[serde(rename = "codeTypeDeVoie", default, deserialize_with = "null_as_empty")]
    pub code_type_de_voie: String,
    #[serde(rename = "libelleVoie", default, deserialize_with = "null_as_empty")]
    pub libelle_voie: String,
    #[serde(rename = "mentionDistribution", default, deserialize_with = "null_as_empty")]
    pub mention_distribution: String,
    #[serde(rename = "bureauCedex", default, deserialize_with = "null_as_empty")]
    pub bureau_cedex: String,
    #[serde(rename = "codePostal", default, deserialize_with = "null_as_empty")]
    pub code_postal: String,
    #[serde(rename = "codeCommune", default, deserialize_with = "null_as_empty")]
    pub code_commune: String,
    #[serde(rename = "codePays", default, deserialize_with = "null_as_empty")]
    pub code_pays: String,
    #[serde(rename = "codeDepartement", default, deserialize_with = "null_as_empty")]
    pub code_departement: String,
    #[serde(rename = "telephone", default, deserialize_with = "null_as_empty")]
    pub telephone: String,
    #[serde(rename = "telephone2", default, deserialize_with = "null_as_empty")]
    pub telephone2: String,
    #[serde(rename = "telecopie", default, deserialize_with = "null_as_empty")]
    pub telecopie: String,
    #[serde(rename = "adresseEMail", default, deserialize_with = "null_as_empty")]
    pub adresse_e_mail: String,
    #[serde(rename = "ancienIdentifiantDeLaStructure", default, deserialize_with = "null_as_empty")]
    pub ancien_identifiant_de_la_structure: String,
    #[serde(rename = "autoriteDenregistrement", default, deserialize_with = "null_as_empty")]
    pub autorite_denregistrement: String,
}

/// Another registry's identifier for the same person (`otherIds`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtherId {
    #[serde(default, deserialize_with = "null_as_empty")]
    pub identifiant: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub origine: String,
    #[serde(default)]
    pub qualite: i64,
}

/// Whether the account may log in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountStatus {
    #[default]
    Active,
    Blocked,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Blocked => "blocked",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(AccountStatus::Active),
            "blocked" => Some(AccountStatus::Blocked),
            _ => None,
        }
    }
}

/// A health professional as stored in the directory.
#[derive(Clone, PartialEq, Eq)]
pub struct Professional {
    /// Internal row id (UUID v4).
    pub id: String,
    /// The OIDC `sub`: opaque and stable; `f:{uuid}:{national_id}` like PSC unless imported.
    pub subject: String,
    /// `SubjectNameID`, e.g. `899700000001`; unique.
    pub national_id: String,
    pub given_name: String,
    pub family_name: String,
    pub email: Option<String>,
    /// `M`, `MME`, or empty.
    pub civility: String,
    pub practices: Vec<Practice>,
    pub other_ids: Vec<OtherId>,
    /// PHC string (argon2id), computed by the caller; `None` when password login is off.
    pub password_hash: Option<String>,
    pub status: AccountStatus,
    pub created_at: i64,
    pub updated_at: i64,
}

// Hand-written to keep the password hash out of logs.
impl std::fmt::Debug for Professional {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Professional")
            .field("id", &self.id)
            .field("subject", &self.subject)
            .field("national_id", &self.national_id)
            .field("status", &self.status)
            .field("has_password", &self.password_hash.is_some())
            .finish_non_exhaustive()
    }
}

impl Professional {
    /// `SubjectRefPro`: `{"codeCivilite": ..., "exercices": [...]}`.
    pub fn subject_ref_pro(&self) -> Value {
        json!({
            "codeCivilite": self.civility,
            "exercices": self.practices,
        })
    }

    /// The `scope_all` claims of PSC's userinfo, except `sub`, `email` and
    /// `Palier_Authentification`, which depend on the session and are added by the protocol layer.
    ///
    /// The "current" organisation and sector come from the first activity of the first practice,
    /// as PSC reports one place of practice at the top level.
    pub fn psc_claims(&self) -> Map<String, Value> {
        let first_activity = self.practices.first().and_then(|p| p.activities.first());
        let activity_field = |f: fn(&Activity) -> &String| first_activity.map(f).cloned().unwrap_or_default();
        let secteur = first_activity
            .map(|a| a.code_secteur_dactivite.as_str())
            .filter(|code| !code.is_empty())
            .map(|code| format!("{code}^{OID_SECTEUR}"))
            .unwrap_or_default();
        // A practice without a profession code has no role to report; "^OID" alone would mislead.
        let roles: Vec<Value> = self
            .practices
            .iter()
            .filter(|p| !p.code_profession.is_empty())
            .map(|p| Value::String(format!("{}^{OID_PROFESSION}", p.code_profession)))
            .collect();

        let mut claims = Map::new();
        let mut put = |k: &str, v: Value| {
            claims.insert(k.to_owned(), v);
        };
        put("SubjectNameID", json!(self.national_id));
        put("preferred_username", json!(self.national_id));
        put("given_name", json!(self.given_name));
        put("family_name", json!(self.family_name));
        put("codeCivilite", json!(self.civility));
        put("SubjectOrganization", json!(activity_field(|a| &a.raison_sociale_site)));
        put("SubjectOrganizationID", json!(activity_field(|a| &a.identifiant_technique_de_la_structure)));
        put("SubjectRole", Value::Array(roles));
        put("Secteur_Activite", json!(secteur));
        put("codeGenreActivite", json!(activity_field(|a| &a.code_genre_activite)));
        put("Acces_Regulation_Medicale", json!("FAUX"));
        put("Mode_Acces_Raison", json!(""));
        put("PSI_Locale", json!(PSI_LOCALE));
        put("UITVersion", json!(UIT_VERSION));
        put("otherIds", json!(self.other_ids));
        put("SubjectRefPro", self.subject_ref_pro());
        claims
    }
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

fn null_as_empty_vec<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use std::collections::BTreeSet;

    const ACTIVITY_KEYS: [&str; 30] = [
        "codeModeExercice",
        "codeSecteurDactivite",
        "codeSectionPharmacien",
        "codeRole",
        "codeGenreActivite",
        "numeroSiretSite",
        "numeroSirenSite",
        "numeroFinessSite",
        "numeroFinessetablissementJuridique",
        "identifiantTechniqueDeLaStructure",
        "raisonSocialeSite",
        "enseigneCommercialeSite",
        "complementDestinataire",
        "complementPointGeographique",
        "numeroVoie",
        "indiceRepetitionVoie",
        "codeTypeDeVoie",
        "libelleVoie",
        "mentionDistribution",
        "bureauCedex",
        "codePostal",
        "codeCommune",
        "codePays",
        "codeDepartement",
        "telephone",
        "telephone2",
        "telecopie",
        "adresseEMail",
        "ancienIdentifiantDeLaStructure",
        "autoriteDenregistrement",
    ];

    const PRACTICE_KEYS: [&str; 8] = [
        "codeProfession",
        "codeCategorieProfessionnelle",
        "codeCiviliteDexercice",
        "nomDexercice",
        "prenomDexercice",
        "codeTypeSavoirFaire",
        "codeSavoirFaire",
        "activities",
    ];

    const TOP_KEYS: [&str; 16] = [
        "SubjectNameID",
        "preferred_username",
        "given_name",
        "family_name",
        "codeCivilite",
        "SubjectOrganization",
        "SubjectOrganizationID",
        "SubjectRole",
        "Secteur_Activite",
        "codeGenreActivite",
        "Acces_Regulation_Medicale",
        "Mode_Acces_Raison",
        "PSI_Locale",
        "UITVersion",
        "otherIds",
        "SubjectRefPro",
    ];

    fn keys(v: &Value) -> BTreeSet<String> {
        v.as_object().unwrap().keys().cloned().collect()
    }

    fn set(keys: &[&str]) -> BTreeSet<String> {
        keys.iter().map(|k| (*k).to_owned()).collect()
    }

    fn sample() -> Professional {
        Professional {
            id: "id".into(),
            subject: "f:uuid:899700000001".into(),
            national_id: "899700000001".into(),
            given_name: "Jeanne".into(),
            family_name: "Martin".into(),
            email: Some("jeanne@example.test".into()),
            civility: "MME".into(),
            practices: vec![
                Practice {
                    code_profession: "10".into(),
                    code_savoir_faire: "SM54".into(),
                    activities: vec![Activity {
                        code_secteur_dactivite: "SA07".into(),
                        code_genre_activite: "GENR01".into(),
                        raison_sociale_site: "Cabinet du Parc".into(),
                        identifiant_technique_de_la_structure: "R10000001".into(),
                        numero_finess_etablissement_juridique: "750000001".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                Practice { code_profession: "21".into(), ..Default::default() },
            ],
            other_ids: vec![OtherId { identifiant: "10000000001".into(), origine: "RPPS".into(), qualite: 1 }],
            password_hash: Some("$argon2id$...".into()),
            status: AccountStatus::Active,
            created_at: 1,
            updated_at: 1,
        }
    }

    #[test]
    fn activity_and_practice_have_exactly_psc_keys() {
        let practice =
            serde_json::to_value(Practice { activities: vec![Activity::default()], ..Default::default() }).unwrap();
        assert_eq!(keys(&practice), set(&PRACTICE_KEYS));
        assert_eq!(keys(&practice["activities"][0]), set(&ACTIVITY_KEYS));
        // Absent values are empty strings, never missing keys or nulls.
        assert!(practice["activities"][0].as_object().unwrap().values().all(|v| v == ""));
    }

    #[test]
    fn psc_claims_have_exactly_psc_keys_and_formats() {
        let p = sample();
        let claims = Value::Object(p.psc_claims());
        assert_eq!(keys(&claims), set(&TOP_KEYS));
        assert_eq!(claims["SubjectNameID"], "899700000001");
        assert_eq!(claims["preferred_username"], "899700000001");
        assert_eq!(claims["codeCivilite"], "MME");
        assert_eq!(claims["SubjectOrganization"], "Cabinet du Parc");
        assert_eq!(claims["SubjectOrganizationID"], "R10000001");
        assert_eq!(claims["SubjectRole"], json!(["10^1.2.250.1.213.1.1.5.5", "21^1.2.250.1.213.1.1.5.5"]));
        assert_eq!(claims["Secteur_Activite"], "SA07^1.2.250.1.71.4.2.4");
        assert_eq!(claims["codeGenreActivite"], "GENR01");
        assert_eq!(claims["Acces_Regulation_Medicale"], "FAUX");
        assert_eq!(claims["Mode_Acces_Raison"], "");
        assert_eq!(claims["PSI_Locale"], "1.2.250.1.213.1.3.1.1");
        assert_eq!(claims["UITVersion"], "1.0");
        assert_eq!(claims["otherIds"], json!([{"identifiant": "10000000001", "origine": "RPPS", "qualite": 1}]));
        let srp = &claims["SubjectRefPro"];
        assert_eq!(keys(srp), set(&["codeCivilite", "exercices"]));
        assert_eq!(srp["exercices"].as_array().unwrap().len(), 2);
        assert_eq!(srp["exercices"][0]["activities"][0]["numeroFinessetablissementJuridique"], "750000001");
        for absent in ["sub", "email", "Palier_Authentification"] {
            assert!(claims.get(absent).is_none(), "{absent} belongs to the protocol layer");
        }
    }

    #[test]
    fn claims_without_practice_are_empty_strings() {
        let p = Professional { practices: vec![], ..sample() };
        let claims = p.psc_claims();
        assert_eq!(claims["SubjectOrganization"], "");
        assert_eq!(claims["SubjectOrganizationID"], "");
        assert_eq!(claims["Secteur_Activite"], "");
        assert_eq!(claims["codeGenreActivite"], "");
        assert_eq!(claims["SubjectRole"], json!([]));
    }

    #[test]
    fn parses_psc_json_with_missing_and_null_fields() {
        let practice: Practice = serde_json::from_value(json!({
            "codeProfession": "60",
            "nomDexercice": null,
            "activities": [{"codePostal": "75001", "telephone": null}]
        }))
        .unwrap();
        assert_eq!(practice.code_profession, "60");
        assert_eq!(practice.nom_dexercice, "");
        assert_eq!(practice.activities[0].code_postal, "75001");
        assert_eq!(practice.activities[0].telephone, "");
        let none: Practice = serde_json::from_value(json!({"activities": null})).unwrap();
        assert!(none.activities.is_empty());
    }

    #[test]
    fn debug_hides_password_hash() {
        assert!(!format!("{:?}", sample()).contains("argon2"));
    }
}
