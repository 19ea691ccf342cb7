use async_graphql::{Context, ID, Object, Result};
use shop_kit::auth::{Role, caller};
use shop_kit::server::ClientAddr;

use super::inputs::{AddressInput, CreateUserInput, ProfileInput, RegisterInput};
use super::types::{Address, AuthPayload, OidcAuthorization, User};
use crate::service::{UsersCtx, accounts, addresses, admin, oidc, sessions};

pub struct MutationRoot;

fn client(ctx: &Context<'_>) -> ClientAddr {
    ctx.data_opt::<ClientAddr>().cloned().unwrap_or_default()
}

/// What `register` answers, alike for a new account and a taken address.
#[derive(async_graphql::SimpleObject)]
pub struct Registration {
    pub email: String,
    pub message: String,
}

#[Object(name = "Mutation")]
impl MutationRoot {
    /// Creates a customer account and mails a link to verify the address; sign in with
    /// the password to go on. The answer is the same when the address already has an
    /// account (its owner is mailed instead), so nobody learns who is a customer here.
    async fn register(&self, ctx: &Context<'_>, input: RegisterInput) -> Result<Registration> {
        let svc = ctx.data::<UsersCtx>()?;
        let email = input.email.trim().to_lowercase();
        accounts::register(
            svc,
            accounts::Registration {
                email: input.email,
                password: input.password,
                name: input.name,
            },
        )
        .await?;
        Ok(Registration {
            message: format!(
                "We sent a mail to {email}: follow its link to confirm the address. If you \
                 already have an account, the mail says how to sign in."
            ),
            email,
        })
    }

    /// Marks the e-mail address verified, with the token from the verification link.
    async fn verify_email(&self, ctx: &Context<'_>, token: String) -> Result<User> {
        let svc = ctx.data::<UsersCtx>()?;
        Ok(User::for_owner(accounts::verify_email(svc, &token).await?))
    }

    /// Sends a new verification link to the signed-in user.
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn resend_verification_email(&self, ctx: &Context<'_>) -> Result<bool> {
        let svc = ctx.data::<UsersCtx>()?;
        accounts::resend_verification(svc, caller(ctx).require()?).await?;
        Ok(true)
    }

    /// Signs in with e-mail and password.
    async fn login(
        &self,
        ctx: &Context<'_>,
        email: String,
        #[graphql(secret)] password: String,
    ) -> Result<AuthPayload> {
        let svc = ctx.data::<UsersCtx>()?;
        Ok(accounts::login(svc, &email, &password, &client(ctx))
            .await?
            .into())
    }

    /// Starts signing in with an OpenID Connect provider: returns the provider's
    /// authorization URL for `redirectUri` (authorization code flow with PKCE). A
    /// mutation, not a query, because it stores the login's state, nonce and verifier.
    async fn start_oidc_login(
        &self,
        ctx: &Context<'_>,
        provider: String,
        redirect_uri: String,
    ) -> Result<OidcAuthorization> {
        let svc = ctx.data::<UsersCtx>()?;
        Ok(oidc::start(svc, &provider, &redirect_uri, None)
            .await?
            .into())
    }

    /// Finishes a provider sign-in with the `code` and `state` the provider sent to the
    /// redirect URI. The first sign-in creates the account (e-mail verified when the
    /// provider says it is).
    async fn complete_oidc_login(
        &self,
        ctx: &Context<'_>,
        #[graphql(secret)] code: String,
        state: String,
    ) -> Result<AuthPayload> {
        let svc = ctx.data::<UsersCtx>()?;
        Ok(oidc::complete_login(svc, &code, &state).await?.into())
    }

    /// Starts linking a provider to the signed-in account.
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn start_oidc_link(
        &self,
        ctx: &Context<'_>,
        provider: String,
        redirect_uri: String,
    ) -> Result<OidcAuthorization> {
        let svc = ctx.data::<UsersCtx>()?;
        let c = caller(ctx);
        let p = c.require()?;
        Ok(oidc::start(svc, &provider, &redirect_uri, Some(p))
            .await?
            .into())
    }

    /// Finishes linking a provider; only the user who started the link may.
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn complete_oidc_link(
        &self,
        ctx: &Context<'_>,
        #[graphql(secret)] code: String,
        state: String,
    ) -> Result<User> {
        let svc = ctx.data::<UsersCtx>()?;
        let c = caller(ctx);
        let p = c.require()?;
        Ok(User::new(oidc::complete_link(svc, p, &code, &state).await?))
    }

    /// Removes a linked provider. Refused (CONFLICT) when it is the account's only way
    /// to sign in.
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn unlink_oidc_provider(&self, ctx: &Context<'_>, provider: String) -> Result<User> {
        let svc = ctx.data::<UsersCtx>()?;
        let c = caller(ctx);
        let p = c.require()?;
        Ok(User::new(oidc::unlink(svc, p, &provider).await?))
    }

    /// Exchanges a refresh token for a new access and refresh token. Each refresh token
    /// works once; presenting a used one signs out every session of that sign-in.
    async fn refresh_session(
        &self,
        ctx: &Context<'_>,
        #[graphql(secret)] refresh_token: String,
    ) -> Result<AuthPayload> {
        let svc = ctx.data::<UsersCtx>()?;
        Ok(sessions::refresh(svc, &refresh_token).await?.into())
    }

