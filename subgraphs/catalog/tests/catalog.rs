//! The catalog subgraph's resolvers on SQLite and (when configured) MySQL.

// Tests fail by panicking; helpers outside #[test] functions do too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_arguments)]

use serde_json::{Value, json};
use shop_catalog::{CatalogCtx, CatalogSchema, schema};
use shop_kit::auth::{Principal, Role};
use shop_kit::testing::{TestDb, cleanup, data_of, databases, error_code_of, execute_as};

const SUPPLIER_A: &str = "00000000-0000-7000-8000-00000000000a";
const SUPPLIER_B: &str = "00000000-0000-7000-8000-00000000000b";

struct Env {
    schema: CatalogSchema,
    ctx: CatalogCtx,
    label: &'static str,
}

fn who(id: &str, role: Role) -> Option<Principal> {
    Some(Principal::with_roles(id, &[role], "test"))
}

fn supplier_a() -> Option<Principal> {
    who(SUPPLIER_A, Role::Supplier)
}
fn supplier_b() -> Option<Principal> {
    who(SUPPLIER_B, Role::Supplier)
}

impl Env {
    async fn new(db: &TestDb) -> Env {
        let conn = db.connect().await;
        shop_migrations::up(&conn, "catalog")
            .await
            .expect("migrate");
        let ctx = CatalogCtx::new(conn);
        Env {
            schema: schema(ctx.clone()),
            ctx,
            label: db.label(),
        }
    }

    async fn gql(&self, caller: Option<Principal>, query: &str, variables: Value) -> Value {
        execute_as(&self.schema, caller, query, variables).await
    }

    async fn ok(&self, caller: Option<Principal>, query: &str, variables: Value) -> Value {
        data_of(&self.gql(caller, query, variables).await, self.label)
    }

    async fn code(&self, caller: Option<Principal>, query: &str, variables: Value) -> String {
        error_code_of(&self.gql(caller, query, variables).await, self.label)
    }

    async fn catalog(&self, caller: Option<Principal>, name: &str) -> String {
        let d = self
            .ok(
                caller,
                "mutation($n: String!) { createCatalog(input: {name: $n}) { id } }",
                json!({ "n": name }),
            )
            .await;
        d["createCatalog"]["id"].as_str().expect("id").to_string()
    }

    async fn category(&self, catalog: &str, parent: Option<&str>, name: &str) -> String {
        let d = self
            .ok(
                supplier_a(),
                "mutation($c: ID!, $p: ID, $n: String!) { createCategory(input: {catalogId: $c, parentId: $p, name: $n}) { id } }",
                json!({ "c": catalog, "p": parent, "n": name }),
            )
            .await;
        d["createCategory"]["id"].as_str().expect("id").to_string()
    }

    async fn product(
        &self,
        catalog: &str,
        category: Option<&str>,
        sku: &str,
        name: &str,
        description: &str,
        price: i64,
        attrs: Value,
    ) -> String {
        let d = self
            .ok(
                supplier_a(),
                "mutation($i: CreateProductInput!) { createProduct(input: $i) { id } }",
                json!({ "i": {
                    "catalogId": catalog, "categoryId": category, "sku": sku, "name": name,
                    "description": description, "price": { "amount": price, "currency": "EUR" }, "attributes": attrs
                } }),
            )
            .await;
        d["createProduct"]["id"].as_str().expect("id").to_string()
    }

    async fn count(&self, sql_table: &str) -> i64 {
        use sea_orm::{ConnectionTrait, Statement};
        let row = self
            .ctx
            .db
            .query_one_raw(Statement::from_string(
                self.ctx.db.get_database_backend(),
                format!("SELECT COUNT(*) AS n FROM {sql_table}"),
            ))
            .await
            .expect("count")
            .expect("row");
        row.try_get::<i64>("", "n").expect("n")
    }

    /// Products with search entries. On SQLite every key must have its FTS entry and
    /// no entry may outlive its key.
    async fn indexed_products(&self) -> i64 {
        let keys = self.count("catalog_search_docs").await;
        if self.ctx.db.get_database_backend() == sea_orm::DbBackend::Sqlite {
            let entries = self.count("catalog_search").await;
            assert_eq!(entries, keys, "FTS entries vs keys");
        }
        keys
    }

    async fn search(&self, text: &str) -> Vec<String> {
        let d = self
            .ok(
                None,
                "query($s: String!) { products(search: $s, first: 100) { edges { node { sku } } } }",
                json!({ "s": text }),
            )
            .await;
        skus(&d, "/products/edges")
    }
}

async fn for_each_db(test: &str, body: impl AsyncFn(&Env)) {
    let dbs = databases(test).await;
    for db in &dbs {
        let env = Env::new(db).await;
        body(&env).await;
        env.ctx.db.clone().close().await.ok();
    }
    cleanup(&dbs).await;
}

fn skus(data: &Value, pointer: &str) -> Vec<String> {
    data.pointer(pointer)
        .and_then(Value::as_array)
        .expect("edges")
        .iter()
        .map(|e| e["node"]["sku"].as_str().expect("sku").to_string())
        .collect()
}

