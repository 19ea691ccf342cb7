//! Bearer-token verification against trusted issuers and their JWKS, and (for the users
//! subgraph, development and tests) Ed25519 token signing.
//!
//! A token is accepted when its algorithm is on the issuer's allow-list, its signature
//! verifies with a key of its issuer's JWKS and its `iss`, `aud`, `exp` (and `nbf`)
//! claims are right, with 30 s of clock skew. The user id comes from `sub`, the roles from
//! the issuer's roles claim (`roles` unless configured, e.g. `realm_access.roles`), the
//! scopes from `scope` (space-separated) or `scp` (a list).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;

use crate::{ApiError, ApiResult};

/// What a caller may be. Stored upper case in tokens (`"SUPPLIER"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, async_graphql::Enum)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[graphql(name = "Role")]
pub enum Role {
    Customer,
    Supplier,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Customer, Role::Supplier, Role::Admin];

    /// The name in tokens and storage, as `parse` reads it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "CUSTOMER",
            Role::Supplier => "SUPPLIER",
            Role::Admin => "ADMIN",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s.to_ascii_uppercase().as_str() {
            "CUSTOMER" => Some(Role::Customer),
            "SUPPLIER" => Some(Role::Supplier),
            "ADMIN" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// The verified caller of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user_id: String,
    pub roles: Vec<Role>,
    /// OAuth scopes the token grants (`catalog:write`, ...).
    pub scopes: Vec<String>,
    pub issuer: String,
    /// When the token expires (Unix seconds); long-lived connections end then.
    pub expires_at: Option<i64>,
}

impl Principal {
    /// A principal with the scopes our own tokens grant for `roles` (tests, tools).
    pub fn with_roles(user_id: &str, roles: &[Role], issuer: &str) -> Principal {
        Principal {
            user_id: user_id.to_string(),
            roles: roles.to_vec(),
            scopes: scopes_for(roles),
            issuer: issuer.to_string(),
            expires_at: None,
        }
    }
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
    pub fn is_admin(&self) -> bool {
        self.has_role(Role::Admin)
    }
}

/// What a request carries about its caller, put into every GraphQL request's data.
#[derive(Clone, Debug, Default)]
pub struct Caller(pub Option<Principal>);

impl Caller {
    /// The principal, or `UNAUTHENTICATED`.
    pub fn require(&self) -> ApiResult<&Principal> {
        self.0
            .as_ref()
            .ok_or_else(|| ApiError::unauthenticated("this operation needs a bearer token"))
    }
}

/// Reads the caller from a GraphQL context; absent data means anonymous.
pub fn caller(ctx: &async_graphql::Context<'_>) -> Caller {
    ctx.data_opt::<Caller>().cloned().unwrap_or_default()
}

// Federation's `@authenticated`, spelled `@federation__authenticated` (the spec's name
// for a federation directive a subgraph does not import) because async-graphql's `@link`
// import list is fixed. Use: `#[graphql(directive = shop_kit::auth::authenticated::apply())]`.
// Resolvers still check the caller themselves: a subgraph relies on no one's filtering.
/// Federation's `@authenticated`: only requests with a valid token may select this.
#[async_graphql::TypeDirective(
    name = "federation__authenticated",
    location = "FieldDefinition",
    location = "Object"
)]
pub fn authenticated() {}

/// The scopes our tokens grant for a set of roles. Everyone signed in may read and edit
/// their profile and shop; suppliers change catalogs, stock and shipping; admins also
/// manage users.
pub fn scopes_for(roles: &[Role]) -> Vec<String> {
    let mut out = vec!["profile".to_string(), "shop".to_string()];
    let mut add = |s: &str| {
        if !out.iter().any(|x| x == s) {
            out.push(s.to_string());
        }
    };
    for r in roles {
        match r {
            Role::Customer => {}
            Role::Supplier => {
                add("catalog:write");
                add("inventory:write");
                add("shipping:write");
            }
            Role::Admin => {
                add("catalog:write");
                add("inventory:write");
                add("shipping:write");
                add("users:admin");
            }
        }
    }
    out
}

/// Claims in the tokens we sign; other issuers' tokens only need `sub`, `iss`, `aud`, `exp`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iss: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub jti: String,
    #[serde(default)]
    pub roles: Vec<String>,
    /// Space-separated, as in OAuth 2.0.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
}

#[derive(Debug, Deserialize)]
struct UnverifiedIssuer {
    iss: Option<String>,
}

