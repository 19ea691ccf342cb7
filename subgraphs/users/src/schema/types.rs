use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use shop_kit::ApiError;
use shop_kit::auth::{Role, caller};

use crate::entity::{address, identity, user};
use crate::service::{UsersCtx, addresses, oidc, sessions};

/// An account. `id` and `name` are public (a review shows its author); the rest only
/// to the account's owner and admins.
pub struct User {
    pub model: user::Model,
    /// Set where the caller just proved they own the account (registration, sign-in,
    /// verification) though the request carries no token for it yet.
    pub owner_view: bool,
}

impl User {
    pub fn new(model: user::Model) -> User {
        User {
            model,
            owner_view: false,
        }
    }

    pub fn for_owner(model: user::Model) -> User {
        User {
            model,
            owner_view: true,
        }
    }

    fn private(&self, ctx: &Context<'_>) -> Result<()> {
        if self.owner_view {
            return Ok(());
        }
        let c = caller(ctx);
        match c.0.as_ref() {
            Some(p) if p.user_id == self.model.id || p.is_admin() => Ok(()),
            Some(_) => Err(ApiError::forbidden(
                "only the account's owner or an admin may see this field",
            )
            .into()),
            None => Err(ApiError::unauthenticated("sign in to see this field").into()),
        }
    }
}

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.model.id.clone())
    }
    async fn name(&self) -> &str {
        &self.model.name
    }
    async fn email(&self, ctx: &Context<'_>) -> Result<&str> {
        self.private(ctx)?;
        Ok(&self.model.email)
    }
    async fn email_verified(&self, ctx: &Context<'_>) -> Result<bool> {
        self.private(ctx)?;
        Ok(self.model.email_verified)
    }
    async fn phone(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        self.private(ctx)?;
        Ok(self.model.phone.as_deref())
    }
    async fn roles(&self, ctx: &Context<'_>) -> Result<Vec<Role>> {
        self.private(ctx)?;
        Ok(self.model.role_list())
    }
    /// A disabled account cannot sign in.
    async fn disabled(&self, ctx: &Context<'_>) -> Result<bool> {
        self.private(ctx)?;
        Ok(self.model.disabled)
    }
    /// Whether the account can sign in with a password (accounts made through a provider
    /// may not have one).
    async fn has_password(&self, ctx: &Context<'_>) -> Result<bool> {
        self.private(ctx)?;
        Ok(self.model.password_hash.is_some())
    }
    async fn addresses(&self, ctx: &Context<'_>) -> Result<Vec<Address>> {
        self.private(ctx)?;
        let svc = ctx.data::<UsersCtx>()?;
        Ok(addresses::list(&svc.db, &self.model.id)
            .await?
            .into_iter()
            .map(Address)
            .collect())
    }
    /// How many signed-in sessions (devices) the account has now.
    async fn active_sessions(&self, ctx: &Context<'_>) -> Result<u64> {
        self.private(ctx)?;
        let svc = ctx.data::<UsersCtx>()?;
        Ok(sessions::active_count(svc, &self.model.id).await?)
    }
    /// The OpenID Connect providers this account can sign in with.
    async fn linked_providers(&self, ctx: &Context<'_>) -> Result<Vec<LinkedProvider>> {
        self.private(ctx)?;
        let svc = ctx.data::<UsersCtx>()?;
        Ok(oidc::linked(&svc.db, &self.model.id)
            .await?
            .into_iter()
            .map(LinkedProvider)
            .collect())
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.model.created_at
    }
}

/// A provider account linked to one of ours.
pub struct LinkedProvider(pub identity::Model);

#[Object]
impl LinkedProvider {
    /// The provider's configured name (as in `oidcProviders`).
    async fn provider(&self) -> &str {
        &self.0.provider
    }
    /// The e-mail address the provider gave when it was linked.
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }
    async fn linked_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A configured OpenID Connect provider people can sign in with.
#[derive(SimpleObject)]
pub struct OidcProvider {
    /// Pass this as `provider`.
    pub name: String,
    /// What the sign-in button says.
    pub display_name: String,
}

impl From<oidc::ProviderInfo> for OidcProvider {
    fn from(p: oidc::ProviderInfo) -> Self {
        OidcProvider {
            name: p.name,
            display_name: p.display_name,
        }
    }
}

/// A started provider sign-in: send the browser to `authorizationUrl`; the provider
/// sends it back to the redirect URI with `code` and `state`, which go to
/// `completeOidcLogin` (or `completeOidcLink`).
#[derive(SimpleObject)]
pub struct OidcAuthorization {
    pub authorization_url: String,
    /// Also in the URL; lets the client match the callback to this start.
    pub state: String,
    /// The callback must arrive before this.
    pub expires_at: DateTime<Utc>,
}

impl From<oidc::Started> for OidcAuthorization {
    fn from(s: oidc::Started) -> Self {
        OidcAuthorization {
            authorization_url: s.authorization_url,
            state: s.state,
            expires_at: s.expires_at,
        }
    }
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum AddressKind {
    Shipping,
    Billing,
}

impl AddressKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AddressKind::Shipping => "SHIPPING",
            AddressKind::Billing => "BILLING",
        }
    }
}

pub struct Address(pub address::Model);

#[Object]
impl Address {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn kind(&self) -> AddressKind {
        if self.0.kind == "BILLING" {
            AddressKind::Billing
        } else {
            AddressKind::Shipping
        }
    }
    /// The recipient.
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn line1(&self) -> &str {
        &self.0.line1
    }
    async fn line2(&self) -> &str {
        &self.0.line2
    }
    async fn city(&self) -> &str {
        &self.0.city
    }
    async fn postal_code(&self) -> &str {
        &self.0.postal_code
    }
    async fn region(&self) -> &str {
        &self.0.region
    }
    /// ISO 3166-1 alpha-2.
    async fn country(&self) -> &str {
        &self.0.country
    }
    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }
    /// The default address of its kind.
    async fn is_default(&self) -> bool {
        self.0.is_default
    }
}

/// A signed-in session: send `accessToken` as `Authorization: Bearer …`; exchange
/// `refreshToken` with `refreshSession` before `expiresIn` seconds have passed.
#[derive(SimpleObject)]
pub struct AuthPayload {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    pub expires_in: i32,
    pub refresh_token: String,
    pub user: User,
}

impl From<sessions::TokenPair> for AuthPayload {
    fn from(p: sessions::TokenPair) -> Self {
        AuthPayload {
            access_token: p.access_token,
            token_type: "Bearer".into(),
            expires_in: i32::try_from(p.expires_in.as_secs()).unwrap_or(i32::MAX),
            refresh_token: p.refresh_token,
            user: User::for_owner(p.user),
        }
    }
}
