//! An order history with a planted structure, for the offline evaluation (`recbench`)
//! and demos: shoppers have a taste (one of several groups of products) and buy mostly
//! within it, plus best-sellers everybody buys. A recommender that learns who buys
//! what together should find the tastes; one that recommends what sells most cannot.
//! Deterministic for a seed.

/// One shopper's orders, oldest first, each a list of product ids.
pub struct Shopper {
    pub id: String,
    pub taste: usize,
    pub orders: Vec<Vec<String>>,
}

/// The history's shape.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub shoppers: usize,
    pub tastes: usize,
    /// Products in each taste's group.
    pub per_taste: usize,
    /// Best-sellers outside every group.
    pub popular: usize,
    /// Orders per shopper: from `min_orders` to `max_orders`.
    pub min_orders: usize,
    pub max_orders: usize,
    /// Chance (in percent) that an item comes from the shopper's taste rather than
    /// the best-sellers.
    pub in_taste_percent: u64,
}

/// The demo shop's structure (see the demo seed): 22 leaf categories of about 14
/// products each as tastes, a dozen best-sellers, 2 to 6 orders per shopper, 80 % of
/// purchases from the shopper's taste; 1,000 shoppers (the demo plants 400).
impl Default for Shape {
    fn default() -> Self {
        Shape {
            shoppers: 1_000,
            tastes: 22,
            per_taste: 14,
            popular: 12,
            min_orders: 2,
            max_orders: 6,
            in_taste_percent: 80,
        }
    }
}

/// splitmix64: small, fast, and the same on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// 0 to `n - 1`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

pub fn taste_product(taste: usize, i: usize) -> String {
    format!("00000000-0000-7000-a000-{:04x}{:08x}", taste + 1, i)
}

pub fn popular_product(i: usize) -> String {
    format!("00000000-0000-7000-b000-0000{i:08x}")
}

/// What shoppers choose from: a group of products per taste, and best-sellers (the
/// first sells most).
#[derive(Clone, Debug)]
pub struct Assortment {
    pub tastes: Vec<Vec<String>>,
    pub popular: Vec<String>,
}

impl Assortment {
    /// Made-up product ids in the shape's numbers (for the offline evaluation).
    pub fn planted(shape: Shape) -> Self {
        Assortment {
            tastes: (0..shape.tastes)
                .map(|t| (0..shape.per_taste).map(|i| taste_product(t, i)).collect())
                .collect(),
            popular: (0..shape.popular).map(popular_product).collect(),
        }
    }
}

/// The shoppers and their orders over made-up products in the shape's numbers.
pub fn history(shape: Shape, seed: u64) -> Vec<Shopper> {
    history_over(shape, &Assortment::planted(shape), seed)
}

/// The shoppers and their orders over `assortment` (the shape's `tastes`, `per_taste`
/// and `popular` are not used). Best-sellers follow a Zipf-like law.
pub fn history_over(shape: Shape, assortment: &Assortment, seed: u64) -> Vec<Shopper> {
    let mut rng = Rng::new(seed);
    // Zipf weights 1/(k+1) for the best-sellers, as a cumulative table.
    let weights: Vec<f64> = (0..assortment.popular.len())
        .map(|k| 1.0 / (k as f64 + 1.0))
        .collect();
    let total: f64 = weights.iter().sum();
    let mut cumulative = Vec::with_capacity(weights.len());
    let mut acc = 0.0;
    for w in &weights {
        acc += w / total;
        cumulative.push(acc);
    }
    let tastes: Vec<&Vec<String>> = assortment.tastes.iter().filter(|t| !t.is_empty()).collect();
    let mut out = Vec::with_capacity(shape.shoppers);
    for s in 0..shape.shoppers {
        let taste = rng.below(tastes.len());
        let n = shape.min_orders + rng.below(shape.max_orders - shape.min_orders + 1);
        let mut orders = Vec::with_capacity(n);
        for _ in 0..n {
            let items = 1 + rng.below(4);
            let mut order: Vec<String> = Vec::with_capacity(items);
            for _ in 0..items {
                let roll = rng.below(100) < shape.in_taste_percent as usize;
                let id = match (tastes.get(taste), roll || assortment.popular.is_empty()) {
                    (Some(group), true) => group[rng.below(group.len())].clone(),
                    (_, _) if !assortment.popular.is_empty() => {
                        let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                        let k = cumulative.iter().position(|c| u <= *c).unwrap_or(0);
                        assortment.popular[k].clone()
                    }
                    _ => continue,
                };
                if !order.contains(&id) {
                    order.push(id);
                }
            }
            if !order.is_empty() {
                orders.push(order);
            }
        }
        out.push(Shopper {
            id: format!("00000000-0000-7000-c000-{s:012x}"),
            taste,
            orders,
        });
    }
    out
}

/// An event on `topic` as another domain would publish it, for recommendations'
/// handler.
pub fn event(topic: &str, payload: serde_json::Value) -> shop_kit::events::Event {
    shop_kit::events::Event {
        id: shop_kit::ids::new_id(),
        topic: topic.into(),
        payload,
        occurred_at: String::new(),
        aggregate: String::new(),
        sequence: 0,
        traceparent: None,
    }
}

/// A paid order as the orders subgraph announces it.
pub fn order_event(user_id: &str, products: &[String]) -> shop_kit::events::Event {
    let lines: Vec<_> = products
        .iter()
        .map(|p| serde_json::json!({ "productId": p, "quantity": 1 }))
        .collect();
    event(
        crate::service::ORDER_PLACED,
        serde_json::json!({
            "orderId": shop_kit::ids::new_id(),
            "userId": user_id,
            "lines": lines,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_is_the_same_for_a_seed_and_has_its_shape() {
        let a = history(Shape::default(), 7);
        let b = history(Shape::default(), 7);
        assert_eq!(a.len(), 1_000);
        assert_eq!(a[10].orders, b[10].orders);
        assert!(a.iter().all(|s| (2..=6).contains(&s.orders.len())));
        let in_taste: usize = a
            .iter()
            .flat_map(|s| s.orders.iter().flatten().map(move |p| (s.taste, p)))
            .filter(|(t, p)| p.starts_with(&format!("00000000-0000-7000-a000-{:04x}", t + 1)))
            .count();
        let all: usize = a.iter().flat_map(|s| s.orders.iter().flatten()).count();
        let share = in_taste as f64 / all as f64;
        assert!((0.75..0.85).contains(&share), "{share}");
    }
}
