//! `Cart.suggestions`: what goes with the cart. Its lines come from the carts subgraph
//! through `@requires`, so anonymous carts get suggestions too and nothing of a cart is
//! stored here.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};

use super::{Product, products};
use crate::service::{self, RecsCtx};

/// A cart line as the gateway passes it in (the `@requires` selection).
#[derive(InputObject, Clone, Debug)]
#[graphql(name = "CartLineRepresentation")]
pub struct RequiredLine {
    pub product_id: ID,
}

/// A user's cart as the gateway passes it in (`User.recommendedProducts`'s
/// `@requires`).
#[derive(InputObject, Clone, Debug)]
#[graphql(name = "CartRepresentation")]
pub struct RequiredCart {
    pub lines: Vec<RequiredLine>,
}

/// The cart's lines as carts defines them; only read here.
#[derive(SimpleObject, Clone, Debug)]
pub struct CartLine {
    #[graphql(external)]
    pub product_id: ID,
}

pub struct Cart {
    pub id: ID,
    pub lines: Option<Vec<RequiredLine>>,
}

impl Cart {
    fn product_ids(&self) -> Vec<String> {
        self.lines
            .iter()
            .flatten()
            .map(|l| l.product_id.0.clone())
            .collect()
    }
}

#[Object(extends)]
impl Cart {
    #[graphql(external)]
    async fn id(&self) -> &ID {
        &self.id
    }

    #[graphql(external)]
    async fn lines(&self) -> Vec<CartLine> {
        self.product_ids()
            .into_iter()
            .map(|id| CartLine { product_id: ID(id) })
            .collect()
    }

    /// What shoppers bought with the cart's products (1 to 50), best first: none
    /// already in the cart, only what is in stock and on sale; empty for an empty
    /// cart.
    #[graphql(requires = "lines { productId }")]
    async fn suggestions(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] first: i32,
    ) -> Result<Vec<Product>> {
        let svc = ctx.data::<RecsCtx>()?;
        Ok(products(
            service::bought_with_all(svc, &self.product_ids(), first).await?,
        ))
    }
}
