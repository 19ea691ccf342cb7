//! Resilience towards subgraphs, one [`SubgraphGuard`] per subgraph:
//!
//! - a circuit breaker: after `breaker_failures` failed requests in a row (unreachable,
//!   timed out, HTTP 5xx) requests to that subgraph fail at once for `breaker_cool_down`,
//!   instead of each waiting for its own timeout and piling load on a subgraph that is
//!   down; then one request goes through as a probe, and its outcome closes the breaker
//!   or opens it for another cool-down;
//! - retries of reads whose request failed without an answer (connection refused or
//!   reset, HTTP 502/503/504), within a budget: a fixed allowance per second plus a
//!   share of the requests made, so that retries cannot multiply the load on a
//!   subgraph that is struggling;
//! - a bound on requests in flight per subgraph; past it, requests wait their turn
//!   within their timeout.
//!
//! The counts behind all three are read by `/metrics` (see [`crate::metrics`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Settings of every subgraph's guard.
#[derive(Clone, Debug, PartialEq)]
pub struct ResilienceOptions {
    /// Failed requests in a row that open a subgraph's breaker; 0: no breaker.
    /// Default 5.
    pub breaker_failures: u32,
    /// How long an open breaker fails requests at once before it lets one probe
    /// through. Default 5 s.
    pub breaker_cool_down: Duration,
    /// Extra attempts of a read that failed without an answer. Default 1; 0: none.
    pub retries: u32,
    /// Retries allowed per second whatever the traffic. Default 10.
    pub retry_min_per_second: u32,
    /// Further retries allowed, as a percentage of the requests made in the last ten
    /// seconds. Default 20.
    pub retry_percent: u32,
    /// Requests in flight per subgraph; more wait for a free slot. 0: no bound.
    /// Default 0.
    pub max_in_flight: usize,
}

impl Default for ResilienceOptions {
    fn default() -> Self {
        ResilienceOptions {
            breaker_failures: 5,
            breaker_cool_down: Duration::from_secs(5),
            retries: 1,
            retry_min_per_second: 10,
            retry_percent: 20,
            max_in_flight: 0,
        }
    }
}

/// The retry budget's window: deposits older than this no longer count.
const BUDGET_WINDOW_MS: u64 = 10_000;

/// One subgraph's breaker, retry budget and slots, and the counts `/metrics` shows.
pub struct SubgraphGuard {
    options: ResilienceOptions,
    epoch: Instant,
    /// Failed requests in a row.
    failures: AtomicU32,
    /// While non-zero, the breaker is open until this many ms after `epoch` (plus one,
    /// so that 0 stays "closed"); past it, one probe may go.
    open_until: AtomicU64,
    /// A probe is in flight (half-open).
    probing: AtomicBool,
    /// The retry budget's current window (ms after `epoch` / window) and its counts.
    budget_window: AtomicU64,
    budget_requests: AtomicU32,
    budget_retries: AtomicU32,
    slots: Option<Arc<tokio::sync::Semaphore>>,
    pub counts: GuardCounts,
}

/// What a guard counted since start.
#[derive(Default)]
pub struct GuardCounts {
    /// Times the breaker opened.
    pub opened: AtomicU64,
    /// Requests failed at once by an open breaker.
    pub rejected: AtomicU64,
    /// Retries made.
    pub retries: AtomicU64,
    /// Retries wanted but refused by the budget.
    pub retries_refused: AtomicU64,
    /// Requests that had to wait for a slot.
    pub queued: AtomicU64,
    /// Requests in flight now.
    pub in_flight: AtomicU64,
}

/// Leave to send one request; hand it back through [`SubgraphGuard::record`].
pub struct Pass {
    probe: bool,
    recorded: bool,
    guard: Arc<SubgraphGuard>,
    _slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Drop for Pass {
    fn drop(&mut self) {
        self.guard.counts.in_flight.fetch_sub(1, Ordering::Relaxed);
        // A probe whose caller went away decided nothing: let the next one try.
        if self.probe && !self.recorded {
            self.guard.probing.store(false, Ordering::Release);
        }
    }
}

/// Why a request was not sent.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The breaker is open; it lets a probe through in about this long.
    Open(Duration),
    /// No slot came free within the request's time.
    NoSlot,
}

/// How a request ended, as far as the breaker and retries care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The subgraph answered (any status below 500).
    Answered,
    /// It failed without reaching the subgraph's resolvers in a way a retry may fix
    /// (connection refused or reset, HTTP 502, 503, 504).
    Retryable,
    /// It failed otherwise (timed out, HTTP 500, cut off mid-answer).
    Failed,
}

