//! Decisions: validate a request against the state and answer with the records that carry it out.
//! Nothing here changes state; the caller applies the records (see `apply.rs`).
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::error::{CoreError, Result};
use crate::proto::record::Kind;
use crate::proto::{
    EpochStarted, FunctionConcurrencySet, LeaseExpired, LeaseGranted, LeaseReleased, Record, SandboxCreated,
    SandboxCreating, SandboxDestroyed, SandboxRelocated, SandboxReset, VersionProvisioned, WorkerJoined, WorkerLeft,
    WorkerUpdated,
};
use crate::records::{destroy_reason_named, outcome_named, record, token_proto, DestroyReason};
use crate::state::{Core, FvIdx, SandboxState, Token};
use crate::validate;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleReason {
    AccountLimit,
    ReservedLimit,
    ScaleUpRate,
    NoCapacity,
}

impl ThrottleReason {
    pub fn name(self) -> &'static str {
        match self {
            Self::AccountLimit => "account_limit",
            Self::ReservedLimit => "reserved_limit",
            Self::ScaleUpRate => "scale_up_rate",
            Self::NoCapacity => "no_capacity",
        }
    }
}

/// A granted lease: where it runs and the records to apply and journal.
#[derive(Debug, Clone)]
pub struct Grant {
    pub records: Vec<Record>,
    pub token: Token,
    pub sandbox_id: u64,
    pub worker_id: Arc<str>,
    pub worker_address: Arc<str>,
    pub expiry_ms: i64,
    /// Cold only: the next-best workers, best first.
    pub alternatives: Vec<Arc<str>>,
}

#[derive(Debug, Clone)]
pub enum Decision {
    Warm(Grant),
    Cold(Grant),
    Throttled(ThrottleReason),
}

/// The arguments of an acquire, checked.
pub struct AcquireRequest<'a> {
    pub function: &'a str,
    pub version: &'a str,
    pub memory_mb: i64,
    pub timeout_ms: i64,
    pub now_ms: i64,
    pub request_id: &'a str,
}

impl Core {
    fn sandbox_in(&self, id: u64, state: SandboxState) -> Result<()> {
        let s = self.sandboxes.get(&id).ok_or(CoreError::UnknownSandbox(id))?;
        if s.state == state {
            Ok(())
        } else {
            Err(CoreError::InvalidState(format!("sandbox {id} is {}, not {}", s.state.name(), state.name())))
        }
    }

    fn require_worker(&self, id: &str) -> Result<u32> {
        validate::worker_id(id)?;
        self.worker_idx(id).ok_or_else(|| CoreError::UnknownWorker(id.to_owned()))
    }

    /// Warm grant, cold placement, or throttle.
    pub fn acquire(&self, req: &AcquireRequest<'_>) -> Result<Decision> {
        validate::function(req.function)?;
        validate::version(req.version)?;
        let memory_mb = validate::memory(req.memory_mb)?;
        validate::in_range("timeout_ms", req.timeout_ms, 1, validate::MAX_TIMEOUT_MS)?;
        let now = validate::time("now_ms", req.now_ms)?;
        validate::request_id(req.request_id)?;
        if self.epoch == 0 {
            return Err(CoreError::InvalidState("no epoch started: the partition has no leader yet".into()));
        }

        let function = self.function_idx(req.function).map(|f| &self.functions[f as usize]);
        let inflight = function.map_or(0, |f| f.inflight);
        match function.and_then(|f| f.reserved) {
            Some(reserved) if inflight >= reserved => return Ok(Decision::Throttled(ThrottleReason::ReservedLimit)),
            Some(_) => {}
            None => {
                let pool = u64::from(self.config.account_limit).saturating_sub(self.reserved_total);
                if self.unreserved_inflight >= pool {
                    return Ok(Decision::Throttled(ThrottleReason::AccountLimit));
                }
            }
        }

        let token = Token { epoch: self.epoch, seq: self.next_lease_seq };
        let expiry_ms = now + req.timeout_ms + self.config.lease_margin_ms;
        let granted = |sandbox_id| {
            record(Kind::LeaseGranted(LeaseGranted {
                token: token_proto(token),
                sandbox_id,
                expiry_ms,
                now_ms: now,
                request_id: req.request_id.to_owned(),
            }))
        };

        let fv = self.version_idx(req.function, req.version);
        if let Some(fv) = fv {
            let warm = self.pool(fv).find(|id| {
                let s = &self.sandboxes[id];
                s.memory_mb == memory_mb && self.worker(s.worker).healthy
            });
            if let Some(sandbox_id) = warm {
                let w = self.worker(self.sandboxes[&sandbox_id].worker);
                return Ok(Decision::Warm(Grant {
                    records: vec![granted(sandbox_id)],
                    token,
                    sandbox_id,
                    worker_id: w.id.clone(),
                    worker_address: w.address.clone(),
                    expiry_ms,
                    alternatives: Vec::new(),
                }));
            }
        }

        if let Some(f) = function {
            if self.recent_creations(f, now) >= self.config.scale_up_per_window as usize {
                return Ok(Decision::Throttled(ThrottleReason::ScaleUpRate));
            }
        }
        let ranked = self.rank_workers(fv, memory_mb, 1 + self.config.alternatives as usize);
        let Some((&chosen, alternatives)) = ranked.split_first() else {
            return Ok(Decision::Throttled(ThrottleReason::NoCapacity));
        };
        let w = self.worker(chosen);
        let sandbox_id = self.next_sandbox_id;
        let creating = record(Kind::SandboxCreating(SandboxCreating {
            sandbox_id,
            worker_id: w.id.to_string(),
            function: req.function.to_owned(),
            version: req.version.to_owned(),
            memory_mb,
            now_ms: now,
        }));
        Ok(Decision::Cold(Grant {
            records: vec![creating, granted(sandbox_id)],
            token,
            sandbox_id,
            worker_id: w.id.clone(),
            worker_address: w.address.clone(),
            expiry_ms,
            alternatives: alternatives.iter().map(|&i| self.worker(i).id.clone()).collect(),
        }))
    }