/// Why a presented token was refused. The message is safe to show.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("the bearer token is malformed")]
    Malformed,
    #[error("the token's issuer is not trusted")]
    UntrustedIssuer,
    #[error("no key of the issuer matches the token")]
    UnknownKey,
    #[error("the token is invalid: {0}")]
    Invalid(String),
    /// Distinct from `Invalid` so a client knows to refresh rather than sign in again.
    #[error("the token has expired; refresh it (or sign in again)")]
    Expired,
}

impl AuthError {
    /// The `extensions.code` of the 401 answer: `TOKEN_EXPIRED` for an expired token,
    /// `UNAUTHENTICATED` for anything else.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Expired => "TOKEN_EXPIRED",
            _ => "UNAUTHENTICATED",
        }
    }
}

/// Where an issuer's public keys come from.
#[derive(Clone, Debug)]
pub enum JwksSource {
    /// Keys given in configuration (tests, development, pinned keys).
    Inline(JwkSet),
    /// A JWKS document fetched over HTTP and refreshed when an unknown `kid` shows up.
    Url(String),
}

/// One issuer whose tokens we accept.
#[derive(Clone, Debug)]
pub struct TrustedIssuer {
    pub issuer: String,
    pub audience: String,
    pub jwks: JwksSource,
    /// Where the roles are in the claims: a dot path (`roles`, `realm_access.roles`).
    pub roles_claim: String,
    /// Signature algorithms accepted from this issuer; anything else (`none`, HS256 with a
    /// public key as secret, ...) is refused before any key is looked at.
    pub algorithms: Vec<Algorithm>,
}

/// Asymmetric algorithms only: a shared-secret algorithm would let anyone holding the
/// public JWKS forge tokens.
pub const DEFAULT_ALGORITHMS: &[Algorithm] = &[
    Algorithm::EdDSA,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

impl TrustedIssuer {
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>, jwks: JwksSource) -> Self {
        TrustedIssuer {
            issuer: issuer.into(),
            audience: audience.into(),
            jwks,
            roles_claim: "roles".into(),
            algorithms: DEFAULT_ALGORITHMS.to_vec(),
        }
    }

    pub fn with_roles_claim(mut self, claim: impl Into<String>) -> Self {
        self.roles_claim = claim.into();
        self
    }
}

struct IssuerState {
    config: TrustedIssuer,
    keys: RwLock<(JwkSet, Option<Instant>)>,
}

/// Verifies bearer tokens; cheap to clone.
#[derive(Clone)]
pub struct Verifier {
    issuers: Arc<Vec<IssuerState>>,
    http: reqwest::Client,
    /// Tokens verified in the last [`VERIFIED_FOR`], with their principal: a caller's
    /// token is presented again and again (each request of a session, each internal
    /// call with the service token), and checking a signature costs far more than
    /// looking it up.
    verified: Arc<std::sync::Mutex<HashMap<String, (Principal, Instant)>>>,
}

/// How long a verified token is taken on trust without checking it again. Short, so a
/// key the issuer withdraws stops verifying soon after its JWKS is fetched again.
const VERIFIED_FOR: Duration = Duration::from_secs(30);
/// Tokens remembered at most; the memory is emptied when it is full.
const VERIFIED_MAX: usize = 10_000;

/// A refetch of a JWKS for an unknown `kid` happens at most this often.
const JWKS_REFRESH_MIN_INTERVAL: Duration = Duration::from_secs(30);
/// A fetched JWKS is fetched again after this long, so keys the issuer withdrew stop
/// verifying even when no unknown `kid` shows up.
const JWKS_MAX_AGE: Duration = Duration::from_secs(600);

impl Verifier {
    pub fn new(issuers: Vec<TrustedIssuer>) -> Self {
        let issuers = issuers
            .into_iter()
            .map(|config| {
                let keys = match &config.jwks {
                    JwksSource::Inline(set) => set.clone(),
                    JwksSource::Url(_) => JwkSet { keys: Vec::new() },
                };
                IssuerState {
                    config,
                    keys: RwLock::new((keys, None)),
                }
            })
            .collect();
        Verifier {
            issuers: Arc::new(issuers),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
            verified: Arc::default(),
        }
    }

