pub mod pair;
pub mod product;
pub mod user_product;
