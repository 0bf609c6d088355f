//! Sync: the decision logic (`engine`, plain Rust, no I/O) that the browser service drives.
//! The engine is tested natively by a seeded fault simulation (`tests/sync_sim.rs`); the
//! browser side (`service`, `http`) is built with the `sync` feature only.

pub mod bridge;
pub mod chunked;
pub mod engine;
#[cfg(feature = "sync")]
pub mod http;
pub mod json;
pub mod protocol;
#[cfg(feature = "sync")]
pub mod service;
