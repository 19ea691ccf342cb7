//! Helpers for the typed configuration structs each process reads from its environment.
//!
//! Every variable we read is named in one list per process, so a misspelt `SHOP_*`
//! variable is reported instead of silently ignored.

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

/// Reads an environment variable; empty counts as unset.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Reads and parses a variable, falling back to `default` when unset.
pub fn parse_var<T: FromStr>(name: &str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match var(name) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|e: T::Err| ConfigError::Invalid {
            name: name.to_string(),
            reason: e.to_string(),
        }),
    }
}

/// Fails when the environment holds `SHOP_*` variables not in `known`.
pub fn reject_unknown(known: &[&str]) -> Result<(), ConfigError> {
    let unknown: Vec<String> = std::env::vars()
        .map(|(k, _)| k)
        .filter(|k| {
            k.starts_with("SHOP_")
                && !known.contains(&k.as_str())
                && !k.starts_with("SHOP_SUBGRAPH_URL_")
        })
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::Unknown(unknown.join(", ")))
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
}

/// Trusted token issuers from the environment:
/// - `SHOP_TRUSTED_ISSUERS`: a JSON array of `{issuer, audience, jwks_url | jwks_file | jwks}`;
/// - or the single-issuer shorthand `SHOP_JWT_ISSUER` + `SHOP_JWT_AUDIENCE` (default `shop`)
///   + `SHOP_JWKS_URL` or `SHOP_JWKS_FILE`.
pub fn trusted_issuers_from_env() -> Result<Vec<TrustedIssuer>, ConfigError> {
    let mut out = Vec::new();
    if let Some(json) = var("SHOP_TRUSTED_ISSUERS") {
        let entries: Vec<IssuerEntry> =
            serde_json::from_str(&json).map_err(|e| ConfigError::Invalid {
                name: "SHOP_TRUSTED_ISSUERS".into(),
                reason: e.to_string(),
            })?;
        for e in entries {
            out.push(issuer_from_parts(
                "SHOP_TRUSTED_ISSUERS",
                e.issuer,
                e.audience,
                e.jwks_url,
                e.jwks_file,
                e.jwks,
            )?);
        }
    }
    if let Some(issuer) = var("SHOP_JWT_ISSUER") {
        let audience = var("SHOP_JWT_AUDIENCE").unwrap_or_else(|| "shop".into());
        out.push(issuer_from_parts(
            "SHOP_JWT_ISSUER",
            issuer,
            audience,
            var("SHOP_JWKS_URL"),
            var("SHOP_JWKS_FILE"),
            None,
        )?);
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
    Ok(TrustedIssuer {
        issuer,
        audience,
        jwks,
    })
}
