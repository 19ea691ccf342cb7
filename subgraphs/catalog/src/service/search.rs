//! Product listing: text search, filters and sorting, all combinable and paginated.
//!
//! Matching and ranking are ours and the same on SQLite and MySQL: each query word must
//! match a word of the product by prefix; a product's score is the sum, over query
//! words, of the best match's weight (doubled for an exact match). SKU words weigh
//! most, then name, then description. Words are what [`words`] makes of a text, on
//! both sides.
//!
//! Both databases keep the words in a full-text index, since a row per (word,
//! product) made a million products twenty-odd million rows, most of an import's
//! writes, and a search for a common word a scan of a million of them. SQLite has an
//! FTS5 table, `catalog_search`, with the product's words in three columns, keyed
//! through `catalog_search_docs`; its `ascii` tokenizer splits the space-joined words we
//! give it back into exactly those words (ours hold no ASCII punctuation, and it keeps
//! every other character). MySQL has a FULLTEXT index on `catalog_search_docs.words`,
//! where each word carries its column as a two-letter tag (`ksmug`, `knblue`): the tag
//! keeps every token at or over InnoDB's three-character minimum and off its stopword
//! list, and lets one index answer per-column queries. Full-text relevance is not used
//! on either: each lookup only says whether a product matches, and the scores are ours.

use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, Statement, Value};
use serde_json::Value as Json;
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

/// What search and attribute filters read of a product.
#[derive(Clone, Copy)]
pub struct Searchable<'a> {
    pub product_id: &'a str,
    pub sku: &'a str,
    pub name: &'a str,
    pub description: &'a str,
    pub attributes: &'a Json,
}

impl<'a> Searchable<'a> {
    pub fn of(p: &'a product::Model) -> Self {
        Searchable {
            product_id: &p.id,
            sku: &p.sku,
            name: &p.name,
            description: &p.description,
            attributes: &p.attributes,
        }
    }
}