#[tokio::test]
async fn supplier_builds_a_catalog_and_shoppers_browse_it() {
    for_each_db("browse", async |env| {
        let cat = env.catalog(supplier_a(), "Garden").await;
        let tools = env.category(&cat, None, "Tools").await;
        let shovels = env.category(&cat, Some(&tools), "Shovels").await;
        env.product(&cat, Some(&shovels), "SH-1", "Steel Shovel", "digs well", 2500, json!({"color": "red"})).await;
        env.product(&cat, Some(&tools), "RK-1", "Leaf Rake", "for autumn", 1500, json!({"color": "green"})).await;

        let d = env
            .ok(None, "query($id: ID!) { catalog(id: $id) { name supplierId categories { name children { name path { name } } products { totalCount } } products(sort: PRICE_ASC) { totalCount edges { node { sku price { amount currency } category { name } } } } } }", json!({ "id": cat }))
            .await;
        let c = &d["catalog"];
        assert_eq!(c["supplierId"], SUPPLIER_A);
        assert_eq!(c["categories"][0]["name"], "Tools");
        assert_eq!(c["categories"][0]["children"][0]["path"], json!([{ "name": "Tools" }, { "name": "Shovels" }]));
        // A category's products include its subcategories'.
        assert_eq!(c["categories"][0]["products"]["totalCount"], 2);
        assert_eq!(skus(&d, "/catalog/products/edges"), vec!["RK-1", "SH-1"]);
        assert_eq!(c["products"]["edges"][1]["node"]["price"], json!({ "amount": 2500, "currency": "EUR" }));

        let by_sku = env.ok(None, "{ product(sku: \"SH-1\") { name catalog { name } } }", json!({})).await;
        assert_eq!(by_sku["product"]["catalog"]["name"], "Garden");
    })
    .await;
}

#[tokio::test]
async fn search_ranks_by_relevance_and_combines_with_filters_and_paging() {
    for_each_db("search", async |env| {
        let cat = env.catalog(supplier_a(), "Kitchen").await;
        let mugs = env.category(&cat, None, "Mugs").await;
        env.product(&cat, Some(&mugs), "MUG-1", "Blue Cup", "a ceramic mug", 1200, json!({"color": "blue"})).await;
        env.product(&cat, Some(&mugs), "CUP-2", "Blue Mug", "ceramic", 900, json!({"color": "blue", "size": ["S", "M"]})).await;
        env.product(&cat, None, "PLT-3", "Blue Plate", "not a mug at all", 700, json!({"color": "white"})).await;
        env.product(&cat, None, "BWL-4", "Red Bowl", "soup", 500, json!({"color": "red"})).await;

        // SKU beats name beats description.
        let d = env.ok(None, "{ products(search: \"mug\") { totalCount edges { node { sku } } } }", json!({})).await;
        assert_eq!(skus(&d, "/products/edges"), vec!["MUG-1", "CUP-2", "PLT-3"]);
        // Every word must match (prefixes count); equal scores fall back to name order.
        let d = env.ok(None, "{ products(search: \"blu cera\") { edges { node { sku } } } }", json!({})).await;
        assert_eq!(skus(&d, "/products/edges"), vec!["MUG-1", "CUP-2"]);
        // Filters combine with search and with each other.
        let d = env
            .ok(None, "query($c: ID!) { products(search: \"blue\", filter: {categoryId: $c, maxPrice: 1000, attributes: [{name: \"size\", values: [\"M\", \"XL\"]}]}) { edges { node { sku } } } }", json!({ "c": mugs }))
            .await;
        assert_eq!(skus(&d, "/products/edges"), vec!["CUP-2"]);
        let d = env
            .ok(None, "{ products(filter: {minPrice: 600, attributes: [{name: \"color\", values: [\"blue\", \"white\"]}]}, sort: PRICE_DESC) { edges { node { sku } } } }", json!({}))
            .await;
        assert_eq!(skus(&d, "/products/edges"), vec!["MUG-1", "CUP-2", "PLT-3"]);
        // Paging forwards and backwards with exact pageInfo.
        let p1 = env.ok(None, "{ products(first: 3, sort: NAME_ASC) { totalCount pageInfo { hasNextPage hasPreviousPage endCursor } edges { node { sku } } } }", json!({})).await;
        assert_eq!(p1["products"]["totalCount"], 4);
        assert_eq!(p1["products"]["pageInfo"]["hasNextPage"], true);
        assert_eq!(skus(&p1, "/products/edges"), vec!["MUG-1", "CUP-2", "PLT-3"]);
        let after = p1["products"]["pageInfo"]["endCursor"].clone();
        let p2 = env.ok(None, "query($a: String) { products(first: 3, after: $a, sort: NAME_ASC) { pageInfo { hasNextPage hasPreviousPage } edges { node { sku } } } }", json!({ "a": after })).await;
        assert_eq!(skus(&p2, "/products/edges"), vec!["BWL-4"]);
        assert_eq!(p2["products"]["pageInfo"], json!({ "hasNextPage": false, "hasPreviousPage": true }));
        let last = env.ok(None, "{ products(last: 2, sort: NAME_ASC) { edges { node { sku } } } }", json!({})).await;
        assert_eq!(skus(&last, "/products/edges"), vec!["PLT-3", "BWL-4"]);
        assert_eq!(env.code(None, "{ products(first: 101) { totalCount } }", json!({})).await, "BAD_USER_INPUT");
        assert_eq!(env.code(None, "{ products(after: \"junk\") { totalCount } }", json!({})).await, "BAD_USER_INPUT");
        assert_eq!(env.code(None, "{ products(filter: {minPrice: 10, maxPrice: 5}) { totalCount } }", json!({})).await, "BAD_USER_INPUT");
    })
    .await;
}

