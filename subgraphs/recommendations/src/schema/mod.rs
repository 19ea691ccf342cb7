//! `Product.alsoBought` and `trendingProducts`.

use async_graphql::{Context, ID, Object, Result};
use shop_kit::ApiError;
use shop_kit::auth::caller;

use crate::service::{self, RecsCtx, personal};

fn products(ids: Vec<String>) -> Vec<Product> {
    ids.into_iter().map(|id| Product { id }).collect()
}

/// Recommendations' part of a user.
pub struct User {
    pub id: String,
}

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.id.clone())
    }
    /// For the user (or an admin): products bought with what they bought and looked
    /// at lately, none they own, then what is trending (1 to 50).
    async fn recommended_products(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] first: i32,
    ) -> Result<Vec<Product>> {
        let p = caller(ctx).require()?.clone();
        if p.user_id != self.id && !p.is_admin() {
            return Err(
                ApiError::forbidden("recommendations are for their user (or an admin)").into(),
            );
        }
        let svc = ctx.data::<RecsCtx>()?;
        Ok(products(personal::recommended(svc, &self.id, first).await?))
    }
}

/// Recommendations' part of a product.
pub struct Product {
    pub id: String,
}

#[Object]
impl Product {
    async fn id(&self) -> ID {
        ID(self.id.clone())
    }
    /// What shoppers who bought this also bought (1 to 50), most telling first:
    /// bought together often relative to how often each sells. Only what is in stock
    /// and on sale.
    async fn also_bought(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] first: i32,
    ) -> Result<Vec<Product>> {
        let svc = ctx.data::<RecsCtx>()?;
        Ok(service::also_bought(svc, &self.id, first)
            .await?
            .into_iter()
            .map(|id| Product { id })
            .collect())
    }
}

pub struct QueryRoot;

#[Object(name = "Query")]
impl QueryRoot {
    /// What sells most lately (each sale counting half as much a week later), in stock
    /// and on sale: for shoppers nothing is known about yet.
    async fn trending_products(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] first: i32,
    ) -> Result<Vec<Product>> {
        let svc = ctx.data::<RecsCtx>()?;
        Ok(service::trending(svc, first)
            .await?
            .into_iter()
            .map(|id| Product { id })
            .collect())
    }

    /// For you when signed in (see `User.recommendedProducts`); trending products for
    /// anyone else.
    async fn recommended_products(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] first: i32,
    ) -> Result<Vec<Product>> {
        let svc = ctx.data::<RecsCtx>()?;
        let c = caller(ctx);
        Ok(products(match &c.0 {
            Some(p) => personal::recommended(svc, &p.user_id, first).await?,
            None => service::trending(svc, first).await?,
        }))
    }

    #[graphql(entity)]
    async fn find_product_by_id(&self, id: ID) -> Product {
        Product { id: id.0 }
    }

    #[graphql(entity)]
    async fn find_user_by_id(&self, id: ID) -> User {
        User { id: id.0 }
    }
}

pub struct MutationRoot;

#[Object(name = "Mutation")]
impl MutationRoot {
    /// The storefront tells that you looked at a product (your recommendations
    /// follow; the latest 200 views are kept).
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn record_product_view(&self, ctx: &Context<'_>, product_id: ID) -> Result<bool> {
        let svc = ctx.data::<RecsCtx>()?;
        let user = caller(ctx).require()?.user_id.clone();
        personal::viewed(svc, &user, &product_id).await?;
        Ok(true)
    }
}
