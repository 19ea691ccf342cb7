pub mod pair;
pub mod product;
pub mod similar;
pub mod user_product;
