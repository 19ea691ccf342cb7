use async_graphql::{Context, ID, Object, Result};
use shop_kit::auth::{Role, caller};
use shop_kit::pagination::{PageArgs, Paged};

use super::types::{OidcProvider, User};
use crate::service::{UsersCtx, accounts, admin, oidc};

/// Scope of the services that may read a buyer's contact details (orders).
pub const CONTACT_SCOPE: &str = "users:contact";

/// A buyer's name and e-mail address, as orders keeps them with an order.
#[derive(async_graphql::SimpleObject)]
#[graphql(inaccessible)]
pub struct BuyerContact {
    pub name: String,
    pub email: String,
}

/// A saved address, as orders ships to it.
#[derive(async_graphql::SimpleObject)]
#[graphql(inaccessible)]
pub struct BuyerAddress {
    pub name: String,
    pub line1: String,
    pub line2: String,
    pub city: String,
    pub postal_code: String,
    pub region: String,
    pub country: String,
    pub phone: Option<String>,
}

pub struct QueryRoot;

#[Object(name = "Query")]
impl QueryRoot {
    /// The signed-in user; null when anonymous.
    async fn me(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        let Some(p) = caller(ctx).0 else {
            return Ok(None);
        };
        let svc = ctx.data::<UsersCtx>()?;
        match accounts::find_live(&svc.db, &p.user_id).await {
            Ok(u) => Ok(Some(User::new(u))),
            // A valid token of an account deleted since, or of another issuer's user
            // who never signed in here.
            Err(shop_kit::ApiError::NotFound(_) | shop_kit::ApiError::BadUserInput(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The OpenID Connect providers configured for sign-in.
    async fn oidc_providers(&self, ctx: &Context<'_>) -> Result<Vec<OidcProvider>> {
        let svc = ctx.data::<UsersCtx>()?;
        Ok(oidc::providers(svc).into_iter().map(Into::into).collect())
    }

    /// Admin: one account by id.
    #[graphql(requires_scopes = "users:admin")]
    async fn user(&self, ctx: &Context<'_>, id: ID) -> Result<Option<User>> {
        admin::require_admin(caller(ctx).require()?)?;
        let svc = ctx.data::<UsersCtx>()?;
        match accounts::find_live(&svc.db, &id).await {
            Ok(u) => Ok(Some(User::new(u))),
            Err(shop_kit::ApiError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Admin: accounts by e-mail, matching `search` in e-mail or name and `role`.
    #[graphql(requires_scopes = "users:admin")]
    #[allow(clippy::too_many_arguments)]
    async fn users(
        &self,
        ctx: &Context<'_>,
        search: Option<String>,
        role: Option<Role>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Paged<User>> {
        admin::require_admin(caller(ctx).require()?)?;
        let svc = ctx.data::<UsersCtx>()?;
        let args = PageArgs {
            first,
            after,
            last,
            before,
        };
        args.validate()?;
        let filter = admin::UserFilter { search, role };
        let total = admin::count(svc, &filter).await?;
        let window = args.window(total)?;
        let rows = admin::page(svc, &filter, window).await?;
        Ok(window.connection(rows.into_iter().map(User::new).collect()))
    }

    /// Internal: how to reach a buyer (name and e-mail), for the order they place.
    #[graphql(inaccessible)]
    async fn buyer_contact(
        &self,
        ctx: &Context<'_>,
        user_id: String,
    ) -> Result<Option<BuyerContact>> {
        shop_kit::internal::require_service(&caller(ctx), CONTACT_SCOPE)?;
        let svc = ctx.data::<UsersCtx>()?;
        match accounts::find_live(&svc.db, &user_id).await {
            Ok(u) => Ok(Some(BuyerContact {
                name: u.name,
                email: u.email,
            })),
            Err(shop_kit::ApiError::NotFound(_) | shop_kit::ApiError::BadUserInput(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Internal: one of the buyer's saved addresses, to ship an order to; null when the
    /// user has no address with this id.
    #[graphql(inaccessible)]
    async fn buyer_address(
        &self,
        ctx: &Context<'_>,
        user_id: String,
        address_id: String,
    ) -> Result<Option<BuyerAddress>> {
        shop_kit::internal::require_service(&caller(ctx), CONTACT_SCOPE)?;
        let svc = ctx.data::<UsersCtx>()?;
        if !shop_kit::ids::is_valid_id(&address_id) {
            return Ok(None);
        }
        use sea_orm::EntityTrait;
        Ok(crate::entity::address::Entity::find_by_id(address_id)
            .one(&svc.db)
            .await
            .map_err(shop_kit::ApiError::from)?
            .filter(|a| a.user_id == user_id)
            .map(|a| BuyerAddress {
                name: a.name,
                line1: a.line1,
                line2: a.line2,
                city: a.city,
                postal_code: a.postal_code,
                region: a.region,
                country: a.country,
                phone: a.phone,
            }))
    }

    #[graphql(entity)]
    async fn find_user_by_id(&self, ctx: &Context<'_>, id: ID) -> Result<Option<User>> {
        let svc = ctx.data::<UsersCtx>()?;
        if !shop_kit::ids::is_valid_id(&id) {
            return Ok(None);
        }
        // Deleted accounts still resolve (anonymised), so old references render.
        use sea_orm::EntityTrait;
        Ok(crate::entity::user::Entity::find_by_id(id.0)
            .one(&svc.db)
            .await
            .map_err(shop_kit::ApiError::from)?
            .map(User::new))
    }
}
