//! A real SMTP server for the mail tests: `tests/smtp/server.py` (Python's aiosmtpd) on
//! a free loopback port. It needs `python3 -m venv tests/smtp/.venv &&
//! tests/smtp/.venv/bin/pip install -r tests/smtp/requirements.txt`; without it the
//! tests that use it are skipped, unless `SHOP_REQUIRE_SMTP=1` (set by CI).

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub struct SmtpServer {
    pub port: u16,
    received: Arc<Mutex<Vec<Value>>>,
    _child: Child,
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/smtp")
}

impl SmtpServer {
    /// Starts one, or `None` (with a note) when the Python environment is missing.
    pub async fn start(test: &str) -> Option<SmtpServer> {
        let python = dir().join(".venv/bin/python");
        let required = std::env::var("SHOP_REQUIRE_SMTP").is_ok_and(|v| v == "1");
        if !python.exists() {
            assert!(
                !required,
                "SHOP_REQUIRE_SMTP is set but {} is missing (see tests/common/smtp.rs)",
                python.display()
            );
            eprintln!("{test}: SMTP server skipped (no tests/smtp/.venv)");
            return None;
        }
        let mut child = Command::new(python)
            .arg(dir().join("server.py"))
            // It exits when its stdin closes: a crashed test leaves nothing behind.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the SMTP server starts");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let port = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the SMTP server answers in time")
            .expect("a line")
            .and_then(|l| l.strip_prefix("port ").and_then(|p| p.trim().parse().ok()))
            .expect("port <n>");
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = received.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    sink.lock().expect("lock").push(v);
                }
            }
        });
        Some(SmtpServer {
            port,
            received,
            _child: child,
        })
    }

    /// The URL the platform sends through (plain SMTP: loopback only).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}?tls=none", self.port)
    }

    /// The raw messages (headers and MIME body) delivered to `to` so far.
    pub fn messages_to(&self, to: &str) -> Vec<String> {
        self.received
            .lock()
            .expect("lock")
            .iter()
            .filter(|m| {
                m["to"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|x| x.as_str() == Some(to)))
            })
            .filter_map(|m| m["data"].as_str().map(str::to_string))
            .collect()
    }

    /// Waits until a message to `to` contains `needle`; returns it.
    pub async fn wait_for(&self, to: &str, needle: &str) -> String {
        super::eventually(&format!("a mail to {to} with {needle:?}"), || async {
            self.messages_to(to)
                .into_iter()
                .find(|m| decoded(m).contains(needle))
                .map(|m| decoded(&m))
        })
        .await
    }
}

/// A MIME message with quoted-printable soft line breaks and `=XX` escapes undone, so
/// tests can look for text in it.
pub fn decoded(raw: &str) -> String {
    let joined = raw.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
