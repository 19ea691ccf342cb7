//! Does an answer tell whether an account exists? Times, over real HTTP against the users
//! subgraph, failed logins for an existing account (wrong password) and for unknown
//! addresses, and reset requests for both, alternating so drift hits both kinds alike;
//! prints each kind's median, p90 and mean and the difference of medians.
//!
//! `cargo run --release --bin authbench -- [rounds]` (default 200 rounds).
//!
//! Rate limits are raised for the run: at the defaults, the 11th failed login would be
//! refused early, which is the intended behaviour but not what is measured here.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};
use shop_kit::auth::{Role, Verifier};
use shop_kit::limits::{Limit, RateLimiter};
use shop_users::service::admin;
use shop_users::{UsersCtx, UsersSettings};

const PASSWORD: &str = "bench-password-2026";
const LOGIN: &str =
    "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }";
const RESET: &str = "mutation($e: String!) { requestPasswordReset(email: $e) }";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()
        .context("rounds must be a number")?
        .unwrap_or(200);
    let dir = std::env::temp_dir().join(format!("shop-authbench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let db = shop_kit::db::connect(&shop_kit::db::sqlite_file_url(&dir, "users")).await?;
    shop_migrations::up(&db, shop_users::NAME).await?;
    let unlimited = Limit {
        max: u32::MAX,
        window: Duration::from_secs(60),
    };
    let settings = UsersSettings {
        login_per_pair: unlimited,
        login_per_account: unlimited,
        login_per_address: unlimited,
        reset_per_account: unlimited,
        reset_per_address: unlimited,
        ..UsersSettings::default()
    };
    let ctx = UsersCtx::new(db, settings, RateLimiter::in_memory());
    admin::seed_account(
        &ctx,
        &shop_kit::ids::new_id(),
        "known@bench.test",
        "Known Account",
        PASSWORD,
        &[Role::Customer],
    )
    .await
    .map_err(|e| anyhow::anyhow!(e.public_message().to_string()))?;

    let listener = shop_kit::server::bind(([127, 0, 0, 1], 0).into()).await?;
    let url = format!("http://{}/graphql", listener.local_addr()?);
    let router = shop_users::router(ctx, Verifier::new(Vec::new()));
    let server = tokio::spawn(shop_kit::server::serve(
        listener,
        router,
        std::future::pending(),
    ));
    let client = reqwest::Client::new();

    let kinds = [
        "login, existing account, wrong password",
        "login, unknown account",
        "reset request, existing account",
        "reset request, unknown account",
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); kinds.len()];
    // Warm-up: connection, caches, the dummy hash.
    for i in 0..10 {
        send(&client, &url, i % kinds.len(), i).await?;
    }
    // Logins first, then resets: a reset for an existing account writes its mail after
    // answering, and that work must not land on the other phase's requests. Within a
    // phase the order alternates, so each kind follows each other kind equally often.
    for (a, b) in [(0, 1), (2, 3)] {
        for round in 0..rounds {
            let order = if round % 2 == 0 { [a, b] } else { [b, a] };
            for kind in order {
                let started = Instant::now();
                send(&client, &url, kind, round).await?;
                times[kind].push(started.elapsed());
            }
        }
    }
    server.abort();
    let _ = std::fs::remove_dir_all(&dir);

    println!("{rounds} rounds, one request of each kind per round, over HTTP on loopback\n");
    println!("{:<42} {:>10} {:>10} {:>10}", "kind", "p50", "p90", "mean");
    let mut medians = Vec::new();
    for (kind, t) in kinds.iter().zip(times.iter_mut()) {
        t.sort_unstable();
        let p50 = t[t.len() / 2];
        let p90 = t[t.len() * 9 / 10];
        let mean = t.iter().sum::<Duration>() / t.len() as u32;
        medians.push(p50);
        println!(
            "{kind:<42} {:>8.2}ms {:>8.2}ms {:>8.2}ms",
            ms(p50),
            ms(p90),
            ms(mean)
        );
    }
    for (a, b, what) in [(0, 1, "login"), (2, 3, "reset request")] {
        let diff = ms(medians[a]) - ms(medians[b]);
        println!(
            "\n{what}: existing minus unknown, medians: {diff:+.3} ms ({:+.1}% of the unknown-account median)",
            100.0 * diff / ms(medians[b])
        );
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn send(
    client: &reqwest::Client,
    url: &str,
    kind: usize,
    round: usize,
) -> anyhow::Result<()> {
    let unknown = format!("nobody-{round}@bench.test");
    let (query, variables, expect) = match kind {
        0 => (
            LOGIN,
            json!({ "e": "known@bench.test", "p": "wrong-password-42" }),
            "UNAUTHENTICATED",
        ),
        1 => (
            LOGIN,
            json!({ "e": unknown, "p": "wrong-password-42" }),
            "UNAUTHENTICATED",
        ),
        2 => (RESET, json!({ "e": "known@bench.test" }), ""),
        _ => (RESET, json!({ "e": unknown }), ""),
    };
    let body = json!({ "query": query, "variables": variables }).to_string();
    let resp = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    let value: Value = serde_json::from_slice(&resp.bytes().await?)?;
    let code = value
        .pointer("/errors/0/extensions/code")
        .and_then(Value::as_str)
        .unwrap_or("");
    anyhow::ensure!(code == expect, "kind {kind}: unexpected answer {value}");
    Ok(())
}
