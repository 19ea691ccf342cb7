pub mod method;
pub mod rate;
pub mod zone;
pub mod zone_country;
