//! Journal records (generated from `proto/journal/v1/records.proto`): constructors, kind names and
//! the string names of their enums as the Python API spells them.
use crate::error::{CoreError, Result};
use crate::proto::{record::Kind, LeaseToken, Record};
pub use crate::proto::{DestroyReason, Outcome};
use crate::state::Token;

pub fn record(kind: Kind) -> Record {
    Record { kind: Some(kind) }
}

/// The name of the record's oneof field, e.g. `lease_granted`.
pub fn kind_name(record: &Record) -> &'static str {
    match &record.kind {
        None => "empty",
        Some(Kind::EpochStarted(_)) => "epoch_started",
        Some(Kind::WorkerJoined(_)) => "worker_joined",
        Some(Kind::WorkerLeft(_)) => "worker_left",
        Some(Kind::WorkerUpdated(_)) => "worker_updated",
        Some(Kind::FunctionConcurrencySet(_)) => "function_concurrency_set",
        Some(Kind::SandboxCreating(_)) => "sandbox_creating",
        Some(Kind::SandboxRelocated(_)) => "sandbox_relocated",
        Some(Kind::SandboxCreated(_)) => "sandbox_created",
        Some(Kind::SandboxReset(_)) => "sandbox_reset",
        Some(Kind::SandboxDestroyed(_)) => "sandbox_destroyed",
        Some(Kind::LeaseGranted(_)) => "lease_granted",
        Some(Kind::LeaseReleased(_)) => "lease_released",
        Some(Kind::LeaseExpired(_)) => "lease_expired",
        Some(Kind::VersionProvisioned(_)) => "version_provisioned",
    }
}

pub fn token_proto(token: Token) -> Option<LeaseToken> {
    Some(LeaseToken { epoch: token.epoch, seq: token.seq })
}

pub fn token_of(token: Option<&LeaseToken>) -> Result<Token> {
    token
        .map(|t| Token { epoch: t.epoch, seq: t.seq })
        .ok_or_else(|| CoreError::InvalidRecord("the lease token is missing".into()))
}

pub const OUTCOMES: [(&str, Outcome); 5] = [
    ("ok", Outcome::Ok),
    ("function_error", Outcome::FunctionError),
    ("timeout", Outcome::Timeout),
    ("crash", Outcome::Crash),
    ("out_of_memory", Outcome::OutOfMemory),
];

pub const DESTROY_REASONS: [(&str, DestroyReason); 5] = [
    ("idle", DestroyReason::Idle),
    ("create_failed", DestroyReason::CreateFailed),
    ("reset_failed", DestroyReason::ResetFailed),
    ("vanished", DestroyReason::Vanished),
    ("requested", DestroyReason::Requested),
];

fn by_name<T: Copy>(what: &'static str, table: &[(&str, T)], name: &str) -> Result<T> {
    table.iter().find(|(n, _)| *n == name).map(|(_, v)| *v).ok_or_else(|| {
        let known: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
        CoreError::invalid_argument(what, format!("must be one of {known:?}, got {name:?}"))
    })
}

pub fn outcome_named(name: &str) -> Result<Outcome> {
    by_name("outcome", &OUTCOMES, name)
}

pub fn destroy_reason_named(name: &str) -> Result<DestroyReason> {
    by_name("reason", &DESTROY_REASONS, name)
}

/// A sandbox that ended with this outcome may serve again.
pub fn reusable(outcome: Outcome) -> bool {
    matches!(outcome, Outcome::Ok | Outcome::FunctionError)
}