    /// Give a lease back.
    pub fn release(&self, token: Token, outcome: &str, now_ms: i64) -> Result<Vec<Record>> {
        let outcome = outcome_named(outcome)?;
        let now = validate::time("now_ms", now_ms)?;
        let sandbox_id = self.held_lease(token)?;
        if self.sandboxes[&sandbox_id].state == SandboxState::Creating {
            return Err(CoreError::InvalidState(format!(
                "lease {}/{} is on sandbox {sandbox_id}, which is still being created",
                token.epoch, token.seq
            )));
        }
        Ok(vec![record(Kind::LeaseReleased(LeaseReleased {
            token: token_proto(token),
            outcome: outcome as i32,
            now_ms: now,
        }))])
    }

    /// The sandbox that holds `token`, or why it is unknown or stale.
    pub fn held_lease(&self, token: Token) -> Result<u64> {
        let describe = || format!("lease {}/{}", token.epoch, token.seq);
        if let Some(&sandbox_id) = self.leases.get(&token.seq) {
            let held = self.sandboxes[&sandbox_id].lease.expect("leased sandbox has its lease").token;
            if held == token {
                return Ok(sandbox_id);
            }
            return Err(CoreError::StaleLease(format!("{} is superseded by epoch {}", describe(), held.epoch)));
        }
        if (1..self.next_lease_seq).contains(&token.seq) {
            Err(CoreError::StaleLease(format!("{} is no longer held", describe())))
        } else {
            Err(CoreError::UnknownLease(format!("{} was never issued", describe())))
        }
    }

    /// Leases past their expiry, then idle sandboxes past the keep-alive (least recently used first,
    /// leaving every pinned version its provisioned count); at most `limit` records.
    pub fn expire(&self, now_ms: i64, limit: i64) -> Result<Vec<Record>> {
        let now = validate::time("now_ms", now_ms)?;
        validate::in_range("limit", limit, 1, validate::MAX_LIMIT)?;
        let limit = limit as usize;
        let mut out = Vec::new();
        for &(expiry, seq) in &self.expiry_order {
            if expiry > now || out.len() == limit {
                break;
            }
            let sandbox = &self.sandboxes[&self.leases[&seq]];
            let token = sandbox.lease.expect("leased sandbox has its lease").token;
            out.push(record(Kind::LeaseExpired(LeaseExpired { token: token_proto(token), now_ms: now })));
        }
        let keepalive = self.config.idle_keepalive_ms;
        // Sandboxes each pinned version keeps after the destructions decided so far in this pass.
        let mut left: FxHashMap<FvIdx, u32> = FxHashMap::default();
        for &(last_used, sandbox_id) in &self.idle_order {
            if last_used + keepalive > now || out.len() == limit {
                break;
            }
            let fv = self.sandboxes[&sandbox_id].fv;
            let version = &self.versions[fv as usize];
            let pinned = version.pinned_at(now);
            if pinned > 0 {
                let count = left.entry(fv).or_insert_with(|| version.sandbox_count());
                if *count <= pinned {
                    continue;
                }
                *count -= 1;
            }
            out.push(destroyed(sandbox_id, DestroyReason::Idle, now));
        }
        Ok(out)
    }

    pub fn created(&self, sandbox_id: u64, now_ms: i64) -> Result<Vec<Record>> {
        let now = validate::time("now_ms", now_ms)?;
        self.sandbox_in(sandbox_id, SandboxState::Creating)?;
        Ok(vec![record(Kind::SandboxCreated(SandboxCreated { sandbox_id, now_ms: now }))])
    }