    /// Ends the session the refresh token belongs to.
    async fn logout(
        &self,
        ctx: &Context<'_>,
        #[graphql(secret)] refresh_token: String,
    ) -> Result<bool> {
        let svc = ctx.data::<UsersCtx>()?;
        sessions::logout(svc, &refresh_token).await?;
        Ok(true)
    }

    /// Ends every session of the signed-in user.
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn logout_everywhere(&self, ctx: &Context<'_>) -> Result<bool> {
        let svc = ctx.data::<UsersCtx>()?;
        let c = caller(ctx);
        sessions::revoke_all(&svc.db, &c.require()?.user_id).await?;
        Ok(true)
    }

    /// Sends a password reset link if an account with this address exists. The answer
    /// is `true` either way.
    async fn request_password_reset(&self, ctx: &Context<'_>, email: String) -> Result<bool> {
        let svc = ctx.data::<UsersCtx>()?;
        accounts::request_password_reset(svc, &email, &client(ctx)).await?;
        Ok(true)
    }

    /// Sets a new password with the token from a reset link; every session ends.
    async fn reset_password(
        &self,
        ctx: &Context<'_>,
        #[graphql(secret)] token: String,
        #[graphql(secret)] new_password: String,
    ) -> Result<bool> {
        let svc = ctx.data::<UsersCtx>()?;
        accounts::reset_password(svc, &token, &new_password).await?;
        Ok(true)
    }

    /// Changes the signed-in user's password; every session ends (sign in again).
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        #[graphql(secret, default)] current_password: String,
        #[graphql(secret)] new_password: String,
    ) -> Result<bool> {
        let svc = ctx.data::<UsersCtx>()?;
        accounts::change_password(
            svc,
            caller(ctx).require()?,
            &current_password,
            &new_password,
        )
        .await?;
        Ok(true)
    }

    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn update_profile(&self, ctx: &Context<'_>, input: ProfileInput) -> Result<User> {
        let svc = ctx.data::<UsersCtx>()?;
        let user = accounts::update_profile(
            svc,
            caller(ctx).require()?,
            accounts::ProfileUpdate {
                name: input.name,
                phone: input.phone,
            },
        )
        .await?;
        Ok(User::new(user))
    }

    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn add_address(&self, ctx: &Context<'_>, input: AddressInput) -> Result<Address> {
        let svc = ctx.data::<UsersCtx>()?;
        Ok(Address(
            addresses::add(svc, caller(ctx).require()?, input.into()).await?,
        ))
    }

    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn update_address(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: AddressInput,
    ) -> Result<Address> {
        let svc = ctx.data::<UsersCtx>()?;
        Ok(Address(
            addresses::update(svc, caller(ctx).require()?, &id, input.into()).await?,
        ))
    }

    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn remove_address(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let svc = ctx.data::<UsersCtx>()?;
        addresses::remove(svc, caller(ctx).require()?, &id).await?;
        Ok(true)
    }

    /// Deletes the signed-in user's account: personal data is erased, orders stay
    /// (anonymised). The password confirms it when the account has one.
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn delete_account(
        &self,
        ctx: &Context<'_>,
        #[graphql(secret, default)] password: String,
    ) -> Result<bool> {
        let svc = ctx.data::<UsersCtx>()?;
        accounts::delete_own_account(svc, caller(ctx).require()?, &password).await?;
        Ok(true)
    }

    /// Admin: creates an account with the given roles.
    #[graphql(requires_scopes = "users:admin")]
    async fn create_user(&self, ctx: &Context<'_>, input: CreateUserInput) -> Result<User> {
        admin::require_admin(caller(ctx).require()?)?;
        let svc = ctx.data::<UsersCtx>()?;
        let user = admin::create_user(
            svc,
            admin::NewUser {
                email: input.email,
                name: input.name,
                password: input.password,
                roles: input.roles,
            },
        )
        .await?;
        Ok(User::new(user))
    }

    /// Admin: deletes an account (erases its personal data).
    #[graphql(requires_scopes = "users:admin")]
    async fn delete_user(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        admin::require_admin(caller(ctx).require()?)?;
        admin::delete_user(ctx.data::<UsersCtx>()?, &id).await?;
        Ok(true)
    }

    /// Admin: replaces an account's roles; its sessions end so new tokens carry them.
    #[graphql(requires_scopes = "users:admin")]
    async fn set_user_roles(&self, ctx: &Context<'_>, id: ID, roles: Vec<Role>) -> Result<User> {
        admin::require_admin(caller(ctx).require()?)?;
        Ok(User::new(
            admin::set_roles(ctx.data::<UsersCtx>()?, &id, &roles).await?,
        ))
    }

    /// Admin: disables (no sign-in, sessions end) or re-enables an account.
    #[graphql(requires_scopes = "users:admin")]
    async fn set_user_disabled(&self, ctx: &Context<'_>, id: ID, disabled: bool) -> Result<User> {
        admin::require_admin(caller(ctx).require()?)?;
        Ok(User::new(
            admin::set_disabled(ctx.data::<UsersCtx>()?, &id, disabled).await?,
        ))
    }
}
