//! `Product.alsoBought` and `trendingProducts`.

use async_graphql::{Context, ID, Object, Result};

use crate::service::{self, RecsCtx};

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

    #[graphql(entity)]
    async fn find_product_by_id(&self, id: ID) -> Product {
        Product { id: id.0 }
    }
}
