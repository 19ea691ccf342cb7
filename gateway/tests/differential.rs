//! Differential tests: the same operations through our gateway and through a reference
//! gateway (Apollo's, from npm, pinned in `tests/reference-gateway`), over the same
//! synthetic subgraphs, must give the same `data` and errors at the same paths.
//!
//! Each directory under `tests/differential/supergraphs/` is one supergraph: a
//! `<subgraph>.graphql` per subgraph, composed by the reference composition. The
//! operations are generated from its API schema (see `differential/generate.rs`).
//!
//! - `SHOP_DIFF_OPS`: operations per supergraph (default 60; the full run is 1000),
//! - `SHOP_DIFF_SEED`: the generator's seed (default 1),
//! - `SHOP_DIFF_ONLY`: run only the supergraphs whose name contains this,
//! - `SHOP_DIFF_QUERY` (and `SHOP_DIFF_VARIABLES`): run this one operation instead,
//! - `SHOP_DIFF_TRACE=1`: print every subgraph request and answer,
//! - `SHOP_REQUIRE_REFERENCE=1`: fail instead of skipping when the reference gateway
//!   is not installed (`npm ci --prefix tests/reference-gateway`; `.ci/run` does).
//!
//! Where ours and Apollo's answers differ, the operation also runs through a second
//! implementation (the Hive gateway runtime): if that one answers as ours, the
//! references disagree with each other, and the case is reported, not counted. Where
//! the second answers unlike both, and one of them gave a part of our data and nothing
//! contrary (or both gave nothing at all), there is no oracle: reported, not counted.
//!
//! Every difference is written to `target/differential/<supergraph>.txt` with both
//! responses and both plans.
//!
//! `tests/differential/pending.txt` lists the supergraphs answered differently, each
//! with the reason (a planner gap, or a reference shown wrong by hand). They run too,
//! and their differences are reported; the test fails when a supergraph not listed
//! differs, and when one listed for a planner gap no longer does (so that list only
//! shrinks). A line whose reason starts with "reference wrong" may differ or not: such
//! a reference bug can show on some seeds and run sizes only, and corpus cases pin our
//! answers there.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "differential/generate.rs"]
mod generate;
#[path = "differential/synthetic.rs"]
mod synthetic;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};
use shop_federation::Supergraph;
use shop_gateway::{Gateway, GatewayOptions, GraphQLRequest};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

