//! Product listing: text search, filters and sorting, all combinable and paginated.
//!
//! Matching and ranking are ours and the same on SQLite and MySQL: each query word must
//! match a word of the product by prefix; a product's score is the sum, over query
//! words, of the best match's weight (doubled for an exact match). SKU words weigh
//! most, then name, then description. Words are what [`words`] makes of a text, on
//! both sides.
//!
//! Where the words are kept differs. MySQL has a row per (word, product) in
//! `catalog_search_terms`, holding the word's highest weight. SQLite has an FTS5 table,
//! `catalog_search`, with the product's words in three columns: a million products are
//! twenty-odd million term rows, most of an import's writes, which FTS5 writes as
//! compressed lists instead. Its `ascii` tokenizer splits the space-joined words we
//! give it back into exactly those words (ours hold no ASCII punctuation, and it keeps
//! every other character), so both find the same products with the same scores.

use std::collections::HashMap;

use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, Statement, Value};
use shop_kit::pagination::{PageArgs, Window};
use shop_kit::{ApiError, ApiResult};

use super::CatalogCtx;
use super::categories;
use super::sql::{delete_in, insert_rows};
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

/// The text of a product that search reads.
pub struct Searchable<'a> {
    pub product_id: &'a str,
    pub sku: &'a str,
    pub name: &'a str,
    pub description: &'a str,
}

