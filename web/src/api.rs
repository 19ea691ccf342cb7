//! The gateway's GraphQL API as the pages call it: one POST per operation, the answer's
//! `data` decoded into the page's own types, errors kept with their codes so a page can
//! say what went wrong in words.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

/// A failed call, by what the shopper should be told.
#[derive(thiserror::Error, Debug)]
pub enum ApiError {
    /// The gateway did not answer (down, timed out, not JSON).
    #[error("the shop cannot be reached right now")]
    Unreachable(String),
    /// The API refused: its first error's `extensions.code` and message.
    #[error("{message}")]
    Refused { code: String, message: String },
}

/// A client of the gateway; cheap to clone.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    url: String,
}

/// How long a page waits for the API.
const TIMEOUT: Duration = Duration::from_secs(10);

impl Api {
    pub fn new(url: &str) -> Self {
        Api {
            http: reqwest::Client::builder()
                .timeout(TIMEOUT)
                .build()
                .unwrap_or_default(),
            url: url.to_string(),
        }
    }

    /// Runs one operation; `token` is the signed-in user's access token.
    pub async fn run<T: DeserializeOwned>(
        &self,
        query: &str,
        variables: Value,
        token: Option<&str>,
    ) -> Result<T, ApiError> {
        let body = serde_json::json!({ "query": query, "variables": variables });
        let mut req = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let bytes = req
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| ApiError::Unreachable(e.to_string()))?
            .bytes()
            .await
            .map_err(|e| ApiError::Unreachable(e.to_string()))?;
        let mut reply: Value =
            serde_json::from_slice(&bytes).map_err(|e| ApiError::Unreachable(e.to_string()))?;
        if let Some(first) = reply["errors"].as_array().and_then(|e| e.first()) {
            return Err(ApiError::Refused {
                code: first["extensions"]["code"]
                    .as_str()
                    .unwrap_or("INTERNAL_SERVER_ERROR")
                    .to_string(),
                message: first["message"].as_str().unwrap_or_default().to_string(),
            });
        }
        serde_json::from_value(reply["data"].take())
            .map_err(|e| ApiError::Unreachable(format!("unexpected answer: {e}")))
    }
}
