//! The named errors of the core. Each maps to one Python exception class in `python.rs`.
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoreError {
    /// An argument is malformed or out of range: which one (`field`, a parameter name) and why. The
    /// message is `"{field} {why}"`.
    InvalidArgument {
        field: &'static str,
        why: String,
    },
    /// The request does not fit the current state.
    InvalidState(String),
    UnknownWorker(String),
    UnknownSandbox(u64),
    UnknownLease(String),
    StaleLease(String),
    /// The target worker has no room.
    NoCapacity(String),
    /// A record could not be decoded or does not fit the state.
    InvalidRecord(String),
    CorruptSnapshot(String),
}

impl CoreError {
    /// An `InvalidArgument` naming `field`.
    pub fn invalid_argument(field: &'static str, why: impl Into<String>) -> Self {
        Self::InvalidArgument { field, why: why.into() }
    }

    /// The Python class name of this error.
    pub fn name(&self) -> &'static str {
        match self {
            Self::InvalidArgument { .. } => "InvalidArgument",
            Self::InvalidState(_) => "InvalidState",
            Self::UnknownWorker(_) => "UnknownWorker",
            Self::UnknownSandbox(_) => "UnknownSandbox",
            Self::UnknownLease(_) => "UnknownLease",
            Self::StaleLease(_) => "StaleLease",
            Self::NoCapacity(_) => "NoCapacity",
            Self::InvalidRecord(_) => "InvalidRecord",
            Self::CorruptSnapshot(_) => "CorruptSnapshot",
        }
    }

    /// The same problem, seen while applying a record: every apply failure is an `InvalidRecord`.
    #[must_use]
    pub fn in_record(self, kind: &str) -> Self {
        match self {
            Self::InvalidRecord(_) => self,
            other => Self::InvalidRecord(format!("{kind}: {other}")),
        }
    }

    /// The same problem, seen while restoring a snapshot.
    #[must_use]
    pub fn in_snapshot(self) -> Self {
        match self {
            Self::CorruptSnapshot(_) => self,
            other => Self::CorruptSnapshot(other.to_string()),
        }
    }
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownWorker(id) => write!(f, "unknown worker {id:?}"),
            Self::UnknownSandbox(id) => write!(f, "unknown sandbox {id}"),
            Self::InvalidArgument { field, why } => write!(f, "{field} {why}"),
            Self::InvalidState(m)
            | Self::UnknownLease(m)
            | Self::StaleLease(m)
            | Self::NoCapacity(m)
            | Self::InvalidRecord(m)
            | Self::CorruptSnapshot(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for CoreError {}

pub type Result<T, E = CoreError> = std::result::Result<T, E>;
