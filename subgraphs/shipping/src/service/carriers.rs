//! Carriers behind one trait: what shipping asks of a carrier (a label's tracking
//! number, the public page that follows a parcel) and, for the simulated one, the
//! scans it makes itself. A real carrier is one more implementation registered in
//! [`Carriers::new`]; its scans arrive by webhook (`files::carrier_webhook`).

use std::sync::Arc;

use futures::future::BoxFuture;
use shop_kit::{ApiError, ApiResult};

use super::tracking::ParcelStatus;

/// What a carrier needs to sell a label.
#[derive(Clone, Debug)]
pub struct LabelRequest {
    /// Our parcel id: the carrier's idempotency key, so asking twice (a retry after a
    /// crash between its answer and our commit) buys one label.
    pub parcel_id: String,
    pub weight_grams: i64,
    /// The destination's ISO country code.
    pub country: String,
}

pub trait Carrier: Send + Sync + 'static {
    /// The code stored on methods and shipments and used in webhook paths.
    fn code(&self) -> &'static str;
    /// The name shoppers see.
    fn name(&self) -> &'static str;
    /// The page where anyone with the number follows the parcel (absolute: it goes
    /// into e-mails).
    fn tracking_url(&self, tracking_number: &str) -> String;
    /// Buys a label and answers its tracking number.
    fn buy_label<'a>(&'a self, req: &'a LabelRequest) -> BoxFuture<'a, ApiResult<String>>;
    /// For a carrier this process plays itself: the scans a parcel goes through. Real
    /// carriers report by webhook and answer `None`.
    fn simulated_route(&self, _tracking_number: &str) -> Option<&'static [ParcelStatus]> {
        None
    }
}

/// The development carrier: tracking numbers `SIM` and twelve digits derived from the
/// parcel id, scans made on a schedule by [`super::tracking::spawn_simulated_carrier`],
/// and a tracking page served by this service.
pub struct Simulated {
    /// The shop's public origin, where the tracking page is.
    pub public_url: String,
}

impl Carrier for Simulated {
    fn code(&self) -> &'static str {
        "simulated"
    }

    fn name(&self) -> &'static str {
        "Simulated Parcel Service"
    }

    fn tracking_url(&self, tracking_number: &str) -> String {
        format!(
            "{}/files/shipping/tracking/{}",
            self.public_url.trim_end_matches('/'),
            tracking_number
        )
    }

    fn buy_label<'a>(&'a self, req: &'a LabelRequest) -> BoxFuture<'a, ApiResult<String>> {
        Box::pin(async move { Ok(simulated_tracking_number(&req.parcel_id)) })
    }

    /// Most parcels are delivered; numbers ending in 9 at the second attempt, numbers
    /// ending in 0 go back to the sender.
    fn simulated_route(&self, tracking_number: &str) -> Option<&'static [ParcelStatus]> {
        use ParcelStatus::*;
        Some(match tracking_number.chars().last() {
            Some('9') => &[
                InTransit,
                OutForDelivery,
                FailedAttempt,
                OutForDelivery,
                Delivered,
            ],
            Some('0') => &[InTransit, OutForDelivery, FailedAttempt, Returned],
            _ => &[InTransit, OutForDelivery, Delivered],
        })
    }
}

/// The tracking number the simulated carrier gives a parcel: the same for the same
/// parcel, so buying again (or twice at once) gives the same.
pub fn simulated_tracking_number(parcel_id: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(parcel_id.as_bytes());
    let mut n = 0u64;
    for b in &digest[..8] {
        n = (n << 8) | u64::from(*b);
    }
    format!("SIM{:012}", n % 1_000_000_000_000)
}

/// The carriers this deployment ships with.
#[derive(Clone)]
pub struct Carriers(Arc<Vec<Arc<dyn Carrier>>>);

impl Carriers {
    pub fn new(public_url: &str) -> Self {
        Carriers(Arc::new(vec![Arc::new(Simulated {
            public_url: public_url.to_string(),
        })]))
    }

    pub fn get(&self, code: &str) -> Option<&Arc<dyn Carrier>> {
        self.0.iter().find(|c| c.code() == code)
    }

    /// The carrier of a stored code, or an internal error: codes are checked when
    /// methods are made, so an unknown one means a carrier was removed from the build.
    pub fn stored(&self, code: &str) -> ApiResult<&Arc<dyn Carrier>> {
        self.get(code)
            .ok_or_else(|| ApiError::Internal(format!("carrier {code:?} is not configured")))
    }

    pub fn codes(&self) -> Vec<&'static str> {
        self.0.iter().map(|c| c.code()).collect()
    }

    /// A carrier code as given in a mutation: trimmed, lower case, and known.
    pub fn check(&self, code: &str) -> ApiResult<String> {
        let c = code.trim().to_ascii_lowercase();
        if self.get(&c).is_some() {
            Ok(c)
        } else {
            Err(ApiError::bad_input(format!(
                "carrier: unknown carrier {:?}; known: {}",
                shop_kit::input::shortened(&c, 32),
                self.codes().join(", ")
            )))
        }
    }
}

impl Default for Carriers {
    fn default() -> Self {
        Carriers::new("http://127.0.0.1:4000")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ParcelStatus::*;

    #[test]
    fn routes_end_delivered_or_returned() {
        let sim = Simulated {
            public_url: String::new(),
        };
        let route = |n: &str| sim.simulated_route(n).unwrap();
        assert_eq!(route("SIM000000000001").last(), Some(&Delivered));
        assert_eq!(route("SIM000000000009").last(), Some(&Delivered));
        assert!(route("SIM000000000009").contains(&FailedAttempt));
        assert_eq!(route("SIM000000000010").last(), Some(&Returned));
    }

    #[test]
    fn tracking_numbers_are_stable_and_shaped() {
        let a = simulated_tracking_number("p-1");
        assert_eq!(a, simulated_tracking_number("p-1"));
        assert_ne!(a, simulated_tracking_number("p-2"));
        assert!(a.starts_with("SIM") && a.len() == 15);
        assert!(a[3..].bytes().all(|b| b.is_ascii_digit()));
    }

    #[test]
    fn unknown_carriers_are_refused_with_the_known_ones() {
        let c = Carriers::new("https://shop.example/");
        assert_eq!(c.check(" Simulated ").unwrap(), "simulated");
        let err = c.check("pigeon").unwrap_err();
        assert!(err.public_message().contains("simulated"), "{err:?}");
        assert_eq!(
            c.get("simulated").unwrap().tracking_url("SIM1"),
            "https://shop.example/files/shipping/tracking/SIM1"
        );
    }
}
