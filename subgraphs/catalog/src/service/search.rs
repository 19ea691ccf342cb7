//! Product listing: text search, filters and sorting, all combinable and paginated.
//!
//! Search uses our own term index (`catalog_search_terms`) rather than an engine's
//! full-text feature, so ranking is identical on SQLite and MySQL: each query word must
//! match a term by prefix; a product's score is the sum, over query words, of the best
//! matching term's weight (doubled for an exact match). SKU words weigh most, then name,
//! then description.

use std::collections::HashMap;

use sea_orm::{EntityTrait, FromQueryResult, Statement, Value};
use shop_kit::pagination::{PageArgs, Window};
use shop_kit::{ApiError, ApiResult};

use super::CatalogCtx;
use super::categories;
use crate::entity::product;

const WEIGHT_SKU: i32 = 8;
const WEIGHT_NAME: i32 = 4;
const WEIGHT_DESCRIPTION: i32 = 1;
const MAX_TERM: usize = 64;
/// Words beyond this in a search are ignored: more narrows nothing useful and costs joins.
const MAX_QUERY_WORDS: usize = 8;

/// Lower-cased alphanumeric words of `text`.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase().chars().take(MAX_TERM).collect())
        .collect()
}

/// The index rows of a product: each distinct word with its highest weight.
pub fn index_terms(name: &str, sku: &str, description: &str) -> Vec<(String, i32)> {
    let mut terms: HashMap<String, i32> = HashMap::new();
    for (text, weight) in [
        (sku, WEIGHT_SKU),
        (name, WEIGHT_NAME),
        (description, WEIGHT_DESCRIPTION),
    ] {
        for w in words(text) {
            let e = terms.entry(w).or_insert(weight);
            *e = (*e).max(weight);
        }
    }
    let mut out: Vec<(String, i32)> = terms.into_iter().collect();
    out.sort();
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sort {
    Relevance,
    PriceAsc,
    PriceDesc,
    NameAsc,
    NameDesc,
    Newest,
}

/// One attribute condition: the product has attribute `name` with one of `values`.
#[derive(Clone, Debug)]
pub struct AttributeCondition {
    pub name: String,
    pub values: Vec<String>,
}

#[derive(Clone, Debug, Default)]
pub struct ProductQuery {
    pub text: Option<String>,
    pub catalog_id: Option<String>,
    /// A category; products of its subcategories match too when `include_subcategories`.
    pub category_id: Option<String>,
    pub include_subcategories: bool,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    pub currency: Option<String>,
    pub attributes: Vec<AttributeCondition>,
    pub in_stock: Option<bool>,
    /// Statuses to list; none means active only (what shoppers see).
    pub statuses: Vec<super::products::Status>,
    pub sort: Option<Sort>,
}

struct Sql {
    text: String,
    values: Vec<Value>,
}

impl Sql {
    fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }
    fn bind(&mut self, v: impl Into<Value>) {
        self.text.push('?');
        self.values.push(v.into());
    }
    fn bind_list(&mut self, items: impl IntoIterator<Item = String>) {
        self.push("(");
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(item);
        }
        self.push(")");
    }
}

#[derive(FromQueryResult)]
struct Count {
    n: i64,
}

fn validate(q: &ProductQuery) -> ApiResult<()> {
    if let (Some(min), Some(max)) = (q.min_price, q.max_price)
        && min > max
    {
        return Err(ApiError::bad_input(
            "minPrice must not be greater than maxPrice",
        ));
    }
    if q.min_price.is_some_and(|v| v < 0) || q.max_price.is_some_and(|v| v < 0) {
        return Err(ApiError::bad_input("price bounds must not be negative"));
    }
    if q.attributes.len() > 20 {
        return Err(ApiError::bad_input("attributes: at most 20 conditions"));
    }
    for a in &q.attributes {
        if a.values.is_empty() {
            return Err(ApiError::bad_input(format!(
                "attributes: '{}' needs at least one value",
                a.name
            )));
        }
        // Each value is a bound parameter: a few thousand reach the database's limit.
        if a.values.len() > MAX_ATTRIBUTE_VALUES {
            return Err(ApiError::bad_input(format!(
                "attributes: '{}' has {} values; at most {MAX_ATTRIBUTE_VALUES} per condition",
                a.name,
                a.values.len()
            )));
        }
        if a.name.len() > 100 || a.values.iter().any(|v| v.len() > 200) {
            return Err(ApiError::bad_input(
                "attributes: names are at most 100 characters, values at most 200",
            ));
        }
    }
    if q.text.as_deref().is_some_and(|t| t.len() > 500) {
        return Err(ApiError::bad_input("search must be at most 500 characters"));
    }
    Ok(())
}

/// Values one attribute condition may list.
pub const MAX_ATTRIBUTE_VALUES: usize = 100;