    pub fn relocate(&self, sandbox_id: u64, worker_id: &str) -> Result<Vec<Record>> {
        validate::worker_id(worker_id)?;
        self.sandbox_in(sandbox_id, SandboxState::Creating)?;
        let target = self.require_worker(worker_id)?;
        let s = &self.sandboxes[&sandbox_id];
        if s.worker == target {
            return Err(CoreError::invalid_argument(
                "worker_id",
                format!("{worker_id:?} already holds sandbox {sandbox_id}"),
            ));
        }
        let w = self.worker(target);
        if !w.healthy || w.free_mb() < s.memory_mb {
            return Err(CoreError::NoCapacity(format!(
                "worker {worker_id:?} cannot take {} MB (healthy: {}, free: {} MB)",
                s.memory_mb,
                w.healthy,
                w.free_mb()
            )));
        }
        Ok(vec![record(Kind::SandboxRelocated(SandboxRelocated { sandbox_id, worker_id: worker_id.to_owned() }))])
    }

    pub fn reset_done(&self, sandbox_id: u64, now_ms: i64) -> Result<Vec<Record>> {
        let now = validate::time("now_ms", now_ms)?;
        self.sandbox_in(sandbox_id, SandboxState::Resetting)?;
        Ok(vec![record(Kind::SandboxReset(SandboxReset { sandbox_id, now_ms: now }))])
    }

    pub fn destroy(&self, sandbox_id: u64, reason: &str, now_ms: i64) -> Result<Vec<Record>> {
        let reason = destroy_reason_named(reason)?;
        let now = validate::time("now_ms", now_ms)?;
        if !self.sandboxes.contains_key(&sandbox_id) {
            return Err(CoreError::UnknownSandbox(sandbox_id));
        }
        Ok(vec![destroyed(sandbox_id, reason, now)])
    }

    pub fn join_worker(&self, worker_id: &str, zone: &str, address: &str, capacity_mb: i64) -> Result<Vec<Record>> {
        validate::worker_id(worker_id)?;
        validate::zone(zone)?;
        validate::address(address)?;
        let capacity_mb = validate::capacity(capacity_mb)?;
        if self.worker_idx(worker_id).is_some() {
            return Err(CoreError::InvalidState(format!("worker {worker_id:?} has already joined")));
        }
        Ok(vec![record(Kind::WorkerJoined(WorkerJoined {
            worker_id: worker_id.to_owned(),
            zone: zone.to_owned(),
            address: address.to_owned(),
            capacity_mb,
        }))])
    }

    pub fn leave_worker(&self, worker_id: &str) -> Result<Vec<Record>> {
        self.require_worker(worker_id)?;
        Ok(vec![record(Kind::WorkerLeft(WorkerLeft { worker_id: worker_id.to_owned() }))])
    }

    pub fn update_worker(&self, worker_id: &str, capacity_mb: i64, healthy: bool) -> Result<Vec<Record>> {
        validate::worker_id(worker_id)?;
        let capacity_mb = validate::capacity(capacity_mb)?;
        self.require_worker(worker_id)?;
        Ok(vec![record(Kind::WorkerUpdated(WorkerUpdated { worker_id: worker_id.to_owned(), capacity_mb, healthy }))])
    }

    pub fn set_reserved_concurrency(&self, function: &str, reserved: Option<i64>) -> Result<Vec<Record>> {
        validate::function(function)?;
        if let Some(r) = reserved {
            validate::in_range("reserved", r, 0, i64::from(self.config.account_limit))?;
        }
        Ok(vec![record(Kind::FunctionConcurrencySet(FunctionConcurrencySet {
            function: function.to_owned(),
            reserved: reserved.map(|r| r as u32),
        }))])
    }

    /// Pin `count` sandboxes of a function version against idle reclaim until `until_ms` (0 unpins).
    pub fn set_provisioned_concurrency(
        &self,
        function: &str,
        version: &str,
        count: i64,
        until_ms: i64,
    ) -> Result<Vec<Record>> {
        validate::function(function)?;
        validate::version(version)?;
        validate::in_range("count", count, 0, i64::from(self.config.account_limit))?;
        let until_ms = validate::time("until_ms", until_ms)?;
        Ok(vec![record(Kind::VersionProvisioned(VersionProvisioned {
            function: function.to_owned(),
            version: version.to_owned(),
            count: count as u32,
            until_ms,
        }))])
    }

    pub fn start_epoch(&self, epoch: u64) -> Result<Vec<Record>> {
        if epoch <= self.epoch {
            return Err(CoreError::InvalidState(format!("epoch {epoch} is not newer than the current {}", self.epoch)));
        }
        Ok(vec![record(Kind::EpochStarted(EpochStarted { epoch }))])
    }
}

fn destroyed(sandbox_id: u64, reason: DestroyReason, now_ms: i64) -> Record {
    record(Kind::SandboxDestroyed(SandboxDestroyed { sandbox_id, reason: reason as i32, now_ms }))
}
