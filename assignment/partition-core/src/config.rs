//! The core's configuration: limits that shape decisions. Records never depend on it, so a core
//! replaying a journal under another configuration reaches the same state.
use crate::error::Result;
use crate::validate::in_range;

/// AWS's default account concurrency limit; the one definition of the default, which Python reads as
/// `assignment._core.DEFAULT_ACCOUNT_LIMIT`.
pub const DEFAULT_ACCOUNT_LIMIT: u32 = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Leases the partition may hold at once across functions without reserved concurrency
    /// (AWS's account concurrency limit, default 1000), before subtracting reservations.
    pub account_limit: u32,
    /// New sandboxes a function may start per window (AWS: 1000 per 10 s).
    pub scale_up_per_window: u32,
    pub scale_up_window_ms: i64,
    /// Added to the function timeout to give a lease's expiry.
    pub lease_margin_ms: i64,
    /// How long an idle sandbox is kept (default 10 minutes).
    pub idle_keepalive_ms: i64,
    /// How many ranked alternative workers a cold placement returns.
    pub alternatives: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            account_limit: DEFAULT_ACCOUNT_LIMIT,
            scale_up_per_window: 1000,
            scale_up_window_ms: 10_000,
            lease_margin_ms: 1_000,
            idle_keepalive_ms: 600_000,
            alternatives: 3,
        }
    }
}

impl Config {
    /// A configuration from raw values, each checked against its documented range.
    pub fn new(
        account_limit: i64,
        scale_up_per_window: i64,
        scale_up_window_ms: i64,
        lease_margin_ms: i64,
        idle_keepalive_ms: i64,
        alternatives: i64,
    ) -> Result<Self> {
        in_range("account_limit", account_limit, 0, 1_000_000)?;
        in_range("scale_up_per_window", scale_up_per_window, 1, 1_000_000)?;
        in_range("scale_up_window_ms", scale_up_window_ms, 1, 86_400_000)?;
        in_range("lease_margin_ms", lease_margin_ms, 0, 3_600_000)?;
        in_range("idle_keepalive_ms", idle_keepalive_ms, 0, 1 << 40)?;
        in_range("alternatives", alternatives, 0, 64)?;
        Ok(Self {
            account_limit: account_limit as u32,
            scale_up_per_window: scale_up_per_window as u32,
            scale_up_window_ms,
            lease_margin_ms,
            idle_keepalive_ms,
            alternatives: alternatives as u32,
        })
    }
}
