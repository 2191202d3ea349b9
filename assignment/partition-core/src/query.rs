//! Narrow, read-only questions about the state, for the leader's I/O loop: "which worker holds this
//! sandbox", "which sandbox holds this lease", "which sandboxes are still being created". Each answers
//! from the primary state or an index `state.rs` keeps, without copying the rest of the state.
//!
//! The views own their strings, so they outlive the next `apply`.
use std::sync::Arc;

use crate::state::{Core, SandboxState};

/// One worker as the partition knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerView {
    pub id: Arc<str>,
    pub zone: Arc<str>,
    pub address: Arc<str>,
    pub capacity_mb: u32,
    pub used_mb: u64,
    pub healthy: bool,
}

/// One sandbox, with its lease `(epoch, seq, expiry_ms)` while it holds one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxView {
    pub id: u64,
    pub worker_id: Arc<str>,
    pub function: Arc<str>,
    pub version: Arc<str>,
    pub memory_mb: u32,
    pub state: SandboxState,
    pub last_used_ms: i64,
    pub lease: Option<(u64, u64, i64)>,
}

impl Core {
    /// The worker with that id, if it has joined.
    pub fn worker_view(&self, id: &str) -> Option<WorkerView> {
        Some(self.view_of(self.worker(self.worker_idx(id)?)))
    }

    /// Every joined worker, by id.
    pub fn worker_views(&self) -> Vec<WorkerView> {
        let mut views: Vec<WorkerView> = self.workers.iter().flatten().map(|w| self.view_of(w)).collect();
        views.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        views
    }

    fn view_of(&self, w: &crate::state::Worker) -> WorkerView {
        WorkerView {
            id: Arc::clone(&w.id),
            zone: Arc::clone(&self.zones[w.zone as usize].name),
            address: Arc::clone(&w.address),
            capacity_mb: w.capacity_mb,
            used_mb: w.used_mb,
            healthy: w.healthy,
        }
    }

    /// The sandbox with that id, if it exists.
    pub fn sandbox_view(&self, id: u64) -> Option<SandboxView> {
        let s = self.sandboxes.get(&id)?;
        let v = &self.versions[s.fv as usize];
        Some(SandboxView {
            id,
            worker_id: Arc::clone(&self.worker(s.worker).id),
            function: Arc::clone(&self.function_of(s.fv).name),
            version: Arc::clone(&v.version),
            memory_mb: s.memory_mb,
            state: s.state,
            last_used_ms: s.last_used_ms,
            lease: s.lease.map(|l| (l.token.epoch, l.token.seq, l.expiry_ms)),
        })
    }

    /// The sandbox holding the active lease with that seq (seqs are unique across epochs).
    pub fn lease_sandbox(&self, seq: u64) -> Option<u64> {
        self.leases.get(&seq).copied()
    }

    /// The ids of the sandboxes on a worker, sorted (empty for a worker that has not joined).
    pub fn sandboxes_on(&self, worker_id: &str) -> Vec<u64> {
        let Some(w) = self.worker_idx(worker_id) else {
            return Vec::new();
        };
        self.sorted_sandboxes(|s| s.worker == w)
    }

    /// The ids of the sandboxes still being created, sorted.
    pub fn creating(&self) -> Vec<u64> {
        self.sorted_sandboxes(|s| s.state == SandboxState::Creating)
    }

    /// How many sandboxes a version has with that memory size: `(all, idle)`.
    pub fn version_sandboxes(&self, function: &str, version: &str, memory_mb: u32) -> (u32, u32) {
        let Some(fv) = self.version_idx(function, version) else {
            return (0, 0);
        };
        let mut counts = (0, 0);
        for s in self.sandboxes.values().filter(|s| s.fv == fv && s.memory_mb == memory_mb) {
            counts.0 += 1;
            counts.1 += u32::from(s.state == SandboxState::Idle);
        }
        counts
    }

    /// A version's provisioned pin `(count, until_ms)`, if it has one.
    pub fn provisioned_pin(&self, function: &str, version: &str) -> Option<(u32, i64)> {
        let v = &self.versions[self.version_idx(function, version)? as usize];
        (v.provisioned > 0).then_some((v.provisioned, v.provisioned_until_ms))
    }

    fn sorted_sandboxes(&self, keep: impl Fn(&crate::state::Sandbox) -> bool) -> Vec<u64> {
        let mut ids: Vec<u64> = self.sandboxes.iter().filter(|(_, s)| keep(s)).map(|(&id, _)| id).collect();
        ids.sort_unstable();
        ids
    }
}
