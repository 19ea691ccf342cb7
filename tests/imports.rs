//! Catalog imports through the gateway over real HTTP: a real multipart body (the
//! GraphQL multipart request specification) streamed through the gateway to the
//! catalog subgraph, the job followed to its end, on SQLite and MariaDB.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::store::settle_import;
use common::{Harness, Reply, each_db, supplier_id};
use serde_json::{Value, json};
use shop_kit::auth::Role;

const START: &str = "mutation($c: ID!, $f: Upload, $o: CatalogImportOptions) { startCatalogImport(catalogId: $c, file: $f, options: $o) { id status fileName fileSize } }";

const FILE: &str = "sku,name,price,currency,category,attr:color\n\
MUG-1,Blue mug,4.50,EUR,Kitchen > Mugs,blue\n\
MUG-2,Red mug,4.75,EUR,Kitchen > Mugs,red\n";

/// A multipart body as browsers and upload clients send it: operations, map, file.
fn multipart(
    boundary: &str,
    catalog: &str,
    options: Value,
    file_name: &str,
    file: &[u8],
) -> Vec<u8> {
    let operations =
        json!({ "query": START, "variables": { "c": catalog, "f": null, "o": options } });
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{operations}\r\n\
--{boundary}\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\n{{\"0\": [\"variables.f\"]}}\r\n\
--{boundary}\r\nContent-Disposition: form-data; name=\"0\"; filename=\"{file_name}\"\r\nContent-Type: text/csv\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

async fn post_multipart(
    h: &Harness,
    token: &str,
    body: impl Into<reqwest::Body>,
    preflight: bool,
) -> Reply {
    let mut req = h
        .client
        .post(&h.platform.gateway_url)
        .header("content-type", "multipart/form-data; boundary=b0undary")
        .header("authorization", format!("Bearer {token}"))
        .body(body);
    if preflight {
        req = req.header("apollo-require-preflight", "true");
    }
    Reply::read(req.send().await.expect("request")).await
}

async fn catalog(h: &Harness, token: &str) -> String {
    let r = h
        .gql(
            Some(token),
            "mutation { createCatalog(input: {name: \"Kitchen\"}) { id } }",
            json!({}),
        )
        .await;
    r.data()["createCatalog"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn jobs(h: &Harness, token: &str, catalog: &str) -> i64 {
    let r = h
        .gql(
            Some(token),
            "query($c: ID!) { catalogImports(catalogId: $c) { totalCount } }",
            json!({ "c": catalog }),
        )
        .await;
    r.data()["catalogImports"]["totalCount"].as_i64().unwrap()
}

#[tokio::test]
async fn a_supplier_uploads_a_file_through_the_gateway_and_it_becomes_products() {
    each_db("imports_multipart", async |db| {
        let h = Harness::start(db, false).await;
        let token = h.token(&supplier_id(1), Role::Supplier);
        let cat = catalog(&h, &token).await;

        // Without a header a cross-site form cannot send: refused, nothing started.
        let body = multipart("b0undary", &cat, json!({}), "kitchen.csv", FILE.as_bytes());
        let r = post_multipart(&h, &token, body.clone(), false).await;
        assert_eq!((r.status, r.code()), (400, "CSRF_ERROR"), "{}", r.body);
        assert_eq!(jobs(&h, &token, &cat).await, 0);

        let r = post_multipart(&h, &token, body, true).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let started = r.data()["startCatalogImport"].clone();
        assert_eq!(started["fileName"], "kitchen.csv");
        assert_eq!(started["fileSize"], FILE.len());
        let job = settle_import(&h, &token, started["id"].as_str().unwrap()).await;
        assert_eq!(job["status"], "DONE", "{job}");
        assert_eq!(job["counts"]["applied"], 2);
        let r = h
            .gql(
                None,
                "query($c: ID!) { catalog(id: $c) { products(sort: NAME_ASC) { edges { node { sku name price { amount currency } category { path { name } } } } } } }",
                json!({ "c": cat }),
            )
            .await;
        assert_eq!(
            r.data()["catalog"]["products"]["edges"],
            json!([
                { "node": { "sku": "MUG-1", "name": "Blue mug", "price": { "amount": 450, "currency": "EUR" }, "category": { "path": [{ "name": "Kitchen" }, { "name": "Mugs" }] } } },
                { "node": { "sku": "MUG-2", "name": "Red mug", "price": { "amount": 475, "currency": "EUR" }, "category": { "path": [{ "name": "Kitchen" }, { "name": "Mugs" }] } } }
            ])
        );

        // Another supplier cannot import into this catalog, even with a valid upload.
        let rival = h.token(&supplier_id(2), Role::Supplier);
        let body = multipart("b0undary", &cat, json!({}), "kitchen.csv", FILE.as_bytes());
        let r = post_multipart(&h, &rival, body, true).await;
        assert_eq!(r.code(), "FORBIDDEN", "{}", r.body);
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn files_over_the_limit_and_cut_off_uploads_are_refused_and_start_nothing() {
    let dir = std::env::temp_dir().join(format!("shop-e2e-{}", shop_kit::ids::new_id()));
    let h = Harness::start_with(dir, None, false, |o| o.limits.max_upload_bytes = 256 * 1024).await;
    let token = h.token(&supplier_id(1), Role::Supplier);
    let cat = catalog(&h, &token).await;

    // Over the limit, streamed without a length: refused when the limit is passed.
    let mut big = String::from("sku,name,price,currency\n");
    let mut i = 0;
    while big.len() < 300 * 1024 {
        big.push_str(&format!("SKU-{i},Item {i},1.00,EUR\n"));
        i += 1;
    }
    let body = multipart("b0undary", &cat, json!({}), "big.csv", big.as_bytes());
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        body.chunks(16 * 1024).map(|c| Ok(c.to_vec())).collect();
    let r = post_multipart(
        &h,
        &token,
        reqwest::Body::wrap_stream(futures::stream::iter(chunks)),
        true,
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (413, "PAYLOAD_TOO_LARGE"),
        "{}",
        r.body
    );

    // Declared too large up front: refused before reading.
    let huge = vec![b'x'; 2 * 1024 * 1024];
    let body = multipart("b0undary", &cat, json!({}), "huge.csv", &huge);
    let r = post_multipart(&h, &token, body, true).await;
    assert_eq!(
        (r.status, r.code()),
        (413, "PAYLOAD_TOO_LARGE"),
        "{}",
        r.body
    );

    // Cut off in the middle of the file: the subgraph never gets a whole file.
    let body = multipart("b0undary", &cat, json!({}), "cut.csv", FILE.as_bytes());
    let cut = body[..body.len() - 40].to_vec();
    let r = post_multipart(&h, &token, cut, true).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.code(), "BAD_REQUEST", "{}", r.body);

    assert_eq!(jobs(&h, &token, &cat).await, 0);
    // A good file still goes through afterwards.
    let body = multipart(
        "b0undary",
        &cat,
        json!({ "dryRun": true }),
        "ok.csv",
        FILE.as_bytes(),
    );
    let r = post_multipart(&h, &token, body, true).await;
    let job = settle_import(
        &h,
        &token,
        r.data()["startCatalogImport"]["id"].as_str().unwrap(),
    )
    .await;
    assert_eq!(job["status"], "READY", "{job}");
    assert_eq!(job["counts"]["toCreate"], 2);
    h.stop().await;
}

/// Each product change an import made, with its fields before and after.
async fn changes_of(h: &Harness, token: &str, job: &Value) -> Value {
    let r = h
        .gql(
            Some(token),
            "query($i: ID!) { catalogImport(id: $i) { changes { edges { node { sku fields { field before after } } } } } }",
            json!({ "i": job["id"] }),
        )
        .await;
    r.data()["catalogImport"]["changes"]["edges"].clone()
}

/// The demo shop's first supplier imports into their demo catalog.
async fn import_into_demo(h: &Harness, file: &str, options: Value) -> Value {
    let supplier = h.token(shop::seed::DEMO_SUPPLIERS[0].0, Role::Supplier);
    let cat = common::store::demo_catalog(h).await;
    let body = multipart("b0undary", &cat, options, "demo.csv", file.as_bytes());
    let r = post_multipart(h, &supplier, body, true).await;
    let id = r.data()["startCatalogImport"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    settle_import(h, &supplier, &id).await
}

async fn product_by_sku(h: &Harness, sku: &str) -> String {
    let cat = common::store::demo_catalog(h).await;
    let r = h
        .gql(
            None,
            "query($c: ID, $s: String!) { product(sku: $s, catalogId: $c) { id } }",
            json!({ "c": cat, "s": sku }),
        )
        .await;
    r.data()["product"]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn stock_columns_reach_the_ledger_and_an_archived_product_is_not_sold_from_a_cart() {
    each_db("imports_effects", async |db| {
        let h = common::store::start(db).await;
        let supplier = h.token(shop::seed::DEMO_SUPPLIERS[0].0, Role::Supplier);
        let file = "sku,name,price,currency,stock\nIMP-1,Imported lamp,12.00,EUR,7\nIMP-2,Imported vase,30.00,EUR,2\n";
        let job = import_into_demo(&h, file, json!({})).await;
        assert_eq!(job["status"], "DONE", "{job}");
        let lamp = product_by_sku(&h, "IMP-1").await;
        let vase = product_by_sku(&h, "IMP-2").await;
        // The supplier is told, in the app and by mail, with the summary.
        let note = common::eventually("the import's notification", || async {
            let r = h
                .gql(Some(&supplier), "{ notifications(first: 20) { edges { node { kind title body } } } }", json!({}))
                .await;
            r.data()["notifications"]["edges"]
                .as_array()?
                .iter()
                .map(|e| e["node"].clone())
                .find(|n| n["kind"] == "CATALOG_IMPORT")
        })
        .await;
        assert_eq!(note["title"], "Import finished: demo.csv", "{note}");
        assert_eq!(
            note["body"],
            "2 created, 0 updated, 0 unchanged, 0 archived, 0 deleted; 0 rows of 2 failed.",
            "{note}"
        );
        if db.is_none() {
            let dir = h.dir().join("mail");
            let mail = common::eventually("the import's mail", || async {
                std::fs::read_dir(&dir).ok()?.flatten().find_map(|e| {
                    let text = common::smtp::decoded(&std::fs::read_to_string(e.path()).ok()?);
                    text.contains("Import finished: demo.csv").then_some(text)
                })
            })
            .await;
            assert!(mail.contains("2 created, 0 updated"), "{mail}");
        }
        // Inventory learns the units from the import's event, with the import named.
        common::eventually("the imported stock", || async {
            (common::stock_of(&h, &lamp).await == 7).then_some(())
        })
        .await;
        let r = h
            .gql(
                Some(&supplier),
                "query($p: ID!) { stockLedger(productId: $p) { edges { node { kind delta reason } } } }",
                json!({ "p": lamp }),
            )
            .await;
        let entries = r.data()["stockLedger"]["edges"].clone();
        assert_eq!(entries.as_array().unwrap().len(), 1, "{entries}");
        assert_eq!(entries[0]["node"]["delta"], 7);
        let reason = entries[0]["node"]["reason"].as_str().unwrap();
        assert_eq!(reason, format!("catalog import {}", job["id"].as_str().unwrap()));
        // The in-stock filter sees them at once.
        let r = h
            .gql(None, "{ products(search: \"imported\", filter: {inStock: true}) { totalCount } }", json!({}))
            .await;
        assert_eq!(r.data()["products"]["totalCount"], 2);

        // A shopper holds the vase; then a re-import archives it (and sets the lamp's
        // stock to 9: one more ledger entry, nothing for unchanged rows).
        let (buyer, cart) = common::store::cart_of(&h, "00000000-0000-7000-8000-0000000000c1", &[(&vase, 1)]).await;
        let file = "sku,name,price,currency,stock,status\nIMP-1,Imported lamp,12.00,EUR,9,active\nIMP-2,Imported vase,30.00,EUR,2,archived\n";
        let job = import_into_demo(&h, file, json!({})).await;
        assert_eq!(job["status"], "DONE", "{job}");
        assert_eq!(job["counts"]["toUpdate"], 2, "{job}");
        assert_eq!(
            changes_of(&h, &supplier, &job).await,
            json!([
                { "node": { "sku": "IMP-1", "fields": [{ "field": "stock", "before": 7, "after": 9 }] } },
                { "node": { "sku": "IMP-2", "fields": [{ "field": "status", "before": "active", "after": "archived" }] } }
            ])
        );
        common::eventually("the new count", || async {
            (common::stock_of(&h, &lamp).await == 9).then_some(())
        })
        .await;
        let r = common::store::checkout(&h, &buyer, &cart, "4242424242424242", "imp-1").await;
        assert_eq!(r.code(), "BAD_USER_INPUT", "{}", r.body);
        let message = r.body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("Imported vase") && message.contains("no longer sold"), "{message}");
        // Nor can it be added again.
        let r = h
            .gql(
                Some(&buyer),
                "mutation($c: ID!, $p: ID!) { addToCart(cartId: $c, productId: $p, quantity: 1) { id } }",
                json!({ "c": cart, "p": vase }),
            )
            .await;
        assert_eq!(r.code(), "BAD_USER_INPUT", "{}", r.body);
        // Shoppers no longer find it.
        let r = h
            .gql(None, "{ products(search: \"imported\") { edges { node { sku } } } }", json!({}))
            .await;
        assert_eq!(r.data()["products"]["edges"], json!([{ "node": { "sku": "IMP-1" } }]));
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn progress_comes_live_over_a_websocket_at_least_every_second_and_ends_with_the_counts() {
    each_db("imports_progress", async |db| {
        let h = Harness::start(db, false).await;
        let token = h.token(&supplier_id(1), Role::Supplier);
        let cat = catalog(&h, &token).await;
        let rows = 40_000;
        let mut file = String::from("sku,name,price,currency,description,attr:color\n");
        for i in 0..rows {
            file.push_str(&format!("P-{i},Item {i},{}.99,EUR,A fine item number {i},red\n", i % 90));
        }
        let body = multipart("b0undary", &cat, json!({ "dryRun": true }), "many.csv", file.as_bytes());
        let r = post_multipart(&h, &token, body, true).await;
        let id = r.data()["startCatalogImport"]["id"].as_str().unwrap().to_string();

        let mut ws = common::live::WsClient::connect(&h.platform.gateway_url, Some(&token)).await;
        ws.subscribe(
            "p",
            "subscription($i: ID!) { catalogImportProgress(id: $i) { status counts { rows toCreate } progress { percent } } }",
            json!({ "i": id }),
        )
        .await;
        let mut events: Vec<(std::time::Instant, Value)> = Vec::new();
        loop {
            let msg = ws.recv().await.message();
            if msg["type"] == "complete" {
                break;
            }
            assert_eq!(msg["type"], "next", "{msg}");
            events.push((std::time::Instant::now(), msg["payload"]["data"]["catalogImportProgress"].clone()));
        }
        let last = &events.last().unwrap().1;
        // A dry run of this size takes a few seconds here: several events, not one.
        assert!(events.len() >= 2, "{events:?}");
        assert_eq!(last["status"], "READY", "{last}");
        assert_eq!(last["counts"]["toCreate"], rows);
        assert_eq!(last["progress"]["percent"], 100);
        // While it ran: never a silent second (with some slack for a busy machine), and
        // the rows read never go back.
        for pair in events.windows(2) {
            let gap = pair[1].0 - pair[0].0;
            assert!(gap < Duration::from_millis(1600), "{gap:?} between {} and {}", pair[0].1, pair[1].1);
            assert!(pair[1].1["counts"]["rows"].as_i64() >= pair[0].1["counts"]["rows"].as_i64());
        }
        // Someone else's job is not theirs to watch.
        let rival = h.token(&supplier_id(2), Role::Supplier);
        let mut ws2 = common::live::WsClient::connect(&h.platform.gateway_url, Some(&rival)).await;
        ws2.subscribe(
            "q",
            "subscription($i: ID!) { catalogImportProgress(id: $i) { status } }",
            json!({ "i": id }),
        )
        .await;
        let msg = ws2.recv().await.message();
        let text = msg.to_string();
        assert!(text.contains("NOT_FOUND"), "{text}");
        ws.close().await;
        ws2.close().await;
        h.stop().await;
    })
    .await;
}

async fn gateway_files_url(h: &Harness, path: &str) -> String {
    format!(
        "{}{path}",
        h.platform.gateway_url.trim_end_matches("/graphql")
    )
}

#[tokio::test]
async fn a_staged_upload_cut_off_halfway_resumes_from_where_it_stopped() {
    each_db("imports_staged", async |db| {
        let h = Harness::start(db, false).await;
        let token = h.token(&supplier_id(1), Role::Supplier);
        let cat = catalog(&h, &token).await;
        // Few rows, long descriptions: megabytes of file without a long import.
        let mut file = String::from("sku,name,price,currency,description\n");
        let mut i = 0;
        while file.len() < 3 * 1024 * 1024 {
            file.push_str(&format!("S-{i},Staged item {i},2.00,EUR,{}\n", "long text ".repeat(400)));
            i += 1;
        }
        let rows = i;
        let size = file.len();
        let r = h
            .gql(
                Some(&token),
                "mutation($n: String!, $s: Int!) { createCatalogUpload(fileName: $n, size: $s) { id url size received complete } }",
                json!({ "n": "staged.csv", "s": size }),
            )
            .await;
        let slot = r.data()["createCatalogUpload"].clone();
        assert_eq!(slot["received"], 0);
        let url = gateway_files_url(&h, slot["url"].as_str().unwrap()).await;

        // The link breaks 1.5 MiB into the file.
        let sent = 1536 * 1024;
        let pieces: Vec<Result<Vec<u8>, std::io::Error>> = vec![
            Ok(file.as_bytes()[..sent].to_vec()),
            Err(std::io::Error::other("link lost")),
        ];
        let cut = h
            .client
            .put(&url)
            .bearer_auth(&token)
            .header("content-range", format!("bytes 0-{}/{size}", size - 1))
            .body(reqwest::Body::wrap_stream(futures::stream::iter(pieces)))
            .send()
            .await;
        assert!(cut.is_err() || !cut.unwrap().status().is_success());

        // Where to go on from: what arrived, once the server has stored it all.
        let offset_now = || async {
            let resp = h.client.head(&url).bearer_auth(&token).send().await.ok()?;
            resp.headers().get("upload-offset")?.to_str().ok()?.parse::<usize>().ok()
        };
        let offset = common::eventually("the upload's offset to settle", || async {
            let first = offset_now().await?;
            tokio::time::sleep(Duration::from_millis(300)).await;
            (first > 0 && offset_now().await? == first).then_some(first)
        })
        .await;
        assert!(offset <= sent, "{offset} > {sent}");
        // Another supplier cannot see or write it; a wrong offset is refused.
        let rival = h.token(&supplier_id(2), Role::Supplier);
        let resp = h.client.head(&url).bearer_auth(&rival).send().await.unwrap();
        assert_eq!(resp.status(), 404);
        let resp = h
            .client
            .put(&url)
            .bearer_auth(&token)
            .header("content-range", format!("bytes 0-{}/{size}", size - 1))
            .body(file.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 409);
        assert_eq!(resp.headers()["upload-offset"].to_str().unwrap(), offset.to_string());
        // An import cannot start from a half file.
        let start = "mutation($c: ID!, $u: ID) { startCatalogImport(catalogId: $c, uploadId: $u) { id } }";
        let r = h.gql(Some(&token), start, json!({ "c": cat, "u": slot["id"] })).await;
        assert_eq!(r.code(), "BAD_USER_INPUT", "{}", r.body);

        let resp = h
            .client
            .put(&url)
            .bearer_auth(&token)
            .header("content-range", format!("bytes {offset}-{}/{size}", size - 1))
            .body(file.as_bytes()[offset..].to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        let r = h.gql(Some(&token), start, json!({ "c": cat, "u": slot["id"] })).await;
        let job = settle_import(&h, &token, r.data()["startCatalogImport"]["id"].as_str().unwrap()).await;
        assert_eq!(job["status"], "DONE", "{job}");
        assert_eq!(job["counts"]["applied"], rows);
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_export_imports_back_with_no_changes_and_its_formulas_are_defused() {
    each_db("imports_export", async |db| {
        let h = Harness::start(db, false).await;
        let token = h.token(&supplier_id(1), Role::Supplier);
        let cat = catalog(&h, &token).await;
        let file = "sku,name,description,price,currency,category,images,attr:color,attr:sizes,status,weight_grams,length_mm,width_mm,height_mm\n\
MUG-1,Blue mug,\"Holds tea, coffee\",4.50,EUR,Kitchen > Mugs,https://img.example/a.png|/b.png,blue,,active,350,120,90,100\n\
F-1,=1+2,-5 off today,0.99,EUR,,,,,draft,0,,,\n\
Y-1,Teapot,@home,1999,JPY,Kitchen,,,,active,,,,\n";
        let body = multipart("b0undary", &cat, json!({}), "first.csv", file.as_bytes());
        let r = post_multipart(&h, &token, body, true).await;
        let job = settle_import(&h, &token, r.data()["startCatalogImport"]["id"].as_str().unwrap()).await;
        assert_eq!(job["status"], "DONE", "{job}");

        for (format, name) in [("CSV", "back.csv"), ("JSON_LINES", "back.jsonl"), ("XLSX", "back.xlsx")] {
            let r = h
                .gql(
                    Some(&token),
                    "mutation($c: ID!, $f: ImportFormat!) { exportCatalog(catalogId: $c, format: $f) { url fileName expiresAt } }",
                    json!({ "c": cat, "f": format }),
                )
                .await;
            let link = r.data()["exportCatalog"].clone();
            let resp = h
                .client
                .get(gateway_files_url(&h, link["url"].as_str().unwrap()).await)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            assert!(
                resp.headers()["content-disposition"].to_str().unwrap().contains(link["fileName"].as_str().unwrap())
            );
            let exported = resp.bytes().await.unwrap().to_vec();
            if format == "XLSX" {
                // Text that looks like a formula is a text cell marked with Excel's quote
                // prefix; nothing in the sheet is a formula.
                let mut book = zip::ZipArchive::new(std::io::Cursor::new(exported.clone())).unwrap();
                let part = |book: &mut zip::ZipArchive<_>, name: &str| {
                    let mut text = String::new();
                    std::io::Read::read_to_string(&mut book.by_name(name).unwrap(), &mut text).unwrap();
                    text
                };
                let sheet = part(&mut book, "xl/worksheets/sheet1.xml");
                assert!(sheet.contains(">=1+2<") && sheet.contains(">@home<"), "{sheet}");
                assert!(!sheet.contains("<f>"), "{sheet}");
                assert!(part(&mut book, "xl/styles.xml").contains("quotePrefix=\"1\""));
            }
            let exported_text = String::from_utf8_lossy(&exported).to_string();
            if format == "CSV" {
                let exported = &exported_text;
                assert!(exported.contains("'=1+2"), "{exported}");
                assert!(exported.contains("'-5 off today"), "{exported}");
                assert!(exported.contains("'@home"), "{exported}");
                assert!(exported.starts_with("sku,name,description,price"), "{exported}");
                assert!(exported.contains(",350,120,90,100\r\n"), "{exported}");
            }
            let body = multipart("b0undary", &cat, json!({ "dryRun": true }), name, &exported);
            let r = post_multipart(&h, &token, body, true).await;
            let job = settle_import(&h, &token, r.data()["startCatalogImport"]["id"].as_str().unwrap()).await;
            assert_eq!(job["status"], "READY", "{format}: {job}");
            assert_eq!(job["counts"]["unchanged"], 3, "{format}: {job}\n{exported_text}");
            assert_eq!(job["counts"]["rows"], 3, "{format}: {job}");
            let r = h
                .gql(Some(&token), "mutation($i: ID!) { cancelCatalogImport(id: $i) { status } }", json!({ "i": job["id"] }))
                .await;
            assert_eq!(r.data()["cancelCatalogImport"]["status"], "CANCELLED");
        }
        // The link is the credential: a made-up one finds nothing.
        let resp = h
            .client
            .get(gateway_files_url(&h, "/files/catalog/exports/not-a-real-token").await)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404);
        h.stop().await;
    })
    .await;
}

const PHYSICAL: &str = "query($c: ID, $s: String!) { product(sku: $s, catalogId: $c) { price { amount } weightGrams dimensions { lengthMm widthMm heightMm } } }";

async fn import_file(h: &Harness, token: &str, cat: &str, file: &str, options: Value) -> Value {
    let body = multipart("b0undary", cat, options, "physical.csv", file.as_bytes());
    let r = post_multipart(h, token, body, true).await;
    settle_import(
        h,
        token,
        r.data()["startCatalogImport"]["id"].as_str().unwrap(),
    )
    .await
}

#[tokio::test]
async fn weights_and_sizes_import_and_stay_when_a_file_leaves_them_out() {
    each_db("imports_physical", async |db| {
        let h = Harness::start(db, false).await;
        let token = h.token(&supplier_id(1), Role::Supplier);
        let cat = catalog(&h, &token).await;
        let physical = |sku: &'static str| {
            let (h, cat) = (&h, cat.clone());
            async move { h.gql(None, PHYSICAL, json!({ "c": cat, "s": sku })).await.data()["product"].clone() }
        };
        let job = import_file(&h, &token, &cat, "sku,name,price,currency,weight_grams,length_mm,width_mm,height_mm\n\
W-1,Kettle,30.00,EUR,1100,220,160,240\n\
W-2,Spoon,2.00,EUR,40,,,\n", json!({})).await;
        assert_eq!(job["status"], "DONE", "{job}");
        assert_eq!(
            physical("W-1").await,
            json!({ "price": { "amount": 3000 }, "weightGrams": 1100, "dimensions": { "lengthMm": 220, "widthMm": 160, "heightMm": 240 } })
        );
        assert_eq!(physical("W-2").await["weightGrams"], 40);
        assert_eq!(physical("W-2").await["dimensions"], Value::Null);

        // A price list without those columns leaves weights and sizes as they are.
        let job = import_file(&h, &token, &cat, "sku,name,price,currency\nW-1,Kettle,32.00,EUR\nW-2,Spoon,2.00,EUR\n", json!({})).await;
        assert_eq!((job["counts"]["toUpdate"].clone(), job["counts"]["unchanged"].clone()), (json!(1), json!(1)), "{job}");
        assert_eq!(
            physical("W-1").await,
            json!({ "price": { "amount": 3200 }, "weightGrams": 1100, "dimensions": { "lengthMm": 220, "widthMm": 160, "heightMm": 240 } })
        );

        // A blank cell clears; the review shows each change; a rollback puts them back.
        let job = import_file(&h, &token, &cat, "sku,name,price,currency,weight_grams\nW-1,Kettle,32.00,EUR,\nW-2,Spoon,2.00,EUR,45\n", json!({})).await;
        assert_eq!(job["status"], "DONE", "{job}");
        assert_eq!(
            changes_of(&h, &token, &job).await,
            json!([
                { "node": { "sku": "W-1", "fields": [{ "field": "weightGrams", "before": 1100, "after": null }] } },
                { "node": { "sku": "W-2", "fields": [{ "field": "weightGrams", "before": 40, "after": 45 }] } }
            ])
        );
        assert_eq!(physical("W-1").await["weightGrams"], Value::Null);
        assert_eq!(physical("W-1").await["dimensions"]["lengthMm"], 220, "sizes untouched");
        assert_eq!(physical("W-2").await["weightGrams"], 45);
        let r = h
            .gql(Some(&token), "mutation($i: ID!) { rollbackCatalogImport(id: $i) { status } }", json!({ "i": job["id"] }))
            .await;
        r.data();
        let back = settle_import(&h, &token, job["id"].as_str().unwrap()).await;
        assert_eq!(back["status"], "ROLLED_BACK", "{back}");
        assert_eq!(physical("W-1").await["weightGrams"], 1100);
        assert_eq!(physical("W-2").await["weightGrams"], 40);
        assert_eq!(physical("W-1").await["dimensions"]["heightMm"], 240);

        // Bad numbers and half a size fail their rows with coded errors.
        let job = import_file(&h, &token, &cat, "sku,name,price,currency,weight_grams,length_mm,width_mm,height_mm\n\
B-1,Bad,1.00,EUR,-5,,,\n\
B-2,Half,1.00,EUR,10,100,,\n\
B-3,Huge,1.00,EUR,10,100,100,20000\n", json!({ "dryRun": true })).await;
        assert_eq!(job["counts"]["failed"], 3, "{job}");
        let r = h
            .gql(
                Some(&token),
                "query($i: ID!) { catalogImport(id: $i) { errors { edges { node { row column code } } } } }",
                json!({ "i": job["id"] }),
            )
            .await;
        assert_eq!(
            r.data()["catalogImport"]["errors"]["edges"],
            json!([
                { "node": { "row": 2, "column": "weight_grams", "code": "INVALID_WEIGHT" } },
                { "node": { "row": 3, "column": "length_mm", "code": "INVALID_DIMENSIONS" } },
                { "node": { "row": 4, "column": "height_mm", "code": "INVALID_DIMENSIONS" } }
            ])
        );
        h.stop().await;
    })
    .await;
}

/// `Product.similar` of an imported product, as ids.
async fn similar_of(h: &Harness, product: &str) -> Vec<String> {
    let r = h
        .gql(
            None,
            "query($p: ID!) { product(id: $p) { similar(first: 10) { id } } }",
            json!({ "p": product }),
        )
        .await;
    r.data()["product"]["similar"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn imported_products_are_described_to_recommendations_and_similar_follows_each_import() {
    each_db("imports_similar", async |db| {
        let h = common::store::start(db).await;
        let head = "sku,name,price,currency,stock,category,attr:color,attr:material,status\n";
        let file = format!(
            "{head}SIM-1,Oak chair,100.00,EUR,5,Furniture > Chairs,red,oak,active\nSIM-2,Oak chair II,105.00,EUR,5,Furniture > Chairs,red,oak,active\nSIM-3,Blue chair,100.00,EUR,5,Furniture > Chairs,blue,oak,active\n"
        );
        let job = import_into_demo(&h, &file, json!({})).await;
        assert_eq!(job["status"], "DONE", "{job}");
        let one = product_by_sku(&h, "SIM-1").await;
        let two = product_by_sku(&h, "SIM-2").await;
        let three = product_by_sku(&h, "SIM-3").await;
        common::eventually("similar after the first import", || async {
            (similar_of(&h, &one).await == [two.clone(), three.clone()]).then_some(())
        })
        .await;
        // The blue chair turns red at 4% more: closer than the 5% of SIM-2.
        let rows = |two_status: &str| {
            format!(
                "{head}SIM-1,Oak chair,100.00,EUR,5,Furniture > Chairs,red,oak,active\nSIM-2,Oak chair II,105.00,EUR,5,Furniture > Chairs,red,oak,{two_status}\nSIM-3,Blue chair,104.00,EUR,5,Furniture > Chairs,red,oak,active\n"
            )
        };
        let job = import_into_demo(&h, &rows("active"), json!({})).await;
        assert_eq!(job["status"], "DONE", "{job}");
        common::eventually("similar after the second import", || async {
            (similar_of(&h, &one).await == [three.clone(), two.clone()]).then_some(())
        })
        .await;
        // SIM-2 archived leaves every list.
        let job = import_into_demo(&h, &rows("archived"), json!({})).await;
        assert_eq!(job["status"], "DONE", "{job}");
        common::eventually("similar after the third import", || async {
            (similar_of(&h, &one).await == [three.clone()]).then_some(())
        })
        .await;
        assert_eq!(similar_of(&h, &three).await, std::slice::from_ref(&one));
        h.stop().await;
    })
    .await;
}