impl SubgraphGuard {
    pub fn new(options: ResilienceOptions) -> Arc<SubgraphGuard> {
        let slots = (options.max_in_flight > 0)
            .then(|| Arc::new(tokio::sync::Semaphore::new(options.max_in_flight)));
        Arc::new(SubgraphGuard {
            options,
            epoch: Instant::now(),
            failures: AtomicU32::new(0),
            open_until: AtomicU64::new(0),
            probing: AtomicBool::new(false),
            budget_window: AtomicU64::new(0),
            budget_requests: AtomicU32::new(0),
            budget_retries: AtomicU32::new(0),
            slots,
            counts: GuardCounts::default(),
        })
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Whether the breaker is open now (failing requests at once, or probing).
    pub fn is_open(&self) -> bool {
        self.open_until.load(Ordering::Acquire) != 0
    }

    /// Leave to send a request within `wait`, or why not.
    pub async fn enter(self: &Arc<Self>, wait: Duration) -> Result<Pass, Refusal> {
        let mut probe = false;
        let until = self.open_until.load(Ordering::Acquire);
        if until != 0 {
            let now = self.now_ms() + 1;
            if now < until {
                self.counts.rejected.fetch_add(1, Ordering::Relaxed);
                return Err(Refusal::Open(Duration::from_millis(until - now)));
            }
            if self
                .probing
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                self.counts.rejected.fetch_add(1, Ordering::Relaxed);
                return Err(Refusal::Open(Duration::ZERO));
            }
            probe = true;
        }
        let slot = match &self.slots {
            None => None,
            Some(slots) => match slots.clone().try_acquire_owned() {
                Ok(p) => Some(p),
                Err(_) => {
                    self.counts.queued.fetch_add(1, Ordering::Relaxed);
                    match tokio::time::timeout(wait, slots.clone().acquire_owned()).await {
                        Ok(Ok(p)) => Some(p),
                        _ => {
                            if probe {
                                self.probing.store(false, Ordering::Release);
                            }
                            return Err(Refusal::NoSlot);
                        }
                    }
                }
            },
        };
        self.counts.in_flight.fetch_add(1, Ordering::Relaxed);
        Ok(Pass {
            probe,
            recorded: false,
            guard: self.clone(),
            _slot: slot,
        })
    }

