//! Leasehold's partition core: the state of one partition of the assignment service and every
//! hot-path decision about it — warm pools, cold placement, concurrency limits, lease expiry.
//!
//! The core is pure: no I/O, no clock (times are arguments), no randomness. Decisions
//! (`decide.rs`) read the state and return journal records; only `apply` (`apply.rs`) changes it.
//! A leader decides, applies, journals and then answers; followers and recovery only apply. The
//! records are the protobuf messages of `proto/journal/v1/records.proto`.
//!
//! Module map: `state` (data and index upkeep), `query` (narrow read-only lookups), `placement`
//! (ranking workers), `decide`, `apply`,
//! `snapshot` (canonical bytes and validated restore), `records`, `record_crc` (the journal's
//! per-record checksum), `validate`, `config`, `error`,
//! and `python` (the `PyO3` module `assignment._core`, behind the `python` feature).
pub mod apply;
pub mod config;
pub mod decide;
pub mod error;
pub mod placement;
pub mod query;
pub mod record_crc;
pub mod records;
pub mod snapshot;
pub mod state;
pub mod validate;

#[cfg(feature = "python")]
mod python;

#[cfg(test)]
mod tests;

pub mod proto {
    //! Types generated from `proto/journal/v1/*.proto` by `build.rs`.
    #![allow(clippy::all, clippy::pedantic)]
    include!(concat!(env!("OUT_DIR"), "/leasehold.journal.v1.rs"));
}

pub use config::Config;
pub use decide::{AcquireRequest, Decision, Grant, ThrottleReason};
pub use error::CoreError;
pub use state::{Core, Token};