struct Reference {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Reference {
    async fn start() -> Option<Reference> {
        let dir = root().join("../tests/reference-gateway");
        if !dir.join("node_modules/@apollo/gateway").exists() {
            assert!(
                std::env::var("SHOP_REQUIRE_REFERENCE").is_err(),
                "the reference gateway is not installed: npm ci --prefix tests/reference-gateway"
            );
            eprintln!(
                "skipped: the reference gateway is not installed (npm ci --prefix tests/reference-gateway)"
            );
            return None;
        }
        let mut child = tokio::process::Command::new("node")
            .arg(dir.join("reference.mjs"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        Some(Reference {
            child,
            stdin,
            stdout,
        })
    }

    async fn call(&mut self, req: Value) -> Value {
        let mut line = req.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        let answer = self
            .stdout
            .next_line()
            .await
            .unwrap()
            .expect("the reference gateway stopped");
        serde_json::from_str(&answer).unwrap()
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// The paths of a response's errors. Apollo's gateway reports a value the API schema
/// does not have (an `@inaccessible` enum value or type) in
/// `extensions.valueCompletion` rather than in `errors`; those count as errors too.
fn error_paths(resp: &Value) -> BTreeSet<String> {
    let listed = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|errs| {
                errs.iter()
                    .map(|e| {
                        e.get("path")
                            .map(Value::to_string)
                            .unwrap_or_else(|| "-".into())
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    listed(resp.get("errors"))
        .into_iter()
        .chain(listed(resp.pointer("/extensions/valueCompletion")))
        .collect()
}

/// How many non-null values other than `__typename` a response has below its root
/// fields: an answer with none agrees with any gateway and shows nothing.
fn deep_values(v: &Value, depth: usize) -> usize {
    match v {
        Value::Object(m) => m
            .iter()
            .filter(|(k, _)| k.as_str() != "__typename")
            .map(|(_, v)| deep_values(v, depth + 1))
            .sum(),
        Value::Array(items) => items.iter().map(|i| deep_values(i, depth)).sum(),
        Value::Null => 0,
        _ => usize::from(depth >= 2),
    }
}

/// Whether every value `part` has is the same in `whole` (`part` may lack fields or
/// have nulls where `whole` has values): a reference that drops what it cannot
/// answer is then at least not contradicting ours.
fn within(part: &Value, whole: &Value) -> bool {
    match (part, whole) {
        (Value::Null, _) => true,
        (Value::Object(p), Value::Object(w)) => p
            .iter()
            .all(|(k, v)| w.get(k).is_some_and(|wv| within(v, wv))),
        (Value::Array(p), Value::Array(w)) => {
            p.len() == w.len() && p.iter().zip(w).all(|(a, b)| within(a, b))
        }
        (a, b) => a == b,
    }
}

/// What differs between two responses, if anything that matters.
fn difference(ours: &Value, theirs: &Value) -> Option<String> {
    let data = |v: &Value| v.get("data").cloned().unwrap_or(Value::Null);
    if data(ours) != data(theirs) {
        return Some("data".into());
    }
    let (a, b) = (error_paths(ours), error_paths(theirs));
    if a != b {
        return Some(format!("error paths: ours {a:?}, reference {b:?}"));
    }
    None
}

/// Writes `conformance/cases/recorded_<supergraph>_<k>.case`: an operation both
/// gateways answered alike (the same data, errors at the same paths), with our answer
/// (error messages are worded differently), over the supergraph's synthetic subgraphs. The corpus then keeps it from regressing and
/// snapshots its plan.
fn write_recorded_case(
    name: &str,
    seed: u64,
    index: usize,
    k: usize,
    op: &generate::Generated,
    answer: &Value,
) {
    let classes = std::fs::read_to_string(root().join("tests/differential/classes.txt"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .map(|l| l[name.len()..].trim().to_string())
        .unwrap_or_default();
    let case_name = format!("recorded_{}_{k}", name.replace('-', "_"));
    let text = format!(
        "# Recorded by the differential run (SHOP_DIFF_RECORD; supergraph {name}, seed {seed}, \
         operation {index}):\n# the reference gateway answered with this data and errors at these paths.\n\
         # Classes and subject: {classes}\n\
         === synthetic {name}\n=== operation\n{}\n=== variables\n{}\n=== response\n{}\n",
        op.query,
        op.variables,
        serde_json::to_string(answer).unwrap(),
    );
    let path = root().join(format!("tests/conformance/cases/{case_name}.case"));
    std::fs::write(&path, text).unwrap();
}

struct Outcome {
    name: String,
    operations: usize,
    differences: usize,
    /// Operations where Apollo's gateway answered otherwise but the second reference
    /// (Hive's) answered as ours.
    disagreements: usize,
    /// Operations where the two references answered differently from each other and
    /// from ours, one of them with only a part of our data (see [`within`]), or both
    /// with nothing: there is no oracle (seen where both fail on a `@requires` with arguments the client also
    /// selects with other arguments, or drop fragments after an `@interfaceObject`
    /// fetch). Reported, not counted; corpus cases check ours there.
    no_oracle: usize,
    /// Operations whose answer has a value below a root field (see [`deep_values`]).
    informative: usize,
    /// Plans compared with the reference planner's: `[fewer, more]` subgraph requests
    /// than it makes, and `[fewer, more]` requests in a row on the longest chain.
    fetches: [usize; 2],
    depth: [usize; 2],
}

/// Our plan's and the reference planner's cost for `op`: `(ours, theirs)`, each
/// `(fetches, depth)`; `None` where either side cannot plan it.
async fn plan_costs(
    gateway: &Arc<Gateway>,
    reference: &mut Reference,
    op: &generate::Generated,
) -> Option<((usize, usize), (usize, usize))> {
    let ours = gateway.prepare(&op.query, None).await.ok()?;
    let theirs = reference
        .call(json!({ "cmd": "plan_cost", "query": op.query, "variables": op.variables }))
        .await;
    let theirs = (
        theirs["fetches"].as_u64()? as usize,
        theirs["depth"].as_u64()? as usize,
    );
    let empty = serde_json::Map::new();
    let runs = ours
        .plan
        .for_variables(op.variables.as_object().unwrap_or(&empty));
    Some(((runs.fetch_count(), runs.depth()), theirs))
}

async fn run_supergraph(dir: &Path, reference: &mut Reference, ops: usize, seed: u64) -> Outcome {
    let name = dir.file_name().unwrap().to_string_lossy().to_string();
    let sources = synthetic::read_dir(dir);
    let urls = synthetic::start(&sources).await;
    let subgraphs: Vec<Value> = sources
        .iter()
        .zip(&urls)
        .map(|((n, s), url)| json!({ "name": n, "url": url, "sdl": s }))
        .collect();
    let composed = reference
        .call(json!({ "cmd": "compose", "subgraphs": subgraphs }))
        .await;
    let sdl = composed["supergraph"]
        .as_str()
        .unwrap_or_else(|| panic!("{name}: the reference composition refused it: {composed}"))
        .to_string();
    let loaded = reference
        .call(json!({ "cmd": "load", "supergraph": sdl }))
        .await;
    assert_eq!(loaded["ok"], true, "{name}: reference load: {loaded}");
    let supergraph =
        Supergraph::parse(&sdl).unwrap_or_else(|e| panic!("{name}: our gateway refused it: {e}"));
    let api = supergraph.api.clone();
    let gateway: Arc<Gateway> = Gateway::new(supergraph, GatewayOptions::default());

    let out_dir = root().join("../target/differential");
    std::fs::create_dir_all(&out_dir).unwrap();
    let mut report = String::new();
    let mut differences = 0;
    let mut disagreements = 0;
    let mut no_oracle = 0;
    let mut informative = 0;
    let mut fetches = [0; 2];
    let mut depth = [0; 2];
    let mut costlier = String::new();
    let operations = match std::env::var("SHOP_DIFF_QUERY") {
        Ok(query) => vec![generate::Generated {
            query,
            variables: std::env::var("SHOP_DIFF_VARIABLES")
                .ok()
                .and_then(|v| serde_json::from_str(&v).ok())
                .unwrap_or(json!({})),
        }],
        Err(_) => generate::operations(&api, seed, ops),
    };
    // `SHOP_DIFF_RECORD=<n>`: write up to n agreed answers per supergraph as corpus cases.
    let record: usize = std::env::var("SHOP_DIFF_RECORD")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut recorded: Vec<(usize, Value)> = Vec::new();
    let mut shapes = BTreeSet::new();
    for (index, op) in operations.iter().enumerate() {
        let req = GraphQLRequest {
            query: Some(op.query.clone()),
            variables: op.variables.as_object().cloned(),
            ..Default::default()
        };
        let ours = serde_json::to_value(
            gateway
                .execute(req, &shop_gateway::pipeline::RequestMeta::default())
                .await,
        )
        .unwrap();
        if deep_values(ours.get("data").unwrap_or(&Value::Null), 0) > 0 {
            informative += 1;
        }
        let theirs = reference
            .call(json!({ "cmd": "execute", "query": op.query, "variables": op.variables }))
            .await;
        let theirs = theirs.get("result").cloned().unwrap_or(theirs);
        let mut what = difference(&ours, &theirs);
        if let Some((mine, reference_cost)) = plan_costs(&gateway, reference, op).await {
            for (counts, m, r) in [
                (&mut fetches, mine.0, reference_cost.0),
                (&mut depth, mine.1, reference_cost.1),
            ] {
                if m != r {
                    counts[usize::from(m > r)] += 1;
                }
            }
            if mine.0 > reference_cost.0 || mine.1 > reference_cost.1 {
                let our_plan = gateway
                    .prepare(&op.query, None)
                    .await
                    .map(|p| p.plan.to_string())
                    .unwrap_or_default();
                let their_plan = reference
                    .call(json!({ "cmd": "plan", "query": op.query }))
                    .await;
                costlier.push_str(&format!(
                    "=== ours {} fetches, {} in a row; the reference's {} and {}\n{}\nvariables: {}\n--- our plan\n{}\n--- reference plan\n{}\n\n",
                    mine.0,
                    mine.1,
                    reference_cost.0,
                    reference_cost.1,
                    op.query,
                    op.variables,
                    our_plan,
                    their_plan["plan"].as_str().unwrap_or_default(),
                ));
            }
        }
        if recorded.len() < record
            && what.is_none()
            && deep_values(ours.get("data").unwrap_or(&Value::Null), 0) > 0
            && let Ok(prepared) = gateway.prepare(&op.query, None).await
        {
            // Cases that cross subgraphs (where there are several), one per plan shape.
            let shape = prepared.plan.to_string();
            if prepared.plan.fetch_count() >= sources.len().min(2) && shapes.insert(shape) {
                recorded.push((index, ours.clone()));
            }
        }
        let mut second_answer = Value::Null;
        if what.is_some() {
            // A second implementation breaks the tie: where it answers as we do, the
            // references disagree, and the case is reported but not counted.
            let second = reference
                .call(json!({ "cmd": "execute_second", "query": op.query, "variables": op.variables }))
                .await;
            let second = second.get("result").cloned().unwrap_or(second);
            if std::env::var("SHOP_DIFF_TRACE").is_ok() {
                eprintln!("second reference: {second}");
            }
            if difference(&ours, &second).is_none() {
                disagreements += 1;
                report.push_str(&format!(
                    "=== the references disagree; ours answers as the second does\n{}\nvariables: {}\n--- ours and the second reference\n{}\n--- reference\n{}\n\n",
                    op.query,
                    op.variables,
                    serde_json::to_string_pretty(&ours).unwrap(),
                    serde_json::to_string_pretty(&theirs).unwrap(),
                ));
                what = None;
            } else if difference(&theirs, &second).is_some() && {
                // Evidence for ours: a reference that gave values, all of them ours.
                // A reference that answered nothing (a crash, `data: null`) is none,
                // unless both did: then there is nothing to compare with at all.
                let data = |r: &Value| r.get("data").cloned().unwrap_or(Value::Null);
                let informative = |r: &Value| deep_values(&data(r), 0) > 0;
                let ours_data = data(&ours);
                [&theirs, &second]
                    .iter()
                    .any(|r| informative(r) && within(&data(r), &ours_data))
                    || !(informative(&theirs) || informative(&second))
            } {
                no_oracle += 1;
                report.push_str(&format!(
                    "=== no oracle: the references disagree with each other and with ours\n{}\nvariables: {}\n--- ours\n{}\n--- reference\n{}\n--- second reference\n{}\n\n",
                    op.query,
                    op.variables,
                    serde_json::to_string_pretty(&ours).unwrap(),
                    serde_json::to_string_pretty(&theirs).unwrap(),
                    serde_json::to_string_pretty(&second).unwrap(),
                ));
                what = None;
            }
            second_answer = second;
        }
        if let Some(what) = what {
            differences += 1;
            let our_plan = match gateway.prepare(&op.query, None).await {
                Ok(p) => p.plan.to_string(),
                Err(e) => format!("{e:?}"),
            };
            let their_plan = reference
                .call(json!({ "cmd": "plan", "query": op.query }))
                .await;
            report.push_str(&format!(
                "=== difference ({what})\n{}\nvariables: {}\n--- ours\n{}\n--- reference\n{}\n--- second reference\n{}\n--- our plan\n{}\n--- reference plan\n{}\n\n",
                op.query,
                op.variables,
                serde_json::to_string_pretty(&ours).unwrap(),
                serde_json::to_string_pretty(&theirs).unwrap(),
                serde_json::to_string_pretty(&second_answer).unwrap(),
                our_plan,
                their_plan["plan"].as_str().unwrap_or_default(),
            ));
        }
    }
    std::fs::write(out_dir.join(format!("{name}.txt")), &report).unwrap();
    std::fs::write(out_dir.join(format!("{name}.plans.txt")), &costlier).unwrap();
    for (k, (index, answer)) in recorded.iter().enumerate() {
        write_recorded_case(&name, seed, *index, k, &operations[*index], answer);
    }
    Outcome {
        name,
        operations: operations.len(),
        differences,
        disagreements,
        no_oracle,
        informative,
        fetches,
        depth,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_supergraph_answers_as_the_reference_gateway_does() {
    let Some(mut reference) = Reference::start().await else {
        return;
    };
    let ops: usize = std::env::var("SHOP_DIFF_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let seed: u64 = std::env::var("SHOP_DIFF_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let only = std::env::var("SHOP_DIFF_ONLY").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root().join("tests/differential/supergraphs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && p.to_string_lossy().contains(&only))
        .collect();
    dirs.sort();
    let mut outcomes = Vec::new();
    for dir in &dirs {
        outcomes.push(run_supergraph(dir, &mut reference, ops, seed).await);
    }
    // (supergraph, whether the reference is the one shown wrong)
    let pending: Vec<(String, bool)> =
        std::fs::read_to_string(root().join("tests/differential/pending.txt"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (name, reason) = l.split_once('#').unwrap_or((l, ""));
                let name = name.trim();
                (!name.is_empty()).then(|| {
                    (
                        name.to_string(),
                        reason.trim().starts_with("reference wrong"),
                    )
                })
            })
            .collect();
    // Supergraphs where our plans may still cost more than the reference planner's.
    let costlier_allowed: Vec<String> =
        std::fs::read_to_string(root().join("tests/differential/plan_pending.txt"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                l.split_once('#')
                    .map_or(l, |(name, _)| name)
                    .trim()
                    .to_string()
            })
            .filter(|name| !name.is_empty())
            .collect();
    let mut summary = String::new();
    let mut wrong = Vec::new();
    for o in &outcomes {
        if (o.fetches[1] > 0 || o.depth[1] > 0) && !costlier_allowed.contains(&o.name) {
            wrong.push(format!(
                "{} (plans costlier than the reference planner's: target/differential/{}.plans.txt)",
                o.name, o.name
            ));
        }
        let listed = pending.iter().find(|(name, _)| *name == o.name);
        summary.push_str(&format!(
            "{:<36} {:>5} operations {:>3}% informative {:>4} differences {:>3} reference splits {:>3} without oracle; plans: fetches {:>3} fewer {:>3} more, in a row {:>3} fewer {:>3} more{}\n",
            o.name,
            o.operations,
            100 * o.informative / o.operations.max(1),
            o.differences,
            o.disagreements,
            o.no_oracle,
            o.fetches[0],
            o.fetches[1],
            o.depth[0],
            o.depth[1],
            if listed.is_some() { "  (pending)" } else { "" }
        ));
        // A planner gap must keep showing (so the list only shrinks); a reference shown
        // wrong may err on only some seeds and sizes of run.
        let differs = o.differences > 0;
        match listed {
            None if differs => wrong.push(o.name.clone()),
            Some((_, false)) if !differs => wrong.push(o.name.clone()),
            _ => {}
        }
        // Most answers must carry data, or the supergraph shows nothing.
        if o.operations >= 20 && o.informative * 2 < o.operations {
            wrong.push(format!("{} (too few informative answers)", o.name));
        }
    }
    eprintln!("{summary}");
    assert!(
        wrong.is_empty(),
        "{wrong:?}: differences from the reference gateway where none are expected, or none where pending.txt lists some (details in target/differential/):\n{summary}"
    );
}
