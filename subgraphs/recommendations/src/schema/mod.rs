//! `Product.alsoBought` and `trendingProducts`.

use async_graphql::{Context, ID, Object, Result};
use shop_kit::ApiError;
use shop_kit::auth::caller;

use crate::service::{self, RecsCtx, personal};

mod cart;

pub use cart::Cart;

fn products(ids: Vec<String>) -> Vec<Product> {
    ids.into_iter().map(|id| Product { id }).collect()
}

/// Recommendations' part of a user.
pub struct User {
    pub id: String,
    /// The products in the user's cart (the `@requires` selection).
    pub cart: Option<cart::RequiredCart>,
}

impl User {
    fn cart_products(&self) -> Vec<String> {
        self.cart
            .iter()
            .flat_map(|c| c.lines.iter())
            .map(|l| l.product_id.0.clone())
            .collect()
    }
}

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.id.clone())
    }
    #[graphql(external)]
    async fn cart(&self) -> Option<Cart> {
        self.cart.as_ref().map(|c| Cart {
            id: ID::default(),
            lines: Some(c.lines.clone()),
        })
    }

    /// For the user (or an admin): products bought with what is in their cart and
    /// what they bought and looked at lately, none they own or have in the cart, then
    /// what is trending (1 to 50).
    #[graphql(requires = "cart { lines { productId } }")]
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
        Ok(products(
            personal::recommended(svc, &self.id, &self.cart_products(), first).await?,
        ))
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
    /// Products like this one (1 to 50), most alike first: the same category, with
    /// the most attributes in common and the closest price. Only what is in stock and
    /// on sale.
    async fn similar(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] first: i32,
    ) -> Result<Vec<Product>> {
        let svc = ctx.data::<RecsCtx>()?;
        Ok(products(
            service::similar::similar(svc, &self.id, first).await?,
        ))
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

    /// For you when signed in, from what you bought and looked at (`me {
    /// recommendedProducts }` counts your cart too); trending products for anyone
    /// else.
    async fn recommended_products(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] first: i32,
    ) -> Result<Vec<Product>> {
        let svc = ctx.data::<RecsCtx>()?;
        let c = caller(ctx);
        Ok(products(match &c.0 {
            Some(p) => personal::recommended(svc, &p.user_id, &[], first).await?,
            None => service::trending(svc, first).await?,
        }))
    }

    #[graphql(entity)]
    async fn find_product_by_id(&self, id: ID) -> Product {
        Product { id: id.0 }
    }

    #[graphql(entity)]
    async fn find_cart_by_id(
        &self,
        #[graphql(key)] id: ID,
        lines: Option<Vec<cart::RequiredLine>>,
    ) -> Cart {
        Cart { id, lines }
    }

    #[graphql(entity)]
    async fn find_user_by_id(
        &self,
        #[graphql(key)] id: ID,
        cart: Option<cart::RequiredCart>,
    ) -> User {
        User { id: id.0, cart }
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
