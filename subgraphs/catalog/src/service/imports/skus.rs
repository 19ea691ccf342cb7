//! The SKUs an import's validation has met, with what it knows of each: a million of
//! them are held at once, so the layout is chosen for memory. The SKUs' text sits in one
//! arena, each entry holds its place there, and the hash table holds entry numbers
//! only (4 bytes a slot). A `HashMap<Box<str>, Known>` took 40 bytes a slot over two
//! million slots, plus a 16-byte allocation per SKU: about 100 MB at a million SKUs,
//! where this takes about 50.

use std::hash::BuildHasher;

use hashbrown::HashTable;

/// One SKU's entry: where its text is in the arena, and `T`.
struct Entry<T> {
    start: u32,
    len: u32,
    value: T,
}

pub struct SkuTable<T> {
    table: HashTable<u32>,
    entries: Vec<Entry<T>>,
    text: String,
    hasher: std::collections::hash_map::RandomState,
}

impl<T> SkuTable<T> {
    /// Room for `n` SKUs of about `avg_len` bytes without growing.
    pub fn with_capacity(n: usize, avg_len: usize) -> Self {
        SkuTable {
            table: HashTable::with_capacity(n),
            entries: Vec::with_capacity(n),
            text: String::with_capacity(n.saturating_mul(avg_len)),
            hasher: Default::default(),
        }
    }

    fn find(&self, sku: &str, hash: u64) -> Option<u32> {
        let (entries, text) = (&self.entries, &self.text);
        self.table
            .find(hash, |&i| sku_at(text, &entries[i as usize]) == sku)
            .copied()
    }

    /// `sku`'s value, inserting `make()` first when it is new; `None` once the table
    /// holds 4 GiB of SKUs or 2^32 of them, which no accepted file reaches.
    pub fn get_or_insert_with(&mut self, sku: &str, make: impl FnOnce() -> T) -> Option<&mut T> {
        let hash = self.hasher.hash_one(sku);
        let index = match self.find(sku, hash) {
            Some(i) => i,
            None => {
                let i = u32::try_from(self.entries.len()).ok()?;
                let start = u32::try_from(self.text.len()).ok()?;
                let len = u32::try_from(sku.len()).ok()?;
                start.checked_add(len)?;
                self.text.push_str(sku);
                self.entries.push(Entry {
                    start,
                    len,
                    value: make(),
                });
                let (entries, text, hasher) = (&self.entries, &self.text, &self.hasher);
                self.table.insert_unique(hash, i, |&j| {
                    hasher.hash_one(sku_at(text, &entries[j as usize]))
                });
                i
            }
        };
        Some(&mut self.entries[index as usize].value)
    }

    /// Every SKU with its value, in the order they were first met.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &T)> {
        self.entries
            .iter()
            .map(|e| (sku_at(&self.text, e), &e.value))
    }
}

fn sku_at<'a, T>(text: &'a str, e: &Entry<T>) -> &'a str {
    &text[e.start as usize..(e.start + e.len) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skus_are_found_again_by_their_text_and_listed_in_first_seen_order() {
        let mut t: SkuTable<u32> = SkuTable::with_capacity(2, 8);
        for (i, sku) in ["B-2", "A-1", "", "Ä-ü", "A-1", "B-2"].iter().enumerate() {
            let v = t.get_or_insert_with(sku, || i as u32).unwrap();
            *v += 100;
        }
        // Past the capacity asked for: the table grows and still finds every SKU.
        for i in 0..10_000u32 {
            t.get_or_insert_with(&format!("N-{i}"), || i).unwrap();
        }
        assert_eq!(t.iter().count(), 4 + 10_000);
        let first: Vec<(&str, u32)> = t.iter().take(4).map(|(s, v)| (s, *v)).collect();
        assert_eq!(
            first,
            vec![("B-2", 200), ("A-1", 201), ("", 102), ("Ä-ü", 103)]
        );
        assert_eq!(*t.get_or_insert_with("N-9999", || 0).unwrap(), 9_999);
        assert_eq!(*t.get_or_insert_with("N-10000", || 7).unwrap(), 7);
    }
}
