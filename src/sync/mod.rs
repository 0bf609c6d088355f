//! Sync: the decision logic (`engine`, plain Rust, no I/O) that the browser service drives.
//! The engine is tested natively by a seeded fault simulation (`tests/sync_sim.rs`).

pub mod bridge;
pub mod engine;
pub mod http;
pub mod protocol;
pub mod service;
