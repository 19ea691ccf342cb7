pub mod pair;
pub mod product;
