pub mod address;
pub mod identity;
pub mod oidc_login;
pub mod one_time_token;
pub mod session;
pub mod signing_key;
pub mod user;
