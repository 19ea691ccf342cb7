//! Helpers for the typed configuration structs each process reads from its environment.
//!
//! Every variable we read is named in one list per process, so a misspelt `SHOP_*`
//! variable is reported instead of silently ignored.

use std::collections::HashMap;
use std::str::FromStr;

use jsonwebtoken::jwk::JwkSet;
use serde::Deserialize;

use crate::auth::{JwksSource, TrustedIssuer};

/// A configuration value that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name}: {reason}")]
    Invalid { name: String, reason: String },
    #[error("unknown configuration variable(s): {0}")]
    Unknown(String),
}

/// Configuration values: the environment over an optional file of `KEY=VALUE` lines.
#[derive(Clone, Debug, Default)]
pub struct Vars {
    file: HashMap<String, String>,
}

impl Vars {
    /// The environment alone.
    pub fn env() -> Vars {
        Vars::default()
    }

    /// The environment over the `KEY=VALUE` lines of `path` (`#` starts a comment).
    pub fn with_file(path: &str) -> Result<Vars, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            name: path.to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| invalid(e.to_string()))?;
        let mut file = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| invalid(format!("line {}: expected KEY=VALUE", n + 1)))?;
            file.insert(k.trim().to_string(), v.trim().trim_matches('"').to_string());
        }
        Ok(Vars { file })
    }

    /// A value; empty counts as unset.
    pub fn get(&self, name: &str) -> Option<String> {
        std::env::var(name)
            .ok()
            .or_else(|| self.file.get(name).cloned())
            .filter(|v| !v.trim().is_empty())
    }

    /// A parsed value, or `default` when unset.
    pub fn parse<T: FromStr>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|e: T::Err| ConfigError::Invalid {
                name: name.to_string(),
                reason: e.to_string(),
            }),
        }
    }

    /// All keys with a prefix, from the file and the environment (which wins).
    pub fn with_prefix(&self, prefix: &str) -> Vec<(String, String)> {
        let mut out: HashMap<String, String> = self
            .file
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        out.extend(std::env::vars().filter(|(k, _)| k.starts_with(prefix)));
        out.into_iter().collect()
    }

    /// Fails on `SHOP_*` keys (in the environment or the file) not in `known`.
    pub fn reject_unknown(&self, known: &[&str]) -> Result<(), ConfigError> {
        let mut unknown: Vec<String> = std::env::vars()
            .map(|(k, _)| k)
            .chain(self.file.keys().cloned())
            .filter(|k| {
                k.starts_with("SHOP_")
                    && !known.contains(&k.as_str())
                    && !k.starts_with("SHOP_SUBGRAPH_URL_")
                    && !k.starts_with("SHOP_SUBGRAPH_TIMEOUT_MS_")
            })
            .collect();
        unknown.sort();
        unknown.dedup();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Unknown(unknown.join(", ")))
        }
    }
}

/// The variables [`trusted_issuers_from_env`] reads.
pub const AUTH_VARS: &[&str] = &[
    "SHOP_TRUSTED_ISSUERS",
    "SHOP_JWT_ISSUER",
    "SHOP_JWT_AUDIENCE",
    "SHOP_JWKS_URL",
    "SHOP_JWKS_FILE",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuerEntry {
    issuer: String,
    audience: String,
    #[serde(default)]
    jwks_url: Option<String>,
    #[serde(default)]
    jwks_file: Option<String>,
    #[serde(default)]
    jwks: Option<JwkSet>,
    /// Dot path of the claim holding roles (default `roles`).
    #[serde(default)]
    roles_claim: Option<String>,
}

/// Trusted token issuers from configuration:
/// - `SHOP_TRUSTED_ISSUERS`: a JSON array of `{issuer, audience, jwks_url | jwks_file | jwks}`;
///   and optionally `roles_claim`;
/// - or the single-issuer shorthand `SHOP_JWT_ISSUER` + `SHOP_JWT_AUDIENCE` (default `shop`)
///   + `SHOP_JWKS_URL` or `SHOP_JWKS_FILE` (+ `SHOP_JWT_ROLES_CLAIM`).
pub fn trusted_issuers(vars: &Vars) -> Result<Vec<TrustedIssuer>, ConfigError> {
    let mut out = Vec::new();
    if let Some(json) = vars.get("SHOP_TRUSTED_ISSUERS") {
        let entries: Vec<IssuerEntry> =
            serde_json::from_str(&json).map_err(|e| ConfigError::Invalid {
                name: "SHOP_TRUSTED_ISSUERS".into(),
                reason: e.to_string(),
            })?;
        for e in entries {
            let mut issuer = issuer_from_parts(
                "SHOP_TRUSTED_ISSUERS",
                e.issuer,
                e.audience,
                e.jwks_url,
                e.jwks_file,
                e.jwks,
            )?;
            if let Some(claim) = e.roles_claim {
                issuer = issuer.with_roles_claim(claim);
            }
            out.push(issuer);
        }
    }
    if let Some(issuer) = vars.get("SHOP_JWT_ISSUER") {
        let audience = vars
            .get("SHOP_JWT_AUDIENCE")
            .unwrap_or_else(|| "shop".into());
        let mut issuer = issuer_from_parts(
            "SHOP_JWT_ISSUER",
            issuer,
            audience,
            vars.get("SHOP_JWKS_URL"),
            vars.get("SHOP_JWKS_FILE"),
            None,
        )?;
        if let Some(claim) = vars.get("SHOP_JWT_ROLES_CLAIM") {
            issuer = issuer.with_roles_claim(claim);
        }
        out.push(issuer);
    }
    Ok(out)
}

fn issuer_from_parts(
    name: &str,
    issuer: String,
    audience: String,
    url: Option<String>,
    file: Option<String>,
    inline: Option<JwkSet>,
) -> Result<TrustedIssuer, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid {
        name: name.to_string(),
        reason,
    };
    let jwks = match (url, file, inline) {
        (Some(url), None, None) => JwksSource::Url(url),
        (None, Some(path), None) => {
            let text =
                std::fs::read_to_string(&path).map_err(|e| invalid(format!("{path}: {e}")))?;
            JwksSource::Inline(
                serde_json::from_str(&text).map_err(|e| invalid(format!("{path}: {e}")))?,
            )
        }
        (None, None, Some(set)) => JwksSource::Inline(set),
        _ => {
            return Err(invalid(format!(
                "issuer {issuer}: give exactly one of a JWKS URL, file or inline set"
            )));
        }
    };
    Ok(TrustedIssuer::new(issuer, audience, jwks))
}
