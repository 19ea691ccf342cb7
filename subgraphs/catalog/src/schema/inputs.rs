use async_graphql::{Enum, ID, InputObject, Json};
use shop_kit::money::MoneyInput;
use shop_kit::pagination::PageArgs;

use crate::service::search::{AttributeCondition, ProductQuery, Sort};

/// How to order products.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ProductSort {
    /// Best text match first (the default when `search` is given).
    Relevance,
    PriceAsc,
    PriceDesc,
    NameAsc,
    NameDesc,
    /// Most recently added first (the default without `search`).
    Newest,
    /// Best rated first (more reviews first among equal averages; unrated last).
    RatingDesc,
}

impl From<ProductSort> for Sort {
    fn from(s: ProductSort) -> Sort {
        match s {
            ProductSort::Relevance => Sort::Relevance,
            ProductSort::PriceAsc => Sort::PriceAsc,
            ProductSort::PriceDesc => Sort::PriceDesc,
            ProductSort::NameAsc => Sort::NameAsc,
            ProductSort::NameDesc => Sort::NameDesc,
            ProductSort::Newest => Sort::Newest,
            ProductSort::RatingDesc => Sort::RatingDesc,
        }
    }
}

/// Products having attribute `name` with any of `values`.
#[derive(InputObject, Clone, Debug)]
pub struct AttributeFilter {
    pub name: String,
    pub values: Vec<String>,
}

/// Conditions on products; all given conditions must hold.
#[derive(InputObject, Clone, Debug, Default)]
pub struct ProductFilter {
    pub catalog_id: Option<ID>,
    /// A category; products of its subcategories match too.
    pub category_id: Option<ID>,
    /// Lowest price in minor units (inclusive).
    pub min_price: Option<i64>,
    /// Highest price in minor units (inclusive).
    pub max_price: Option<i64>,
    /// Only prices in this ISO 4217 currency.
    pub currency: Option<String>,
    pub attributes: Option<Vec<AttributeFilter>>,
    /// Only products with (true) or without (false) available stock.
    pub in_stock: Option<bool>,
    /// Only products whose reviews average at least this many stars (1 to 5).
    pub min_rating: Option<i32>,
    /// Statuses to list; ACTIVE by default. Others only for the catalog's supplier or an
    /// admin, with `catalogId`.
    pub status: Option<Vec<crate::service::products::Status>>,
}

impl ProductFilter {
    pub fn into_query(self, search: Option<String>, sort: Option<ProductSort>) -> ProductQuery {
        ProductQuery {
            text: search,
            catalog_id: self.catalog_id.map(|c| c.0),
            category_id: self.category_id.map(|c| c.0),
            include_subcategories: true,
            min_price: self.min_price,
            max_price: self.max_price,
            currency: self.currency,
            attributes: self
                .attributes
                .unwrap_or_default()
                .into_iter()
                .map(|a| AttributeCondition {
                    name: a.name,
                    values: a.values,
                })
                .collect(),
            in_stock: self.in_stock,
            min_rating: self.min_rating,
            statuses: self.status.unwrap_or_default(),
            sort: sort.map(Into::into),
        }
    }
}

pub fn page(
    first: Option<i32>,
    after: Option<String>,
    last: Option<i32>,
    before: Option<String>,
) -> PageArgs {
    PageArgs {
        first,
        after,
        last,
        before,
    }
}

#[derive(InputObject)]
pub struct CreateCatalogInput {
    pub name: String,
    pub description: Option<String>,
    /// Admins only: the supplier who will own the catalog (default: the caller).
    pub supplier_id: Option<ID>,
}

#[derive(InputObject)]
pub struct UpdateCatalogInput {
    pub name: Option<String>,
    pub description: Option<String>,
}

#[derive(InputObject)]
pub struct CreateCategoryInput {
    pub catalog_id: ID,
    /// The parent category; omit for a top-level category.
    pub parent_id: Option<ID>,
    pub name: String,
}

#[derive(InputObject)]
pub struct CreateProductInput {
    pub catalog_id: ID,
    pub category_id: Option<ID>,
    /// Unique within the catalog.
    pub sku: String,
    pub name: String,
    pub description: Option<String>,
    pub price: MoneyInput,
    #[graphql(default)]
    pub images: Vec<String>,
    /// Free-form attributes: a JSON object, e.g. {"color": "red", "sizes": ["S", "M"]}.
    pub attributes: Option<Json<serde_json::Value>>,
    /// Shipping weight in grams (0 to 1,000,000); rated as weightless until given.
    pub weight_grams: Option<i32>,
    /// Outer size of the packed product.
    pub dimensions: Option<DimensionsInput>,
    /// ACTIVE (default) puts it on sale at once; DRAFT keeps it off the storefront
    /// until it is ready.
    pub status: Option<crate::service::products::Status>,
}

/// A packed product's outer size in millimetres, each 1 to 10,000.
#[derive(InputObject, Clone, Copy)]
pub struct DimensionsInput {
    pub length_mm: i32,
    pub width_mm: i32,
    pub height_mm: i32,
}

impl DimensionsInput {
    pub fn sides(self) -> crate::service::products::Dimensions {
        crate::service::products::Dimensions(self.length_mm, self.width_mm, self.height_mm)
    }
}

#[derive(InputObject)]
pub struct UpdateProductInput {
    /// A category of the same catalog; `null` makes the product uncategorized.
    pub category_id: async_graphql::MaybeUndefined<ID>,
    pub sku: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub price: Option<MoneyInput>,
    pub images: Option<Vec<String>>,
    /// Replaces the whole attribute document.
    pub attributes: Option<Json<serde_json::Value>>,
    /// Grams; `null` makes the weight unknown again.
    pub weight_grams: async_graphql::MaybeUndefined<i32>,
    /// `null` makes the size unknown again.
    pub dimensions: async_graphql::MaybeUndefined<DimensionsInput>,
    /// ARCHIVED withdraws the product from sale (kept for orders; carts holding it
    /// can no longer check it out); ACTIVE puts it back on sale.
    pub status: Option<crate::service::products::Status>,
}
