//! The `claims` request parameter (OpenID Connect Core 5.5): individual claims asked for in the
//! ID token and at userinfo, beyond what the scopes release, and `acr` values asked for the ID
//! token. What we honour: the claims' names (a claim is released only if the client may have
//! the scope that releases it: `claims` never widens what a client is allowed), and the `acr`
//! values, which act as `acr_values`. `essential` changes nothing else (OIDC Core 5.5.1: the
//! provider releases what it can), and `value` / `values` of other claims are not matched.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The longest `claims` parameter read (a request for every claim we have is well under it).
pub const MAX_LEN: usize = 4096;

/// What a `claims` parameter asked for, kept with the request, the code and the grant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimsRequest {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub id_token: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub userinfo: Vec<String>,
    /// `id_token.acr`'s `value` or `values`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acr_values: Vec<String>,
}

impl ClaimsRequest {
    pub fn is_empty(&self) -> bool {
        self.id_token.is_empty() && self.userinfo.is_empty() && self.acr_values.is_empty()
    }
}

/// Why a `claims` parameter is refused (`invalid_request`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    #[error("the claims parameter is too long")]
    TooLong,
    #[error("the claims parameter must be a JSON object")]
    NotAnObject,
    #[error("claims.userinfo and claims.id_token must be JSON objects")]
    BadSection,
    #[error("each requested claim must be null or a JSON object")]
    BadMember,
    #[error("essential must be a boolean and values an array")]
    BadRequestFields,
}

/// Parses a `claims` parameter, keeping the claims `releasable` accepts (the claims this
/// provider knows and this client may have).
pub fn parse(text: &str, releasable: impl Fn(&str) -> bool) -> Result<ClaimsRequest, ClaimsError> {
    if text.len() > MAX_LEN {
        return Err(ClaimsError::TooLong);
    }
    let Ok(Value::Object(root)) = serde_json::from_str::<Value>(text) else {
        return Err(ClaimsError::NotAnObject);
    };
    let mut out = ClaimsRequest::default();
    for (section, members) in &root {
        let target = match section.as_str() {
            "id_token" => &mut out.id_token,
            "userinfo" => &mut out.userinfo,
            // Other members (future sections) are ignored, as OIDC Core 5.5 says.
            _ => continue,
        };
        let members = match members {
            Value::Object(m) => m,
            Value::Null => continue,
            _ => return Err(ClaimsError::BadSection),
        };
        for (name, request) in members {
            let values = check_member(request)?;
            if section == "id_token" && name == "acr" {
                out.acr_values.extend(values);
                continue;
            }
            if releasable(name) && !target.contains(name) {
                target.push(name.clone());
            }
        }
    }
    Ok(out)
}

/// Checks one claim's request (`null`, or `{essential, value, values}`); returns the string
/// values it names.
fn check_member(request: &Value) -> Result<Vec<String>, ClaimsError> {
    let fields = match request {
        Value::Null => return Ok(Vec::new()),
        Value::Object(f) => f,
        _ => return Err(ClaimsError::BadMember),
    };
    if fields.get("essential").is_some_and(|e| !e.is_boolean()) {
        return Err(ClaimsError::BadRequestFields);
    }
    let mut values = Vec::new();
    if let Some(v) = fields.get("value").and_then(Value::as_str) {
        values.push(v.to_owned());
    }
    match fields.get("values") {
        None => {}
        Some(Value::Array(list)) => values.extend(list.iter().filter_map(Value::as_str).map(str::to_owned)),
        Some(_) => return Err(ClaimsError::BadRequestFields),
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(name: &str) -> bool {
        matches!(name, "given_name" | "email" | "SubjectRefPro")
    }

    #[test]
    fn names_and_acr_values_are_kept_and_nothing_else() {
        let text = r#"{"userinfo":{"given_name":{"essential":true},"email":null,"unknown":null},
                       "id_token":{"SubjectRefPro":null,"acr":{"essential":true,"values":["eidas3","eidas1"]}},
                       "future":{"x":1}}"#;
        let mut r = parse(text, known).unwrap();
        // A JSON object's members come in no particular order.
        r.userinfo.sort();
        assert_eq!(r.userinfo, vec!["email", "given_name"]);
        assert_eq!(r.id_token, vec!["SubjectRefPro"]);
        assert_eq!(r.acr_values, vec!["eidas3", "eidas1"]);
        assert!(parse("{}", known).unwrap().is_empty());
    }

    #[test]
    fn malformed_requests_are_refused() {
        assert_eq!(parse("[]", known), Err(ClaimsError::NotAnObject));
        assert_eq!(parse("not json", known), Err(ClaimsError::NotAnObject));
        assert_eq!(parse(r#"{"userinfo":[]}"#, known), Err(ClaimsError::BadSection));
        assert_eq!(parse(r#"{"userinfo":{"email":true}}"#, known), Err(ClaimsError::BadMember));
        assert_eq!(parse(r#"{"userinfo":{"email":{"essential":"yes"}}}"#, known), Err(ClaimsError::BadRequestFields));
        assert_eq!(parse(r#"{"id_token":{"acr":{"values":"eidas1"}}}"#, known), Err(ClaimsError::BadRequestFields));
        assert_eq!(parse(&"x".repeat(MAX_LEN + 1), known), Err(ClaimsError::TooLong));
    }
}
