//! Identical work in flight done once: the first caller with a key does the work; the
//! callers with the same key that arrive before it finishes wait for its result
//! instead of doing it again. Used for client queries (the same operation, variables
//! and caller) and for subgraph reads (the same request body and headers).
//!
//! Nothing is cached: once the work is done, the next caller starts afresh. If the
//! first caller goes away before finishing (its client hung up), the waiting callers
//! each do the work themselves.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};

use tokio::sync::watch;

pub struct SingleFlight<K, V> {
    inflight: Mutex<HashMap<K, watch::Receiver<Option<V>>>>,
}

impl<K, V> Default for SingleFlight<K, V> {
    fn default() -> Self {
        SingleFlight {
            inflight: Mutex::new(HashMap::new()),
        }
    }
}

enum Role<V> {
    Lead(watch::Sender<Option<V>>),
    Wait(watch::Receiver<Option<V>>),
}

/// Takes the leader's key out of the map however the leader ends (finished, or
/// dropped mid-way): later callers then start afresh.
struct Leave<'a, K: Hash + Eq, V> {
    flight: &'a SingleFlight<K, V>,
    key: K,
}

impl<K: Hash + Eq, V> Drop for Leave<'_, K, V> {
    fn drop(&mut self) {
        self.flight
            .inflight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
    }
}

impl<K: Hash + Eq + Clone, V: Clone> SingleFlight<K, V> {
    /// `work`'s result, or that of the same key's work already in flight. The flag
    /// says whether the result came from another caller's work.
    pub async fn run<F, Fut>(&self, key: K, work: F) -> (V, bool)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        let role = {
            let mut inflight = self.inflight.lock().unwrap_or_else(PoisonError::into_inner);
            match inflight.get(&key) {
                Some(rx) => Role::Wait(rx.clone()),
                None => {
                    let (tx, rx) = watch::channel(None);
                    inflight.insert(key.clone(), rx);
                    Role::Lead(tx)
                }
            }
        };
        match role {
            Role::Lead(tx) => {
                let _leave = Leave { flight: self, key };
                let value = work().await;
                let _ = tx.send(Some(value.clone()));
                (value, false)
            }
            Role::Wait(mut rx) => loop {
                if let Some(v) = rx.borrow_and_update().clone() {
                    return (v, true);
                }
                if rx.changed().await.is_err() {
                    // The leader is gone: its value if it sent one, else our own work.
                    if let Some(v) = rx.borrow().clone() {
                        return (v, true);
                    }
                    return (work().await, false);
                }
            },
        }
    }

    /// How many keys are in flight (for tests and metrics).
    pub fn in_flight(&self) -> usize {
        self.inflight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn callers_that_arrive_together_share_one_run_and_later_ones_run_again() {
        let flight: Arc<SingleFlight<&str, usize>> = Arc::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let one = |flight: Arc<SingleFlight<&'static str, usize>>, runs: Arc<AtomicUsize>| async move {
            flight
                .run("k", || async {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    runs.fetch_add(1, Ordering::SeqCst) + 1
                })
                .await
        };
        let results =
            futures::future::join_all((0..10).map(|_| one(flight.clone(), runs.clone()))).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(results.iter().all(|(v, _)| *v == 1));
        assert_eq!(results.iter().filter(|(_, shared)| !shared).count(), 1);
        assert_eq!(flight.in_flight(), 0);
        // Nothing is kept: the next caller runs the work again.
        assert_eq!(one(flight.clone(), runs.clone()).await, (2, false));
    }

    #[tokio::test]
    async fn different_keys_never_share() {
        let flight: Arc<SingleFlight<u32, u32>> = Arc::default();
        let (a, b) = tokio::join!(
            flight.run(1, || async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                10
            }),
            flight.run(2, || async { 20 })
        );
        assert_eq!((a, b), ((10, false), (20, false)));
    }

    #[tokio::test]
    async fn waiters_do_the_work_themselves_when_the_leader_is_dropped() {
        let flight: Arc<SingleFlight<&str, u32>> = Arc::default();
        let leader = {
            let flight = flight.clone();
            tokio::spawn(async move {
                flight
                    .run("k", || async {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        1
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let waiter = {
            let flight = flight.clone();
            tokio::spawn(async move { flight.run("k", || async { 2 }).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        leader.abort();
        let got = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the waiter is not left hanging")
            .expect("the waiter finishes");
        assert_eq!(got, (2, false));
        assert_eq!(flight.in_flight(), 0);
    }
}
