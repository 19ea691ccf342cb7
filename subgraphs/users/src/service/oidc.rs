//! Sign-in through OpenID Connect providers: authorization code flow with PKCE, `state`
//! and `nonce`, ID token validation and userinfo, all through the `openidconnect` crate.
//!
//! A login is two calls. `start` stores what the callback must match (state, nonce,
//! PKCE verifier, redirect URI; single use, 10 minutes) and returns the provider's
//! authorization URL. `complete` claims that row, exchanges the code, validates the ID
//! token and signs the person in (creating the account on first login) or, for a link
//! started by a signed-in user, adds the provider to that account.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreClient, CoreGenderClaim, CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreResponseType,
};
use openidconnect::{
    AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EmptyAdditionalClaims, EndpointMaybeSet, EndpointNotSet, EndpointSet, HttpRequest,
    HttpResponse, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, Scope, SubjectIdentifier, TokenResponse, UserInfoClaims,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, Set,
};
use serde::Deserialize;
use shop_kit::auth::{Principal, Role};
use shop_kit::{ApiError, ApiResult};
use tokio::sync::Mutex;

use super::sessions::{self, TokenPair};
use super::{UsersCtx, accounts};
use crate::entity::{identity, oidc_login, user};

/// How long a started login may take at the provider.
const LOGIN_TTL: Duration = Duration::from_secs(600);
/// Provider metadata and keys are fetched again after this long.
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// An ID token whose key we do not know refetches the keys, at most this often.
const METADATA_REFETCH_MIN: Duration = Duration::from_secs(30);

/// One configured provider (an entry of `SHOP_OIDC_PROVIDERS`).
#[derive(Clone, Debug, Deserialize)]
pub struct OidcProviderConfig {
    /// Our name for it, used in the API (`"acme"`); letters, digits, `-` and `_`.
    pub name: String,
    /// What a sign-in button shows; defaults to the name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// The issuer URL; discovery reads `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    /// Confidential clients only; public clients rely on PKCE alone.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Scopes asked for besides `openid`. Default `email profile`.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// When set, `redirectUri` must be one of these (the storefront's callback pages).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
}

fn default_scopes() -> Vec<String> {
    vec!["email".into(), "profile".into()]
}

impl OidcProviderConfig {
    pub fn display_name(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.name)
    }

    /// Checks what can be checked without the network.
    pub fn validate(&self) -> Result<(), String> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !name_ok {
            return Err(format!(
                "provider name {:?}: use 1 to 64 letters, digits, '-' or '_'",
                self.name
            ));
        }
        IssuerUrl::new(self.issuer.clone())
            .map_err(|e| format!("provider {}: issuer {:?}: {e}", self.name, self.issuer))?;
        if self.client_id.trim().is_empty() {
            return Err(format!("provider {}: client_id is empty", self.name));
        }
        for uri in &self.redirect_uris {
            RedirectUrl::new(uri.clone())
                .map_err(|e| format!("provider {}: redirect URI {uri:?}: {e}", self.name))?;
        }
        Ok(())
    }
}

/// The client `from_provider_metadata` gives: authorization URL set, token and userinfo
/// endpoints as the provider advertises them.
type DiscoveredClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The configured providers and what discovery told us about each.
pub struct OidcProviders {
    configs: Vec<OidcProviderConfig>,
    http: reqwest::Client,
    metadata: Mutex<HashMap<String, (Instant, CoreProviderMetadata)>>,
}

