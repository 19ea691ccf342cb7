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

impl Default for Shape {
    fn default() -> Self {
        Shape {
            shoppers: 1_000,
            tastes: 8,
            per_taste: 30,
            popular: 20,
            min_orders: 3,
            max_orders: 8,
            in_taste_percent: 60,
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

/// The shoppers and their orders. Best-sellers follow a Zipf-like law (the first
/// sells most).
pub fn history(shape: Shape, seed: u64) -> Vec<Shopper> {
    let mut rng = Rng::new(seed);
    // Zipf weights 1/(k+1) for the best-sellers, as a cumulative table.
    let weights: Vec<f64> = (0..shape.popular).map(|k| 1.0 / (k as f64 + 1.0)).collect();
    let total: f64 = weights.iter().sum();
    let mut cumulative = Vec::with_capacity(weights.len());
    let mut acc = 0.0;
    for w in &weights {
        acc += w / total;
        cumulative.push(acc);
    }
    let mut out = Vec::with_capacity(shape.shoppers);
    for s in 0..shape.shoppers {
        let taste = rng.below(shape.tastes);
        let n = shape.min_orders + rng.below(shape.max_orders - shape.min_orders + 1);
        let mut orders = Vec::with_capacity(n);
        for _ in 0..n {
            let items = 1 + rng.below(4);
            let mut order: Vec<String> = Vec::with_capacity(items);
            for _ in 0..items {
                let id = if rng.below(100) < shape.in_taste_percent as usize {
                    taste_product(taste, rng.below(shape.per_taste))
                } else {
                    let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                    let k = cumulative.iter().position(|c| u <= *c).unwrap_or(0);
                    popular_product(k)
                };
                if !order.contains(&id) {
                    order.push(id);
                }
            }
            orders.push(order);
        }
        out.push(Shopper {
            id: format!("00000000-0000-7000-c000-{s:012x}"),
            taste,
            orders,
        });
    }
    out
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
        assert!(a.iter().all(|s| (3..=8).contains(&s.orders.len())));
        let in_taste: usize = a
            .iter()
            .flat_map(|s| s.orders.iter().flatten().map(move |p| (s.taste, p)))
            .filter(|(t, p)| p.starts_with(&format!("00000000-0000-7000-a000-{:04x}", t + 1)))
            .count();
        let all: usize = a.iter().flat_map(|s| s.orders.iter().flatten()).count();
        let share = in_taste as f64 / all as f64;
        assert!((0.5..0.7).contains(&share), "{share}");
    }
}