/// Writes the search entries of these products, first removing what they had when
/// `replace` (an edit; new products have nothing to remove).
pub async fn index<C: ConnectionTrait>(
    conn: &C,
    products: &[Searchable<'_>],
    replace: bool,
) -> ApiResult<()> {
    let backend = conn.get_database_backend();
    let table = match backend {
        DbBackend::Sqlite => "catalog_search_docs",
        _ => "catalog_search_terms",
    };
    if replace {
        let ids: Vec<&str> = products.iter().map(|p| p.product_id).collect();
        delete_in(conn, table, "product_id", &ids).await?;
    }
    if products.is_empty() {
        return Ok(());
    }
    if backend == DbBackend::Sqlite {
        return index_full_text(conn, products).await;
    }
    let mut terms: Vec<Value> = Vec::new();
    for p in products {
        for (term, weight) in index_terms(p.name, p.sku, p.description) {
            terms.push(Value::from(term));
            terms.push(Value::from(p.product_id.to_string()));
            terms.push(Value::from(weight));
        }
    }
    insert_rows(
        conn,
        "catalog_search_terms (term, product_id, weight)",
        3,
        terms,
    )
    .await
}

#[derive(FromQueryResult)]
struct LastDoc {
    n: i64,
}

/// SQLite: a key per product in `catalog_search_docs`, and its words by column in
/// `catalog_search` under that key. Keys are taken above the highest in use: the caller
/// holds SQLite's one write transaction, so no one else takes them meanwhile.
async fn index_full_text<C: ConnectionTrait>(
    conn: &C,
    products: &[Searchable<'_>],
) -> ApiResult<()> {
    let backend = conn.get_database_backend();
    let last = LastDoc::find_by_statement(Statement::from_string(
        backend,
        "SELECT COALESCE(MAX(doc_id), 0) AS n FROM catalog_search_docs",
    ))
    .one(conn)
    .await?
    .map(|l| l.n)
    .unwrap_or(0);
    let mut docs = Vec::with_capacity(products.len() * 2);
    let mut text = Vec::with_capacity(products.len() * 4);
    for (i, p) in products.iter().enumerate() {
        let doc_id = last + 1 + i as i64;
        docs.push(Value::from(doc_id));
        docs.push(Value::from(p.product_id.to_string()));
        text.push(Value::from(doc_id));
        for column in [p.sku, p.name, p.description] {
            text.push(Value::from(words(column).join(" ")));
        }
    }
    insert_rows(conn, "catalog_search_docs (doc_id, product_id)", 2, docs).await?;
    insert_rows(
        conn,
        "catalog_search (rowid, sku, name, description)",
        4,
        text,
    )
    .await
}

/// SQLite: products left out of the search index (stored before it existed), indexed
/// a batch at a time. Nothing to do on MySQL, whose index came with the products.
pub async fn catch_up<C: ConnectionTrait>(conn: &C) -> ApiResult<u64> {
    #[derive(FromQueryResult)]
    struct Missing {
        id: String,
        sku: String,
        name: String,
        description: String,
    }
    let backend = conn.get_database_backend();
    if backend != DbBackend::Sqlite {
        return Ok(0);
    }
    let mut done = 0u64;
    loop {
        let batch = Missing::find_by_statement(Statement::from_string(
            backend,
            "SELECT p.id, p.sku, p.name, p.description FROM catalog_products p \
             WHERE NOT EXISTS (SELECT 1 FROM catalog_search_docs d WHERE d.product_id = p.id) \
             LIMIT 2000",
        ))
        .all(conn)
        .await?;
        if batch.is_empty() {
            return Ok(done);
        }
        let docs: Vec<Searchable> = batch
            .iter()
            .map(|m| Searchable {
                product_id: &m.id,
                sku: &m.sku,
                name: &m.name,
                description: &m.description,
            })
            .collect();
        index(conn, &docs, false).await?;
        done += batch.len() as u64;
    }
}

/// The weights a query word scores in each search column: (column, exact, prefix).
const COLUMN_WEIGHTS: [(&str, i32, i32); 3] = [
    ("sku", WEIGHT_SKU * 2, WEIGHT_SKU),
    ("name", WEIGHT_NAME * 2, WEIGHT_NAME),
    ("description", WEIGHT_DESCRIPTION * 2, WEIGHT_DESCRIPTION),
];

/// The products matching query word `w`, each with its score: a subquery of
/// `(product_id, w)`. On SQLite, `all` is the FTS5 query matching every word: each of
/// a word's lookups is intersected with it, so a rare word keeps a common one from
/// scoring every product that has it (`model 4242`: 354 -> 57 ms over 200,000 products).
fn word_scores(sql: &mut Sql, backend: DbBackend, w: &str, all: Option<&str>) {
    if backend != DbBackend::Sqlite {
        sql.push("(SELECT product_id, MAX(CASE WHEN term = ");
        sql.bind(w.to_string());
        sql.push(
            " THEN weight * 2 ELSE weight END) AS w FROM catalog_search_terms WHERE term LIKE ",
        );
        sql.bind(format!("{w}%"));
        sql.push(" GROUP BY product_id)");
        return;
    }
    // A word's best match: its exact and prefix matches in each column, each a lookup
    // of FTS5's lists. Words hold no quote, so quoting them is all the escaping needed.
    sql.push("(SELECT d.product_id, m.w FROM (SELECT doc, MAX(w) AS w FROM (");
    for (j, (column, exact, prefix)) in COLUMN_WEIGHTS.iter().enumerate() {
        if j > 0 {
            sql.push(" UNION ALL ");
        }
        sql.push(&format!(
            "SELECT rowid AS doc, {exact} AS w FROM catalog_search WHERE catalog_search MATCH "
        ));
        let within = |q: String| match all {
            Some(all) => format!("({all}) AND ({q})"),
            None => q,
        };
        sql.bind(within(format!("{column} : \"{w}\"")));
        sql.push(&format!(
            " UNION ALL SELECT rowid AS doc, {prefix} AS w FROM catalog_search WHERE catalog_search MATCH "
        ));
        sql.bind(within(format!("{column} : \"{w}\" *")));
    }
    sql.push(") GROUP BY doc) m JOIN catalog_search_docs d ON d.doc_id = m.doc)");
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
    /// This statement's text and values followed by `rest`'s.
    fn then(&self, rest: &Sql) -> Sql {
        let mut values = self.values.clone();
        values.extend(rest.values.iter().cloned());
        Sql {
            text: format!("{}{}", self.text, rest.text),
            values,
        }
    }
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

    let backend = ctx.reads.get_database_backend();
    let sort = match q.sort {
        Some(Sort::Relevance) | None if !words.is_empty() => Sort::Relevance,
        Some(Sort::Relevance) | None => Sort::Newest,
        Some(s) => s,
    };
    // The products matching every word, with each word's score as `s{i}.w`. Only the
    // relevance order reads scores: on SQLite, counting and the other orders take the
    // matches from one FTS5 query, which intersects the words' lists itself.
    let all: Vec<String> = words.iter().map(|w| format!("\"{w}\" *")).collect();
    let all = all.join(" AND ");
    let mut joins = Sql {
        text: String::new(),
        values: Vec::new(),
    };
    let mut matches = Sql {
        text: String::new(),
        values: Vec::new(),
    };
    let within = (words.len() > 1).then_some(all.as_str());
    if backend != DbBackend::Sqlite || words.is_empty() {
        joins.push(" FROM catalog_products p");
        for (i, w) in words.iter().enumerate() {
            joins.push(" JOIN ");
            word_scores(&mut joins, backend, w, within);
            joins.push(&format!(" s{i} ON s{i}.product_id = p.id"));
        }
        joins.push(" WHERE");
        matches = joins.then(&matches);
    } else {
        // SQLite has no statistics to tell it that the matches are fewer than, say, a
        // catalog's products, and would walk the catalog probing them: CROSS JOIN makes
        // it start from the matches.
        joins.push(" FROM ");
        for (i, w) in words.iter().enumerate() {
            if i > 0 {
                joins.push(" JOIN ");
            }
            word_scores(&mut joins, backend, w, within);
            joins.push(&format!(" s{i}"));
            if i > 0 {
                joins.push(&format!(" ON s{i}.product_id = s0.product_id"));
            }
        }
        joins.push(" CROSS JOIN catalog_products p WHERE p.id = s0.product_id AND");
        matches.push(" FROM (SELECT d.product_id FROM catalog_search_docs d WHERE d.doc_id IN (SELECT rowid FROM catalog_search WHERE catalog_search MATCH ");
        matches.bind(all.clone());
        matches.push(")) m CROSS JOIN catalog_products p WHERE p.id = m.product_id AND");
    }
    let mut from = Sql {
        text: String::new(),
        values: Vec::new(),
    };
    from.push(" p.status IN ");
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

    let counted = matches.then(&from);
    let total = Count::find_by_statement(Statement::from_sql_and_values(
        backend,
        format!("SELECT COUNT(*) AS n{}", counted.text),
        counted.values,
    ))
    .one(&ctx.reads)
    .await?
    .map(|c| c.n.max(0) as u64)
    .unwrap_or(0);
    let window = page.window(total)?;
    if window.limit == 0 {
        return Ok((window, Vec::new()));
    }

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
    let listed = if sort == Sort::Relevance {
        joins.then(&from)
    } else {
        matches.then(&from)
    };
    let mut rows_sql = Sql {
        text: format!("SELECT p.*{} ORDER BY {order} LIMIT ", listed.text),
        values: listed.values,
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
