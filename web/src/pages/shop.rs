//! Browsing: home, a catalog, a category, search (all one listing with filters, facet
//! counts, sorting and paging) and the product page.

use std::collections::BTreeSet;

use askama::Template;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use axum_extra::extract::Query;
use serde::Deserialize;
use serde_json::{Value, json};

use super::IdName;
use super::{Chrome, Connection, Named, Visited, failed, frame_counts, render};
use crate::format::{Money, plural};

const HOME: &str = "query Home { catalogs(first: 50) { nodes { id name description supplier { name } categories { id name children { id name } } } } }";

#[derive(Deserialize)]
struct HomeData {
    catalogs: Connection<CatalogCard>,
}

#[derive(Deserialize)]
pub struct CatalogCard {
    pub id: String,
    pub name: String,
    pub description: String,
    pub supplier: Option<Named>,
    pub categories: Vec<CategoryLink>,
}

#[derive(Deserialize)]
pub struct CategoryLink {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub children: Vec<CategoryLink>,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    chrome: Chrome,
    catalogs: Vec<CatalogCard>,
}

/// `/`: the catalogs and their categories.
pub async fn home(Visited { web, mut visit }: Visited) -> Response {
    let web = &*web;
    let (data, count) = tokio::join!(
        web.api.run::<HomeData>(HOME, json!({}), visit.token()),
        frame_counts(web, &visit)
    );
    match data {
        Ok(d) => {
            let chrome = Chrome::of(&mut visit, count);
            let page = render(
                StatusCode::OK,
                HomePage {
                    chrome,
                    catalogs: d.catalogs.nodes,
                },
            );
            visit.finish(page)
        }
        Err(e) => failed(visit, e),
    }
}

/// A listing's address parameters: the same on `/search`, `/catalog/{id}` and
/// `/category/{id}`, so a filter form is one GET form everywhere.
#[derive(Deserialize, Default, Clone)]
pub struct ListParams {
    #[serde(default)]
    q: String,
    /// `name=value`, repeated.
    #[serde(default)]
    attr: Vec<String>,
    /// `min:max:CURRENCY` in minor units, either end empty.
    #[serde(default)]
    band: String,
    /// `1`: in stock only.
    #[serde(default)]
    stock: String,
    #[serde(default)]
    sort: String,
    after: Option<String>,
    before: Option<String>,
}

const PAGE_SIZE: i64 = 24;

const SORTS: [(&str, &str, &str); 7] = [
    ("", "Best match", ""),
    ("newest", "Newest", "NEWEST"),
    ("price-asc", "Price: low to high", "PRICE_ASC"),
    ("price-desc", "Price: high to low", "PRICE_DESC"),
    ("name-asc", "Name: A to Z", "NAME_ASC"),
    ("name-desc", "Name: Z to A", "NAME_DESC"),
    ("rating", "Best rated", "RATING_DESC"),
];

const LISTING: &str = "query Listing($filter: ProductFilter, $search: String, $sort: ProductSort, $first: Int, $after: String, $last: Int, $before: String) { \
  products(filter: $filter, search: $search, sort: $sort, first: $first, after: $after, last: $last, before: $before) { \
    totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } \
    nodes { id name price { amount currency } images inStock onlyLeft rating { averageHundredths count } } } \
  productFacets(filter: $filter, search: $search) { \
    categories { category { id name parent { id } } count } \
    attributes { name values { value count } } \
    priceBands { currency minPrice maxPrice from { amount currency } under { amount currency } count } \
    inStock outOfStock } }";

