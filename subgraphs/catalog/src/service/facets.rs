//! Facet counts for a product search (`productFacets`): how many matching products
//! fall in each category, attribute value, price band and stock state, so a storefront
//! can print "Jackets (12)" beside each filter. Each facet is counted with every filter
//! but its own: a shopper who has ticked "red" still sees how many "blue" would add,
//! and the price bands stay visible after one is chosen.

use std::collections::{BTreeMap, HashMap};

use sea_orm::{ColumnTrait, DbBackend, EntityTrait, FromQueryResult, QueryFilter, Statement};
use shop_kit::{ApiError, ApiResult};

use super::CatalogCtx;
use super::products::MAX_INDEXED_VALUE;
use super::search::{Omit, ProductQuery, Sql, conditions, count, matching, validate};
use crate::entity::category;

/// Band boundaries in minor units when the caller gives none: under 25, 25–50,
/// 50–100, 100–250, 250–500, 500 and over.
pub const DEFAULT_PRICE_BANDS: [i64; 5] = [2_500, 5_000, 10_000, 25_000, 50_000];
/// Boundaries a caller may give.
pub const MAX_PRICE_BANDS: usize = 20;
/// Attributes listed (the most common; filtered ones always).
pub const MAX_ATTRIBUTE_NAMES: usize = 20;
/// Values listed per attribute (the most common; chosen ones always).
pub const MAX_VALUES_PER_ATTRIBUTE: usize = 50;

pub struct Facets {
    /// Products matching every filter.
    pub total: u64,
    /// Each category holding matches, with the matches in it and below it.
    pub categories: Vec<(category::Model, u64)>,
    pub attributes: Vec<AttributeFacet>,
    pub price_bands: Vec<PriceBand>,
    pub in_stock: u64,
    pub out_of_stock: u64,
}

pub struct AttributeFacet {
    pub name: String,
    /// Values, most products first.
    pub values: Vec<(String, u64)>,
}

/// Products priced from `min` to `max` (both inclusive, as the filter takes them; open
/// at the ends) in one currency.
pub struct PriceBand {
    pub currency: String,
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub count: u64,
}

impl Facets {
    fn none() -> Self {
        Facets {
            total: 0,
            categories: Vec::new(),
            attributes: Vec::new(),
            price_bands: Vec::new(),
            in_stock: 0,
            out_of_stock: 0,
        }
    }
}

fn check_bands(bands: &[i64]) -> ApiResult<()> {
    if bands.is_empty() || bands.len() > MAX_PRICE_BANDS {
        return Err(ApiError::bad_input(format!(
            "priceBands: give 1 to {MAX_PRICE_BANDS} boundaries"
        )));
    }
    if bands[0] <= 0 || bands.windows(2).any(|w| w[0] >= w[1]) {
        return Err(ApiError::bad_input(
            "priceBands: boundaries must be positive and strictly increasing",
        ));
    }
    Ok(())
}

#[derive(FromQueryResult)]
struct CategoryCount {
    category_id: Option<String>,
    n: i64,
}

#[derive(FromQueryResult)]
struct BandCount {
    currency: String,
    band: i64,
    n: i64,
}

#[derive(FromQueryResult)]
struct StockCount {
    in_stock: bool,
    n: i64,
}

#[derive(FromQueryResult)]
struct ValueCount {
    name: String,
    value: String,
    n: i64,
}

async fn rows<T: FromQueryResult>(
    ctx: &CatalogCtx,
    backend: DbBackend,
    sql: Sql,
) -> ApiResult<Vec<T>> {
    Ok(T::find_by_statement(Statement::from_sql_and_values(
        backend, sql.text, sql.values,
    ))
    .all(&ctx.reads)
    .await?)
}