impl OidcProviders {
    pub fn new(configs: Vec<OidcProviderConfig>) -> Arc<Self> {
        let http = reqwest::Client::builder()
            // Following redirects from a provider's endpoints would let a compromised or
            // misconfigured provider point us anywhere (SSRF).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Arc::new(OidcProviders {
            configs,
            http,
            metadata: Mutex::new(HashMap::new()),
        })
    }

    pub fn configs(&self) -> &[OidcProviderConfig] {
        &self.configs
    }

    fn config(&self, name: &str) -> ApiResult<&OidcProviderConfig> {
        self.configs
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| ApiError::bad_input(format!("unknown sign-in provider {name:?}")))
    }

    /// The provider's metadata and keys: cached, fetched when older than an hour or when
    /// `refresh` asks (and the cache is older than 30 s).
    async fn metadata(
        &self,
        config: &OidcProviderConfig,
        refresh: bool,
    ) -> ApiResult<CoreProviderMetadata> {
        let mut cache = self.metadata.lock().await;
        if let Some((at, meta)) = cache.get(&config.name) {
            let age = at.elapsed();
            if age < METADATA_TTL && !(refresh && age >= METADATA_REFETCH_MIN) {
                return Ok(meta.clone());
            }
        }
        let issuer = IssuerUrl::new(config.issuer.clone())
            .map_err(|e| ApiError::Internal(format!("provider {}: issuer: {e}", config.name)))?;
        let meta = CoreProviderMetadata::discover_async(issuer, &self.client())
            .await
            .map_err(|e| {
                tracing::warn!(provider = %config.name, error = %error_chain(&e), "OpenID discovery failed");
                unavailable(config)
            })?;
        cache.insert(config.name.clone(), (Instant::now(), meta.clone()));
        Ok(meta)
    }

    fn client(&self) -> impl Fn(HttpRequest) -> HttpFuture + use<> {
        let http = self.http.clone();
        move |request| send(http.clone(), request)
    }

    async fn oidc_client(
        &self,
        config: &OidcProviderConfig,
        redirect_uri: &str,
        refresh: bool,
    ) -> ApiResult<DiscoveredClient> {
        let meta = self.metadata(config, refresh).await?;
        let redirect = RedirectUrl::new(redirect_uri.to_string())
            .map_err(|_| ApiError::bad_input("redirectUri is not a valid URL"))?;
        Ok(CoreClient::from_provider_metadata(
            meta,
            ClientId::new(config.client_id.clone()),
            config.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect))
    }
}

fn unavailable(config: &OidcProviderConfig) -> ApiError {
    ApiError::Unavailable(format!(
        "{} cannot be reached right now; try again later",
        config.display_name()
    ))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

type HttpFuture = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send>>;

/// Provider responses larger than this are refused (metadata, JWKS, tokens, userinfo
/// are all small).
const MAX_RESPONSE: usize = 1 << 20;

/// The `openidconnect` crate's HTTP interface over our reqwest client.
fn send(http: reqwest::Client, request: HttpRequest) -> HttpFuture {
    Box::pin(async move {
        let (parts, body) = request.into_parts();
        let mut response = http
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body)
            .send()
            .await
            .map_err(|e| HttpError(e.to_string()))?;
        let mut out = openidconnect::http::Response::builder().status(response.status());
        for (name, value) in response.headers() {
            out = out.header(name, value);
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| HttpError(e.to_string()))?
        {
            if bytes.len() + chunk.len() > MAX_RESPONSE {
                return Err(HttpError("response too large".into()));
            }
            bytes.extend_from_slice(&chunk);
        }
        out.body(bytes).map_err(|e| HttpError(e.to_string()))
    })
}

/// A provider as the API lists it.
pub struct ProviderInfo {
    pub name: String,
    pub display_name: String,
}

pub fn providers(ctx: &UsersCtx) -> Vec<ProviderInfo> {
    ctx.oidc
        .configs()
        .iter()
        .map(|c| ProviderInfo {
            name: c.name.clone(),
            display_name: c.display_name().to_string(),
        })
        .collect()
}

/// Where to send the browser, and the `state` the callback will carry.
pub struct Started {
    pub authorization_url: String,
    pub state: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// Starts a sign-in (`link_user: None`) or a link of the provider to a signed-in user.
pub async fn start(
    ctx: &UsersCtx,
    provider: &str,
    redirect_uri: &str,
    link_user: Option<&Principal>,
) -> ApiResult<Started> {
    let config = ctx.oidc.config(provider)?;
    let redirect_uri = redirect_uri.trim();
    if !config.redirect_uris.is_empty() && !config.redirect_uris.iter().any(|u| u == redirect_uri) {
        return Err(ApiError::bad_input(format!(
            "redirectUri {redirect_uri:?} is not registered for {}",
            config.display_name()
        )));
    }
    let link_user_id = match link_user {
        Some(p) => Some(accounts::find_live(&ctx.db, &p.user_id).await?.id),
        None => None,
    };
    let client = ctx.oidc.oidc_client(config, redirect_uri, false).await?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge);
    for scope in &config.scopes {
        request = request.add_scope(Scope::new(scope.clone()));
    }
    let (url, state, nonce) = request.url();