    /// Records how the request sent under `pass` ended.
    pub fn record(&self, mut pass: Pass, outcome: Outcome) {
        pass.recorded = true;
        if outcome == Outcome::Answered {
            self.failures.store(0, Ordering::Relaxed);
            if self.open_until.swap(0, Ordering::AcqRel) != 0 {
                tracing::info!("subgraph answered again: its circuit breaker closed");
            }
            if pass.probe {
                self.probing.store(false, Ordering::Release);
            }
            return;
        }
        let threshold = self.options.breaker_failures;
        if threshold == 0 {
            return;
        }
        let failures = self
            .failures
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        if pass.probe || failures >= threshold {
            let until = self.now_ms() + 1 + self.options.breaker_cool_down.as_millis() as u64;
            let was = self.open_until.swap(until, Ordering::AcqRel);
            if was == 0 {
                self.counts.opened.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    failures,
                    cool_down_ms = self.options.breaker_cool_down.as_millis() as u64,
                    "subgraph keeps failing: its circuit breaker opened"
                );
            }
            if pass.probe {
                self.probing.store(false, Ordering::Release);
            }
        }
    }

    /// Counts a first attempt into the retry budget.
    pub fn deposit(&self) {
        self.roll_budget();
        self.budget_requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes one retry from the budget if it allows one.
    pub fn withdraw(&self) -> bool {
        if self.options.retries == 0 {
            return false;
        }
        self.roll_budget();
        let allowance = u64::from(self.options.retry_min_per_second) * BUDGET_WINDOW_MS / 1000
            + u64::from(self.budget_requests.load(Ordering::Relaxed))
                * u64::from(self.options.retry_percent)
                / 100;
        let taken = self.budget_retries.fetch_add(1, Ordering::Relaxed);
        if u64::from(taken) < allowance {
            self.counts.retries.fetch_add(1, Ordering::Relaxed);
            true
        } else {
            self.budget_retries.fetch_sub(1, Ordering::Relaxed);
            self.counts.retries_refused.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    /// How many retries one read may make.
    pub fn max_retries(&self) -> u32 {
        self.options.retries
    }

    /// Starts a new budget window when the current one is over. Two callers may both
    /// see the change; the counts they lose to that are a rounding error.
    fn roll_budget(&self) {
        let window = self.now_ms() / BUDGET_WINDOW_MS;
        if self.budget_window.load(Ordering::Relaxed) != window
            && self.budget_window.swap(window, Ordering::Relaxed) != window
        {
            self.budget_requests.store(0, Ordering::Relaxed);
            self.budget_retries.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(failures: u32, cool_down_ms: u64) -> ResilienceOptions {
        ResilienceOptions {
            breaker_failures: failures,
            breaker_cool_down: Duration::from_millis(cool_down_ms),
            ..Default::default()
        }
    }

    async fn fail(guard: &Arc<SubgraphGuard>) {
        let pass = guard.enter(Duration::ZERO).await.expect("a pass");
        guard.record(pass, Outcome::Failed);
    }

    #[tokio::test]
    async fn opens_after_failures_in_a_row_and_a_success_resets_the_count() {
        let guard = SubgraphGuard::new(options(3, 60_000));
        fail(&guard).await;
        fail(&guard).await;
        let pass = guard.enter(Duration::ZERO).await.expect("still closed");
        guard.record(pass, Outcome::Answered);
        fail(&guard).await;
        fail(&guard).await;
        assert!(
            !guard.is_open(),
            "two in a row after a success do not open it"
        );
        fail(&guard).await;
        assert!(guard.is_open());
        match guard.enter(Duration::ZERO).await {
            Err(Refusal::Open(left)) => assert!(left > Duration::from_secs(50), "{left:?}"),
            other => panic!("expected an open breaker, got {:?}", other.is_ok()),
        }
        assert_eq!(guard.counts.opened.load(Ordering::Relaxed), 1);
        assert_eq!(guard.counts.rejected.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn after_the_cool_down_one_probe_goes_and_its_outcome_decides() {
        let guard = SubgraphGuard::new(options(1, 30));
        fail(&guard).await;
        tokio::time::sleep(Duration::from_millis(40)).await;
        let probe = guard.enter(Duration::ZERO).await.expect("a probe");
        assert_eq!(
            guard.enter(Duration::ZERO).await.err(),
            Some(Refusal::Open(Duration::ZERO)),
            "one probe at a time"
        );
        guard.record(probe, Outcome::Failed);
        assert!(
            guard.enter(Duration::ZERO).await.is_err(),
            "a failed probe reopens"
        );
        tokio::time::sleep(Duration::from_millis(40)).await;
        let probe = guard.enter(Duration::ZERO).await.expect("a second probe");
        guard.record(probe, Outcome::Answered);
        assert!(!guard.is_open());
        assert!(guard.enter(Duration::ZERO).await.is_ok());
        assert_eq!(guard.counts.opened.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn a_probe_dropped_unrecorded_lets_the_next_one_try() {
        let guard = SubgraphGuard::new(options(1, 10));
        fail(&guard).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(guard.enter(Duration::ZERO).await.expect("a probe"));
        assert!(guard.enter(Duration::ZERO).await.is_ok());
    }

    #[tokio::test]
    async fn the_retry_budget_allows_a_floor_plus_a_share_of_requests() {
        let guard = SubgraphGuard::new(ResilienceOptions {
            retry_min_per_second: 1,
            retry_percent: 50,
            ..Default::default()
        });
        // A floor of 1 per second over a 10 s window: 10 retries with no traffic.
        assert_eq!((0..20).filter(|_| guard.withdraw()).count(), 10);
        for _ in 0..8 {
            guard.deposit();
        }
        // Half of 8 requests: 4 more.
        assert_eq!((0..20).filter(|_| guard.withdraw()).count(), 4);
        assert_eq!(guard.counts.retries.load(Ordering::Relaxed), 14);
        assert_eq!(guard.counts.retries_refused.load(Ordering::Relaxed), 26);
    }

    #[tokio::test]
    async fn slots_bound_requests_in_flight_and_waiters_give_up_at_their_deadline() {
        let guard = SubgraphGuard::new(ResilienceOptions {
            max_in_flight: 1,
            ..Default::default()
        });
        let first = guard.enter(Duration::ZERO).await.expect("a slot");
        assert_eq!(
            guard.enter(Duration::from_millis(20)).await.err(),
            Some(Refusal::NoSlot)
        );
        let waiter = {
            let guard = guard.clone();
            tokio::spawn(async move { guard.enter(Duration::from_secs(5)).await.is_ok() })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(guard.counts.in_flight.load(Ordering::Relaxed), 1);
        guard.record(first, Outcome::Answered);
        assert!(
            waiter.await.expect("joined"),
            "the freed slot goes to the waiter"
        );
        assert_eq!(guard.counts.queued.load(Ordering::Relaxed), 2);
    }
}