#[tokio::test]
async fn in_stock_filter_follows_inventory_events_and_ignores_stale_ones() {
    for_each_db("in_stock", async |env| {
        let cat = env.catalog(supplier_a(), "Shop").await;
        let p1 = env
            .product(&cat, None, "A", "Alpha", "", 100, json!({}))
            .await;
        env.product(&cat, None, "B", "Beta", "", 100, json!({}))
            .await;
        use shop_catalog::service::events::{StockChanged, apply_stock_changed};
        apply_stock_changed(
            &env.ctx.db,
            &StockChanged {
                product_id: p1.clone(),
                available: 5,
                quantity: Some(5),
                version: 2,
            },
        )
        .await
        .expect("apply");
        // An older event arriving late changes nothing.
        apply_stock_changed(
            &env.ctx.db,
            &StockChanged {
                product_id: p1.clone(),
                available: 0,
                quantity: Some(0),
                version: 1,
            },
        )
        .await
        .expect("apply");
        let d = env
            .ok(
                None,
                "{ products(filter: {inStock: true}) { edges { node { sku } } } }",
                json!({}),
            )
            .await;
        assert_eq!(skus(&d, "/products/edges"), vec!["A"]);
        let d = env
            .ok(
                None,
                "{ products(filter: {inStock: false}) { edges { node { sku } } } }",
                json!({}),
            )
            .await;
        assert_eq!(skus(&d, "/products/edges"), vec!["B"]);
    })
    .await;
}

#[tokio::test]
async fn bad_input_is_refused_with_codes_and_nothing_is_written() {
    for_each_db("bad_input", async |env| {
        let cat = env.catalog(supplier_a(), "Shop").await;
        env.product(&cat, None, "DUP", "First", "", 100, json!({})).await;
        let create = "mutation($i: CreateProductInput!) { createProduct(input: $i) { id } }";
        let base = json!({ "catalogId": cat, "sku": "NEW", "name": "N", "price": { "amount": 100, "currency": "EUR" } });
        let with = |k: &str, v: Value| {
            let mut i = base.clone();
            i[k] = v;
            json!({ "i": i })
        };
        assert_eq!(env.code(supplier_a(), create, with("sku", json!("DUP"))).await, "CONFLICT");
        assert_eq!(env.code(supplier_a(), create, with("price", json!({ "amount": -1, "currency": "EUR" }))).await, "BAD_USER_INPUT");
        assert_eq!(env.code(supplier_a(), create, with("price", json!({ "amount": 1, "currency": "EURO" }))).await, "BAD_USER_INPUT");
        assert_eq!(env.code(supplier_a(), create, with("name", json!("  "))).await, "BAD_USER_INPUT");
        assert_eq!(env.code(supplier_a(), create, with("attributes", json!([1, 2]))).await, "BAD_USER_INPUT");
        assert_eq!(env.code(supplier_a(), create, with("categoryId", json!("not-an-id"))).await, "BAD_USER_INPUT");
        assert_eq!(env.code(supplier_a(), create, with("images", json!(["javascript:alert(1)"]))).await, "BAD_USER_INPUT");
        assert_eq!(env.count("catalog_products").await, 1);
        // Only the first product is in the search index.
        assert_eq!(env.indexed_products().await, 1);
        // Renaming to a taken SKU is a conflict too, and leaves the product as it was.
        let other = env.product(&cat, None, "OTHER", "Other", "", 100, json!({})).await;
        assert_eq!(
            env.code(supplier_a(), "mutation($id: ID!) { updateProduct(id: $id, input: {sku: \"DUP\", name: \"Changed\"}) { id } }", json!({ "id": other })).await,
            "CONFLICT"
        );
        let d = env.ok(None, "query($id: ID!) { product(id: $id) { sku name } }", json!({ "id": other })).await;
        assert_eq!(d["product"], json!({ "sku": "OTHER", "name": "Other" }));
    })
    .await;
}

#[tokio::test]
async fn only_the_owner_or_an_admin_may_change_a_catalog() {
    for_each_db("ownership", async |env| {
        let cat = env.catalog(supplier_a(), "Mine").await;
        let rename = "mutation($id: ID!) { updateCatalog(id: $id, input: {name: \"Theirs\"}) { name } }";
        assert_eq!(env.code(supplier_b(), rename, json!({ "id": cat })).await, "FORBIDDEN");
        assert_eq!(env.code(who(SUPPLIER_B, Role::Customer), rename, json!({ "id": cat })).await, "FORBIDDEN");
        assert_eq!(env.code(None, rename, json!({ "id": cat })).await, "UNAUTHENTICATED");
        let d = env.ok(who("admin", Role::Admin), rename, json!({ "id": cat })).await;
        assert_eq!(d["updateCatalog"]["name"], "Theirs");
        let create_for_other = "mutation { createCatalog(input: {name: \"X\", supplierId: \"someone\"}) { supplierId } }";
        assert_eq!(env.code(supplier_a(), create_for_other, json!({})).await, "FORBIDDEN");
        let d = env.ok(who("admin", Role::Admin), create_for_other, json!({})).await;
        assert_eq!(d["createCatalog"]["supplierId"], "someone");
        let unknown = "mutation { updateCatalog(id: \"01a20000-0000-7000-8000-000000000000\", input: {name: \"x\"}) { id } }";
        assert_eq!(env.code(supplier_a(), unknown, json!({})).await, "NOT_FOUND");
    })
    .await;
}

