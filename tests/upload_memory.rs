//! A 250 MB file sent through the gateway raises the process's peak memory by less
//! than 64 MB: the gateway streams the multipart body to the catalog subgraph, and the
//! subgraph streams the file into its store, neither holding it whole. Both run in this
//! one process here, so the bound holds for the two together.
//!
//! A test binary of its own: tests running beside it in one process would count in
//! its peak.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Harness, supplier_id};
use serde_json::json;
use shop_kit::auth::Role;

const START: &str = "mutation($c: ID!, $f: Upload, $o: CatalogImportOptions) { startCatalogImport(catalogId: $c, file: $f, options: $o) { id fileSize } }";
const FILE_BYTES: usize = 250 * 1000 * 1000;
const LIMIT: f64 = 64.0;

fn status_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("field");
    kb / 1024.0
}

/// Rows of about 250 bytes, made as they are sent: the test holds no file either.
fn rows() -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    let header = b"sku,name,description,price,currency,category\n".to_vec();
    futures::stream::unfold(
        (0usize, header.len(), Some(header)),
        |(i, sent, first)| async move {
            if let Some(h) = first {
                return Some((Ok(h), (i, sent, None)));
            }
            if sent >= FILE_BYTES {
                return None;
            }
            let mut chunk = Vec::with_capacity(64 * 1024 + 512);
            let mut i = i;
            while chunk.len() < 64 * 1024 && sent + chunk.len() < FILE_BYTES {
                chunk.extend_from_slice(
                format!(
                    "SKU-{i:09},Item {i},\"A sturdy piece for every home, easy to clean and made to last; one of a long line of items made for the upload test, number {i}.\",12.50,EUR,Dept {} > Shelf {}\n",
                    i % 100,
                    i % 2000
                )
                .as_bytes(),
            );
                i += 1;
            }
            let n = chunk.len();
            Some((Ok(chunk), (i, sent + n, None)))
        },
    )
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_250_mb_upload_streams_through_the_gateway_and_the_subgraph() {
    let h = Harness::start(None, false).await;
    let token = h.token(&supplier_id(1), Role::Supplier);
    let r = h
        .gql(
            Some(&token),
            "mutation { createCatalog(input: {name: \"Big\"}) { id } }",
            json!({}),
        )
        .await;
    let cat = r.data()["createCatalog"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let operations =
        json!({ "query": START, "variables": { "c": cat, "f": null, "o": { "dryRun": true } } });
    let request = shop::bench::upload_request(
        &h.client,
        &h.platform.gateway_url,
        &token,
        &operations,
        "big.csv",
        rows(),
    );

    // From here the peak counts what the upload adds to what the platform holds now.
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak");
    let before = status_mb("VmHWM:");
    let reply = request.send().await.expect("upload");
    let v: serde_json::Value =
        serde_json::from_slice(&reply.bytes().await.expect("reply")).expect("json");
    let grew = status_mb("VmHWM:") - before;
    let job = &v["data"]["startCatalogImport"];
    assert!(
        job["fileSize"].as_u64().unwrap_or(0) >= FILE_BYTES as u64,
        "{v}"
    );
    assert!(
        grew < LIMIT,
        "a {FILE_BYTES}-byte upload raised the peak by {grew:.1} MB (limit {LIMIT} MB)"
    );
    eprintln!("{FILE_BYTES}-byte upload: peak +{grew:.1} MB");

    // Validating a million rows is not this test's business. A job still queued stops
    // at once; a running one at its next progress check.
    let r = h
        .gql(
            Some(&token),
            "mutation($i: ID!) { cancelCatalogImport(id: $i) { status } }",
            json!({ "i": job["id"] }),
        )
        .await;
    let job = common::store::settle_import(&h, &token, job["id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "CANCELLED", "{} then {job}", r.body);
    h.stop().await;
}
