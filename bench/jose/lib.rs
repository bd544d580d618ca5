//! Nothing: this package exists for `benches/jose.rs`.
