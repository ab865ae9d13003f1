//! Everything the registry protocol defines: scopes, the access policy, the
//! signing keys and the JWT a registry verifies.

pub mod jwt;
pub mod keys;
pub mod policy;
pub mod rotation;
pub mod rules;
pub mod scope;
