//! Leasehold's partition core (skeleton while the build is wired up).
pub mod proto {
    //! Types generated from `proto/journal/v1/*.proto`.
    include!(concat!(env!("OUT_DIR"), "/leasehold.journal.v1.rs"));
}

#[cfg(feature = "python")]
#[pyo3::pymodule]
mod _core {}
