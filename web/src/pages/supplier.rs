//! The supplier portal: my catalogs (create, rename), their categories (add, rename,
//! remove) and products (create, edit, publish, archive, delete), stock with its
//! ledger ("why is this number what it is") and low-stock alerts. Imports and exports
//! are in `supplier_imports.rs`. Admins may open any supplier's pages; the API decides
//! what each caller may change, the pages only offer it.

use askama::Template;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{Redirect, Response};
use axum_extra::extract::Query;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::orders::when;
use super::{Chrome, Connection, Pick, Posted, Visited, error_page, failed, frame_counts, render};
use crate::format::{Money, exponent_of, major_units, minor_units};
use crate::session::{Visit, say};

/// Signed in as a supplier (or an admin), or the page to show instead.
pub fn supplier_only(visit: Visit, path: &str) -> Result<Visit, Box<Response>> {
    super::with_role(
        visit,
        path,
        &["SUPPLIER", "ADMIN"],
        "These pages are for the shop's suppliers. Ask an administrator to make your account a supplier's.",
    )
}

/// The three states of a product, as the pages name them.
pub const STATUSES: [(&str, &str); 3] = [
    ("ACTIVE", "On sale"),
    ("DRAFT", "Draft"),
    ("ARCHIVED", "Archived"),
];

pub fn status_name(code: &str) -> &str {
    super::label(&STATUSES, code).unwrap_or(code)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub updated_at: String,
}