    /// Parses an `Authorization` header value (`Bearer <token>`) and verifies the token.
    pub async fn verify_header(&self, value: &str) -> Result<Principal, AuthError> {
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or(AuthError::Malformed)?;
        self.verify(token.trim()).await
    }

    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        if let Some(p) = self.recently_verified(token) {
            return Ok(p);
        }
        let p = self.check(token).await?;
        if let Ok(mut cache) = self.verified.lock() {
            if cache.len() >= VERIFIED_MAX {
                cache.clear();
            }
            cache.insert(token.to_string(), (p.clone(), Instant::now()));
        }
        Ok(p)
    }

    /// The principal of `token` if it was verified lately and has not expired since.
    fn recently_verified(&self, token: &str) -> Option<Principal> {
        let cache = self.verified.lock().ok()?;
        let (p, at) = cache.get(token)?;
        let now = chrono::Utc::now().timestamp();
        (at.elapsed() < VERIFIED_FOR && p.expires_at.is_none_or(|exp| exp > now)).then(|| p.clone())
    }

    /// Verifies `token`'s signature and claims.
    async fn check(&self, token: &str) -> Result<Principal, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        let unverified: UnverifiedIssuer = jsonwebtoken::dangerous::insecure_decode_claims(token)
            .map_err(|_| AuthError::Malformed)?;
        let iss = unverified.iss.ok_or(AuthError::UntrustedIssuer)?;
        let state = self
            .issuers
            .iter()
            .find(|s| s.config.issuer == iss)
            .ok_or(AuthError::UntrustedIssuer)?;
        if !state.config.algorithms.contains(&header.alg) {
            return Err(AuthError::Invalid(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let jwk = self
            .find_key(state, header.kid.as_deref(), header.alg)
            .await?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| AuthError::UnknownKey)?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&state.config.issuer]);
        validation.set_audience(&[&state.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 30;
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            &key,
            &validation,
        )
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
            _ => AuthError::Invalid(describe_jwt_error(&e)),
        })?;
        principal_from_claims(&data.claims, &state.config)
    }

    async fn find_key(
        &self,
        state: &IssuerState,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Jwk, AuthError> {
        let stale = |fetched: Option<Instant>| {
            matches!(state.config.jwks, JwksSource::Url(_))
                && fetched.is_none_or(|at| at.elapsed() > JWKS_MAX_AGE)
        };
        {
            let keys = state.keys.read().await;
            if let Some(jwk) = pick_key(&keys.0, kid, alg)
                && !stale(keys.1)
            {
                return Ok(jwk);
            }
        }
        let JwksSource::Url(url) = &state.config.jwks else {
            return Err(AuthError::UnknownKey);
        };
        let mut guard = state.keys.write().await;
        if let Some(jwk) = pick_key(&guard.0, kid, alg)
            && !stale(guard.1)
        {
            return Ok(jwk);
        }
        if guard
            .1
            .is_some_and(|at| at.elapsed() < JWKS_REFRESH_MIN_INTERVAL)
        {
            return Err(AuthError::UnknownKey);
        }
        guard.1 = Some(Instant::now());
        match self.fetch_jwks(url).await {
            Ok(set) => guard.0 = set,
            Err(e) => tracing::warn!(%url, error = %e, "could not fetch JWKS"),
        }
        pick_key(&guard.0, kid, alg).ok_or(AuthError::UnknownKey)
    }

    async fn fetch_jwks(&self, url: &str) -> Result<JwkSet, String> {
        let resp = self.http.get(url).send().await.map_err(|e| e.to_string())?;
        let body = resp.bytes().await.map_err(|e| e.to_string())?;
        serde_json::from_slice(&body).map_err(|e| e.to_string())
    }
}

fn principal_from_claims(
    claims: &serde_json::Map<String, serde_json::Value>,
    issuer: &TrustedIssuer,
) -> Result<Principal, AuthError> {
    let sub = claims
        .get("sub")
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| AuthError::Invalid("missing claim sub".into()))?;
    let mut at = claims.get(issuer.roles_claim.split('.').next().unwrap_or_default());
    for part in issuer.roles_claim.split('.').skip(1) {
        at = at.and_then(|v| v.get(part));
    }
    let roles: Vec<Role> = strings(at).iter().filter_map(|r| Role::parse(r)).collect();
    let scopes = match (claims.get("scope"), claims.get("scp")) {
        (Some(serde_json::Value::String(s)), _) => {
            s.split_whitespace().map(str::to_string).collect()
        }
        (_, Some(scp)) => strings(Some(scp)),
        // An issuer that grants no scopes at all (many company providers) is trusted
        // for roles only: its tokens get the scopes our own tokens carry for them. A
        // token that does carry scopes keeps exactly those, so down-scoped tokens stay so.
        _ => scopes_for(&roles),
    };
    Ok(Principal {
        user_id: sub.to_string(),
        roles,
        scopes,
        issuer: issuer.issuer.clone(),
        expires_at: claims.get("exp").and_then(serde_json::Value::as_i64),
    })
}

