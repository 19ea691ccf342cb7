//! Test support shared by the subgraph and end-to-end tests: one fresh database per
//! test on SQLite, and on MySQL when `SHOP_MYSQL_TEST_URL` is set.
//!
//! `SHOP_REQUIRE_MYSQL=1` (set by CI) turns a missing MySQL URL into a failure instead
//! of a skip, so the MySQL suite cannot silently stop running.

use sea_orm::{ConnectionTrait, DatabaseConnection};

/// A database a test may use and throw away.
#[derive(Clone, Debug)]
pub enum TestDb {
    Sqlite { path: std::path::PathBuf },
    Mysql { server: String, database: String },
}

impl TestDb {
    pub fn url(&self) -> String {
        match self {
            TestDb::Sqlite { path } => format!("sqlite://{}?mode=rwc", path.display()),
            TestDb::Mysql { server, database } => {
                format!("{}/{database}", server.trim_end_matches('/'))
            }
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            TestDb::Sqlite { .. } => "sqlite",
            TestDb::Mysql { .. } => "mysql",
        }
    }

    pub async fn connect(&self) -> DatabaseConnection {
        crate::db::connect(&self.url())
            .await
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", self.url()))
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// The MySQL server URL without a database (from `SHOP_MYSQL_TEST_URL`, whose path is ignored).
fn mysql_server() -> Option<String> {
    let url = std::env::var("SHOP_MYSQL_TEST_URL")
        .ok()
        .filter(|u| !u.is_empty())?;
    let scheme_end = url.find("://").map(|i| i + 3).unwrap_or(0);
    Some(match url[scheme_end..].find('/') {
        Some(i) => url[..scheme_end + i].to_string(),
        None => url,
    })
}

fn mysql_required() -> bool {
    std::env::var("SHOP_REQUIRE_MYSQL").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// Fresh databases to run a test against: always SQLite, plus MySQL when configured.
pub async fn databases(test: &str) -> Vec<TestDb> {
    let dir = std::env::temp_dir().join("shop-tests");
    let _ = std::fs::create_dir_all(&dir);
    let mut out = vec![TestDb::Sqlite {
        path: dir.join(format!("{}.sqlite", unique(test))),
    }];
    match mysql_server() {
        Some(server) => {
            let database = unique("shop_t");
            let admin = crate::db::connect(&server).await.unwrap_or_else(|e| {
                panic!("SHOP_MYSQL_TEST_URL is set but MySQL is unreachable: {e}")
            });
            admin
                .execute_unprepared(&format!(
                    "CREATE DATABASE `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                ))
                .await
                .unwrap_or_else(|e| panic!("creating test database: {e}"));
            admin.close().await.ok();
            out.push(TestDb::Mysql { server, database });
        }
        None if mysql_required() => {
            panic!("SHOP_REQUIRE_MYSQL is set but SHOP_MYSQL_TEST_URL is not")
        }
        None => eprintln!("{test}: MySQL skipped (set SHOP_MYSQL_TEST_URL to run it)"),
    }
    out
}

/// Drops what [`databases`] created.
pub async fn cleanup(dbs: &[TestDb]) {
    for db in dbs {
        match db {
            TestDb::Sqlite { path } => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            TestDb::Mysql { server, database } => {
                if let Ok(admin) = crate::db::connect(server).await {
                    let _ = admin
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS `{database}`"))
                        .await;
                    admin.close().await.ok();
                }
            }
        }
    }
}

/// The Redis URL for tests, or `None` (skipped) unless `SHOP_REQUIRE_REDIS=1`.
pub fn redis_url(test: &str) -> Option<String> {
    match std::env::var("SHOP_REDIS_TEST_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        Some(u) => Some(u),
        None if std::env::var("SHOP_REQUIRE_REDIS").is_ok_and(|v| v == "1") => {
            panic!("SHOP_REQUIRE_REDIS is set but SHOP_REDIS_TEST_URL is not")
        }
        None => {
            eprintln!("{test}: Redis skipped (set SHOP_REDIS_TEST_URL to run it)");
            None
        }
    }
}

/// A Redis server of the test's own, for tests that kill and restart it (the shared
/// one is not theirs to stop). Started from `redis-server` on a free loopback port,
/// without persistence, so a restart comes back empty; killed when dropped. `None`
/// (skipped) when the binary is missing, unless `SHOP_REQUIRE_REDIS=1`.
pub struct RedisServer {
    port: u16,
    dir: std::path::PathBuf,
    child: Option<std::process::Child>,
}

impl RedisServer {
    pub fn start(test: &str) -> Option<Self> {
        let found = std::process::Command::new("redis-server")
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            if std::env::var("SHOP_REQUIRE_REDIS").is_ok_and(|v| v == "1") {
                panic!("SHOP_REQUIRE_REDIS is set but redis-server is not installed");
            }
            eprintln!("{test}: skipped (redis-server is not installed)");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("no free port: {e}"));
        let dir = std::env::temp_dir().join(format!("shop-redis-{}", crate::ids::new_id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let mut server = RedisServer {
            port,
            dir,
            child: None,
        };
        server.run();
        Some(server)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server outright (SIGKILL): whatever it held is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again, empty, on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.run();
    }

    fn run(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("redis-server did not start: {e}"));
        self.child = Some(child);
        for _ in 0..200 {
            if self.answers() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("redis-server on port {} did not come up", self.port);
    }

    fn answers(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(1)));
        let mut reply = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok()
            && s.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `f` once per test database (SQLite, and MySQL when configured), then drops them.
/// Fails unless `promtool check metrics` accepts `text`. Skipped without promtool
/// (`SHOP_PROMTOOL`, else `promtool` on the path), except under
/// `SHOP_REQUIRE_PROMTOOL=1` (set by CI), where a missing promtool fails.
#[allow(clippy::expect_used)]
pub fn promtool_check(text: &str) {
    use std::io::Write;
    let tool = std::env::var("SHOP_PROMTOOL").unwrap_or_else(|_| "promtool".into());
    let child = std::process::Command::new(&tool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            let required = std::env::var("SHOP_REQUIRE_PROMTOOL").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "SHOP_REQUIRE_PROMTOOL is set but {tool} cannot run: {e}"
            );
            eprintln!("promtool not found (set SHOP_PROMTOOL); its check is skipped");
            return;
        }
    };
    child
        .stdin
        .take()
        .expect("promtool's stdin")
        .write_all(text.as_bytes())
        .expect("writing to promtool");
    let out = child.wait_with_output().expect("promtool's answer");
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub async fn each_db(test: &str, f: impl AsyncFn(&TestDb)) {
    let dbs = databases(test).await;
    for db in &dbs {
        f(db).await;
    }
    cleanup(&dbs).await;
}

/// Polls `check` until it returns `Some` or `timeout` passes; for eventually-consistent
/// outcomes (events crossing subgraphs).
pub async fn eventually<T, F, Fut>(timeout: std::time::Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Executes `query` on a subgraph's schema as `caller`; the response as JSON.
pub async fn execute_as<E: async_graphql::Executor>(
    schema: &E,
    caller: Option<crate::auth::Principal>,
    query: &str,
    variables: serde_json::Value,
) -> serde_json::Value {
    let req = async_graphql::Request::new(query)
        .variables(async_graphql::Variables::from_json(variables))
        .data(crate::auth::Caller(caller));
    serde_json::to_value(schema.execute(req).await).unwrap_or_default()
}

/// The `data` of a response that must have no errors.
pub fn data_of(resp: &serde_json::Value, label: &str) -> serde_json::Value {
    assert!(
        resp.get("errors").is_none(),
        "[{label}] unexpected errors: {resp}"
    );
    resp["data"].clone()
}

/// The first error's `extensions.code` of a response that must have failed.
pub fn error_code_of(resp: &serde_json::Value, label: &str) -> String {
    resp.pointer("/errors/0/extensions/code")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_else(|| panic!("[{label}] expected an error: {resp}"))
        .to_string()
}

mod oidc_provider;
pub use oidc_provider::{OidcTestProvider, TEST_REDIRECT_URI};