    let now = chrono::Utc::now();
    let expires_at = now + chrono::Duration::from_std(LOGIN_TTL).unwrap_or_default();
    // Abandoned logins would pile up; each start clears the expired ones.
    oidc_login::Entity::delete_many()
        .filter(oidc_login::Column::ExpiresAt.lt(now))
        .exec(&ctx.db)
        .await?;
    oidc_login::ActiveModel {
        state: Set(state.secret().clone()),
        provider: Set(config.name.clone()),
        nonce: Set(nonce.secret().clone()),
        pkce_verifier: Set(verifier.secret().clone()),
        redirect_uri: Set(redirect_uri.to_string()),
        link_user_id: Set(link_user_id),
        created_at: Set(now),
        expires_at: Set(expires_at),
    }
    .insert(&ctx.db)
    .await?;
    Ok(Started {
        authorization_url: url.to_string(),
        state: state.secret().clone(),
        expires_at,
    })
}

/// What the provider told us about the person, from the validated ID token and userinfo.
#[derive(Debug)]
struct Person {
    subject: String,
    email: Option<String>,
    email_verified: bool,
    name: Option<String>,
}

/// Claims the started login `state` names: once, and only before it expires.
async fn claim_login(ctx: &UsersCtx, state: &str) -> ApiResult<oidc_login::Model> {
    let invalid =
        || ApiError::bad_input("this sign-in has expired or was already used; start again");
    let state = state.trim();
    if state.is_empty() || state.len() > 64 {
        return Err(invalid());
    }
    let row = oidc_login::Entity::find_by_id(state.to_string())
        .one(&ctx.db)
        .await?
        .ok_or_else(invalid)?;
    // The delete is the claim: of two concurrent callbacks with one state only one
    // deletes the row.
    let deleted = oidc_login::Entity::delete_many()
        .filter(oidc_login::Column::State.eq(state))
        .exec(&ctx.db)
        .await?;
    if deleted.rows_affected != 1 || row.expires_at < chrono::Utc::now() {
        return Err(invalid());
    }
    Ok(row)
}

/// Exchanges the code and validates what comes back.
async fn exchange(ctx: &UsersCtx, login: &oidc_login::Model, code: &str) -> ApiResult<Person> {
    let config = ctx.oidc.config(&login.provider)?;
    let client = ctx
        .oidc
        .oidc_client(config, &login.redirect_uri, false)
        .await?;
    let http = ctx.oidc.client();
    let code = code.trim();
    if code.is_empty() || code.len() > 4096 {
        return Err(ApiError::bad_input("code is missing or malformed"));
    }
    let response = client
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .map_err(|_| unavailable(config))?
        .set_pkce_verifier(PkceCodeVerifier::new(login.pkce_verifier.clone()))
        .request_async(&http)
        .await
        .map_err(|e| {
            tracing::info!(provider = %config.name, error = %error_chain(&e), "code exchange refused");
            match e {
                openidconnect::RequestTokenError::ServerResponse(_) => ApiError::bad_input(
                    "the provider did not accept this sign-in code; start again",
                ),
                _ => unavailable(config),
            }
        })?;
    let id_token = response.id_token().ok_or_else(|| {
        ApiError::unauthenticated("the provider returned no ID token; it is not OpenID Connect")
    })?;
    let nonce = Nonce::new(login.nonce.clone());
    let verify = |client: &DiscoveredClient| {
        let verifier = client
            .id_token_verifier()
            .set_allowed_algs(asymmetric_algs());
        id_token.claims(&verifier, &nonce).cloned()
    };
    let claims = match verify(&client) {
        Ok(c) => c,
        // A key rotated since discovery: refetch the keys once and try again.
        Err(openidconnect::ClaimsVerificationError::SignatureVerification(_)) => {
            let fresh = ctx
                .oidc
                .oidc_client(config, &login.redirect_uri, true)
                .await?;
            verify(&fresh).map_err(|e| invalid_id_token(config, &e))?
        }
        Err(e) => return Err(invalid_id_token(config, &e)),
    };
    let mut person = Person {
        subject: claims.subject().to_string(),
        email: claims.email().map(|e| e.to_string()),
        email_verified: claims.email_verified().unwrap_or(false),
        name: claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.to_string()),
    };
    // Many providers keep e-mail and name out of the ID token; userinfo has them.
    if let Ok(request) = client.user_info(
        response.access_token().clone(),
        Some(SubjectIdentifier::new(person.subject.clone())),
    ) {
        let info: UserInfoClaims<EmptyAdditionalClaims, CoreGenderClaim> = request
            .request_async(&http)
            .await
            .map_err(|e| {
                tracing::warn!(provider = %config.name, error = %error_chain(&e), "userinfo failed");
                unavailable(config)
            })?;
        if person.email.is_none()
            && let Some(email) = info.email()
        {
            person.email = Some(email.to_string());
            person.email_verified = info.email_verified().unwrap_or(false);
        }
        if person.name.is_none() {
            person.name = info
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.to_string())
                .or_else(|| {
                    let given = info.given_name().and_then(|n| n.get(None))?;
                    let family = info.family_name().and_then(|n| n.get(None));
                    Some(match family {
                        Some(f) => format!("{} {}", given.as_str(), f.as_str()),
                        None => given.to_string(),
                    })
                });
        }
    }
    Ok(person)
}