const CATEGORY_HEAD: &str = "query CategoryHead($id: ID!) { category(id: $id) { id name catalog { id name } path { id name } } }";
const CATALOG_HEAD: &str =
    "query CatalogHead($id: ID!) { catalog(id: $id) { id name description supplier { name } } }";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListingData {
    products: Connection<Card>,
    product_facets: Facets,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Card {
    pub id: String,
    pub name: String,
    pub price: Money,
    pub images: Vec<String>,
    pub in_stock: bool,
    pub only_left: Option<i64>,
    pub rating: Rating,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rating {
    pub average_hundredths: i64,
    pub count: i64,
}

impl Rating {
    /// "4.3 of 5 (12 reviews)", or nothing without reviews.
    pub fn label(&self) -> String {
        if self.count == 0 {
            return String::new();
        }
        format!(
            "{}.{} of 5 stars ({})",
            self.average_hundredths / 100,
            (self.average_hundredths % 100) / 10,
            plural(self.count, "review", "reviews")
        )
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Facets {
    categories: Vec<CategoryFacet>,
    attributes: Vec<AttributeFacet>,
    price_bands: Vec<PriceBand>,
    in_stock: i64,
    out_of_stock: i64,
}

#[derive(Deserialize)]
struct CategoryFacet {
    category: FacetCategory,
    count: i64,
}

#[derive(Deserialize)]
struct FacetCategory {
    id: String,
    name: String,
    parent: Option<Id>,
}

#[derive(Deserialize)]
struct Id {
    id: String,
}

#[derive(Deserialize)]
struct AttributeFacet {
    name: String,
    values: Vec<ValueCount>,
}

#[derive(Deserialize)]
struct ValueCount {
    value: String,
    count: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PriceBand {
    currency: String,
    min_price: Option<i64>,
    max_price: Option<i64>,
    from: Option<Money>,
    under: Option<Money>,
    count: i64,
}

#[derive(Deserialize)]
struct CategoryHead {
    category: Option<HeadCategory>,
}

#[derive(Deserialize)]
struct HeadCategory {
    id: String,
    name: String,
    catalog: Option<IdName>,
    path: Vec<IdName>,
}

#[derive(Deserialize)]
struct CatalogHead {
    catalog: Option<HeadCatalog>,
}

#[derive(Deserialize)]
struct HeadCatalog {
    id: String,
    name: String,
    description: String,
    supplier: Option<Named>,
}

/// A link with a count, for categories.
pub struct CountLink {
    pub href: String,
    pub name: String,
    pub count: i64,
}

pub struct Choice {
    pub value: String,
    pub label: String,
    pub count: i64,
    pub checked: bool,
}

pub struct AttributeView {
    pub name: String,
    pub values: Vec<Choice>,
}

#[derive(Template)]
#[template(path = "listing.html")]
struct ListingPage {
    chrome: Chrome,
    heading: String,
    intro: String,
    crumbs: Vec<(String, String)>,
    /// The path the filter form submits to.
    action: String,
    q: String,
    total: i64,
    products: Vec<Card>,
    subcategories: Vec<CountLink>,
    attributes: Vec<AttributeView>,
    bands: Vec<Choice>,
    band_chosen: bool,
    in_stock: i64,
    out_of_stock: i64,
    stock_only: bool,
    sorts: Vec<Choice>,
    filtered: bool,
    prev: Option<String>,
    next: Option<String>,
}

/// What a listing is of.
enum Scope {
    Everything,
    Catalog(String),
    Category(String),
}

pub async fn search(visited: Visited, Query(p): Query<ListParams>) -> Response {
    listing(visited, Scope::Everything, p).await
}

pub async fn catalog(
    visited: Visited,
    Path(id): Path<String>,
    Query(p): Query<ListParams>,
) -> Response {
    listing(visited, Scope::Catalog(id), p).await
}

pub async fn category(
    visited: Visited,
    Path(id): Path<String>,
    Query(p): Query<ListParams>,
) -> Response {
    listing(visited, Scope::Category(id), p).await
}

/// The filter the address asks for, as `ProductFilter`.
fn filter_of(scope: &Scope, p: &ListParams) -> Value {
    let mut filter = json!({});
    match scope {
        Scope::Everything => {}
        Scope::Catalog(id) => filter["catalogId"] = json!(id),
        Scope::Category(id) => filter["categoryId"] = json!(id),
    }
    let mut by_name: Vec<(String, Vec<String>)> = Vec::new();
    for a in p.attr.iter().take(20) {
        let Some((name, value)) = a.split_once('=') else {
            continue;
        };
        match by_name.iter_mut().find(|(n, _)| n == name) {
            Some((_, values)) if values.len() < 50 => values.push(value.to_string()),
            Some(_) => {}
            None => by_name.push((name.to_string(), vec![value.to_string()])),
        }
    }
    if !by_name.is_empty() {
        filter["attributes"] = by_name
            .into_iter()
            .map(|(name, values)| json!({ "name": name, "values": values }))
            .collect();
    }
    let mut band = p.band.splitn(3, ':');
    if let (Some(min), Some(max), Some(currency)) = (band.next(), band.next(), band.next()) {
        if let Ok(min) = min.parse::<i64>() {
            filter["minPrice"] = json!(min);
        }
        if let Ok(max) = max.parse::<i64>() {
            filter["maxPrice"] = json!(max);
        }
        if currency.len() == 3 {
            filter["currency"] = json!(currency);
        }
    }
    if p.stock == "1" {
        filter["inStock"] = json!(true);
    }
    filter
}

/// The address of this listing with `p`'s filters (paging dropped unless given).
fn href(path: &str, p: &ListParams) -> String {
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    if !p.q.is_empty() {
        pairs.push(("q", &p.q));
    }
    for a in &p.attr {
        pairs.push(("attr", a));
    }
    if !p.band.is_empty() {
        pairs.push(("band", &p.band));
    }
    if !p.stock.is_empty() {
        pairs.push(("stock", &p.stock));
    }
    if !p.sort.is_empty() {
        pairs.push(("sort", &p.sort));
    }
    if let Some(a) = &p.after {
        pairs.push(("after", a));
    }
    if let Some(b) = &p.before {
        pairs.push(("before", b));
    }
    if pairs.is_empty() {
        return path.to_string();
    }
    let query: Vec<String> = pairs
        .into_iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect();
    format!("{path}?{}", query.join("&"))
}

/// Percent-encoding for a query value.
pub fn encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

async fn listing(Visited { web, mut visit }: Visited, scope: Scope, p: ListParams) -> Response {
    let web = &*web;
    let filter = filter_of(&scope, &p);
    let sort = SORTS
        .iter()
        .find(|s| s.0 == p.sort && !s.2.is_empty())
        .map(|s| s.2);
    let search = p.q.trim();
    let mut vars = json!({
        "filter": filter,
        "search": if search.is_empty() { Value::Null } else { json!(search) },
        "sort": sort,
    });
    if let Some(before) = &p.before {
        vars["last"] = json!(PAGE_SIZE);
        vars["before"] = json!(before);
    } else {
        vars["first"] = json!(PAGE_SIZE);
        vars["after"] = json!(p.after);
    }
    let token = visit.token().map(str::to_string);
    let head = async {
        match &scope {
            Scope::Category(id) => web
                .api
                .run::<CategoryHead>(CATEGORY_HEAD, json!({ "id": id }), token.as_deref())
                .await
                .map(|h| (h.category.map(Head::Category), true)),
            Scope::Catalog(id) => web
                .api
                .run::<CatalogHead>(CATALOG_HEAD, json!({ "id": id }), token.as_deref())
                .await
                .map(|h| (h.catalog.map(Head::Catalog), true)),
            Scope::Everything => Ok((None, false)),
        }
    };
    let (data, head, count) = tokio::join!(
        web.api.run::<ListingData>(LISTING, vars, token.as_deref()),
        head,
        frame_counts(web, &visit)
    );
    let (head, scoped) = match head {
        Ok(h) => h,
        Err(e) => return failed(visit, e),
    };
    if scoped && head.is_none() {
        return super::error_page(
            visit,
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such catalog or category.",
        );
    }
    let data = match data {
        Ok(d) => d,
        Err(e) => return failed(visit, e),
    };
    let (action, heading, intro, crumbs, current) = match &head {
        Some(Head::Category(c)) => {
            let mut crumbs = vec![("/".to_string(), "Home".to_string())];
            if let Some(cat) = &c.catalog {
                crumbs.push((format!("/catalog/{}", cat.id), cat.name.clone()));
            }
            for step in c.path.iter().filter(|s| s.id != c.id) {
                crumbs.push((format!("/category/{}", step.id), step.name.clone()));
            }
            (
                format!("/category/{}", c.id),
                c.name.clone(),
                String::new(),
                crumbs,
                Some(c.id.clone()),
            )
        }
        Some(Head::Catalog(c)) => {
            let by = c
                .supplier
                .as_ref()
                .map(|s| format!("By {}. ", s.name))
                .unwrap_or_default();
            (
                format!("/catalog/{}", c.id),
                c.name.clone(),
                format!("{by}{}", c.description),
                vec![("/".to_string(), "Home".to_string())],
                None,
            )
        }
        None => (
            "/search".to_string(),
            if search.is_empty() {
                "All products".to_string()
            } else {
                format!("Results for “{search}”")
            },
            String::new(),
            vec![("/".to_string(), "Home".to_string())],
            None,
        ),
    };

    // Subcategories: under the category shown, else the top of each catalog.
    let listed: BTreeSet<&str> = data
        .product_facets
        .categories
        .iter()
        .map(|c| c.category.id.as_str())
        .collect();
    let subcategories = data
        .product_facets
        .categories
        .iter()
        .filter(|c| {
            let parent = c.category.parent.as_ref().map(|p| p.id.as_str());
            match &current {
                Some(id) => parent == Some(id.as_str()),
                None => parent.is_none_or(|p| !listed.contains(p)),
            }
        })
        .map(|c| CountLink {
            href: href(
                &format!("/category/{}", c.category.id),
                &ListParams {
                    after: None,
                    before: None,
                    ..p.clone()
                },
            ),
            name: c.category.name.clone(),
            count: c.count,
        })
        .collect();
    let attributes = data
        .product_facets
        .attributes
        .into_iter()
        .map(|a| AttributeView {
            values: a
                .values
                .into_iter()
                .map(|v| {
                    let value = format!("{}={}", a.name, v.value);
                    Choice {
                        checked: p.attr.contains(&value),
                        label: v.value,
                        value,
                        count: v.count,
                    }
                })
                .collect(),
            name: a.name,
        })
        .collect();
    let bands: Vec<Choice> = data
        .product_facets
        .price_bands
        .into_iter()
        .map(|b| {
            let value = format!(
                "{}:{}:{}",
                b.min_price.map(|m| m.to_string()).unwrap_or_default(),
                b.max_price.map(|m| m.to_string()).unwrap_or_default(),
                b.currency
            );
            let label = match (&b.from, &b.under) {
                (None, Some(u)) => format!("Under {}", u.show()),
                (Some(f), Some(u)) => format!("{} to {}", f.show(), u.show()),
                (Some(f), None) => format!("{} and over", f.show()),
                (None, None) => format!("Any price in {}", b.currency),
            };
            Choice {
                checked: p.band == value,
                value,
                label,
                count: b.count,
            }
        })
        .collect();
    let sorts = SORTS
        .iter()
        .filter(|s| !s.0.is_empty() || !search.is_empty())
        .map(|s| Choice {
            value: s.0.to_string(),
            label: s.1.to_string(),
            count: 0,
            checked: s.0 == p.sort,
        })
        .collect();
    let info = data.products.page_info;
    let paged = |after: Option<String>, before: Option<String>| {
        href(
            &action,
            &ListParams {
                after,
                before,
                ..p.clone()
            },
        )
    };
    let next = info
        .as_ref()
        .filter(|i| i.has_next_page)
        .and_then(|i| i.end_cursor.clone())
        .map(|c| paged(Some(c), None));
    let prev = info
        .as_ref()
        .filter(|i| i.has_previous_page)
        .and_then(|i| i.start_cursor.clone())
        .map(|c| paged(None, Some(c)));
    let mut chrome = Chrome::of(&mut visit, count);
    chrome.q = p.q.clone();
    let page = render(
        StatusCode::OK,
        ListingPage {
            chrome,
            heading,
            intro,
            crumbs,
            action,
            q: p.q.clone(),
            total: data.products.total_count,
            products: data.products.nodes,
            subcategories,
            attributes,
            band_chosen: bands.iter().any(|b: &Choice| b.checked),
            bands,
            in_stock: data.product_facets.in_stock,
            out_of_stock: data.product_facets.out_of_stock,
            stock_only: p.stock == "1",
            sorts,
            filtered: !p.attr.is_empty() || !p.band.is_empty() || p.stock == "1",
            prev,
            next,
        },
    );
    visit.finish(page)
}

enum Head {
    Category(HeadCategory),
    Catalog(HeadCatalog),
}

const PRODUCT: &str = "query Product($id: ID!) { product(id: $id) { \
  id sku name description price { amount currency } images attributes status inStock onlyLeft \
  weightGrams catalog { id name supplier { name } } category { id name path { id name } } \
  rating { averageHundredths count } \
  reviews(first: 5) { nodes { rating title body author { name } createdAt } } \
  similar(first: 4) { id name price { amount currency } images inStock onlyLeft rating { averageHundredths count } } } }";

#[derive(Deserialize)]
struct ProductData {
    product: Option<ProductView>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProductView {
    id: String,
    sku: String,
    name: String,
    description: String,
    price: Money,
    images: Vec<String>,
    attributes: Value,
    status: String,
    in_stock: bool,
    only_left: Option<i64>,
    weight_grams: Option<i64>,
    catalog: Option<ProductCatalog>,
    category: Option<ProductCategory>,
    rating: Rating,
    reviews: Connection<ReviewView>,
    similar: Vec<Card>,
}

#[derive(Deserialize)]
struct ProductCatalog {
    id: String,
    name: String,
    supplier: Option<Named>,
}

#[derive(Deserialize)]
struct ProductCategory {
    path: Vec<IdName>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewView {
    pub rating: i64,
    pub title: String,
    pub body: String,
    pub author: Option<Named>,
    pub created_at: String,
}

impl ReviewView {
    pub fn date(&self) -> &str {
        self.created_at.get(..10).unwrap_or(&self.created_at)
    }
    pub fn stars(&self) -> String {
        let n = self.rating.clamp(0, 5) as usize;
        format!("{}{}", "★".repeat(n), "☆".repeat(5 - n))
    }
}

#[derive(Template)]
#[template(path = "product.html")]
struct ProductPage {
    chrome: Chrome,
    crumbs: Vec<(String, String)>,
    id: String,
    sku: String,
    name: String,
    description: String,
    price: String,
    images: Vec<String>,
    attributes: Vec<(String, String)>,
    on_sale: bool,
    in_stock: bool,
    only_left: Option<i64>,
    weight: Option<String>,
    seller: String,
    rating: String,
    reviews: Vec<ReviewView>,
    similar: Vec<Card>,
}

/// Attribute values as text: lists joined, numbers and booleans as written.
fn attribute_rows(attrs: &Value) -> Vec<(String, String)> {
    let Value::Object(map) = attrs else {
        return Vec::new();
    };
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "yes".into(),
        Value::Bool(false) => "no".into(),
        other => other.to_string(),
    };
    map.iter()
        .map(|(k, v)| {
            let shown = match v {
                Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(", "),
                other => text(other),
            };
            (k.clone(), shown)
        })
        .collect()
}

/// `/product/{id}`.
pub async fn product(Visited { web, mut visit }: Visited, Path(id): Path<String>) -> Response {
    let web = &*web;
    let (data, count) = tokio::join!(
        web.api
            .run::<ProductData>(PRODUCT, json!({ "id": id }), visit.token()),
        frame_counts(web, &visit)
    );
    let p = match data {
        Ok(ProductData { product: Some(p) }) => p,
        Ok(ProductData { product: None }) | Err(crate::ApiError::Refused { .. }) => {
            return super::error_page(
                visit,
                StatusCode::NOT_FOUND,
                "Not found",
                "There is no such product.",
            );
        }
        Err(e) => return failed(visit, e),
    };
    let mut crumbs = vec![("/".to_string(), "Home".to_string())];
    if let Some(c) = &p.catalog {
        crumbs.push((format!("/catalog/{}", c.id), c.name.clone()));
    }
    for step in p.category.iter().flat_map(|c| &c.path) {
        crumbs.push((format!("/category/{}", step.id), step.name.clone()));
    }
    let seller = p
        .catalog
        .as_ref()
        .and_then(|c| c.supplier.as_ref())
        .map(|s| s.name.clone())
        .unwrap_or_default();
    let chrome = Chrome::of(&mut visit, count);
    let page = render(
        StatusCode::OK,
        ProductPage {
            chrome,
            crumbs,
            id: p.id,
            sku: p.sku,
            name: p.name,
            description: p.description,
            price: p.price.show(),
            images: p.images,
            attributes: attribute_rows(&p.attributes),
            on_sale: p.status == "ACTIVE",
            in_stock: p.in_stock,
            only_left: p.only_left,
            weight: p.weight_grams.map(|g| {
                if g >= 1000 {
                    format!("{}.{} kg", g / 1000, (g % 1000) / 100)
                } else {
                    format!("{g} g")
                }
            }),
            seller,
            rating: p.rating.label(),
            reviews: p.reviews.nodes,
            similar: p.similar,
        },
    );
    visit.finish(page)
}

impl Card {
    pub fn price_label(&self) -> String {
        self.price.show()
    }
    pub fn stock_label(&self) -> String {
        match (self.in_stock, self.only_left) {
            (false, _) => "Out of stock".into(),
            (true, Some(n)) => format!("Only {n} left"),
            (true, None) => "In stock".into(),
        }
    }
}

/// A count for a filter label: "(12)".
pub fn count_label(n: &i64) -> String {
    format!("({n})")
}
