//! Operations thrown at the gateway's front half (parse, validate, operation limits,
//! normalization, planning, variable coercion): valid ones generated from the API
//! schema, and each of them damaged in ways a careless or hostile client would send
//! (bytes cut, swapped or inserted, punctuation and odd Unicode, deep nesting, wide
//! aliasing, fragments that spread one another). Nothing may panic, and every answer
//! must be a coded GraphQL error or a prepared operation.
//!
//! Shared by the CI test (`tests/fuzz.rs`, a few thousand cases) and the bench binary
//! (`benches/fuzzbench.rs`, a million), so that both run the same cases per seed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shop_gateway::Gateway;

use super::generate::{Rng, operations};

/// Characters a damaged document gets: GraphQL punctuation, quotes and escapes, and
/// Unicode that trips naive code (a BOM, a right-to-left override, a NUL, a lone
/// combining mark, an emoji of two code units, a non-breaking space).
const PALETTE: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ":",
    "$",
    "@",
    "!",
    "...",
    "=",
    "|",
    "&",
    "\"",
    "\"\"\"",
    "\\",
    "\\u",
    "#",
    ",",
    "\n",
    "__typename",
    "__schema",
    "fragment F on Query ",
    "on",
    "query",
    "mutation",
    "subscription",
    "\u{feff}",
    "\u{202e}",
    "\u{0}",
    "\u{301}",
    "🛒",
    "\u{a0}",
    "é",
    "1e999",
    "-0",
    "0x1",
    "null",
    "true",
];

/// What a run found.
#[derive(Default)]
pub struct Report {
    pub cases: usize,
    /// Prepared without an error.
    pub prepared: usize,
    /// Refused, by `extensions.code`.
    pub refused: std::collections::BTreeMap<String, usize>,
    /// Answers that were not a coded refusal or a prepared operation (a panic in the
    /// preparing task comes back as `INTERNAL_SERVER_ERROR`), with their document.
    pub failures: Vec<(String, String)>,
    pub slowest: (Duration, String),
}

/// The gateway over the repository's supergraph. Its subgraphs are never called: only
/// the front half runs.
pub fn gateway() -> Arc<Gateway> {
    let sdl = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema/supergraph.graphql"),
    )
    .expect("schema/supergraph.graphql");
    let supergraph = shop_federation::Supergraph::parse(&sdl).expect("the supergraph parses");
    Gateway::new(supergraph, Default::default())
}

fn damaged(rng: &mut Rng, text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(chars.len() + 1);
        match rng.below(5) {
            0 if at < chars.len() => {
                chars.remove(at);
            }
            1 => {
                let piece = PALETTE[rng.below(PALETTE.len())];
                for (k, c) in piece.chars().enumerate() {
                    chars.insert(at + k, c);
                }
            }
            2 if at + 1 < chars.len() => chars.swap(at, at + 1),
            3 => chars.truncate(at),
            _ => {
                // A piece of the document repeated where it was.
                let end = (at + 1 + rng.below(20)).min(chars.len());
                let piece: Vec<char> = chars[at.min(end)..end].to_vec();
                for (k, c) in piece.into_iter().enumerate() {
                    chars.insert(at + k, c);
                }
            }
        }
    }
    chars.into_iter().collect()
}

/// Documents no generator of valid operations makes: deep, wide, self-spreading.
fn shaped(rng: &mut Rng) -> String {
    let n = 1 + rng.below(3_000);
    match rng.below(6) {
        0 => format!("{}{}", "{ a ".repeat(n), "}".repeat(n)),
        1 => format!(
            "{{ {} }}",
            (0..n)
                .map(|i| format!("a{i}: __typename "))
                .collect::<String>()
        ),
        2 => {
            let levels = 1 + rng.below(40);
            let mut q = String::from("{ ...F1 }\n");
            for i in 1..levels {
                q.push_str(&format!(
                    "fragment F{i} on Query {{ ...F{} ...F{} }}\n",
                    i + 1,
                    i + 1
                ));
            }
            q.push_str(&format!("fragment F{levels} on Query {{ __typename }}\n"));
            q
        }
        3 => "fragment A on Query { ...B } fragment B on Query { ...A } { ...A }".to_string(),
        4 => format!(
            "{{ __typename {} }}",
            "@skip(if: false) ".repeat(n.min(400))
        ),
        _ => format!(
            "query({}) {{ __typename }}",
            (0..n.min(500))
                .map(|i| format!("$v{i}: Int "))
                .collect::<String>()
        ),
    }
}

/// Variables that do not fit what was declared, or are odd in themselves.
fn odd_variables(rng: &mut Rng, given: &Value) -> Value {
    match rng.below(4) {
        0 => given.clone(),
        1 => json!({ "first": "ten", "id": 7, "input": [], "filter": { "q": null } }),
        2 => {
            let mut deep = json!(1);
            for _ in 0..rng.below(100) {
                deep = json!([deep]);
            }
            json!({ "x": deep })
        }
        _ => json!({ "s": "\u{0}\u{202e}🛒", "n": 1e300, "m": -0.0, "b": u64::MAX }),
    }
}

/// Runs `cases` cases from `seed`.
pub async fn run(gw: &Arc<Gateway>, seed: u64, cases: usize) -> Report {
    let valid = operations(&gw.supergraph.api, seed, 200);
    let mut rng = Rng::new(seed ^ 0xF0F0);
    let mut report = Report::default();
    for _ in 0..cases {
        let (query, variables) = match rng.below(10) {
            0..=1 if !valid.is_empty() => {
                let g = &valid[rng.below(valid.len())];
                (g.query.clone(), odd_variables(&mut rng, &g.variables))
            }
            2 => (shaped(&mut rng), json!({})),
            _ if !valid.is_empty() => {
                let g = &valid[rng.below(valid.len())];
                (
                    damaged(&mut rng, &g.query),
                    odd_variables(&mut rng, &g.variables),
                )
            }
            _ => (shaped(&mut rng), json!({})),
        };
        let started = Instant::now();
        let outcome = match gw.prepare(&query, None).await {
            Ok(prepared) => {
                let raw = variables.as_object().cloned();
                gw.coerce_variables(&prepared, raw).map(|_| ())
            }
            Err(e) => Err(e),
        };
        let took = started.elapsed();
        report.cases += 1;
        if took > report.slowest.0 {
            report.slowest = (took, query.clone());
        }
        match outcome {
            Ok(()) => report.prepared += 1,
            Err(resp) => {
                let v = serde_json::to_value(&resp).unwrap_or(Value::Null);
                let code = v
                    .pointer("/errors/0/extensions/code")
                    .and_then(Value::as_str)
                    .unwrap_or("NO_CODE")
                    .to_string();
                if code == "INTERNAL_SERVER_ERROR" || code == "NO_CODE" || resp.status >= 500 {
                    report.failures.push((code.clone(), query.clone()));
                }
                *report.refused.entry(code).or_default() += 1;
            }
        }
    }
    report
}
