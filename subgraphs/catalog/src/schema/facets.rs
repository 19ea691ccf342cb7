//! `productFacets`: the counts beside a storefront's filters.

use async_graphql::{Context, Result, SimpleObject};
use shop_kit::money::Money;

use super::types::Category;
use crate::service::facets::{self, DEFAULT_PRICE_BANDS};
use crate::service::{CatalogCtx, search};

/// How the products matching a search and filter divide by category, attribute value,
/// price band and stock. Each facet is counted with every filter but its own, so its
/// counts say what choosing another of its values would give.
#[derive(SimpleObject)]
pub struct ProductFacets {
    /// Products matching every filter (the same as `products.totalCount`).
    pub total_count: i32,
    /// Categories holding matches, most first; a category counts the products in it
    /// and in its subcategories.
    pub categories: Vec<CategoryFacet>,
    /// The most common attributes (and any filtered on), their values most common first.
    pub attributes: Vec<AttributeFacet>,
    /// Price bands holding matches, per currency, cheapest first.
    pub price_bands: Vec<PriceBandFacet>,
    /// Matches with available stock.
    pub in_stock: i32,
    /// Matches without available stock.
    pub out_of_stock: i32,
}

#[derive(SimpleObject)]
pub struct CategoryFacet {
    pub category: Category,
    pub count: i32,
}

#[derive(SimpleObject)]
pub struct AttributeFacet {
    pub name: String,
    pub values: Vec<AttributeValueFacet>,
}

#[derive(SimpleObject)]
pub struct AttributeValueFacet {
    /// As `AttributeFilter.values` takes it.
    pub value: String,
    pub count: i32,
}

/// Products priced from `minPrice` to `maxPrice`: pass both (null means open) as the
/// filter's `minPrice`/`maxPrice` with `currency` to list them.
#[derive(SimpleObject)]
pub struct PriceBandFacet {
    pub currency: String,
    /// Lowest price in the band in minor units (inclusive); null for the first band.
    pub min_price: Option<i64>,
    /// Highest price in the band in minor units (inclusive); null for the last band.
    pub max_price: Option<i64>,
    /// The band's lowest price as money, for display.
    pub from: Option<Money>,
    /// The price the band stays under, for display.
    pub under: Option<Money>,
    pub count: i32,
}

fn int(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

pub(crate) async fn product_facets(
    ctx: &Context<'_>,
    q: search::ProductQuery,
    price_bands: Option<Vec<i64>>,
) -> Result<ProductFacets> {
    let svc = ctx.data::<CatalogCtx>()?;
    super::types::check_statuses(ctx, svc, &q).await?;
    let bands = price_bands.unwrap_or_else(|| DEFAULT_PRICE_BANDS.to_vec());
    let f = facets::facets(svc, &q, &bands).await?;
    let money = |amount: i64, currency: &str| Money {
        amount,
        currency: currency.to_string(),
    };
    Ok(ProductFacets {
        total_count: int(f.total),
        categories: f
            .categories
            .into_iter()
            .map(|(c, n)| CategoryFacet {
                category: Category(c),
                count: int(n),
            })
            .collect(),
        attributes: f
            .attributes
            .into_iter()
            .map(|a| AttributeFacet {
                name: a.name,
                values: a
                    .values
                    .into_iter()
                    .map(|(value, n)| AttributeValueFacet {
                        value,
                        count: int(n),
                    })
                    .collect(),
            })
            .collect(),
        price_bands: f
            .price_bands
            .into_iter()
            .map(|b| PriceBandFacet {
                from: b.min.map(|m| money(m, &b.currency)),
                under: b.max.map(|m| money(m + 1, &b.currency)),
                currency: b.currency,
                min_price: b.min,
                max_price: b.max,
                count: int(b.count),
            })
            .collect(),
        in_stock: int(f.in_stock),
        out_of_stock: int(f.out_of_stock),
    })
}