impl CatalogRow {
    pub fn changed(&self) -> String {
        when(&self.updated_at)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LowStock {
    pub product_id: String,
    pub available: i64,
    pub low_stock_threshold: i64,
    pub product: Option<ProductName>,
}

#[derive(Deserialize)]
pub struct ProductName {
    pub name: String,
    pub sku: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportRow {
    pub id: String,
    pub status: String,
    pub file_name: String,
    pub created_at: String,
    pub catalog: Option<super::Named>,
}

impl ImportRow {
    pub fn started(&self) -> String {
        when(&self.created_at)
    }
    pub fn status_text(&self) -> &'static str {
        super::supplier_imports::job_status(&self.status)
    }
    pub fn catalog_name(&self) -> &str {
        self.catalog
            .as_ref()
            .map_or("(deleted)", |c| c.name.as_str())
    }
}

const IMPORT_ROW: &str = "id status fileName createdAt catalog { name }";

#[derive(Template)]
#[template(path = "supplier_home.html")]
struct HomePage {
    chrome: Chrome,
    catalogs: Vec<CatalogRow>,
    low: Vec<LowStock>,
    low_total: i64,
    imports: Vec<ImportRow>,
}

/// `GET /supplier`: my catalogs, what runs low, the latest imports.
pub async fn home(Visited { web, visit }: Visited) -> Response {
    let mut visit = match supplier_only(visit, "/supplier") {
        Ok(v) => v,
        Err(r) => return *r,
    };
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        catalogs: Connection<CatalogRow>,
        stock_levels: Connection<LowStock>,
        catalog_imports: Connection<ImportRow>,
    }
    let me = visit.user().map(|u| u.id.clone()).unwrap_or_default();
    let q = format!(
        "query SupplierHome($me: ID!) {{ catalogs(supplierId: $me, first: 100) {{ nodes {{ id name description updatedAt }} }} \
         stockLevels(supplierId: $me, lowStockOnly: true, first: 10) {{ totalCount nodes {{ productId available lowStockThreshold product {{ name sku }} }} }} \
         catalogImports(first: 5) {{ nodes {{ {IMPORT_ROW} }} }} }}"
    );
    let (data, counts) = tokio::join!(
        web.api.run::<Data>(&q, json!({ "me": me }), visit.token()),
        frame_counts(&web, &visit)
    );
    let d = match data {
        Ok(d) => d,
        Err(e) => return failed(visit, e),
    };
    let chrome = Chrome::of(&mut visit, counts);
    let page = render(
        StatusCode::OK,
        HomePage {
            chrome,
            catalogs: d.catalogs.nodes,
            low_total: d.stock_levels.total_count,
            low: d.stock_levels.nodes,
            imports: d.catalog_imports.nodes,
        },
    );
    visit.finish(page)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CatalogForm {
    name: String,
    description: String,
}

/// `POST /supplier/catalogs`: a new catalog.
pub async fn create_catalog(
    Posted {
        web, visit, form, ..
    }: Posted<CatalogForm>,
) -> Response {
    let mut visit = match supplier_only(visit, "/supplier") {
        Ok(v) => v,
        Err(r) => return *r,
    };
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        create_catalog: super::IdName,
    }
    let result = web
        .api
        .run::<Data>(
            "mutation CreateCatalog($input: CreateCatalogInput!) { createCatalog(input: $input) { id name } }",
            json!({ "input": { "name": form.name.trim(), "description": form.description.trim() } }),
            visit.token(),
        )
        .await;
    match result {
        Ok(d) => {
            visit.notify(format!(
                "Catalog “{}” created. Add categories and products, or import a file.",
                d.create_catalog.name
            ));
            let to = format!("/supplier/catalogs/{}", d.create_catalog.id);
            visit.finish(Redirect::to(&to))
        }
        Err(e) => {
            visit.notify_error(say(&e));
            visit.finish(Redirect::to("/supplier"))
        }
    }
}

/// A category, flattened from the tree with its depth (for indenting and for the
/// choices of a product's category).
pub struct CategoryLine {
    pub id: String,
    pub name: String,
    pub depth: usize,
    /// `Kitchen › Mugs`.
    pub path: String,
}

impl CategoryLine {
    pub fn indent(&self) -> String {
        "— ".repeat(self.depth)
    }
}

#[derive(Deserialize)]
pub struct CategoryNode {
    id: String,
    name: String,
    #[serde(default)]
    children: Vec<CategoryNode>,
}

/// Four levels of the tree (the pages show and offer no deeper categories).
pub const CATEGORY_TREE: &str =
    "categories { id name children { id name children { id name children { id name } } } }";

pub fn flatten(nodes: &[CategoryNode]) -> Vec<CategoryLine> {
    fn walk(nodes: &[CategoryNode], depth: usize, prefix: &str, out: &mut Vec<CategoryLine>) {
        for n in nodes {
            let path = if prefix.is_empty() {
                n.name.clone()
            } else {
                format!("{prefix} › {}", n.name)
            };
            out.push(CategoryLine {
                id: n.id.clone(),
                name: n.name.clone(),
                depth,
                path: path.clone(),
            });
            walk(&n.children, depth + 1, &path, out);
        }
    }
    let mut out = Vec::new();
    walk(nodes, 0, "", &mut out);
    out
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductRow {
    pub id: String,
    pub sku: String,
    pub name: String,
    pub status: String,
    pub price: Money,
    pub stock: Option<i64>,
    pub category: Option<super::Named>,
}

impl ProductRow {
    pub fn status_text(&self) -> &str {
        status_name(&self.status)
    }
    pub fn category_name(&self) -> &str {
        self.category.as_ref().map_or("—", |c| c.name.as_str())
    }
    pub fn stock_text(&self) -> String {
        self.stock.map_or("—".into(), |s| s.to_string())
    }
}

#[derive(Template)]
#[template(path = "supplier_catalog.html")]
struct CatalogPage {
    chrome: Chrome,
    catalog: CatalogRow,
    categories: Vec<CategoryLine>,
    products: Vec<ProductRow>,
    total: i64,
    next: Option<String>,
    q: String,
    statuses: Vec<Pick>,
    imports: Vec<ImportRow>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CatalogParams {
    q: String,
    status: String,
    after: Option<String>,
}

/// `GET /supplier/catalogs/{id}`: the catalog's details, categories, products (every
/// state, by search), its imports and the forms to import or export.
pub async fn catalog(
    Visited { web, visit }: Visited,
    Path(id): Path<String>,
    Query(p): Query<CatalogParams>,
) -> Response {
    let mut visit = match supplier_only(visit, &format!("/supplier/catalogs/{id}")) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    #[derive(Deserialize)]
    struct Catalog {
        #[serde(flatten)]
        row: CatalogRow,
        categories: Vec<CategoryNode>,
        products: Connection<ProductRow>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        catalog: Option<Catalog>,
        catalog_imports: Connection<ImportRow>,
    }
    let statuses: Vec<&str> = match STATUSES.iter().find(|(c, _)| *c == p.status) {
        Some((c, _)) => vec![c],
        None => STATUSES.iter().map(|(c, _)| *c).collect(),
    };
    let q = p.q.trim();
    let query = format!(
        "query SupplierCatalog($id: ID!, $q: String, $status: [ProductStatus!], $after: String) {{ \
         catalog(id: $id) {{ id name description updatedAt {CATEGORY_TREE} \
           products(filter: {{ status: $status }}, search: $q, sort: NAME_ASC, first: 50, after: $after) {{ totalCount pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} \
             nodes {{ id sku name status price {{ amount currency }} stock category {{ name }} }} }} }} \
         catalogImports(catalogId: $id, first: 5) {{ nodes {{ {IMPORT_ROW} }} }} }}"
    );
    let vars = json!({
        "id": id,
        "q": if q.is_empty() { Value::Null } else { json!(q) },
        "status": statuses,
        "after": p.after,
    });
    let (data, counts) = tokio::join!(
        web.api.run::<Data>(&query, vars, visit.token()),
        frame_counts(&web, &visit)
    );
    let d = match data {
        Ok(d) => d,
        Err(e) => return failed(visit, e),
    };
    let Some(cat) = d.catalog else {
        return error_page(
            visit,
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such catalog.",
        );
    };
    let next = cat.products.next_page(|after| {
        format!(
            "/supplier/catalogs/{id}?q={}&status={}&after={after}",
            super::shop::encode(q),
            super::shop::encode(&p.status)
        )
    });
    let chrome = Chrome::of(&mut visit, counts);
    let page = render(
        StatusCode::OK,
        CatalogPage {
            chrome,
            categories: flatten(&cat.categories),
            total: cat.products.total_count,
            products: cat.products.nodes,
            catalog: cat.row,
            next,
            q: q.to_string(),
            statuses: super::picks(&STATUSES, |code| code == p.status),
            imports: d.catalog_imports.nodes,
        },
    );
    visit.finish(page)
}

/// `POST /supplier/catalogs/{id}`: new name or description.
pub async fn update_catalog(
    Path(id): Path<String>,
    Posted {
        web, visit, form, ..
    }: Posted<CatalogForm>,
) -> Response {
    let back = format!("/supplier/catalogs/{id}");
    let visit = match supplier_only(visit, &back) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let result = web
        .api
        .run::<Value>(
            "mutation UpdateCatalog($id: ID!, $input: UpdateCatalogInput!) { updateCatalog(id: $id, input: $input) { id } }",
            json!({ "id": id, "input": { "name": form.name.trim(), "description": form.description.trim() } }),
            visit.token(),
        )
        .await;
    visit.outcome(result.map(|_| "The catalog is saved.".to_string()), &back)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CategoryForm {
    /// `create`, `rename` or `delete`.
    action: String,
    id: String,
    name: String,
    parent: String,
    /// `1`: a non-empty category's products and subcategories move to its parent.
    move_contents: String,
}

/// `POST /supplier/catalogs/{id}/categories`: adds, renames or removes a category.
pub async fn category_action(
    Path(catalog): Path<String>,
    Posted {
        web, visit, form, ..
    }: Posted<CategoryForm>,
) -> Response {
    let back = format!("/supplier/catalogs/{catalog}");
    let mut visit = match supplier_only(visit, &back) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let token = visit.token().map(str::to_string);
    let token = token.as_deref();
    let result = match form.action.as_str() {
        "create" => web
            .api
            .run::<Value>(
                "mutation CreateCategory($input: CreateCategoryInput!) { createCategory(input: $input) { id } }",
                json!({ "input": {
                    "catalogId": catalog,
                    "parentId": if form.parent.is_empty() { Value::Null } else { json!(form.parent) },
                    "name": form.name.trim(),
                } }),
                token,
            )
            .await
            .map(|_| format!("Category “{}” added.", form.name.trim())),
        "rename" => web
            .api
            .run::<Value>(
                "mutation RenameCategory($id: ID!, $name: String!) { renameCategory(id: $id, name: $name) { id } }",
                json!({ "id": form.id, "name": form.name.trim() }),
                token,
            )
            .await
            .map(|_| "The category is renamed.".to_string()),
        "delete" => web
            .api
            .run::<Value>(
                "mutation DeleteCategory($id: ID!, $move: Boolean!) { deleteCategory(id: $id, moveContentsToParent: $move) }",
                json!({ "id": form.id, "move": form.move_contents == "1" }),
                token,
            )
            .await
            .map(|_| "The category is removed.".to_string())
            .map_err(|e| match e {
                crate::ApiError::Refused { code, .. } if code == "CONFLICT" => crate::ApiError::Refused {
                    code,
                    message: "that category still has products or subcategories: tick “move its contents up” to remove it anyway".into(),
                },
                e => e,
            }),
        _ => {
            visit.notify_error("That did not work. Please try again.");
            return visit.finish(Redirect::to(&back));
        }
    };
    visit.outcome(result, &back)
}

/// A product as its edit form shows it.
#[derive(Default)]
pub struct ProductFields {
    pub sku: String,
    pub name: String,
    pub description: String,
    pub price: String,
    pub currency: String,
    pub category: String,
    pub images: String,
    pub attributes: String,
    pub weight: String,
    pub status: String,
}

/// `name: value` lines; a value with commas is a list (`sizes: S, M, L`).
fn attributes_text(doc: &Value) -> String {
    let Some(map) = doc.as_object() else {
        return String::new();
    };
    map.iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.to_string(),
            };
            format!("{k}: {v}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The attribute lines back into the document; the line that does not read, if any.
fn attributes_doc(text: &str) -> Result<Value, String> {
    let mut map = Map::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Some((k, v)) = line.split_once(':') else {
            return Err(line.to_string());
        };
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() {
            return Err(line.to_string());
        }
        let value = if v.contains(',') {
            Value::Array(
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| json!(s))
                    .collect(),
            )
        } else {
            json!(v)
        };
        map.insert(k.to_string(), value);
    }
    Ok(Value::Object(map))
}

#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub struct ProductForm {
    sku: String,
    name: String,
    description: String,
    price: String,
    currency: String,
    category: String,
    images: String,
    attributes: String,
    weight: String,
    status: String,
}

impl ProductForm {
    fn fields(&self) -> ProductFields {
        ProductFields {
            sku: self.sku.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            price: self.price.clone(),
            currency: self.currency.clone(),
            category: self.category.clone(),
            images: self.images.clone(),
            attributes: self.attributes.clone(),
            weight: self.weight.clone(),
            status: self.status.clone(),
        }
    }

    /// The fields both `createProduct` and `updateProduct` take; what is wrong with
    /// the form, in words, otherwise.
    fn input(&self) -> Result<Map<String, Value>, String> {
        let currency = self.currency.trim().to_ascii_uppercase();
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err("Please give the currency as its three-letter code, like EUR.".into());
        }
        let amount = minor_units(&self.price, exponent_of(&currency)).ok_or_else(|| {
            format!(
                "Please give the price like {}.",
                major_units(1250, &currency)
            )
        })?;
        let attributes = attributes_doc(&self.attributes).map_err(|line| {
            format!("Attributes are one “name: value” per line; “{line}” is not.")
        })?;
        let weight =
            match self.weight.trim() {
                "" => Value::Null,
                w => json!(w.parse::<i32>().map_err(|_| {
                    "Please give the weight in whole grams, like 250.".to_string()
                })?),
            };
        let images: Vec<&str> = self
            .images
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let mut input = Map::new();
        input.insert("sku".into(), json!(self.sku.trim()));
        input.insert("name".into(), json!(self.name.trim()));
        input.insert("description".into(), json!(self.description.trim()));
        input.insert(
            "price".into(),
            json!({ "amount": amount, "currency": currency }),
        );
        input.insert(
            "categoryId".into(),
            if self.category.is_empty() {
                Value::Null
            } else {
                json!(self.category)
            },
        );
        input.insert("images".into(), json!(images));
        input.insert("attributes".into(), attributes);
        input.insert("weightGrams".into(), weight);
        if let Some((code, _)) = STATUSES.iter().find(|(c, _)| *c == self.status) {
            input.insert("status".into(), json!(code));
        }
        Ok(input)
    }
}

#[derive(Template)]
#[template(path = "supplier_product_new.html")]
struct NewProductPage {
    chrome: Chrome,
    catalog: super::IdName,
    categories: Vec<CategoryLine>,
    f: ProductFields,
    statuses: Vec<Pick>,
    error: Option<String>,
}

async fn catalog_with_tree(
    web: &crate::Web,
    visit: &Visit,
    id: &str,
) -> Result<Option<(super::IdName, Vec<CategoryLine>)>, crate::ApiError> {
    #[derive(Deserialize)]
    struct Catalog {
        id: String,
        name: String,
        categories: Vec<CategoryNode>,
    }
    #[derive(Deserialize)]
    struct Data {
        catalog: Option<Catalog>,
    }
    let d: Data = web
        .api
        .run(
            &format!(
                "query CatalogTree($id: ID!) {{ catalog(id: $id) {{ id name {CATEGORY_TREE} }} }}"
            ),
            json!({ "id": id }),
            visit.token(),
        )
        .await?;
    Ok(d.catalog.map(|c| {
        (
            super::IdName {
                id: c.id,
                name: c.name,
            },
            flatten(&c.categories),
        )
    }))
}

fn status_picks(current: &str) -> Vec<Pick> {
    super::picks(&STATUSES, |code| code == current)
}

async fn new_product_form(
    web: &crate::Web,
    mut visit: Visit,
    catalog: &str,
    f: ProductFields,
    error: Option<String>,
) -> Response {
    let (found, counts) = tokio::join!(
        catalog_with_tree(web, &visit, catalog),
        frame_counts(web, &visit)
    );
    let (catalog, categories) = match found {
        Ok(Some(c)) => c,
        Ok(None) => {
            return error_page(
                visit,
                StatusCode::NOT_FOUND,
                "Not found",
                "There is no such catalog.",
            );
        }
        Err(e) => return failed(visit, e),
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let chrome = Chrome::of(&mut visit, counts);
    let page = render(
        status,
        NewProductPage {
            chrome,
            catalog,
            categories,
            statuses: status_picks(&f.status),
            f,
            error,
        },
    );
    visit.finish(page)
}

/// `GET /supplier/catalogs/{id}/products/new`.
pub async fn new_product(Visited { web, visit }: Visited, Path(id): Path<String>) -> Response {
    let visit = match supplier_only(visit, &format!("/supplier/catalogs/{id}/products/new")) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let fields = ProductFields {
        currency: "EUR".into(),
        status: "DRAFT".into(),
        ..ProductFields::default()
    };
    new_product_form(&web, visit, &id, fields, None).await
}

/// `POST /supplier/catalogs/{id}/products/new`: the product is created and its page
/// opens (where its stock is set); a refused form comes back filled in with the reason.
pub async fn create_product(
    Path(catalog): Path<String>,
    Posted {
        web, visit, form, ..
    }: Posted<ProductForm>,
) -> Response {
    let mut visit = match supplier_only(visit, &format!("/supplier/catalogs/{catalog}")) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let mut input = match form.input() {
        Ok(i) => i,
        Err(e) => return new_product_form(&web, visit, &catalog, form.fields(), Some(e)).await,
    };
    input.insert("catalogId".into(), json!(catalog));
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        create_product: super::IdName,
    }
    let result = web
        .api
        .run::<Data>(
            "mutation CreateProduct($input: CreateProductInput!) { createProduct(input: $input) { id name } }",
            json!({ "input": input }),
            visit.token(),
        )
        .await;
    match result {
        Ok(d) => {
            visit.notify(format!(
                "“{}” created. Set its stock below.",
                d.create_product.name
            ));
            let to = format!("/supplier/products/{}", d.create_product.id);
            visit.finish(Redirect::to(&to))
        }
        Err(e) => {
            let reason = say(&e);
            new_product_form(&web, visit, &catalog, form.fields(), Some(reason)).await
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StockView {
    pub quantity: i64,
    pub reserved: i64,
    pub committed: i64,
    pub available: i64,
    pub low_stock_threshold: i64,
    pub low_stock: bool,
}

#[derive(Deserialize)]
pub struct MovementTotal {
    pub kind: String,
    pub total: i64,
}

#[derive(Deserialize)]
pub struct Explanation {
    pub movements: Vec<MovementTotal>,
    pub consistent: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerEntry {
    pub kind: String,
    pub delta: i64,
    pub quantity_after: i64,
    pub reference: Option<String>,
    pub reason: String,
    pub created_at: String,
}

/// What each kind of movement means, in a supplier's words.
pub fn movement_name(kind: &str) -> &'static str {
    match kind {
        "RECEIVE" => "Received",
        "ADJUST" => "Counted or corrected",
        "HOLD" => "Held by a cart",
        "RELEASE" => "Released from a cart",
        "COMMIT" => "Sold (in an order)",
        "RESTOCK" => "Returned by a cancelled order",
        _ => "Other",
    }
}

impl LedgerEntry {
    pub fn kind_text(&self) -> &'static str {
        movement_name(&self.kind)
    }
    pub fn at(&self) -> String {
        when(&self.created_at)
    }
    pub fn signed(&self) -> String {
        format!("{:+}", self.delta)
    }
}

impl MovementTotal {
    pub fn kind_text(&self) -> &'static str {
        movement_name(&self.kind)
    }
    pub fn signed(&self) -> String {
        format!("{:+}", self.total)
    }
}

#[derive(Template)]
#[template(path = "supplier_product.html")]
struct ProductPage {
    chrome: Chrome,
    id: String,
    catalog: super::IdName,
    categories: Vec<CategoryLine>,
    f: ProductFields,
    statuses: Vec<Pick>,
    stock: Option<StockView>,
    explanation: Option<Explanation>,
    ledger: Vec<LedgerEntry>,
    older: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct LedgerParams {
    after: Option<String>,
}

/// `GET /supplier/products/{id}` (also the low-stock mail's link): the product's form,
/// its stock in numbers, the ledger that explains them, and the forms to change them.
pub async fn product(
    Visited { web, visit }: Visited,
    Path(id): Path<String>,
    Query(p): Query<LedgerParams>,
) -> Response {
    let mut visit = match supplier_only(visit, &format!("/supplier/products/{id}")) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Product {
        sku: String,
        name: String,
        description: String,
        price: Money,
        images: Vec<String>,
        attributes: Value,
        weight_grams: Option<i64>,
        status: String,
        category: Option<super::IdName>,
        catalog: Option<Catalog>,
    }
    #[derive(Deserialize)]
    struct Catalog {
        id: String,
        name: String,
        categories: Vec<CategoryNode>,
    }
    #[derive(Deserialize)]
    struct Data {
        product: Option<Product>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Stock {
        stock_level: StockView,
        stock_explanation: Explanation,
        stock_ledger: Connection<LedgerEntry>,
    }
    let product_q = format!(
        "query SupplierProduct($id: ID!) {{ product(id: $id) {{ sku name description price {{ amount currency }} images attributes weightGrams status \
         category {{ id name }} catalog {{ id name {CATEGORY_TREE} }} }} }}"
    );
    let (found, stock, counts) = tokio::join!(
        web.api.run::<Data>(&product_q, json!({ "id": id }), visit.token()),
        web.api.run::<Stock>(
            "query SupplierStock($id: ID!, $after: String) { stockLevel(productId: $id) { quantity reserved committed available lowStockThreshold lowStock } \
             stockExplanation(productId: $id) { movements { kind total } consistent } \
             stockLedger(productId: $id, first: 20, after: $after) { pageInfo { hasNextPage hasPreviousPage startCursor endCursor } nodes { kind delta quantityAfter reference reason createdAt } } }",
            json!({ "id": id, "after": p.after }),
            visit.token(),
        ),
        frame_counts(&web, &visit)
    );
    let product = match found {
        Ok(Data { product: Some(p) }) => p,
        Ok(Data { product: None }) => {
            return error_page(
                visit,
                StatusCode::NOT_FOUND,
                "Not found",
                "There is no such product (it may have been deleted).",
            );
        }
        Err(e) => return failed(visit, e),
    };
    let Some(catalog) = product.catalog else {
        return error_page(
            visit,
            StatusCode::NOT_FOUND,
            "Not found",
            "This product's catalog is gone.",
        );
    };
    // A product created a moment ago may not have its stock record yet: the page
    // shows the product and says so rather than failing.
    let (stock, explanation, ledger, older) = match stock {
        Ok(s) => {
            let older = s
                .stock_ledger
                .next_page(|after| format!("/supplier/products/{id}?after={after}#ledger"));
            (
                Some(s.stock_level),
                Some(s.stock_explanation),
                s.stock_ledger.nodes,
                older,
            )
        }
        Err(e) => {
            tracing::debug!(error = %e, "no stock record yet");
            (None, None, Vec::new(), None)
        }
    };
    let f = ProductFields {
        sku: product.sku,
        name: product.name,
        description: product.description,
        price: major_units(product.price.amount, &product.price.currency),
        currency: product.price.currency,
        category: product.category.map(|c| c.id).unwrap_or_default(),
        images: product.images.join("\n"),
        attributes: attributes_text(&product.attributes),
        weight: product
            .weight_grams
            .map(|w| w.to_string())
            .unwrap_or_default(),
        status: product.status,
    };
    let chrome = Chrome::of(&mut visit, counts);
    let page = render(
        StatusCode::OK,
        ProductPage {
            chrome,
            id,
            categories: flatten(&catalog.categories),
            catalog: super::IdName {
                id: catalog.id,
                name: catalog.name,
            },
            statuses: status_picks(&f.status),
            f,
            stock,
            explanation,
            ledger,
            older,
        },
    );
    visit.finish(page)
}

/// `POST /supplier/products/{id}`: saves the product's form.
pub async fn update_product(
    Path(id): Path<String>,
    Posted {
        web, visit, form, ..
    }: Posted<ProductForm>,
) -> Response {
    let back = format!("/supplier/products/{id}");
    let mut visit = match supplier_only(visit, &back) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let input = match form.input() {
        Ok(i) => i,
        Err(e) => {
            visit.notify_error(e);
            return visit.finish(Redirect::to(&back));
        }
    };
    let result = web
        .api
        .run::<Value>(
            "mutation UpdateProduct($id: ID!, $input: UpdateProductInput!) { updateProduct(id: $id, input: $input) { id } }",
            json!({ "id": id, "input": input }),
            visit.token(),
        )
        .await;
    visit.outcome(result.map(|_| "The product is saved.".to_string()), &back)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct StatusForm {
    status: String,
}

/// `POST /supplier/products/{id}/status`: publish, take back to draft, archive.
pub async fn set_status(
    Path(id): Path<String>,
    Posted {
        web, visit, form, ..
    }: Posted<StatusForm>,
) -> Response {
    let back = format!("/supplier/products/{id}");
    let mut visit = match supplier_only(visit, &back) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let Some((code, _)) = STATUSES.iter().find(|(c, _)| *c == form.status) else {
        visit.notify_error("That did not work. Please try again.");
        return visit.finish(Redirect::to(&back));
    };
    let result = web
        .api
        .run::<Value>(
            "mutation SetProductStatus($id: ID!, $status: ProductStatus!) { updateProduct(id: $id, input: { status: $status }) { status } }",
            json!({ "id": id, "status": code }),
            visit.token(),
        )
        .await;
    let done = result.map(|_| {
        match *code {
            "ACTIVE" => "The product is on sale.",
            "DRAFT" => "The product is a draft again: shoppers no longer see it.",
            _ => "The product is archived: off the shop, kept for past orders.",
        }
        .to_string()
    });
    visit.outcome(done, &back)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct DeleteForm {
    catalog: String,
}

/// `POST /supplier/products/{id}/delete`: gone for good (archiving keeps it).
pub async fn delete_product(
    Path(id): Path<String>,
    Posted {
        web, visit, form, ..
    }: Posted<DeleteForm>,
) -> Response {
    let back = format!("/supplier/products/{id}");
    let mut visit = match supplier_only(visit, &back) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let result = web
        .api
        .run::<Value>(
            "mutation DeleteProduct($id: ID!) { deleteProduct(id: $id) }",
            json!({ "id": id }),
            visit.token(),
        )
        .await;
    match result {
        Ok(_) => {
            visit.notify("The product is deleted.");
            let to = if form.catalog.is_empty() {
                "/supplier".to_string()
            } else {
                format!("/supplier/catalogs/{}", super::shop::encode(&form.catalog))
            };
            visit.finish(Redirect::to(&to))
        }
        Err(e) => {
            visit.notify_error(say(&e));
            visit.finish(Redirect::to(&back))
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct StockForm {
    /// `adjust` (units in or out), `count` (set the number on hand) or `threshold`.
    action: String,
    number: String,
    reason: String,
}

/// `POST /supplier/products/{id}/stock`.
pub async fn stock_action(
    Path(id): Path<String>,
    Posted {
        web, visit, form, ..
    }: Posted<StockForm>,
) -> Response {
    let back = format!("/supplier/products/{id}#stock");
    let mut visit = match supplier_only(visit, &back) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let Ok(number) = form.number.trim().trim_start_matches('+').parse::<i32>() else {
        visit.notify_error("Please give a whole number of units.");
        return visit.finish(Redirect::to(&back));
    };
    let reason = form.reason.trim();
    let reason = if reason.is_empty() {
        "changed in the supplier portal"
    } else {
        reason
    };
    let token = visit.token().map(str::to_string);
    let token = token.as_deref();
    let result = match form.action.as_str() {
        "adjust" => web
            .api
            .run::<Value>(
                "mutation AdjustStock($id: ID!, $delta: Int!, $reason: String!) { adjustStock(productId: $id, delta: $delta, reason: $reason) { quantity } }",
                json!({ "id": id, "delta": number, "reason": reason }),
                token,
            )
            .await
            .map(|_| format!("Stock changed by {number:+}.")),
        "count" => web
            .api
            .run::<Value>(
                "mutation SetStock($id: ID!, $quantity: Int!, $reason: String!) { setStock(productId: $id, quantity: $quantity, reason: $reason) { quantity } }",
                json!({ "id": id, "quantity": number, "reason": reason }),
                token,
            )
            .await
            .map(|_| format!("Stock on hand set to {number}.")),
        "threshold" => web
            .api
            .run::<Value>(
                "mutation SetThreshold($id: ID!, $threshold: Int!) { setLowStockThreshold(productId: $id, threshold: $threshold) { lowStockThreshold } }",
                json!({ "id": id, "threshold": number }),
                token,
            )
            .await
            .map(|_| format!("You will be told when {number} or fewer are left.")),
        _ => {
            visit.notify_error("That did not work. Please try again.");
            return visit.finish(Redirect::to(&back));
        }
    };
    visit.outcome(result, &back)
}

#[derive(Template)]
#[template(path = "supplier_stock.html")]
struct StockPage {
    chrome: Chrome,
    low_only: bool,
    rows: Vec<StockRow>,
    total: i64,
    next: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StockRow {
    pub product_id: String,
    pub quantity: i64,
    pub reserved: i64,
    pub committed: i64,
    pub available: i64,
    pub low_stock_threshold: i64,
    pub low_stock: bool,
    pub product: Option<ProductName>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct StockParams {
    low: String,
    after: Option<String>,
}

/// `GET /supplier/stock`: every product's numbers, what needs restocking first.
pub async fn stock(Visited { web, visit }: Visited, Query(p): Query<StockParams>) -> Response {
    let mut visit = match supplier_only(visit, "/supplier/stock") {
        Ok(v) => v,
        Err(r) => return *r,
    };
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        stock_levels: Connection<StockRow>,
    }
    let low_only = p.low == "1";
    let me = visit.user().map(|u| u.id.clone()).unwrap_or_default();
    let (data, counts) = tokio::join!(
        web.api.run::<Data>(
            "query SupplierStockLevels($me: ID!, $low: Boolean, $after: String) { stockLevels(supplierId: $me, lowStockOnly: $low, first: 50, after: $after) { totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } \
             nodes { productId quantity reserved committed available lowStockThreshold lowStock product { name sku } } } }",
            json!({ "me": me, "low": low_only, "after": p.after }),
            visit.token(),
        ),
        frame_counts(&web, &visit)
    );
    let d = match data {
        Ok(d) => d,
        Err(e) => return failed(visit, e),
    };
    let next = d
        .stock_levels
        .next_page(|after| format!("/supplier/stock?low={}&after={after}", p.low));
    let chrome = Chrome::of(&mut visit, counts);
    let page = render(
        StatusCode::OK,
        StockPage {
            chrome,
            low_only,
            total: d.stock_levels.total_count,
            rows: d.stock_levels.nodes,
            next,
        },
    );
    visit.finish(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_lines_read_back_into_the_same_document() {
        let doc = json!({ "color": "blue", "sizes": ["S", "M", "L"], "volume": "1.7l" });
        let text = attributes_text(&doc);
        assert_eq!(text, "color: blue\nsizes: S, M, L\nvolume: 1.7l");
        assert_eq!(attributes_doc(&text), Ok(doc));
        assert_eq!(attributes_doc("\n  \n"), Ok(json!({})));
        assert_eq!(attributes_doc("no colon here"), Err("no colon here".into()));
        assert_eq!(attributes_doc(": value"), Err(": value".into()));
    }

    #[test]
    fn a_product_form_becomes_the_api_input_or_says_what_is_wrong() {
        let form = ProductForm {
            sku: " MUG-1 ".into(),
            name: "Mug".into(),
            price: "4.5".into(),
            currency: "eur".into(),
            images: "https://img.example/a.png\n\n https://img.example/b.png".into(),
            attributes: "color: blue".into(),
            weight: "250".into(),
            status: "DRAFT".into(),
            ..ProductForm::default()
        };
        let input = Value::Object(form.input().expect("valid"));
        assert_eq!(input["sku"], "MUG-1");
        assert_eq!(input["price"], json!({ "amount": 450, "currency": "EUR" }));
        assert_eq!(
            input["images"],
            json!(["https://img.example/a.png", "https://img.example/b.png"])
        );
        assert_eq!(input["weightGrams"], 250);
        assert_eq!(input["categoryId"], Value::Null);
        assert_eq!(input["status"], "DRAFT");

        let bad = |f: ProductForm| f.input().expect_err("refused");
        assert!(
            bad(ProductForm {
                price: "4,50".into(),
                ..form.clone()
            })
            .contains("price")
        );
        assert!(
            bad(ProductForm {
                currency: "euro".into(),
                ..form.clone()
            })
            .contains("currency")
        );
        assert!(
            bad(ProductForm {
                weight: "1.5kg".into(),
                ..form.clone()
            })
            .contains("weight")
        );
        assert!(
            bad(ProductForm {
                attributes: "oops".into(),
                ..form.clone()
            })
            .contains("oops")
        );
        // An unknown status is left out rather than sent.
        let input = ProductForm {
            status: "GONE".into(),
            ..form.clone()
        }
        .input()
        .expect("valid");
        assert!(!input.contains_key("status"));
    }
}