/// Runs a product query and returns the page's window and rows.
pub async fn find(
    ctx: &CatalogCtx,
    q: &ProductQuery,
    page: &PageArgs,
) -> ApiResult<(Window, Vec<product::Model>)> {
    validate(q)?;
    page.validate()?;
    let currency = q
        .currency
        .as_deref()
        .map(shop_kit::money::parse_currency)
        .transpose()?;
    let mut words = q.text.as_deref().map(words).unwrap_or_default();
    words.truncate(MAX_QUERY_WORDS);
    if q.text.as_deref().is_some_and(|t| !t.trim().is_empty()) && words.is_empty() {
        // Only punctuation: nothing can match.
        return Ok((page.window(0)?, Vec::new()));
    }

    let mut from = Sql {
        text: String::from(" FROM catalog_products p"),
        values: Vec::new(),
    };
    for (i, w) in words.iter().enumerate() {
        from.push(" JOIN (SELECT product_id, MAX(CASE WHEN term = ");
        from.bind(w.clone());
        from.push(
            " THEN weight * 2 ELSE weight END) AS w FROM catalog_search_terms WHERE term LIKE ",
        );
        from.bind(format!("{w}%"));
        from.push(&format!(
            " GROUP BY product_id) s{i} ON s{i}.product_id = p.id"
        ));
    }
    from.push(" WHERE p.status IN ");
    let statuses: Vec<String> = if q.statuses.is_empty() {
        vec![super::products::Status::Active.as_str().to_string()]
    } else {
        q.statuses.iter().map(|s| s.as_str().to_string()).collect()
    };
    from.bind_list(statuses);
    if let Some(c) = &q.catalog_id {
        from.push(" AND p.catalog_id = ");
        from.bind(c.clone());
    }
    if let Some(cat_id) = &q.category_id {
        let cat = categories::get(&ctx.reads, cat_id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("category {cat_id} not found")))?;
        let ids: Vec<String> = if q.include_subcategories {
            let all = categories::of_catalog(&ctx.reads, &cat.catalog_id).await?;
            let mut ids: Vec<String> = categories::descendants(&all, &cat.id).into_iter().collect();
            ids.sort();
            ids
        } else {
            vec![cat.id]
        };
        from.push(" AND p.category_id IN ");
        from.bind_list(ids);
    }
    if let Some(min) = q.min_price {
        from.push(" AND p.price_amount >= ");
        from.bind(min);
    }
    if let Some(max) = q.max_price {
        from.push(" AND p.price_amount <= ");
        from.bind(max);
    }
    if let Some(cur) = currency {
        from.push(" AND p.price_currency = ");
        from.bind(cur);
    }
    for a in &q.attributes {
        from.push(" AND p.id IN (SELECT product_id FROM catalog_product_attributes WHERE name = ");
        from.bind(a.name.clone());
        from.push(" AND value IN ");
        from.bind_list(a.values.iter().cloned());
        from.push(")");
    }
    if let Some(in_stock) = q.in_stock {
        from.push(" AND p.in_stock = ");
        from.bind(in_stock);
    }

    let backend = ctx.reads.get_database_backend();
    let count_sql = format!("SELECT COUNT(*) AS n{}", from.text);
    let total = Count::find_by_statement(Statement::from_sql_and_values(
        backend,
        count_sql,
        from.values.clone(),
    ))
    .one(&ctx.reads)
    .await?
    .map(|c| c.n.max(0) as u64)
    .unwrap_or(0);
    let window = page.window(total)?;
    if window.limit == 0 {
        return Ok((window, Vec::new()));
    }

    let sort = match q.sort {
        Some(Sort::Relevance) | None if !words.is_empty() => Sort::Relevance,
        Some(Sort::Relevance) | None => Sort::Newest,
        Some(s) => s,
    };
    let order = match sort {
        Sort::Relevance => {
            let score: Vec<String> = (0..words.len()).map(|i| format!("s{i}.w")).collect();
            format!("({}) DESC, p.name ASC, p.id ASC", score.join(" + "))
        }
        Sort::PriceAsc => "p.price_amount ASC, p.id ASC".into(),
        Sort::PriceDesc => "p.price_amount DESC, p.id ASC".into(),
        Sort::NameAsc => "p.name ASC, p.id ASC".into(),
        Sort::NameDesc => "p.name DESC, p.id DESC".into(),
        Sort::Newest => "p.created_at DESC, p.id DESC".into(),
    };
    let mut rows_sql = Sql {
        text: format!("SELECT p.*{} ORDER BY {order} LIMIT ", from.text),
        values: from.values,
    };
    rows_sql.bind(window.limit as i64);
    rows_sql.push(" OFFSET ");
    rows_sql.bind(window.offset as i64);
    let rows = product::Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(
            backend,
            rows_sql.text,
            rows_sql.values,
        ))
        .all(&ctx.reads)
        .await?;
    Ok((window, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lowercased_and_split_on_punctuation() {
        assert_eq!(
            words("Red-Shirt, XL (cotton)"),
            vec!["red", "shirt", "xl", "cotton"]
        );
    }

    #[test]
    fn a_word_keeps_its_highest_weight() {
        let terms = index_terms("Blue Mug", "MUG-1", "a blue ceramic mug");
        let get = |t: &str| terms.iter().find(|(w, _)| w == t).map(|(_, w)| *w);
        assert_eq!(get("mug"), Some(WEIGHT_SKU));
        assert_eq!(get("blue"), Some(WEIGHT_NAME));
        assert_eq!(get("ceramic"), Some(WEIGHT_DESCRIPTION));
    }
}
