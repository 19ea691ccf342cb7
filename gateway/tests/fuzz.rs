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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_and_hostile_operations_get_coded_errors_and_never_a_panic() {
    let seed = std::env::var("SHOP_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(1)
        });
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
