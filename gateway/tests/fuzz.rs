//! The gateway's front half under generated and damaged operations (see `fuzz/mod.rs`):
//! a few thousand cases per run, from a seed that changes with each run unless
//! `SHOP_FUZZ_SEED` fixes it (a failure prints the seed and the document).
//! `cargo bench -p shop-gateway --bench fuzzbench` runs a million.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "differential/generate.rs"]
#[allow(dead_code)]
mod generate;

#[path = "fuzz/mod.rs"]
mod cases;

/// `SHOP_FUZZ_SEED`, or a new one each run (printed with any failure).
fn seed() -> u64 {
    std::env::var("SHOP_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos() as u64 ^ d.as_secs())
                .unwrap_or(1)
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_and_hostile_operations_get_coded_errors_and_never_a_panic() {
    let seed = seed();
    let gw = cases::gateway();
    let report = cases::run(&gw, seed, 3_000).await;
    assert!(
        report.failures.is_empty(),
        "seed {seed}: {} cases without a coded answer, the first: {:?}",
        report.failures.len(),
        report.failures.first()
    );
    // The cases reach every stage: some prepare, and refusals come from the parser,
    // validation and the operation limits alike.
    assert!(
        report.prepared > 100,
        "seed {seed}: only {} prepared",
        report.prepared
    );
    for code in ["GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED"] {
        assert!(
            report.refused.get(code).copied().unwrap_or(0) > 10,
            "seed {seed}: {code} {:?}",
            report.refused
        );
    }
    assert!(
        report.refused.keys().any(|c| c.starts_with("MAX_")),
        "seed {seed}: no limit reached {:?}",
        report.refused
    );
    eprintln!(
        "seed {seed}: {} cases, {} prepared, refused {:?}, slowest {:?}",
        report.cases, report.prepared, report.refused, report.slowest.0
    );
}

/// Request bodies as a hostile client sends them over HTTP: valid requests cut and
/// corrupted byte by byte (invalid UTF-8 among them), members of the wrong type, deep
/// arrays. Every answer must be JSON with a coded error (or data), never a server error
/// or a dropped connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_request_bodies_over_http_get_coded_answers() {
    let seed = seed();
    let gw = cases::gateway();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, shop_gateway::router(gw)).await });
    let client = reqwest::Client::new();
    let mut rng = generate::Rng::new(seed);
    let base = serde_json::json!({
        "query": "query($id: ID!) { product(id: $id) { name } }",
        "variables": { "id": "p1" },
        "operationName": null,
        "extensions": {}
    })
    .to_string()
    .into_bytes();
    let wrong: [&[u8]; 8] = [
        br#"{"query": 5}"#,
        br#"{"query": "{ __typename }", "variables": []}"#,
        br#"{"query": "{ __typename }", "extensions": "x"}"#,
        br#"{"query": "{ __typename }", "operationName": {}}"#,
        br#"{"documentId": 7}"#,
        b"null",
        b"",
        b"\xff\xfe{}",
    ];
    for i in 0..400 {
        let body: Vec<u8> = match rng.below(4) {
            0 => wrong[rng.below(wrong.len())].to_vec(),
            1 => {
                let n = 1 + rng.below(300);
                format!("{}{}", "[".repeat(n), "]".repeat(n)).into_bytes()
            }
            _ => {
                let mut b = base.clone();
                for _ in 0..1 + rng.below(6) {
                    let at = rng.below(b.len());
                    match rng.below(3) {
                        0 => b[at] = (rng.next() & 0xff) as u8,
                        1 => {
                            b.remove(at);
                        }
                        _ => b.truncate(at),
                    }
                    if b.is_empty() {
                        break;
                    }
                }
                b
            }
        };
        let resp = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("seed {seed}, case {i}: no answer ({e}) to {body:?}"));
        let status = resp.status().as_u16();
        let answer: serde_json::Value = serde_json::from_slice(&resp.bytes().await.unwrap())
            .unwrap_or_else(|e| panic!("seed {seed}, case {i}: not JSON ({e}) for {body:?}"));
        assert!(
            status < 500,
            "seed {seed}, case {i}: {status} {answer} for {body:?}"
        );
        let coded = answer
            .pointer("/errors/0/extensions/code")
            .and_then(serde_json::Value::as_str)
            .is_some();
        assert!(
            coded || answer.get("data").is_some(),
            "seed {seed}, case {i}: {answer} for {body:?}"
        );
    }
}