/// A claim that is a list of strings, or one string (space-separated).
fn strings(v: Option<&serde_json::Value>) -> Vec<String> {
    match v {
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        Some(serde_json::Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

fn pick_key(set: &JwkSet, kid: Option<&str>, alg: Algorithm) -> Option<Jwk> {
    match kid {
        Some(kid) => set.find(kid).cloned(),
        None => set
            .keys
            .iter()
            // Without a `kid`, take the first key whose declared algorithm matches (by name).
            .find(|k| {
                k.common
                    .key_algorithm
                    .is_none_or(|a| format!("{a:?}") == format!("{alg:?}"))
            })
            .cloned(),
    }
}

fn describe_jwt_error(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::InvalidSignature => "bad signature".into(),
        ErrorKind::InvalidAudience => "wrong audience".into(),
        ErrorKind::InvalidIssuer => "wrong issuer".into(),
        ErrorKind::ImmatureSignature => "not valid yet".into(),
        ErrorKind::MissingRequiredClaim(c) => format!("missing claim {c}"),
        _ => "rejected".into(),
    }
}

/// An Ed25519 signing key with a key id. Used by the users subgraph to sign access
/// tokens, by development mode (`shop token`) and by tests.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    seed: [u8; 32],
}

/// Shows the key id only: the seed must never reach a log.
impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// PKCS#8 v1 wrapping of a raw Ed25519 seed (RFC 8410): a fixed prefix, then the seed.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

impl SigningKey {
    pub fn generate() -> ApiResult<SigningKey> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| ApiError::Internal(format!("no randomness: {e}")))?;
        let kid = URL_SAFE_NO_PAD.encode(&seed[..6]);
        Ok(SigningKey {
            kid: format!("k-{kid}"),
            seed,
        })
    }

    /// Serialized form for storage: `kid.base64url(seed)`.
    pub fn to_secret_string(&self) -> String {
        format!("{}.{}", self.kid, URL_SAFE_NO_PAD.encode(self.seed))
    }

    pub fn from_secret_string(s: &str) -> Option<SigningKey> {
        let (kid, seed) = s.trim().split_once('.')?;
        let bytes = URL_SAFE_NO_PAD.decode(seed).ok()?;
        Some(SigningKey {
            kid: kid.to_string(),
            seed: bytes.try_into().ok()?,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half as a JWK (`kty: OKP`, `crv: Ed25519`).
    pub fn public_jwk(&self) -> Jwk {
        let public = ed25519_dalek::SigningKey::from_bytes(&self.seed).verifying_key();
        let value = serde_json::json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(public.as_bytes()),
            "kid": self.kid,
            "alg": "EdDSA",
            "use": "sig",
        });
        serde_json::from_value(value).unwrap_or_else(|_| unreachable_jwk())
    }

    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: vec![self.public_jwk()],
        }
    }

    pub fn sign(&self, claims: &Claims) -> ApiResult<String> {
        let mut der = ED25519_PKCS8_PREFIX.to_vec();
        der.extend_from_slice(&self.seed);
        let key = EncodingKey::from_ed_der(&der);
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &key)
            .map_err(|e| ApiError::Internal(format!("token signing failed: {e}")))
    }

    /// Signs a token for `user_id` with `roles`, valid for `ttl`.
    pub fn mint(
        &self,
        issuer: &str,
        audience: &str,
        user_id: &str,
        roles: &[Role],
        ttl: Duration,
    ) -> ApiResult<String> {
        let now = chrono::Utc::now().timestamp();
        self.sign(&Claims {
            sub: user_id.to_string(),
            iss: issuer.to_string(),
            aud: audience.to_string(),
            iat: now,
            exp: now + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2),
            jti: crate::ids::new_id(),
            scope: scopes_for(roles).join(" "),
            roles: roles.iter().map(|r| r.as_str().to_string()).collect(),
        })
    }
}