fn asymmetric_algs() -> Vec<CoreJwsSigningAlgorithm> {
    use CoreJwsSigningAlgorithm as A;
    // The same allow-list as our token verifier: no `none`, no shared-secret HMAC.
    vec![
        A::RsaSsaPkcs1V15Sha256,
        A::RsaSsaPkcs1V15Sha384,
        A::RsaSsaPkcs1V15Sha512,
        A::RsaSsaPssSha256,
        A::RsaSsaPssSha384,
        A::RsaSsaPssSha512,
        A::EcdsaP256Sha256,
        A::EcdsaP384Sha384,
        A::EdDsa,
    ]
}

fn invalid_id_token(
    config: &OidcProviderConfig,
    e: &openidconnect::ClaimsVerificationError,
) -> ApiError {
    tracing::warn!(provider = %config.name, error = %e, "ID token refused");
    ApiError::unauthenticated(format!(
        "the ID token from {} failed validation; start again",
        config.display_name()
    ))
}

/// Finishes a sign-in started by `start(…, None)`: our token pair for the person.
pub async fn complete_login(ctx: &UsersCtx, code: &str, state: &str) -> ApiResult<TokenPair> {
    let login = claim_login(ctx, state).await?;
    if login.link_user_id.is_some() {
        return Err(ApiError::bad_input(
            "this state belongs to linking a provider; finish it with completeOidcLink",
        ));
    }
    let person = exchange(ctx, &login, code).await?;
    let user = match linked_user(ctx, &login.provider, &person.subject).await? {
        Some(user) => user,
        None => first_login(ctx, &login.provider, &person).await?,
    };
    if user.disabled {
        return Err(ApiError::forbidden(
            "this account is disabled; contact support",
        ));
    }
    sessions::start(ctx, &user).await
}

/// The live account this provider identity belongs to.
async fn linked_user(
    ctx: &UsersCtx,
    provider: &str,
    subject: &str,
) -> ApiResult<Option<user::Model>> {
    let Some(link) = identity::Entity::find()
        .filter(identity::Column::Provider.eq(provider))
        .filter(identity::Column::Subject.eq(subject))
        .one(&ctx.db)
        .await?
    else {
        return Ok(None);
    };
    Ok(user::Entity::find_by_id(link.user_id)
        .one(&ctx.db)
        .await?
        .filter(|u| u.deleted_at.is_none()))
}

/// Creates the account for a person's first sign-in through `provider`.
async fn first_login(ctx: &UsersCtx, provider: &str, person: &Person) -> ApiResult<user::Model> {
    let email = person.email.as_deref().ok_or_else(|| {
        ApiError::bad_input(
            "the provider did not share an e-mail address; allow it (scope `email`) and try again",
        )
    })?;
    let email = shop_kit::input::email("email", email)?;
    let name = person
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| email.split('@').next().unwrap_or("Customer"));
    let name: String = name.chars().take(200).collect();
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    // An existing account with this address is not taken over by whoever controls the
    // provider account: its owner signs in with the password and links the provider.
    let user = accounts::create(
        ctx,
        &txn,
        &email,
        None,
        &name,
        &[Role::Customer],
        person.email_verified,
    )
    .await
    .map_err(|e| match e {
        ApiError::Conflict(_) => ApiError::conflict(format!(
            "an account with the e-mail address {email} already exists; sign in with its \
             password and link this provider from your profile"
        )),
        other => other,
    })?;
    insert_identity(&txn, &user.id, provider, person).await?;
    if !person.email_verified {
        accounts::send_verification(ctx, &txn, &user).await?;
    }
    txn.commit().await?;
    ctx.outbox.wake();
    Ok(user)
}