#[tokio::test]
async fn deleting_a_non_empty_category_needs_consent_and_moves_its_contents_up() {
    for_each_db("category_delete", async |env| {
        let cat = env.catalog(supplier_a(), "Shop").await;
        let root = env.category(&cat, None, "Root").await;
        let mid = env.category(&cat, Some(&root), "Mid").await;
        let leaf = env.category(&cat, Some(&mid), "Leaf").await;
        let p = env.product(&cat, Some(&mid), "P", "Thing", "", 100, json!({})).await;
        let del = "mutation($id: ID!, $m: Boolean) { deleteCategory(id: $id, moveContentsToParent: $m) }";
        assert_eq!(env.code(supplier_a(), del, json!({ "id": mid, "m": false })).await, "CONFLICT");
        assert_eq!(env.count("catalog_categories").await, 3);
        env.ok(supplier_a(), del, json!({ "id": mid, "m": true })).await;
        let d = env
            .ok(None, "query($l: ID!, $p: ID!) { category(id: $l) { parent { name } } product(id: $p) { category { name } } }", json!({ "l": leaf, "p": p }))
            .await;
        assert_eq!(d["category"]["parent"]["name"], "Root");
        assert_eq!(d["product"]["category"]["name"], "Root");
        // A category cannot move under its own descendant.
        let mv = "mutation($id: ID!, $p: ID) { moveCategory(id: $id, parentId: $p) { id } }";
        assert_eq!(env.code(supplier_a(), mv, json!({ "id": root, "p": leaf })).await, "BAD_USER_INPUT");
        let d = env.ok(supplier_a(), "mutation($id: ID!) { moveCategory(id: $id, parentId: null) { parent { id } } }", json!({ "id": leaf })).await;
        assert_eq!(d["moveCategory"]["parent"], Value::Null);
    })
    .await;
}

#[tokio::test]
async fn deleting_a_catalog_removes_everything_in_one_transaction_and_announces_it() {
    for_each_db("catalog_delete", async |env| {
        let keep = env.catalog(supplier_a(), "Keep").await;
        env.product(&keep, None, "K", "Kept", "", 100, json!({}))
            .await;
        let cat = env.catalog(supplier_a(), "Gone").await;
        let root = env.category(&cat, None, "Root").await;
        let child = env.category(&cat, Some(&root), "Child").await;
        env.product(
            &cat,
            Some(&child),
            "G1",
            "Gone one",
            "",
            100,
            json!({"color": "red"}),
        )
        .await;
        env.product(&cat, None, "G2", "Gone two", "", 100, json!({}))
            .await;
        env.ok(
            supplier_a(),
            "mutation($id: ID!) { deleteCatalog(id: $id) }",
            json!({ "id": cat }),
        )
        .await;
        assert_eq!(env.count("catalog_products").await, 1);
        assert_eq!(env.count("catalog_categories").await, 0);
        if env.ctx.db.get_database_backend() != sea_orm::DbBackend::Sqlite {
            assert_eq!(env.count("catalog_product_attributes").await, 0);
        }
        assert_eq!(env.indexed_products().await, 1);
        let d = env
            .ok(
                None,
                "{ products(filter: {attributes: [{name: \"color\", values: [\"red\"]}]}) { totalCount } }",
                json!({}),
            )
            .await;
        assert_eq!(d["products"]["totalCount"], 0);
        assert_eq!(env.search("gone").await, Vec::<String>::new());
        let d = env.ok(None, "{ catalogs { totalCount } }", json!({})).await;
        assert_eq!(d["catalogs"]["totalCount"], 1);
        use sea_orm::{ConnectionTrait, Statement};
        let rows = env
            .ctx
            .db
            .query_all_raw(Statement::from_string(
                env.ctx.db.get_database_backend(),
                "SELECT topic FROM catalog_outbox ORDER BY id",
            ))
            .await
            .expect("outbox");
        let topics: Vec<String> = rows
            .iter()
            .map(|r| r.try_get("", "topic").expect("topic"))
            .collect();
        assert_eq!(
            topics.last().map(String::as_str),
            Some("catalog.catalog_deleted")
        );
        assert_eq!(
            topics
                .iter()
                .filter(|t| *t == "catalog.product_created")
                .count(),
            3
        );
    })
    .await;
}

#[tokio::test]
async fn entity_representations_resolve_in_one_batch() {
    for_each_db("entities", async |env| {
        let cat = env.catalog(supplier_a(), "Shop").await;
        let a = env.product(&cat, None, "A", "Alpha", "", 100, json!({})).await;
        let b = env.product(&cat, None, "B", "Beta", "", 100, json!({})).await;
        let d = env
            .ok(
                None,
                "query($r: [_Any!]!) { _entities(representations: $r) { ... on Product { name } ... on Catalog { name } } }",
                json!({ "r": [
                    { "__typename": "Product", "id": b },
                    { "__typename": "Product", "id": a },
                    { "__typename": "Product", "catalogId": cat, "sku": "A" },
                    { "__typename": "Catalog", "id": cat },
                    { "__typename": "Product", "id": "01a20000-0000-7000-8000-000000000000" }
                ] }),
            )
            .await;
        assert_eq!(d["_entities"], json!([{ "name": "Beta" }, { "name": "Alpha" }, { "name": "Alpha" }, { "name": "Shop" }, null]));
    })
    .await;
}

