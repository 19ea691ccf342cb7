//! The `shop` binary as a child process of a test.

use std::process::Command;
use std::time::{Duration, Instant};

/// The `shop` binary with no database or Redis from the test's environment.
pub fn shop() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_shop"));
    c.env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env("RUST_LOG", "warn");
    c
}

/// [`shop`] serving the all-in-one platform from `dir` on `listen`, its subgraphs on
/// free ports, its output discarded unless the caller redirects it.
pub fn shop_in(dir: &std::path::Path, listen: &str) -> Command {
    let mut c = shop();
    c.env("SHOP_DATA_DIR", dir)
        .env("SHOP_LISTEN", listen)
        .env("SHOP_SUBGRAPH_BASE_PORT", "0")
        .env("SHOP_WEB_LISTEN", "127.0.0.1:0")
        // The demo's purchase history is for people trying the shop, not for tests.
        .env("SHOP_SEED_HISTORY", "false")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    c
}

/// A child process that is killed when the test ends, however it ends.
pub struct Child(pub std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `base`/ready answers 200: a minute at most (seeding the demo shop on a
/// busy machine takes a while).
pub async fn wait_ready(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if client
            .get(format!("{base}/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{base} never became ready");
}