async fn insert_identity<C: ConnectionTrait>(
    conn: &C,
    user_id: &str,
    provider: &str,
    person: &Person,
) -> ApiResult<()> {
    identity::ActiveModel {
        id: Set(shop_kit::ids::new_id()),
        user_id: Set(user_id.to_string()),
        provider: Set(provider.to_string()),
        subject: Set(person.subject.clone()),
        email: Set(person.email.clone()),
        created_at: Set(chrono::Utc::now()),
    }
    .insert(conn)
    .await
    .map_err(ApiError::from)
    .map_err(|e| match e {
        ApiError::Conflict(_) => {
            ApiError::conflict("this provider account is already linked to another account of ours")
        }
        other => other,
    })?;
    Ok(())
}

/// Finishes a link started by `start(…, Some(p))`; only the user who started it may.
pub async fn complete_link(
    ctx: &UsersCtx,
    p: &Principal,
    code: &str,
    state: &str,
) -> ApiResult<user::Model> {
    let login = claim_login(ctx, state).await?;
    // A link started by someone else must not attach their provider account to ours
    // (a forged callback would otherwise let them sign in as us).
    if login.link_user_id.as_deref() != Some(p.user_id.as_str()) {
        return Err(ApiError::forbidden(
            "this link was started by another sign-in; start it again from your profile",
        ));
    }
    let person = exchange(ctx, &login, code).await?;
    let user = accounts::find_live(&ctx.db, &p.user_id).await?;
    if let Some(existing) = linked_user(ctx, &login.provider, &person.subject).await? {
        if existing.id == user.id {
            return Ok(user);
        }
        return Err(ApiError::conflict(
            "this provider account is already linked to another account of ours",
        ));
    }
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    insert_identity(&txn, &user.id, &login.provider, &person).await?;
    ctx.outbox
        .write(
            &txn,
            "users.provider_linked",
            &user.id,
            serde_json::json!({ "userId": user.id, "provider": login.provider }),
        )
        .await?;
    txn.commit().await?;
    ctx.outbox.wake();
    Ok(user)
}

/// The providers linked to an account, oldest first.
pub async fn linked<C: ConnectionTrait>(
    conn: &C,
    user_id: &str,
) -> ApiResult<Vec<identity::Model>> {
    Ok(identity::Entity::find()
        .filter(identity::Column::UserId.eq(user_id))
        .order_by_asc(identity::Column::CreatedAt)
        .order_by_asc(identity::Column::Id)
        .all(conn)
        .await?)
}

/// Removes a provider from the signed-in user's account, unless it is their only way in.
pub async fn unlink(ctx: &UsersCtx, p: &Principal, provider: &str) -> ApiResult<user::Model> {
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let user = accounts::find_live(&txn, &p.user_id).await?;
    let links = identity::Entity::find()
        .filter(identity::Column::UserId.eq(&user.id))
        .count(&txn)
        .await?;
    let found = identity::Entity::find()
        .filter(identity::Column::UserId.eq(&user.id))
        .filter(identity::Column::Provider.eq(provider))
        .all(&txn)
        .await?;
    if found.is_empty() {
        return Err(ApiError::not_found(format!(
            "{provider:?} is not linked to this account"
        )));
    }
    if user.password_hash.is_none() && links <= found.len() as u64 {
        return Err(ApiError::conflict(
            "this is the only way to sign in to this account; set a password (through \
             requestPasswordReset) or link another provider first",
        ));
    }
    identity::Entity::delete_many()
        .filter(identity::Column::UserId.eq(&user.id))
        .filter(identity::Column::Provider.eq(provider))
        .exec(&txn)
        .await?;
    ctx.outbox
        .write(
            &txn,
            "users.provider_unlinked",
            &user.id,
            serde_json::json!({ "userId": user.id, "provider": provider }),
        )
        .await?;
    txn.commit().await?;
    ctx.outbox.wake();
    Ok(user)
}
