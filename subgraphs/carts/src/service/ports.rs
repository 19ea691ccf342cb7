//! What carts asks of other subgraphs, over their internal API: holds from inventory,
//! product names and prices from the catalog (its federation `_entities` field, as the
//! gateway would).

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::json;
use shop_kit::internal::SubgraphClient;
use shop_kit::{ApiError, ApiResult};

/// The inventory scope carts needs.
pub const HOLD_SCOPE: &str = "inventory:hold";

/// A hold as inventory reports it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Hold {
    pub product_id: String,
    pub quantity: i64,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// Inventory, for holds. `None` inside when this process cannot call it.
#[derive(Clone)]
pub struct Stock(pub Option<SubgraphClient>);

const HOLD_FIELDS: &str = "productId quantity expiresAt";

impl Stock {
    fn client(&self) -> ApiResult<&SubgraphClient> {
        self.0.as_ref().ok_or_else(|| {
            ApiError::Unavailable("stock holds are not available in this deployment".into())
        })
    }

    async fn holds(
        &self,
        query: &str,
        field: &str,
        vars: serde_json::Value,
    ) -> ApiResult<Vec<Hold>> {
        let data = self.client()?.call(query, vars).await?;
        serde_json::from_value(data[field].clone())
            .map_err(|e| ApiError::Internal(format!("inventory answered {field} oddly: {e}")))
    }

    /// Sets the cart's hold of a product (0 releases); all the cart's holds after.
    pub async fn hold(&self, owner: &str, product_id: &str, quantity: i64) -> ApiResult<Vec<Hold>> {
        self.holds(
            &format!("mutation($o: String!, $p: ID!, $q: Int!) {{ holdStock(owner: $o, productId: $p, quantity: $q) {{ {HOLD_FIELDS} }} }}"),
            "holdStock",
            json!({ "o": owner, "p": product_id, "q": quantity }),
        )
        .await
    }

    /// The cart's holds as inventory has them now (nothing extended).
    pub async fn holds_of(&self, owner: &str) -> ApiResult<Vec<Hold>> {
        self.holds(
            &format!("query($o: String!) {{ stockHolds(owner: $o) {{ {HOLD_FIELDS} }} }}"),
            "stockHolds",
            json!({ "o": owner }),
        )
        .await
    }

    /// Extends the cart's live holds; all its holds after.
    pub async fn extend(&self, owner: &str) -> ApiResult<Vec<Hold>> {
        self.holds(
            &format!("mutation($o: String!) {{ extendHolds(owner: $o) {{ {HOLD_FIELDS} }} }}"),
            "extendHolds",
            json!({ "o": owner }),
        )
        .await
    }

    /// Moves one cart's holds to another; the receiving cart's holds after.
    pub async fn transfer(&self, from: &str, to: &str) -> ApiResult<Vec<Hold>> {
        self.holds(
            &format!("mutation($f: String!, $t: String!) {{ transferHolds(from: $f, to: $t) {{ {HOLD_FIELDS} }} }}"),
            "transferHolds",
            json!({ "f": from, "t": to }),
        )
        .await
    }

    pub async fn release(&self, owner: &str, reason: &str) -> ApiResult<()> {
        self.client()?
            .call(
                "mutation($o: String!, $r: String!) { releaseHolds(owner: $o, reason: $r) }",
                json!({ "o": owner, "r": reason }),
            )
            .await?;
        Ok(())
    }
}

/// A product as carts needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProductInfo {
    pub id: String,
    pub name: String,
    pub sku: String,
    pub price: i64,
    pub currency: String,
    /// Who sells it and its first image; asked for by checkout only
    /// ([`Products::for_checkout`]).
    pub supplier_id: Option<String>,
    pub image: Option<String>,
    /// Sold now: the catalog lists it as ACTIVE (not a draft, not archived).
    pub active: bool,
}

/// The catalog, for names and prices.
#[derive(Clone)]
pub struct Products(pub Option<SubgraphClient>);

#[derive(Deserialize)]
struct Price {
    amount: i64,
    currency: String,
}

#[derive(Deserialize)]
struct Entity {
    id: Option<String>,
    name: Option<String>,
    sku: Option<String>,
    price: Option<Price>,
    #[serde(default)]
    images: Vec<String>,
    catalog: Option<CatalogRef>,
    status: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CatalogRef {
    supplier_id: Option<String>,
}

const PRODUCTS: &str = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Product { id name sku status price { amount currency } } } }";
/// Also who sells each product and its images, which an order keeps.
const PRODUCTS_FOR_CHECKOUT: &str = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Product { id name sku status price { amount currency } images catalog { supplierId } } } }";

impl Products {
    /// The products that exist among `ids`, by id.
    pub async fn get(&self, ids: &[String]) -> ApiResult<HashMap<String, ProductInfo>> {
        self.fetch(PRODUCTS, ids).await
    }

    /// [`Products::get`] with each product's supplier and first image.
    pub async fn for_checkout(&self, ids: &[String]) -> ApiResult<HashMap<String, ProductInfo>> {
        self.fetch(PRODUCTS_FOR_CHECKOUT, ids).await
    }

    async fn fetch(&self, query: &str, ids: &[String]) -> ApiResult<HashMap<String, ProductInfo>> {
        let client = self.0.as_ref().ok_or_else(|| {
            ApiError::Unavailable("the catalog is not available in this deployment".into())
        })?;
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let reps: Vec<_> = ids
            .iter()
            .map(|id| json!({ "__typename": "Product", "id": id }))
            .collect();
        let data = client.call(query, json!({ "r": reps })).await?;
        let entities: Vec<Option<Entity>> = serde_json::from_value(data["_entities"].clone())
            .map_err(|e| ApiError::Internal(format!("catalog answered _entities oddly: {e}")))?;
        Ok(entities
            .into_iter()
            .flatten()
            .filter_map(|e| {
                let price = e.price?;
                Some(ProductInfo {
                    id: e.id?,
                    name: e.name?,
                    sku: e.sku?,
                    price: price.amount,
                    currency: price.currency,
                    supplier_id: e.catalog.and_then(|c| c.supplier_id),
                    image: e.images.into_iter().next(),
                    active: e.status.as_deref().is_none_or(|s| s == "ACTIVE"),
                })
            })
            .map(|p| (p.id.clone(), p))
            .collect())
    }

    pub async fn one(&self, id: &str) -> ApiResult<ProductInfo> {
        self.get(&[id.to_string()])
            .await?
            .remove(id)
            .ok_or_else(|| ApiError::not_found(format!("product {id} not found")))
    }
}