/// SQLite: the search-index word standing for attribute `name` having `value`: `a` and
/// 24 hex digits of the SHA-256 of the two, so that any name and value make one token
/// of the `ascii` tokenizer, and no supplier can pick a pair whose word collides with
/// another's (a filter would then list their products). Stored: it must never change.
pub fn attribute_token(name: &str, value: &str) -> String {
    use sha2::{Digest, Sha256};
    use std::fmt::Write;
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([0u8]);
    h.update(value.as_bytes());
    let digest = h.finalize();
    let mut out = String::with_capacity(25);
    out.push('a');
    for b in &digest[..12] {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Writes the search entries of these products, first removing what they had when
/// `replace` (an edit; new products have nothing to remove).
pub async fn index<C: ConnectionTrait>(
    conn: &C,
    products: &[Searchable<'_>],
    replace: bool,
) -> ApiResult<()> {
    if replace {
        let ids: Vec<&str> = products.iter().map(|p| p.product_id).collect();
        delete_in(conn, "catalog_search_docs", "product_id", &ids).await?;
    }
    if products.is_empty() {
        return Ok(());
    }
    if conn.get_database_backend() == DbBackend::Sqlite {
        return index_full_text(conn, products).await;
    }
    let mut docs = Vec::with_capacity(products.len() * 2);
    for p in products {
        docs.push(Value::from(p.product_id.to_string()));
        docs.push(Value::from(tagged_words(p)));
    }
    insert_rows(conn, "catalog_search_docs (product_id, words)", 2, docs).await
}

/// The column tags of MySQL's index, in `COLUMN_WEIGHTS`' order.
const TAGS: [&str; 3] = ["ks", "kn", "kd"];

/// MySQL: the product's words, each tagged with its column.
fn tagged_words(p: &Searchable<'_>) -> String {
    let mut out = String::new();
    for (tag, text) in TAGS.iter().zip([p.sku, p.name, p.description]) {
        for w in words(text) {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(tag);
            out.push_str(&w);
        }
    }
    out
}

#[derive(FromQueryResult)]
struct LastDoc {
    n: i64,
}

/// SQLite: a key per product in `catalog_search_docs`, and its words by column in
/// `catalog_search` under that key, with its attribute pairs as words of a fourth
/// column: five rows per product in an attribute table (and two B-trees over them)
/// were a fifth of an import's time, where the full-text index stores a word per
/// product in a byte or two. Keys are taken above the highest in use: the caller
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
        let tokens: Vec<String> = super::products::attribute_pairs(p.attributes)
            .iter()
            .map(|(name, value)| attribute_token(name, value))
            .collect();
        text.push(Value::from(tokens.join(" ")));
    }
    insert_rows(conn, "catalog_search_docs (doc_id, product_id)", 2, docs).await?;
    insert_rows(
        conn,
        "catalog_search (rowid, sku, name, description, attributes)",
        5,
        text,
    )
    .await
}

/// Products left out of the search index (stored before it existed), indexed a batch
/// at a time.
pub async fn catch_up<C: ConnectionTrait>(conn: &C) -> ApiResult<u64> {
    catch_up_in_batches(conn, 2000).await
}

/// [`catch_up`], `per_batch` products at a time.
pub async fn catch_up_in_batches<C: ConnectionTrait>(conn: &C, per_batch: u64) -> ApiResult<u64> {
    #[derive(FromQueryResult)]
    struct Missing {
        id: String,
        sku: String,
        name: String,
        description: String,
        attributes: Json,
    }
    let backend = conn.get_database_backend();
    let mut done = 0u64;
    // Each batch starts past the last one's products, in id order: a batch that began
    // from the first product again would pass over every product indexed before it,
    // work quadratic in the products at the first start after an upgrade that rebuilds
    // the index.
    let mut after = String::new();
    loop {
        let batch = Missing::find_by_statement(Statement::from_sql_and_values(
            backend,
            "SELECT p.id, p.sku, p.name, p.description, p.attributes FROM catalog_products p \
             WHERE p.id > ? \
             AND NOT EXISTS (SELECT 1 FROM catalog_search_docs d WHERE d.product_id = p.id) \
             ORDER BY p.id LIMIT ?",
            [Value::from(after.clone()), Value::from(per_batch as i64)],
        ))
        .all(conn)
        .await?;
        let Some(last) = batch.last() else {
            return Ok(done);
        };
        after = last.id.clone();
        let docs: Vec<Searchable> = batch
            .iter()
            .map(|m| Searchable {
                product_id: &m.id,
                sku: &m.sku,
                name: &m.name,
                description: &m.description,
                attributes: &m.attributes,
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

/// The full-text query for products having a word that starts with `w` in any search
/// column. Words hold no quote or operator, so quoting is all the escaping they need.
fn prefix_query(backend: DbBackend, w: &str) -> String {
    match backend {
        DbBackend::Sqlite => format!("\"{w}\" *"),
        _ => {
            let any: Vec<String> = TAGS.iter().map(|t| format!("{t}{w}*")).collect();
            format!("+({})", any.join(" "))
        }
    }
}

/// The documents a full-text query matches, as a column `doc`: FTS5's rowids on SQLite,
/// product ids on MySQL.
fn full_text(sql: &mut Sql, backend: DbBackend, weight: Option<i32>, query: String) {
    let w = weight.map(|w| format!(", {w} AS w")).unwrap_or_default();
    match backend {
        DbBackend::Sqlite => sql.push(&format!(
            "SELECT rowid AS doc{w} FROM catalog_search WHERE catalog_search MATCH "
        )),
        _ => sql.push(&format!(
            "SELECT product_id AS doc{w} FROM catalog_search_docs WHERE MATCH (words) AGAINST ("
        )),
    }
    sql.bind(query);
    if backend != DbBackend::Sqlite {
        sql.push(" IN BOOLEAN MODE)");
    }
}

/// The products matching every word, a subquery of `(product_id)`.
fn all_matches(sql: &mut Sql, backend: DbBackend, all: &str) {
    match backend {
        DbBackend::Sqlite => {
            sql.push("(SELECT d.product_id FROM catalog_search_docs d WHERE d.doc_id IN (");
            full_text(sql, backend, None, all.to_string());
            sql.push("))");
        }
        _ => {
            sql.push("(SELECT doc AS product_id FROM (");
            full_text(sql, backend, None, all.to_string());
            sql.push(") m)");
        }
    }
}

/// SQLite: the products matching query word `w`, each with its score, as a subquery of
/// `(product_id, w)`: the best of the word's exact and prefix lookups in each column.
/// With several words, `all` (the query matching every word) narrows each lookup, so a
/// rare word keeps a common one from scoring every product that has it (`model 4242`:
/// 354 -> 57 ms over 200,000 products).
fn word_scores(sql: &mut Sql, w: &str, all: Option<&str>) {
    sql.push("(SELECT d.product_id, m.w FROM (SELECT doc, MAX(w) AS w FROM (");
    for (c, (column, exact, prefix)) in COLUMN_WEIGHTS.iter().enumerate() {
        for (weight, star) in [(*exact, ""), (*prefix, "*")] {
            if c > 0 || !star.is_empty() {
                sql.push(" UNION ALL ");
            }
            let q = format!("{column} : \"{w}\" {star}");
            let q = match all {
                Some(all) => format!("({all}) AND ({q})"),
                None => q,
            };
            full_text(sql, DbBackend::Sqlite, Some(weight), q);
        }
    }
    sql.push(") u GROUP BY doc) m JOIN catalog_search_docs d ON d.doc_id = m.doc)");
}

/// MySQL: the score of query word `w` for a matching product, read from its tagged
/// words. InnoDB's full-text lookups of a word most products have take seconds each
/// (a word in a million products: 4.4 s), so MySQL runs one, for all the words, and
/// scores what it finds from the text.
fn tagged_score(sql: &mut Sql, w: &str) {
    sql.push("CASE");
    for (c, (_, exact, prefix)) in COLUMN_WEIGHTS.iter().enumerate() {
        let tag = TAGS[c];
        sql.push(" WHEN CONCAT(' ', words, ' ') LIKE ");
        sql.bind(format!("% {tag}{w} %"));
        sql.push(&format!(" THEN {exact}"));
        if c + 1 < COLUMN_WEIGHTS.len() {
            sql.push(" WHEN CONCAT(' ', words) LIKE ");
            sql.bind(format!("% {tag}{w}%"));
            sql.push(&format!(" THEN {prefix}"));
        } else {
            // The product matched the word somewhere, and nowhere better.
            sql.push(&format!(" ELSE {prefix}"));
        }
    }
    sql.push(" END");
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sort {
    Relevance,
    PriceAsc,
    PriceDesc,
    NameAsc,
    NameDesc,
    Newest,
    /// Best rated first (more reviews first among equals).
    RatingDesc,
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
    /// Only products rated at least this many stars (1 to 5) on average.
    pub min_rating: Option<i32>,
    /// Statuses to list; none means active only (what shoppers see).
    pub statuses: Vec<super::products::Status>,
    pub sort: Option<Sort>,
}

#[derive(Clone, Default)]
pub(super) struct Sql {
    pub text: String,
    pub values: Vec<Value>,
}

impl From<&str> for Sql {
    fn from(text: &str) -> Sql {
        Sql {
            text: text.to_string(),
            values: Vec::new(),
        }
    }
}

impl Sql {
    /// This statement's text and values followed by `rest`'s.
    pub fn then(&self, rest: &Sql) -> Sql {
        let mut values = self.values.clone();
        values.extend(rest.values.iter().cloned());
        Sql {
            text: format!("{}{}", self.text, rest.text),
            values,
        }
    }
    pub fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }
    pub fn bind(&mut self, v: impl Into<Value>) {
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

pub(super) fn validate(q: &ProductQuery) -> ApiResult<()> {
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
    if q.min_rating.is_some_and(|r| !(1..=5).contains(&r)) {
        return Err(ApiError::bad_input("minRating must be 1 to 5 stars"));
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

/// A query's words and the SQL that finds the products matching all of them.
pub(super) struct Matching {
    pub(super) backend: DbBackend,
    words: Vec<String>,
    /// The full-text query matching every word.
    all: String,
    /// ` FROM ... WHERE`: the matching products as `p`, without scores.
    pub(super) matches: Sql,
}

/// `None` when the text is only punctuation: nothing can match.
pub(super) fn matching(ctx: &CatalogCtx, q: &ProductQuery) -> Option<Matching> {
    let mut words = q.text.as_deref().map(words).unwrap_or_default();
    words.truncate(MAX_QUERY_WORDS);
    if q.text.as_deref().is_some_and(|t| !t.trim().is_empty()) && words.is_empty() {
        return None;
    }
    let backend = ctx.reads.get_database_backend();
    let all: Vec<String> = words.iter().map(|w| prefix_query(backend, w)).collect();
    let all = match backend {
        DbBackend::Sqlite => all.join(" AND "),
        _ => all.join(" "),
    };
    let mut matches = Sql::default();
    if words.is_empty() {
        matches.push(" FROM catalog_products p WHERE");
    } else {
        matches.push(" FROM ");
        all_matches(&mut matches, backend, &all);
        matches.push(" m CROSS JOIN catalog_products p WHERE p.id = m.product_id AND");
    }
    Some(Matching {
        backend,
        words,
        all,
        matches,
    })
}

impl Matching {
    /// ` FROM ... WHERE`: the matching products as `p`, each word's score in the terms
    /// of the returned sum.
    fn scored(&self) -> (Sql, String) {
        let backend = self.backend;
        let mut joins = Sql::default();
        let mut score: Vec<String> = Vec::new();
        // SQLite has no statistics to tell it that the matches are fewer than, say, a
        // catalog's products, and would walk the catalog probing them: CROSS JOIN makes
        // it start from the matches.
        joins.push(" FROM ");
        if backend == DbBackend::Sqlite {
            let within = (self.words.len() > 1).then_some(self.all.as_str());
            for (i, w) in self.words.iter().enumerate() {
                if i > 0 {
                    joins.push(" JOIN ");
                }
                word_scores(&mut joins, w, within);
                joins.push(&format!(" s{i}"));
                if i > 0 {
                    joins.push(&format!(" ON s{i}.product_id = s0.product_id"));
                }
                score.push(format!("s{i}.w"));
            }
        } else {
            joins.push("(SELECT product_id");
            for (i, w) in self.words.iter().enumerate() {
                joins.push(", ");
                tagged_score(&mut joins, w);
                joins.push(&format!(" AS w{i}"));
                score.push(format!("s0.w{i}"));
            }
            joins.push(" FROM catalog_search_docs WHERE MATCH (words) AGAINST (");
            joins.bind(self.all.clone());
            joins.push(" IN BOOLEAN MODE)) s0");
        }
        joins.push(" CROSS JOIN catalog_products p WHERE p.id = s0.product_id AND");
        (joins, score.join(" + "))
    }
}

/// The conditions a facet leaves out: its own, so that its counts say what choosing
/// another of its values would give while every other filter still applies.
#[derive(Clone, Copy, Default)]
pub(super) struct Omit<'a> {
    pub category: bool,
    pub price: bool,
    pub in_stock: bool,
    pub attribute: Option<&'a str>,
}

impl Omit<'_> {
    const NOTHING: Omit<'static> = Omit {
        category: false,
        price: false,
        in_stock: false,
        attribute: None,
    };
    pub const CATEGORY: Omit<'static> = Omit {
        category: true,
        ..Omit::NOTHING
    };
    pub const PRICE: Omit<'static> = Omit {
        price: true,
        ..Omit::NOTHING
    };
    pub const IN_STOCK: Omit<'static> = Omit {
        in_stock: true,
        ..Omit::NOTHING
    };
}

/// The query's conditions on `p`, following a `WHERE`.
pub(super) async fn conditions(
    ctx: &CatalogCtx,
    q: &ProductQuery,
    backend: DbBackend,
    omit: Omit<'_>,
) -> ApiResult<Sql> {
    let currency = q
        .currency
        .as_deref()
        .map(shop_kit::money::parse_currency)
        .transpose()?;
    let mut from = Sql::default();
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
    if let Some(cat_id) = q.category_id.as_ref().filter(|_| !omit.category) {
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
    if !omit.price {
        if let Some(min) = q.min_price {
            from.push(" AND p.price_amount >= ");
            from.bind(min);
        }
        if let Some(max) = q.max_price {
            from.push(" AND p.price_amount <= ");
            from.bind(max);
        }
    }
    if let Some(cur) = currency {
        from.push(" AND p.price_currency = ");
        from.bind(cur);
    }
    let attributes: Vec<&AttributeCondition> = q
        .attributes
        .iter()
        .filter(|a| omit.attribute != Some(a.name.as_str()))
        .collect();
    if !attributes.is_empty() && backend == DbBackend::Sqlite {
        // One full-text query for all the conditions: each is a choice of words.
        let conditions: Vec<String> = attributes
            .iter()
            .map(|a| {
                let any: Vec<String> = a
                    .values
                    .iter()
                    .map(|v| attribute_token(&a.name, v))
                    .collect();
                format!("attributes : ({})", any.join(" OR "))
            })
            .collect();
        from.push(" AND p.id IN ");
        all_matches(&mut from, backend, &conditions.join(" AND "));
    } else {
        for a in attributes {
            from.push(
                " AND p.id IN (SELECT product_id FROM catalog_product_attributes WHERE name = ",
            );
            from.bind(a.name.clone());
            from.push(" AND value IN ");
            from.bind_list(a.values.iter().cloned());
            from.push(")");
        }
    }
    if let Some(in_stock) = q.in_stock.filter(|_| !omit.in_stock) {
        from.push(" AND p.in_stock = ");
        from.bind(in_stock);
    }
    if let Some(stars) = q.min_rating {
        from.push(" AND p.rating_count > 0 AND p.rating_hundredths >= ");
        from.bind(i64::from(stars) * 100);
    }
    Ok(from)
}

pub(super) async fn count(ctx: &CatalogCtx, backend: DbBackend, counted: Sql) -> ApiResult<u64> {
    Ok(Count::find_by_statement(Statement::from_sql_and_values(
        backend,
        format!("SELECT COUNT(*) AS n{}", counted.text),
        counted.values,
    ))
    .one(&ctx.reads)
    .await?
    .map(|c| c.n.max(0) as u64)
    .unwrap_or(0))
}

/// Runs a product query and returns the page's window and rows.
pub async fn find(
    ctx: &CatalogCtx,
    q: &ProductQuery,
    page: &PageArgs,
) -> ApiResult<(Window, Vec<product::Model>)> {
    validate(q)?;
    page.validate()?;
    let Some(m) = matching(ctx, q) else {
        return Ok((page.window(0)?, Vec::new()));
    };
    let backend = m.backend;
    let sort = match q.sort {
        Some(Sort::Relevance) | None if !m.words.is_empty() => Sort::Relevance,
        Some(Sort::Relevance) | None => Sort::Newest,
        Some(s) => s,
    };
    let from = conditions(ctx, q, backend, Omit::default()).await?;
    let total = count(ctx, backend, m.matches.then(&from)).await?;
    let window = page.window(total)?;
    if window.limit == 0 {
        return Ok((window, Vec::new()));
    }

    let (listed, order) = match sort {
        Sort::Relevance => {
            let (joins, score) = m.scored();
            (
                joins.then(&from),
                format!("({score}) DESC, p.name ASC, p.id ASC"),
            )
        }
        other => (
            m.matches.then(&from),
            match other {
                Sort::PriceAsc => "p.price_amount ASC, p.id ASC",
                Sort::PriceDesc => "p.price_amount DESC, p.id ASC",
                Sort::NameAsc => "p.name ASC, p.id ASC",
                Sort::NameDesc => "p.name DESC, p.id DESC",
                Sort::RatingDesc => {
                    "p.rating_hundredths DESC, p.rating_count DESC, p.created_at DESC, p.id DESC"
                }
                Sort::Newest | Sort::Relevance => "p.created_at DESC, p.id DESC",
            }
            .to_string(),
        ),
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

    /// Stored in the search index: a change here would leave every product indexed
    /// under words no filter asks for. The expected words are SHA-256 digests computed
    /// apart from this code.
    #[test]
    fn attribute_words_never_change() {
        assert_eq!(attribute_token("color", "red"), "af80856bad449eff4ea702fb7");
        assert_eq!(attribute_token("Größe", "XL"), "a3e026f5afc226bb01d97f0c5");
        assert_ne!(attribute_token("ab", "c"), attribute_token("a", "bc"));
    }

    #[test]
    fn words_are_lowercased_and_split_on_punctuation() {
        assert_eq!(
            words("Red-Shirt, XL (cotton)"),
            vec!["red", "shirt", "xl", "cotton"]
        );
    }
}