// A JWK built from our own literal JSON always deserializes; this keeps the code panic-free.
fn unreachable_jwk() -> Jwk {
    Jwk {
        common: Default::default(),
        algorithm: jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(
            jsonwebtoken::jwk::OctetKeyPairParameters {
                key_type: jsonwebtoken::jwk::OctetKeyPairType::OctetKeyPair,
                curve: jsonwebtoken::jwk::EllipticCurve::Ed25519,
                x: String::new(),
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier_for(key: &SigningKey) -> Verifier {
        Verifier::new(vec![TrustedIssuer::new(
            "https://issuer.test",
            "shop",
            JwksSource::Inline(key.jwks()),
        )])
    }

    #[tokio::test]
    async fn a_signed_token_verifies_with_its_roles() {
        let key = SigningKey::generate().expect("key");
        let token = key
            .mint(
                "https://issuer.test",
                "shop",
                "u1",
                &[Role::Supplier],
                Duration::from_secs(60),
            )
            .expect("token");
        let p = verifier_for(&key).verify(&token).await.expect("valid");
        assert_eq!(p.user_id, "u1");
        assert_eq!(p.roles, vec![Role::Supplier]);
    }

    #[tokio::test]
    async fn a_token_signed_by_another_key_is_refused() {
        let trusted = SigningKey::generate().expect("key");
        let mut forger = SigningKey::generate().expect("key");
        forger.kid = trusted.kid.clone();
        let token = forger
            .mint(
                "https://issuer.test",
                "shop",
                "u1",
                &[Role::Admin],
                Duration::from_secs(60),
            )
            .expect("token");
        let err = verifier_for(&trusted)
            .verify(&token)
            .await
            .expect_err("forged");
        assert_eq!(err, AuthError::Invalid("bad signature".into()));
    }

    #[tokio::test]
    async fn wrong_audience_issuer_and_expiry_are_refused() {
        let key = SigningKey::generate().expect("key");
        let v = verifier_for(&key);
        let wrong_aud = key
            .mint(
                "https://issuer.test",
                "other",
                "u",
                &[],
                Duration::from_secs(60),
            )
            .expect("t");
        assert_eq!(
            v.verify(&wrong_aud).await,
            Err(AuthError::Invalid("wrong audience".into()))
        );
        let wrong_iss = key
            .mint(
                "https://evil.test",
                "shop",
                "u",
                &[],
                Duration::from_secs(60),
            )
            .expect("t");
        assert_eq!(v.verify(&wrong_iss).await, Err(AuthError::UntrustedIssuer));
        let now = chrono::Utc::now().timestamp();
        let expired = key
            .sign(&Claims {
                sub: "u".into(),
                iss: "https://issuer.test".into(),
                aud: "shop".into(),
                iat: now - 7200,
                exp: now - 3600,
                jti: String::new(),
                roles: vec![],
                scope: String::new(),
            })
            .expect("t");
        assert_eq!(v.verify(&expired).await, Err(AuthError::Expired));
        assert_eq!(v.verify("not-a-token").await, Err(AuthError::Malformed));
    }

    #[test]
    fn scopes_come_from_scope_or_scp_and_else_from_the_roles() {
        let issuer = TrustedIssuer::new(
            "https://id.example",
            "shop",
            JwksSource::Inline(JwkSet { keys: vec![] }),
        )
        .with_roles_claim("realm_access.roles");
        let principal = |claims: serde_json::Value| {
            let serde_json::Value::Object(map) = claims else {
                panic!("claims are an object")
            };
            principal_from_claims(&map, &issuer).expect("principal")
        };
        let roles = serde_json::json!({ "roles": ["SUPPLIER", "bogus"] });
        let p = principal(serde_json::json!({ "sub": "u1", "realm_access": roles }));
        assert_eq!(p.roles, vec![Role::Supplier]);
        assert_eq!(
            p.scopes,
            scopes_for(&[Role::Supplier]),
            "no scopes granted: the roles'"
        );
        let p = principal(serde_json::json!({
            "sub": "u1", "realm_access": roles, "scope": "profile catalog:write"
        }));
        assert_eq!(p.scopes, ["profile", "catalog:write"]);
        let p = principal(serde_json::json!({ "sub": "u1", "realm_access": roles, "scope": "" }));
        assert!(p.scopes.is_empty(), "a token scoped to nothing stays so");
        let p = principal(serde_json::json!({ "sub": "u1", "scp": ["inventory:write"] }));
        assert_eq!(p.scopes, ["inventory:write"]);
        assert!(p.roles.is_empty());
    }

    #[test]
    fn signing_keys_round_trip_through_their_secret_string() {
        let key = SigningKey::generate().expect("key");
        assert!(
            !format!("{key:?}").contains(&key.to_secret_string()),
            "Debug hides the seed"
        );
        let back = SigningKey::from_secret_string(&key.to_secret_string()).expect("parse");
        assert_eq!(back.kid(), key.kid());
        assert_eq!(back.seed, key.seed);
    }
}
