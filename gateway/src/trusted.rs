//! Trusted documents: the operations a team's own clients were built with, listed in a
//! manifest the gateway loads at start. A client may send a listed operation by its
//! id alone (`documentId`, Relay's `doc_id`, or Apollo's `persistedQuery` hash), and
//! for the clients named as such only listed operations run: whatever else a caller
//! sends in their name is refused before it is parsed.
//!
//! Two manifest formats are read: Apollo's persisted query manifest (`{"format":
//! "apollo-persisted-query-manifest", "operations": [{"id", "body", ...}]}`) and
//! Relay's (a JSON object of id to text).

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::pipeline::request::{GraphQLRequest, GraphQLResponse};

/// For whom only listed operations run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum OnlyListed {
    /// Anyone may also send other operations (listed ones by id, or any text).
    #[default]
    Nobody,
    /// Every caller.
    Everyone,
    /// Callers whose client name (`apollographql-client-name` or `graphql-client-name`)
    /// is one of these.
    Clients(HashSet<String>),
}

impl OnlyListed {
    /// `""`: nobody; `"*"`: everyone; otherwise comma-separated client names.
    pub fn parse(text: &str) -> OnlyListed {
        let text = text.trim();
        match text {
            "" => OnlyListed::Nobody,
            "*" => OnlyListed::Everyone,
            _ => OnlyListed::Clients(
                text.split(',')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect(),
            ),
        }
    }

    fn applies(&self, client: Option<&str>) -> bool {
        match self {
            OnlyListed::Nobody => false,
            OnlyListed::Everyone => true,
            OnlyListed::Clients(names) => client.is_some_and(|c| names.contains(c)),
        }
    }
}

/// The listed operations, by id, and their texts.
#[derive(Debug, Default)]
pub struct TrustedDocuments {
    by_id: HashMap<String, String>,
    texts: HashSet<String>,
    only: OnlyListed,
}

impl TrustedDocuments {
    /// Reads a manifest (either format).
    pub fn from_manifest(json: &str, only: OnlyListed) -> Result<TrustedDocuments, String> {
        let v: Value =
            serde_json::from_str(json).map_err(|e| format!("the manifest is not JSON: {e}"))?;
        let mut by_id = HashMap::new();
        match &v {
            Value::Object(o) if o.get("format").is_some() => {
                if o.get("format").and_then(Value::as_str)
                    != Some("apollo-persisted-query-manifest")
                {
                    return Err("unknown manifest format (expected apollo-persisted-query-manifest, or a JSON object of id to text)".into());
                }
                let ops = o
                    .get("operations")
                    .and_then(Value::as_array)
                    .ok_or("the manifest has no operations list")?;
                for (i, op) in ops.iter().enumerate() {
                    let id = op.get("id").and_then(Value::as_str);
                    let body = op.get("body").and_then(Value::as_str);
                    let (Some(id), Some(body)) = (id, body) else {
                        return Err(format!("operation {i} needs an id and a body"));
                    };
                    by_id.insert(id.to_string(), body.to_string());
                }
            }
            Value::Object(o) => {
                for (id, body) in o {
                    let body = body
                        .as_str()
                        .ok_or_else(|| format!("document {id:?} is not a string"))?;
                    by_id.insert(id.clone(), body.to_string());
                }
            }
            _ => return Err("the manifest must be a JSON object".into()),
        }
        let texts = by_id.values().cloned().collect();
        Ok(TrustedDocuments { by_id, texts, only })
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Fills in a listed operation's text from its id. `Ok(true)`: the request's text
    /// is now a listed one; `Ok(false)`: the request is left to automatic persisted
    /// queries or its own text.
    pub fn resolve(&self, req: &mut GraphQLRequest) -> Result<bool, GraphQLResponse> {
        if let Some(id) = req.document_id.as_deref() {
            return match self.by_id.get(id) {
                Some(text) => {
                    req.query = Some(text.clone());
                    Ok(true)
                }
                None => Err(GraphQLResponse::request_error(
                    400,
                    format!("no listed operation has the id {id:?}"),
                    "PERSISTED_DOCUMENT_NOT_FOUND",
                )),
            };
        }
        let hash = req
            .extensions
            .as_ref()
            .and_then(|e| e.get("persistedQuery"))
            .and_then(|p| p.get("sha256Hash"))
            .and_then(Value::as_str);
        if req.query.is_none()
            && let Some(text) = hash.and_then(|h| self.by_id.get(h))
        {
            req.query = Some(text.clone());
            return Ok(true);
        }
        Ok(false)
    }

    /// Refuses an operation that is not listed, when only listed ones may run for
    /// `client`.
    pub fn admit(&self, text: Option<&str>, client: Option<&str>) -> Result<(), GraphQLResponse> {
        if !self.only.applies(client) || text.is_some_and(|t| self.texts.contains(t)) {
            return Ok(());
        }
        Err(GraphQLResponse::request_error(
            400,
            "only the operations listed for this client may run here; send a listed \
             operation by its id",
            "PERSISTED_QUERY_NOT_IN_LIST",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_manifest_formats_are_read_and_bad_ones_say_why() {
        let apollo = r#"{"format":"apollo-persisted-query-manifest","version":1,"operations":[{"id":"a1","name":"Top","type":"query","body":"{ a }"}]}"#;
        let t = TrustedDocuments::from_manifest(apollo, OnlyListed::Nobody).unwrap();
        assert_eq!(t.by_id.get("a1").map(String::as_str), Some("{ a }"));
        let relay = r#"{"r1": "{ b }", "r2": "{ c }"}"#;
        assert_eq!(
            TrustedDocuments::from_manifest(relay, OnlyListed::Nobody)
                .unwrap()
                .len(),
            2
        );
        for bad in [
            "[1]",
            "{\"r1\": 3}",
            r#"{"format":"other","operations":[]}"#,
            r#"{"format":"apollo-persisted-query-manifest","operations":[{"id":"x"}]}"#,
            "not json",
        ] {
            assert!(
                TrustedDocuments::from_manifest(bad, OnlyListed::Nobody).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn only_listed_applies_to_the_clients_named() {
        assert_eq!(OnlyListed::parse(""), OnlyListed::Nobody);
        assert_eq!(OnlyListed::parse(" * "), OnlyListed::Everyone);
        let only = OnlyListed::parse("web, ios");
        assert!(only.applies(Some("ios")));
        assert!(!only.applies(Some("partner")));
        assert!(!only.applies(None));
    }
}
