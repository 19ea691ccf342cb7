//! Replacing the supergraph while serving: from the file the gateway was started with
//! (looked at every second) or through `POST /admin/supergraph` (an admin's token).
//!
//! A new supergraph is parsed and checked first; one that fails is refused and logged,
//! and the current one keeps serving. One that passes becomes a new [`Gateway`]
//! generation, swapped in at once: requests already running finish on the generation
//! they started on (they hold it), new ones start on the new one. Open subscriptions
//! check whether their operation still fits the new schema and is still served by the
//! same subgraph; those that do not are ended with `SCHEMA_CHANGED` (see
//! `pipeline::stream`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use shop_federation::Supergraph;

use crate::Gateway;

/// The gateway generation serving now, and how to make the next one.
pub struct GatewayHandle {
    current: ArcSwap<Gateway>,
    /// Subgraph URLs that replace the supergraph's (`SHOP_SUBGRAPH_URL_<NAME>`), applied
    /// to every supergraph loaded.
    url_overrides: HashMap<String, String>,
    /// Serialises replacements: two at once would each retire the same generation.
    replacing: tokio::sync::Mutex<()>,
}

/// What a replacement did.
#[derive(Debug, PartialEq, Eq)]
pub enum Replaced {
    /// The new supergraph serves now; its subgraphs.
    Now(Vec<String>),
    /// It is the one already serving.
    Unchanged,
}

impl GatewayHandle {
    pub fn new(gateway: Arc<Gateway>) -> Arc<GatewayHandle> {
        GatewayHandle::with_overrides(gateway, HashMap::new())
    }

    pub fn with_overrides(
        gateway: Arc<Gateway>,
        url_overrides: HashMap<String, String>,
    ) -> Arc<GatewayHandle> {
        Arc::new(GatewayHandle {
            current: ArcSwap::new(gateway),
            url_overrides,
            replacing: tokio::sync::Mutex::new(()),
        })
    }

    /// The generation new requests start on.
    pub fn current(&self) -> Arc<Gateway> {
        self.current.load_full()
    }

    /// Checks `sdl` and, if it passes, serves it from now on. The reason it did not
    /// pass otherwise; the current supergraph keeps serving.
    pub async fn replace(&self, sdl: &str) -> Result<Replaced, String> {
        let _one_at_a_time = self.replacing.lock().await;
        let old = self.current();
        if sdl == old.supergraph.sdl {
            return Ok(Replaced::Unchanged);
        }
        let mut supergraph = Supergraph::parse(sdl).map_err(|e| e.to_string())?;
        if supergraph.graphs.is_empty() {
            return Err("the supergraph names no subgraphs".into());
        }
        for (name, url) in &self.url_overrides {
            if !supergraph.set_url(name, url) {
                tracing::warn!(subgraph = %name, "a URL override names a subgraph the new supergraph does not have");
            }
        }
        let names = supergraph.graphs.iter().map(|g| g.name.clone()).collect();
        // Building plans for the schema's types is the costly part: off the async threads.
        let next = tokio::task::spawn_blocking({
            let old = old.clone();
            move || old.successor_for(supergraph)
        })
        .await
        .map_err(|e| format!("building the new gateway failed: {e}"))?;
        self.current.store(next.clone());
        old.retire(next);
        tracing::info!(subgraphs = ?names, "supergraph replaced");
        Ok(Replaced::Now(names))
    }

    /// Looks at `path` every `every` and serves what it holds whenever it changes; a
    /// file that cannot be read or does not pass is logged once per content and left.
    pub fn watch_file(
        self: &Arc<Self>,
        path: PathBuf,
        every: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let handle = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut last_seen: Option<String> = None;
            loop {
                tokio::time::sleep(every).await;
                // The handle went away with its server: so does the watcher.
                let Some(handle) = handle.upgrade() else {
                    return;
                };
                let text = match tokio::fs::read_to_string(&path).await {
                    Ok(t) => t,
                    Err(e) => {
                        let note = format!("unreadable: {e}");
                        if last_seen.as_deref() != Some(note.as_str()) {
                            tracing::error!(path = %path.display(), error = %e, "the supergraph file cannot be read; the current one keeps serving");
                            last_seen = Some(note);
                        }
                        continue;
                    }
                };
                if last_seen.as_deref() == Some(text.as_str()) {
                    continue;
                }
                if let Err(reason) = handle.replace(&text).await {
                    tracing::error!(path = %path.display(), %reason, "the new supergraph was refused; the current one keeps serving");
                }
                last_seen = Some(text);
            }
        })
    }
}