/// The facets of the products `q` matches; `bands` are price band boundaries.
pub async fn facets(ctx: &CatalogCtx, q: &ProductQuery, bands: &[i64]) -> ApiResult<Facets> {
    validate(q)?;
    check_bands(bands)?;
    let Some(m) = matching(ctx, q) else {
        return Ok(Facets::none());
    };
    let backend = m.backend;
    let everything = conditions(ctx, q, backend, Omit::default()).await?;
    let total = count(ctx, backend, m.matches.then(&everything)).await?;

    // Categories: counted where each product is, then added up the tree.
    let without = |omit| conditions(ctx, q, backend, omit);
    let sql = grouped(
        Sql::from("SELECT p.category_id AS category_id, COUNT(*) AS n"),
        &m.matches.then(&without(Omit::CATEGORY).await?),
        " GROUP BY p.category_id",
    );
    let placed: Vec<CategoryCount> = rows(ctx, backend, sql).await?;
    let categories = roll_up(ctx, placed).await?;

    // Price bands, per currency.
    let mut select = Sql::from("SELECT p.price_currency AS currency, CASE");
    for (i, b) in bands.iter().enumerate() {
        select.push(" WHEN p.price_amount < ");
        select.bind(*b);
        select.push(&format!(" THEN {i}"));
    }
    select.push(&format!(" ELSE {} END AS band, COUNT(*) AS n", bands.len()));
    let sql = grouped(
        select,
        &m.matches.then(&without(Omit::PRICE).await?),
        " GROUP BY p.price_currency, band ORDER BY p.price_currency, band",
    );
    let price_bands = rows::<BandCount>(ctx, backend, sql)
        .await?
        .into_iter()
        .filter_map(|r| {
            let band = usize::try_from(r.band).ok()?;
            Some(PriceBand {
                currency: r.currency,
                min: band.checked_sub(1).map(|i| bands[i]),
                max: bands.get(band).map(|b| b - 1),
                count: r.n.max(0) as u64,
            })
        })
        .collect();

    // Stock.
    let sql = grouped(
        Sql::from("SELECT p.in_stock AS in_stock, COUNT(*) AS n"),
        &m.matches.then(&without(Omit::IN_STOCK).await?),
        " GROUP BY p.in_stock",
    );
    let (mut in_stock, mut out_of_stock) = (0, 0);
    for r in rows::<StockCount>(ctx, backend, sql).await? {
        if r.in_stock {
            in_stock += r.n.max(0) as u64;
        } else {
            out_of_stock += r.n.max(0) as u64;
        }
    }

    // Attributes: one count for the attributes nobody filters on, then one per
    // filtered attribute without its own condition.
    let mut filtered: Vec<&str> = q.attributes.iter().map(|a| a.name.as_str()).collect();
    filtered.sort_unstable();
    filtered.dedup();
    let mut counted: Vec<ValueCount> = rows(
        ctx,
        backend,
        attribute_counts(
            backend,
            &m.matches.then(&everything),
            Names::Except(&filtered),
        ),
    )
    .await?;
    for name in &filtered {
        let omit = Omit {
            attribute: Some(name),
            ..Omit::default()
        };
        let without = conditions(ctx, q, backend, omit).await?;
        counted.extend(
            rows::<ValueCount>(
                ctx,
                backend,
                attribute_counts(backend, &m.matches.then(&without), Names::Only(name)),
            )
            .await?,
        );
    }
    let attributes = rank_attributes(counted, q);

    Ok(Facets {
        total,
        categories,
        attributes,
        price_bands,
        in_stock,
        out_of_stock,
    })
}

/// `select`, then the matched products' `FROM ... WHERE ...`, then `group`.
fn grouped(select: Sql, matched: &Sql, group: &str) -> Sql {
    let mut sql = select.then(matched);
    sql.push(group);
    sql
}

enum Names<'a> {
    Only(&'a str),
    Except(&'a [&'a str]),
}

/// Counts per attribute (name, value) of the products `matched` selects, with values
/// as the filter matches them: strings as they are, numbers and booleans as text,
/// arrays as each of their items; values too long to be indexed are left out.
fn attribute_counts(backend: DbBackend, matched: &Sql, names: Names<'_>) -> Sql {
    let mut sql = Sql::default();
    let name_condition = |sql: &mut Sql, column: &str| match &names {
        Names::Only(n) => {
            sql.push(&format!(" AND {column} = "));
            sql.bind(n.to_string());
        }
        Names::Except(list) if !list.is_empty() => {
            sql.push(&format!(" AND {column} NOT IN ("));
            for (i, n) in list.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.bind(n.to_string());
            }
            sql.push(")");
        }
        Names::Except(_) => {}
    };
    if backend == DbBackend::Sqlite {
        // SQLite keeps attribute pairs only in the search index, as digests: read them
        // from the products' JSON.
        let text = |v: &str, t: &str| {
            format!(
                "CASE {t} WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' ELSE CAST({v} AS TEXT) END"
            )
        };
        sql.push(&format!(
            "SELECT name, value, COUNT(DISTINCT id) AS n FROM (SELECT q.id AS id, j.key AS name, \
             CASE WHEN j.type = 'array' THEN {} ELSE {} END AS value, \
             CASE WHEN j.type = 'array' THEN e.type ELSE j.type END AS kind \
             FROM catalog_products q JOIN json_each(q.attributes) j \
             LEFT JOIN json_each(CASE WHEN j.type = 'array' THEN j.value ELSE '[]' END) e \
             WHERE j.key IS NOT NULL",
            text("e.value", "e.type"),
            text("j.value", "j.type"),
        ));
        name_condition(&mut sql, "j.key");
        sql.push(" AND q.id IN (SELECT p.id");
        let mut sql = sql.then(matched);
        sql.push(&format!(
            ")) t WHERE kind IN ('text', 'integer', 'real', 'true', 'false') \
             AND length(name) <= 100 AND length(value) <= {MAX_INDEXED_VALUE} \
             GROUP BY name, value"
        ));
        sql
    } else {
        sql.push(
            "SELECT a.name AS name, a.value AS value, COUNT(*) AS n \
             FROM catalog_product_attributes a WHERE 1 = 1",
        );
        name_condition(&mut sql, "a.name");
        sql.push(" AND a.product_id IN (SELECT p.id");
        let mut sql = sql.then(matched);
        sql.push(") GROUP BY a.name, a.value");
        sql
    }
}