#[tokio::test]
async fn search_follows_edits_and_deletions_and_reads_any_script() {
    for_each_db("search_edits", async |env| {
        let cat = env.catalog(supplier_a(), "Pantry").await;
        let id = env.product(&cat, None, "MÜS-1", "Müsli Bar", "ÄPFEL und Nüsse, 日本茶", 300, json!({})).await;
        env.product(&cat, None, "OAT-2", "Oat Bar", "plain", 200, json!({})).await;
        assert_eq!(env.search("müsli").await, vec!["MÜS-1"]);
        assert_eq!(env.search("MÜS").await, vec!["MÜS-1"]);
        // Upper case outside ASCII folds the same way on both sides.
        assert_eq!(env.search("äpfel").await, vec!["MÜS-1"]);
        assert_eq!(env.search("日本").await, vec!["MÜS-1"]);
        assert_eq!(env.search("bar").await, vec!["MÜS-1", "OAT-2"]);
        assert_eq!(env.search("apfel").await, Vec::<String>::new());

        env.ok(
            supplier_a(),
            "mutation($id: ID!) { updateProduct(id: $id, input: {name: \"Granola\", description: \"crunchy\"}) { id } }",
            json!({ "id": id }),
        )
        .await;
        assert_eq!(env.search("müsli").await, Vec::<String>::new());
        assert_eq!(env.search("äpfel").await, Vec::<String>::new());
        assert_eq!(env.search("granola crunch").await, vec!["MÜS-1"]);
        assert_eq!(env.search("bar").await, vec!["OAT-2"]);
        assert_eq!(env.indexed_products().await, 2);

        env.ok(supplier_a(), "mutation($id: ID!) { deleteProduct(id: $id) }", json!({ "id": id }))
            .await;
        assert_eq!(env.search("granola").await, Vec::<String>::new());
        assert_eq!(env.indexed_products().await, 1);

        {
            // A database from before the full-text index: products without an entry are
            // indexed when the catalog starts.
            use sea_orm::ConnectionTrait;
            env.ctx
                .db
                .execute_unprepared("DELETE FROM catalog_search_docs")
                .await
                .expect("drop keys");
            assert_eq!(env.indexed_products().await, 0);
            assert_eq!(env.search("oat").await, Vec::<String>::new());
            let n = shop_catalog::service::search::catch_up(&env.ctx.db).await.expect("catch up");
            assert_eq!(n, 1);
            assert_eq!(env.search("oat").await, vec!["OAT-2"]);
            assert_eq!(shop_catalog::service::search::catch_up(&env.ctx.db).await.expect("again"), 0);
        }
    })
    .await;
}

#[tokio::test]
async fn attribute_filters_follow_edits_deletions_and_a_rebuilt_index() {
    for_each_db("attribute_filters", async |env| {
        let cat = env.catalog(supplier_a(), "Wardrobe").await;
        let p1 = env
            .product(&cat, None, "P1", "One", "", 100, json!({"color": "red", "size": ["S", "M"], "weight": 5, "organic": true}))
            .await;
        env.product(&cat, None, "P2", "Two", "", 100, json!({"color": "green", "size": "M"}))
            .await;
        let p3 = env
            .product(&cat, None, "P3", "Three", "", 100, json!({"color": "blue", "colour": "red"}))
            .await;
        let filtered = async |conditions: Value| -> Vec<String> {
            let d = env
                .ok(
                    None,
                    "query($a: [AttributeFilter!]!) { products(filter: {attributes: $a}, sort: NAME_ASC) { edges { node { sku } } } }",
                    json!({ "a": conditions }),
                )
                .await;
            let mut found = skus(&d, "/products/edges");
            found.sort();
            found
        };
        let one = |name: &str, values: &[&str]| json!([{ "name": name, "values": values }]);
        assert_eq!(filtered(one("color", &["red"])).await, ["P1"]);
        // A value under another name is not a match.
        assert_eq!(filtered(one("colour", &["red"])).await, ["P3"]);
        assert_eq!(filtered(one("size", &["M"])).await, ["P1", "P2"]);
        assert_eq!(filtered(one("size", &["S"])).await, ["P1"]);
        assert_eq!(filtered(one("weight", &["5"])).await, ["P1"]);
        assert_eq!(filtered(one("organic", &["true"])).await, ["P1"]);
        assert_eq!(filtered(one("color", &["red", "blue"])).await, ["P1", "P3"]);
        assert_eq!(
            filtered(json!([{ "name": "color", "values": ["red", "green"] }, { "name": "size", "values": ["M"] }])).await,
            ["P1", "P2"]
        );
        assert_eq!(
            filtered(json!([{ "name": "color", "values": ["red", "blue"] }, { "name": "size", "values": ["M"] }])).await,
            ["P1"]
        );
        assert_eq!(filtered(one("color", &["purple"])).await, Vec::<String>::new());

        env.ok(
            supplier_a(),
            "mutation($id: ID!) { updateProduct(id: $id, input: {attributes: {color: \"blue\"}}) { id } }",
            json!({ "id": p1 }),
        )
        .await;
        assert_eq!(filtered(one("color", &["red"])).await, Vec::<String>::new());
        assert_eq!(filtered(one("size", &["M"])).await, ["P2"]);
        assert_eq!(filtered(one("color", &["blue"])).await, ["P1", "P3"]);

        env.ok(supplier_a(), "mutation($id: ID!) { deleteProduct(id: $id) }", json!({ "id": p3 }))
            .await;
        assert_eq!(filtered(one("color", &["blue"])).await, ["P1"]);
        assert_eq!(filtered(one("colour", &["red"])).await, Vec::<String>::new());

        if env.ctx.db.get_database_backend() == sea_orm::DbBackend::Sqlite {
            // SQLite keeps the filters in the search index, which the catalog rebuilds
            // from the products when it finds them missing (after an upgrade).
            use sea_orm::ConnectionTrait;
            env.ctx
                .db
                .execute_unprepared("DELETE FROM catalog_search_docs")
                .await
                .expect("drop keys");
            assert_eq!(filtered(one("color", &["blue"])).await, Vec::<String>::new());
            // A product per batch: each batch must start where the last one stopped.
            let n = shop_catalog::service::search::catch_up_in_batches(&env.ctx.db, 1)
                .await
                .expect("catch up");
            assert_eq!(n, 2);
            assert_eq!(filtered(one("color", &["blue"])).await, ["P1"]);
            assert_eq!(filtered(one("size", &["M"])).await, ["P2"]);
        }
    })
    .await;
}

