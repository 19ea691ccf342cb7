//! Crash drills. `SHOP_CRASH_AT=<point>` makes the process abort when it reaches the
//! named point: no destructors, no flushed buffers, no graceful shutdown, as `kill -9`
//! would leave it. Tests start the binary with a point set, then restart it without
//! and check that whatever was in flight ends (finished or undone). Unset, a point
//! costs one comparison.
//!
//! Points: `checkout.after_promo`, `checkout.after_commit_stock`,
//! `checkout.after_charge`, `checkout.after_capture` (a resumed authorization),
//! `checkout.after_create_order`, `checkout.after_cart_emptied`,
//! `payments.after_provider_charge`, `payments.after_provider_authorize`,
//! `payments.after_provider_capture`, `imports.mid_validation` (after staged changes
//! were written), `imports.after_apply_batch` (after a batch of changes committed).

use std::sync::OnceLock;

static CRASH_AT: OnceLock<Option<String>> = OnceLock::new();

/// Aborts the process here when `SHOP_CRASH_AT` names this point.
pub fn point(name: &str) {
    let armed = CRASH_AT.get_or_init(|| {
        std::env::var("SHOP_CRASH_AT")
            .ok()
            .filter(|v| !v.is_empty())
    });
    if armed.as_deref() == Some(name) {
        eprintln!("crash drill: aborting at {name}");
        std::process::abort();
    }
}
