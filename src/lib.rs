//! opfs-media: an offline-first media library for the browser.
//! Bytes live in OPFS (IndexedDB where OPFS is missing), metadata in IndexedDB.
//!
//! Layering: `interop` is the thin `#[wasm_bindgen]` surface; `store` does the I/O;
//! `asset`, `validate` and `error` are plain Rust, tested natively.

pub mod asset;
pub mod batch;
pub mod budget;
pub mod digest;
pub mod error;
pub mod home;
pub mod interop;
#[cfg(feature = "sync")]
pub mod interop_sync;
pub mod platform;
pub mod store;
pub mod strict;
pub mod sync;
pub mod validate;

pub use asset::{MediaAsset, StorageKind, SyncStatus};
pub use error::LibraryError;
pub use store::Library;
