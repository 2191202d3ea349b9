//! Limits on every input, shared by decisions, `apply` and `restore`.
use crate::error::{CoreError, Result};

pub const MIN_MEMORY_MB: i64 = 128;
pub const MAX_MEMORY_MB: i64 = 10_240;
pub const MAX_CAPACITY_MB: i64 = 4_194_304;
pub const MAX_TIMEOUT_MS: i64 = 900_000;
/// Times are milliseconds since the Unix epoch; 2^53 keeps them exact in every JSON reader.
pub const MAX_TIME_MS: i64 = 1 << 53;
pub const MAX_LIMIT: i64 = 1_000_000;

/// Maximum UTF-8 lengths of names.
pub const FUNCTION_LEN: usize = 140;
pub const VERSION_LEN: usize = 64;
pub const WORKER_ID_LEN: usize = 128;
pub const ZONE_LEN: usize = 64;
pub const ADDRESS_LEN: usize = 256;
pub const REQUEST_ID_LEN: usize = 128;

fn invalid(field: &'static str, why: String) -> CoreError {
    CoreError::invalid_argument(field, why)
}

/// A name: at most `max` UTF-8 bytes, no control characters, and non-empty when `required`.
pub fn name(what: &'static str, value: &str, max: usize, required: bool) -> Result<()> {
    if required && value.is_empty() {
        return Err(invalid(what, "must not be empty".to_owned()));
    }
    if value.len() > max {
        return Err(invalid(what, format!("is {} bytes long; the limit is {max}", value.len())));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(what, format!("{value:?} contains a control character")));
    }
    Ok(())
}

pub fn in_range(what: &'static str, value: i64, min: i64, max: i64) -> Result<()> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(invalid(what, format!("must be in {min}..={max}, got {value}")))
    }
}

pub fn memory(value: i64) -> Result<u32> {
    in_range("memory_mb", value, MIN_MEMORY_MB, MAX_MEMORY_MB)?;
    Ok(value as u32)
}

pub fn capacity(value: i64) -> Result<u32> {
    in_range("capacity_mb", value, 0, MAX_CAPACITY_MB)?;
    Ok(value as u32)
}

pub fn time(what: &'static str, value: i64) -> Result<i64> {
    in_range(what, value, 0, MAX_TIME_MS)?;
    Ok(value)
}

pub fn function(value: &str) -> Result<()> {
    name("function", value, FUNCTION_LEN, true)
}

pub fn version(value: &str) -> Result<()> {
    name("version", value, VERSION_LEN, true)
}

pub fn worker_id(value: &str) -> Result<()> {
    name("worker_id", value, WORKER_ID_LEN, true)
}

pub fn zone(value: &str) -> Result<()> {
    name("zone", value, ZONE_LEN, true)
}

pub fn address(value: &str) -> Result<()> {
    name("address", value, ADDRESS_LEN, false)
}

pub fn request_id(value: &str) -> Result<()> {
    name("request_id", value, REQUEST_ID_LEN, false)
}