/// The most common attributes and values first, keeping every one the shopper chose
/// so that it can be unticked.
fn rank_attributes(counted: Vec<ValueCount>, q: &ProductQuery) -> Vec<AttributeFacet> {
    let chosen = |name: &str, value: Option<&str>| {
        q.attributes
            .iter()
            .any(|a| a.name == name && value.is_none_or(|v| a.values.iter().any(|x| x == v)))
    };
    let mut by_name: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
    for r in counted {
        by_name
            .entry(r.name)
            .or_default()
            .push((r.value, r.n.max(0) as u64));
    }
    let mut facets: Vec<AttributeFacet> = by_name
        .into_iter()
        .map(|(name, mut values)| {
            values.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            let mut kept: Vec<(String, u64)> = Vec::new();
            for (i, (value, n)) in values.into_iter().enumerate() {
                if i < MAX_VALUES_PER_ATTRIBUTE || chosen(&name, Some(&value)) {
                    kept.push((value, n));
                }
            }
            AttributeFacet { name, values: kept }
        })
        .collect();
    let reach = |f: &AttributeFacet| f.values.iter().map(|v| v.1).sum::<u64>();
    facets.sort_by(|a, b| reach(b).cmp(&reach(a)).then_with(|| a.name.cmp(&b.name)));
    let mut out = Vec::new();
    for (i, f) in facets.into_iter().enumerate() {
        if i < MAX_ATTRIBUTE_NAMES || chosen(&f.name, None) {
            out.push(f);
        }
    }
    out
}

/// Each category holding matches with the count in it and below it, most first.
async fn roll_up(
    ctx: &CatalogCtx,
    placed: Vec<CategoryCount>,
) -> ApiResult<Vec<(category::Model, u64)>> {
    let placed: Vec<(String, u64)> = placed
        .into_iter()
        .filter_map(|c| Some((c.category_id?, c.n.max(0) as u64)))
        .collect();
    if placed.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = placed.iter().map(|(id, _)| id.clone()).collect();
    let mut catalogs: Vec<String> = Vec::new();
    for chunk in ids.chunks(500) {
        catalogs.extend(
            category::Entity::find()
                .filter(category::Column::Id.is_in(chunk.iter().cloned()))
                .all(&ctx.reads)
                .await?
                .into_iter()
                .map(|c| c.catalog_id),
        );
    }
    catalogs.sort_unstable();
    catalogs.dedup();
    let mut all: HashMap<String, category::Model> = HashMap::new();
    for chunk in catalogs.chunks(500) {
        for c in category::Entity::find()
            .filter(category::Column::CatalogId.is_in(chunk.iter().cloned()))
            .all(&ctx.reads)
            .await?
        {
            all.insert(c.id.clone(), c);
        }
    }
    let mut totals: HashMap<String, u64> = HashMap::new();
    for (id, n) in placed {
        // Up the parents; the depth bound guards against a cycle in stored data.
        let mut at = Some(id);
        let mut depth = 0;
        while let Some(id) = at.take() {
            depth += 1;
            if depth > 64 {
                break;
            }
            *totals.entry(id.clone()).or_default() += n;
            at = all.get(&id).and_then(|c| c.parent_id.clone());
        }
    }
    let mut out: Vec<(category::Model, u64)> = totals
        .into_iter()
        .filter_map(|(id, n)| Some((all.remove(&id)?, n)))
        .collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.name.cmp(&b.0.name)));
    Ok(out)
}
