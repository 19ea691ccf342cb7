//! What shipping asks of the catalog: who sells a product and what it weighs.

use std::collections::HashMap;

use serde_json::{Value, json};
use shop_kit::internal::SubgraphClient;
use shop_kit::{ApiError, ApiResult};

/// Clients of the subgraphs shipping reads; `None` where this process cannot call.
#[derive(Clone, Default)]
pub struct Services {
    pub catalog: Option<SubgraphClient>,
}

/// A product as shipping rates it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProductFacts {
    pub supplier_id: String,
    /// Grams; `None` when the supplier gave none.
    pub weight_grams: Option<i64>,
}

/// At most this many products are asked for in one call (a cart has at most a few
/// hundred lines; the catalog bounds `_entities` too).
const BATCH: usize = 200;

impl Services {
    /// Facts about each of `product_ids` the catalog still has (removed ones are left
    /// out).
    pub async fn products(
        &self,
        product_ids: &[String],
    ) -> ApiResult<HashMap<String, ProductFacts>> {
        let catalog = self.catalog.as_ref().ok_or_else(|| {
            ApiError::Unavailable("the catalog is not reachable from this process".into())
        })?;
        let mut out = HashMap::with_capacity(product_ids.len());
        for chunk in product_ids.chunks(BATCH) {
            let reps: Vec<Value> = chunk
                .iter()
                .map(|id| json!({ "__typename": "Product", "id": id }))
                .collect();
            let data = catalog
                .call(
                    "query($r: [_Any!]!) { _entities(representations: $r) { ... on Product { id weightGrams catalog { supplierId } } } }",
                    json!({ "r": reps }),
                )
                .await?;
            for e in data["_entities"].as_array().into_iter().flatten() {
                let (Some(id), Some(supplier)) =
                    (e["id"].as_str(), e["catalog"]["supplierId"].as_str())
                else {
                    continue;
                };
                out.insert(
                    id.to_string(),
                    ProductFacts {
                        supplier_id: supplier.to_string(),
                        weight_grams: e["weightGrams"].as_i64(),
                    },
                );
            }
        }
        Ok(out)
    }
}