/// The ranking rule, written plainly: every query word must prefix a word of the
/// product; its score is the best (column weight, doubled when exact) over those words,
/// summed over the query; ties go by name, then id (creation order here).
fn expected_search(products: &[(String, String, String)], query: &[&str]) -> Vec<String> {
    let words = |t: &str| -> Vec<String> {
        t.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let mut hits: Vec<(i32, &str, usize)> = Vec::new();
    for (i, (sku, name, description)) in products.iter().enumerate() {
        let columns = [(words(sku), 8), (words(name), 4), (words(description), 1)];
        let mut total = 0;
        let mut all = true;
        for q in query {
            let best = columns
                .iter()
                .flat_map(|(ws, weight)| {
                    ws.iter()
                        .filter(|w| w.starts_with(q))
                        .map(move |w| if w == q { weight * 2 } else { *weight })
                })
                .max();
            match best {
                Some(b) => total += b,
                None => all = false,
            }
        }
        if all {
            hits.push((total, name, i));
        }
    }
    hits.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)).then(a.2.cmp(&b.2)));
    hits.iter()
        .take(100)
        .map(|(_, _, i)| products[*i].0.clone())
        .collect()
}

#[tokio::test]
async fn search_ranks_as_the_rule_says_on_every_database() {
    for_each_db("search_rule", async |env| {
        let cat = env.catalog(supplier_a(), "Random").await;
        // Words sharing prefixes, so prefix and exact matches compete across columns.
        let vocab = [
            "red", "redwood", "re", "blue", "blues", "bl", "oak", "oaken", "mug", "mugs", "cup",
            "x", "xl", "1", "12", "120",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let mut products = Vec::new();
        for i in 0..120 {
            let mut text = |count: usize| -> String {
                (0..count)
                    .map(|_| vocab[next(vocab.len())])
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let sku = format!("{}-{i}", text(1).to_uppercase());
            let name = text(1 + i % 3);
            let description = text(i % 5);
            products.push((sku, name, description));
        }
        for (sku, name, description) in &products {
            env.product(&cat, None, sku, name, description, 100, json!({}))
                .await;
        }
        let mut queries: Vec<Vec<&str>> = vocab.iter().map(|w| vec![*w]).collect();
        for _ in 0..20 {
            queries.push(vec![vocab[next(vocab.len())], vocab[next(vocab.len())]]);
        }
        for q in &queries {
            assert_eq!(
                env.search(&q.join(" ")).await,
                expected_search(&products, q),
                "query {q:?} on {}",
                env.label
            );
        }
    })
    .await;
}

/// Every facet count is what the filter lists when that value is chosen instead of
/// the facet's own condition (its "disjunctive" count), on varied products and
/// filters: the list is the reference, the facets are checked against it.
#[tokio::test]
async fn facet_counts_match_what_each_choice_would_list() {
    for_each_db("facets", async |env| {
        let cat = env.catalog(supplier_a(), "Wear").await;
        let other = env.catalog(supplier_a(), "Home").await;
        let tops = env.category(&cat, None, "Tops").await;
        let shirts = env.category(&cat, Some(&tops), "Shirts").await;
        let knits = env.category(&cat, Some(&tops), "Knitwear").await;
        let shoes = env.category(&cat, None, "Shoes").await;
        let lamps = env.category(&other, None, "Lamps").await;
        let colors = ["red", "blue", "green"];
        let mut ids = Vec::new();
        for i in 0..36u32 {
            let (catalog, category) = match i % 5 {
                0 => (&cat, Some(shirts.as_str())),
                1 => (&cat, Some(knits.as_str())),
                2 => (&cat, Some(tops.as_str())),
                3 => (&cat, Some(shoes.as_str())),
                _ => (&other, if i % 2 == 0 { Some(lamps.as_str()) } else { None }),
            };
            // Single and listed values, numbers and booleans.
            let color: Value = if i % 7 == 0 {
                json!([colors[(i % 3) as usize], colors[((i + 1) % 3) as usize]])
            } else {
                json!(colors[(i % 3) as usize])
            };
            let size = ["S", "M", "L"][(i % 4).min(2) as usize];
            let mut attrs = json!({ "color": color, "size": size });
            if i % 4 == 0 {
                attrs["watts"] = json!(40 + (i % 3) * 20);
                attrs["organic"] = json!(i % 8 == 0);
            }
            let name = if i % 3 == 0 { format!("Cotton shirt {i}") } else { format!("Wool thing {i}") };
            let price = 900 + i64::from(i) * 1700;
            ids.push(env.product(catalog, category, &format!("F-{i}"), &name, "", price, attrs).await);
        }
        use shop_catalog::service::events::{StockChanged, apply_stock_changed};
        for (i, id) in ids.iter().enumerate().filter(|(i, _)| i % 3 != 1) {
            let event = StockChanged { product_id: id.clone(), available: 1 + i as i64, quantity: Some(1 + i as i64), version: 2 };
            apply_stock_changed(&env.ctx.db, &event).await.expect("apply");
        }

        const FACETS: &str = "query($f: ProductFilter, $s: String) { productFacets(filter: $f, search: $s) { \
            totalCount inStock outOfStock categories { category { id name } count } \
            attributes { name values { value count } } \
            priceBands { currency minPrice maxPrice from { amount } under { amount } count } } }";
        const COUNT: &str = "query($f: ProductFilter, $s: String) { products(filter: $f, search: $s) { totalCount } }";
        let listed = async |filter: &Value, search: &Value| -> i64 {
            let d = env.ok(None, COUNT, json!({ "f": filter, "s": search })).await;
            d["products"]["totalCount"].as_i64().expect("count")
        };
        let cases = [
            (json!({}), json!(null)),
            (json!({ "catalogId": cat }), json!(null)),
            (json!({ "categoryId": tops, "attributes": [{ "name": "color", "values": ["red"] }] }), json!(null)),
            (json!({ "minPrice": 10000, "maxPrice": 40000, "inStock": true }), json!(null)),
            (json!({ "attributes": [{ "name": "color", "values": ["blue", "green"] }, { "name": "size", "values": ["S"] }] }), json!("shirt")),
            (json!({ "attributes": [{ "name": "watts", "values": ["60"] }, { "name": "organic", "values": ["true"] }] }), json!(null)),
        ];
        let mut checked = 0;
        for (filter, search) in &cases {
            let d = env.ok(None, FACETS, json!({ "f": filter, "s": search })).await;
            let f = &d["productFacets"];
            assert_eq!(f["totalCount"].as_i64(), Some(listed(filter, search).await), "{filter}");

            // Stock: the filter's inStock replaced.
            for (field, value) in [("inStock", true), ("outOfStock", false)] {
                let mut with = filter.clone();
                with["inStock"] = json!(value);
                assert_eq!(f[field].as_i64(), Some(listed(&with, search).await), "{field} of {filter}");
                checked += 1;
            }
            // Categories: a category counts what choosing it would list.
            let categories = f["categories"].as_array().expect("categories");
            for c in categories {
                let mut with = filter.clone();
                with["categoryId"] = c["category"]["id"].clone();
                assert_eq!(c["count"].as_i64(), Some(listed(&with, search).await), "{c} of {filter}");
                checked += 1;
            }
            // And no category with matches is missing.
            for c in [&tops, &shirts, &knits, &shoes, &lamps] {
                let mut with = filter.clone();
                with["categoryId"] = json!(c);
                let n = listed(&with, search).await;
                assert_eq!(n > 0, categories.iter().any(|x| x["category"]["id"] == json!(c)), "{c} of {filter}");
            }
            // Price bands: the band's bounds replace the filter's.
            let mut banded = 0;
            for b in f["priceBands"].as_array().expect("bands") {
                let mut with = filter.clone();
                with["minPrice"] = b["minPrice"].clone();
                with["maxPrice"] = b["maxPrice"].clone();
                with["currency"] = b["currency"].clone();
                assert_eq!(b["count"].as_i64(), Some(listed(&with, search).await), "{b} of {filter}");
                if let Some(max) = b["maxPrice"].as_i64() {
                    assert_eq!(b["under"]["amount"].as_i64(), Some(max + 1));
                }
                banded += b["count"].as_i64().unwrap();
                checked += 1;
            }
            let mut unpriced = filter.clone();
            unpriced.as_object_mut().unwrap().remove("minPrice");
            unpriced.as_object_mut().unwrap().remove("maxPrice");
            assert_eq!(banded, listed(&unpriced, search).await, "bands cover every price of {filter}");
            // Attribute values: the value replaces the attribute's own condition.
            for a in f["attributes"].as_array().expect("attributes") {
                let name = a["name"].as_str().unwrap();
                for v in a["values"].as_array().unwrap() {
                    let mut with = filter.clone();
                    let mut conditions: Vec<Value> = with["attributes"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|c| c["name"] != json!(name))
                        .collect();
                    conditions.push(json!({ "name": name, "values": [v["value"]] }));
                    with["attributes"] = json!(conditions);
                    assert_eq!(v["count"].as_i64(), Some(listed(&with, search).await), "{name}={v} of {filter}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 100, "{checked} counts checked");

        // A worked example: every product, red counted once however it is listed.
        let d = env.ok(None, FACETS, json!({ "f": {}, "s": null })).await;
        let f = &d["productFacets"];
        assert_eq!(f["totalCount"], 36);
        let color = f["attributes"].as_array().unwrap().iter().find(|a| a["name"] == "color").unwrap();
        let red = color["values"].as_array().unwrap().iter().find(|v| v["value"] == "red").unwrap();
        let expected_red = (0..36u32)
            .filter(|i| i % 3 == 0 || (i % 7 == 0 && (i + 1) % 3 == 0))
            .count();
        assert_eq!(red["count"].as_u64(), Some(expected_red as u64));
        let tops_count = f["categories"].as_array().unwrap().iter().find(|c| c["category"]["name"] == "Tops").unwrap();
        assert_eq!(tops_count["count"], 3 * 36 / 5 + 1, "Tops holds its own and its two subcategories' products");
        let first = &f["priceBands"][0];
        assert!(first["minPrice"].is_null() && first["maxPrice"] == 2499, "{first}");

        // Bad bands are refused.
        let code = env
            .code(None, "{ productFacets(priceBands: [500, 100]) { totalCount } }", json!({}))
            .await;
        assert_eq!(code, "BAD_USER_INPUT");
    })
    .await;
}

#[tokio::test]
async fn a_supplier_drafts_publishes_and_archives_a_product_and_shoppers_see_only_what_is_on_sale()
{
    for_each_db("product_status", async |env| {
        let cat = env.catalog(supplier_a(), "Garden").await;
        let d = env
            .ok(
                supplier_a(),
                "mutation($c: ID!) { createProduct(input: {catalogId: $c, sku: \"RAKE-1\", name: \"Rake\", price: {amount: 1500, currency: \"EUR\"}, status: DRAFT}) { id status } }",
                json!({ "c": cat }),
            )
            .await;
        assert_eq!(d["createProduct"]["status"], "DRAFT", "[{}]", env.label);
        let id = d["createProduct"]["id"].as_str().unwrap().to_string();
        let shopper_sees = async || {
            let d = env
                .ok(None, "query($c: ID!) { products(filter: {catalogId: $c}) { edges { node { sku } } } }", json!({ "c": cat }))
                .await;
            skus(&d, "/products/edges")
        };
        let supplier_sees = async |status: &str| {
            let d = env
                .ok(
                    supplier_a(),
                    &format!("query($c: ID!) {{ products(filter: {{catalogId: $c, status: [{status}]}}) {{ edges {{ node {{ sku }} }} }} }}"),
                    json!({ "c": cat }),
                )
                .await;
            skus(&d, "/products/edges")
        };
        assert!(shopper_sees().await.is_empty(), "[{}] a draft is not for sale", env.label);
        assert_eq!(supplier_sees("DRAFT").await, vec!["RAKE-1"]);
        // Nor is it found by its id or SKU, but by its supplier.
        let by_id = async |who: Option<Principal>| {
            env.ok(who, "query($id: ID!) { product(id: $id) { status } }", json!({ "id": id })).await["product"].clone()
        };
        assert_eq!(by_id(None).await, Value::Null, "[{}]", env.label);
        assert_eq!(by_id(supplier_b()).await, Value::Null);
        assert_eq!(by_id(supplier_a()).await, json!({ "status": "DRAFT" }));
        let by_sku = env
            .ok(None, "query($c: ID!) { product(sku: \"RAKE-1\", catalogId: $c) { id } }", json!({ "c": cat }))
            .await;
        assert_eq!(by_sku["product"], Value::Null);

        let set = async |status: &str| {
            env.ok(
                supplier_a(),
                &format!("mutation($id: ID!) {{ updateProduct(id: $id, input: {{status: {status}}}) {{ status name }} }}"),
                json!({ "id": id }),
            )
            .await
        };
        let d = set("ACTIVE").await;
        assert_eq!(d["updateProduct"]["status"], "ACTIVE");
        assert_eq!(d["updateProduct"]["name"], "Rake", "other fields stay");
        assert_eq!(shopper_sees().await, vec!["RAKE-1"]);

        assert_eq!(by_id(None).await, json!({ "status": "ACTIVE" }));
        set("ARCHIVED").await;
        assert!(shopper_sees().await.is_empty(), "[{}] archived is withdrawn", env.label);
        // Still found by id: past orders link to it.
        assert_eq!(by_id(None).await, json!({ "status": "ARCHIVED" }));
        assert_eq!(supplier_sees("ARCHIVED").await, vec!["RAKE-1"]);
        assert!(supplier_sees("ACTIVE").await.is_empty());

        // Only the catalog's owner may withdraw it.
        assert_eq!(
            env.code(
                supplier_b(),
                "mutation($id: ID!) { updateProduct(id: $id, input: {status: ACTIVE}) { id } }",
                json!({ "id": id }),
            )
            .await,
            "FORBIDDEN"
        );
        assert_eq!(supplier_sees("ARCHIVED").await, vec!["RAKE-1"]);
    })
    .await;
}
