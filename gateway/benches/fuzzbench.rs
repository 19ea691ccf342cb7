//! A million damaged and hostile operations through the gateway's front half (see
//! `tests/fuzz/mod.rs`); prints how many prepared, the refusals by code, the cases
//! without a coded answer (panics among them) and the slowest case.
//!
//! `cargo bench -p shop-gateway --bench fuzzbench -- [cases] [seed]`

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/differential/generate.rs"]
#[allow(dead_code)]
mod generate;

#[path = "../tests/fuzz/mod.rs"]
mod cases;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let total: usize = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let seed: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1);
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let gw = cases::gateway();
        let started = std::time::Instant::now();
        // In rounds of distinct seeds, so that the valid operations damaged vary too.
        let mut all = cases::Report::default();
        let round = 10_000;
        let mut done = 0;
        while done < total {
            let n = round.min(total - done);
            let r = cases::run(&gw, seed.wrapping_add(done as u64), n).await;
            all.cases += r.cases;
            all.prepared += r.prepared;
            for (code, count) in r.refused {
                *all.refused.entry(code).or_default() += count;
            }
            all.failures.extend(r.failures);
            if r.slowest.0 > all.slowest.0 {
                all.slowest = r.slowest;
            }
            done += n;
        }
        let elapsed = started.elapsed();
        println!(
            "{} cases in {:.1} s ({:.0}/s), seed {seed}",
            all.cases,
            elapsed.as_secs_f64(),
            all.cases as f64 / elapsed.as_secs_f64()
        );
        println!("prepared: {}", all.prepared);
        for (code, count) in &all.refused {
            println!("refused {code}: {count}");
        }
        println!(
            "without a coded answer (panics among them): {}",
            all.failures.len()
        );
        for (code, query) in all.failures.iter().take(5) {
            println!("  {code}: {query:?}");
        }
        let (took, query) = &all.slowest;
        let shown: String = query.chars().take(200).collect();
        println!("slowest: {took:?} for {shown:?}");
        if !all.failures.is_empty() {
            std::process::exit(1);
        }
    });
}
