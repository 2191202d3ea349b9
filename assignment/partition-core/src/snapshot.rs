//! Snapshots: the primary state as canonical `PartitionSnapshot` bytes, and back.
//!
//! Restore trusts nothing: it decodes, checks every reference and invariant, and builds a fresh core
//! (rebuilding every index) before the caller swaps it in, so a bad snapshot leaves the old state.
use std::collections::BTreeSet;

use prost::Message;

use crate::config::Config;
use crate::error::{CoreError, Result};
use crate::proto::{
    PartitionSnapshot, ProvisionedPin, ReservedConcurrency, SandboxSnapshot, SandboxState as ProtoState, ScaleUpWindow,
    WarmPool, WorkerState,
};
use crate::records::token_proto;
use crate::state::{Core, FvIdx, Lease, Sandbox, SandboxState, Token, NONE};
use crate::validate;

/// The snapshot layout this core writes and reads.
pub const FORMAT: u32 = 1;

fn corrupt(message: String) -> CoreError {
    CoreError::CorruptSnapshot(message)
}

fn state_to_proto(state: SandboxState) -> ProtoState {
    match state {
        SandboxState::Creating => ProtoState::Creating,
        SandboxState::Idle => ProtoState::Idle,
        SandboxState::Busy => ProtoState::Busy,
        SandboxState::Resetting => ProtoState::Resetting,
    }
}

impl Core {
    fn version_key(&self, fv: FvIdx) -> (&str, &str) {
        let v = &self.versions[fv as usize];
        (&self.functions[v.function as usize].name, &v.version)
    }

    pub fn snapshot(&self) -> PartitionSnapshot {
        let mut workers: Vec<WorkerState> = self
            .workers
            .iter()
            .flatten()
            .map(|w| WorkerState {
                worker_id: w.id.to_string(),
                zone: self.zones[w.zone as usize].name.to_string(),
                address: w.address.to_string(),
                capacity_mb: w.capacity_mb,
                healthy: w.healthy,
            })
            .collect();
        workers.sort_unstable_by(|a, b| a.worker_id.cmp(&b.worker_id));

        let mut ids: Vec<u64> = self.sandboxes.keys().copied().collect();
        ids.sort_unstable();
        let sandboxes = ids
            .iter()
            .map(|id| {
                let s = &self.sandboxes[id];
                let (function, version) = self.version_key(s.fv);
                SandboxSnapshot {
                    sandbox_id: *id,
                    worker_id: self.worker(s.worker).id.to_string(),
                    function: function.to_owned(),
                    version: version.to_owned(),
                    memory_mb: s.memory_mb,
                    state: state_to_proto(s.state) as i32,
                    last_used_ms: s.last_used_ms,
                    lease: s.lease.and_then(|l| token_proto(l.token)),
                    lease_expiry_ms: s.lease.map_or(0, |l| l.expiry_ms),
                }
            })
            .collect();

        let mut pools: Vec<WarmPool> = (0..self.versions.len() as FvIdx)
            .filter(|&fv| self.versions[fv as usize].newest != NONE)
            .map(|fv| {
                let (function, version) = self.version_key(fv);
                WarmPool {
                    function: function.to_owned(),
                    version: version.to_owned(),
                    sandbox_ids: self.pool(fv).collect(),
                }
            })
            .collect();
        pools.sort_unstable_by(|a, b| (&a.function, &a.version).cmp(&(&b.function, &b.version)));

        let mut reserved: Vec<ReservedConcurrency> = self
            .functions
            .iter()
            .filter_map(|f| f.reserved.map(|r| ReservedConcurrency { function: f.name.to_string(), reserved: r }))
            .collect();
        reserved.sort_unstable_by(|a, b| a.function.cmp(&b.function));
        let mut scale_up: Vec<ScaleUpWindow> = self
            .functions
            .iter()
            .filter(|f| !f.scale_up.is_empty())
            .map(|f| ScaleUpWindow { function: f.name.to_string(), created_ms: f.scale_up.clone() })
            .collect();
        scale_up.sort_unstable_by(|a, b| a.function.cmp(&b.function));
        let mut provisioned: Vec<ProvisionedPin> = (0..self.versions.len() as FvIdx)
            .filter(|&fv| self.versions[fv as usize].provisioned > 0)
            .map(|fv| {
                let (function, version) = self.version_key(fv);
                let v = &self.versions[fv as usize];
                ProvisionedPin {
                    function: function.to_owned(),
                    version: version.to_owned(),
                    count: v.provisioned,
                    until_ms: v.provisioned_until_ms,
                }
            })
            .collect();
        provisioned.sort_unstable_by(|a, b| (&a.function, &a.version).cmp(&(&b.function, &b.version)));

        PartitionSnapshot {
            format: FORMAT,
            epoch: self.epoch,
            next_sandbox_id: self.next_sandbox_id,
            next_lease_seq: self.next_lease_seq,
            workers,
            sandboxes,
            pools,
            reserved,
            scale_up,
            provisioned,
        }
    }

    pub fn snapshot_bytes(&self) -> Vec<u8> {
        self.snapshot().encode_to_vec()
    }

    /// A new core in the snapshot's state, or `CorruptSnapshot` naming the first problem.
    pub fn from_snapshot_bytes(config: Config, data: &[u8]) -> Result<Core> {
        let snap = PartitionSnapshot::decode(data).map_err(|e| corrupt(format!("undecodable snapshot: {e}")))?;
        Self::from_snapshot(config, &snap).map_err(CoreError::in_snapshot)
    }

    #[allow(clippy::too_many_lines)] // one pass per section of the snapshot, in order
    fn from_snapshot(config: Config, snap: &PartitionSnapshot) -> Result<Core> {
        if snap.format != FORMAT {
            return Err(corrupt(format!("snapshot format {} is not {FORMAT}", snap.format)));
        }
        if snap.next_sandbox_id == 0 || snap.next_lease_seq == 0 {
            return Err(corrupt("next_sandbox_id and next_lease_seq start at 1".into()));
        }
        let mut core = Core::new(config);
        core.epoch = snap.epoch;
        core.next_sandbox_id = snap.next_sandbox_id;
        core.next_lease_seq = snap.next_lease_seq;

        for w in &snap.workers {
            validate::worker_id(&w.worker_id)?;
            validate::zone(&w.zone)?;
            validate::address(&w.address)?;
            validate::capacity(i64::from(w.capacity_mb))?;
            if core.worker_idx(&w.worker_id).is_some() {
                return Err(corrupt(format!("worker {:?} appears twice", w.worker_id)));
            }
            core.add_worker(&w.worker_id, &w.zone, &w.address, w.capacity_mb, w.healthy);
        }

        let mut idle = BTreeSet::new();
        for s in &snap.sandboxes {
            let id = s.sandbox_id;
            if id == 0 || id >= snap.next_sandbox_id || core.sandboxes.contains_key(&id) {
                return Err(corrupt(format!("sandbox id {id} is out of range or repeated")));
            }
            validate::function(&s.function)?;
            validate::version(&s.version)?;
            validate::memory(i64::from(s.memory_mb))?;
            validate::time("last_used_ms", s.last_used_ms)?;
            let worker = core
                .worker_idx(&s.worker_id)
                .ok_or_else(|| corrupt(format!("sandbox {id} is on unknown worker {:?}", s.worker_id)))?;
            let state = match ProtoState::try_from(s.state) {
                Ok(ProtoState::Creating) => SandboxState::Creating,
                Ok(ProtoState::Idle) => SandboxState::Idle,
                Ok(ProtoState::Busy) => SandboxState::Busy,
                Ok(ProtoState::Resetting) => SandboxState::Resetting,
                _ => return Err(corrupt(format!("sandbox {id} has unknown state {}", s.state))),
            };
            let lease = s
                .lease
                .as_ref()
                .map(|t| Lease { token: Token { epoch: t.epoch, seq: t.seq }, expiry_ms: s.lease_expiry_ms });
            match (state, lease) {
                (SandboxState::Busy, Some(_))
                | (SandboxState::Creating, _)
                | (SandboxState::Idle | SandboxState::Resetting, None) => {}
                _ => return Err(corrupt(format!("sandbox {id} is {} with lease {lease:?}", state.name()))),
            }
            let fv = core.intern_version(&s.function, &s.version);
            core.sandboxes.insert(
                id,
                Sandbox {
                    worker,
                    fv,
                    memory_mb: s.memory_mb,
                    state,
                    last_used_ms: s.last_used_ms,
                    lease: None,
                    newer: NONE,
                    older: NONE,
                },
            );
            core.place(fv, worker, s.memory_mb, true);
            if let Some(lease) = lease {
                let t = lease.token;
                if t.epoch == 0
                    || t.epoch > snap.epoch
                    || t.seq == 0
                    || t.seq >= snap.next_lease_seq
                    || core.leases.contains_key(&t.seq)
                {
                    return Err(corrupt(format!(
                        "sandbox {id} holds an impossible or repeated lease {}/{}",
                        t.epoch, t.seq
                    )));
                }
                core.attach_lease(id, lease);
            }
            if state == SandboxState::Idle {
                idle.insert(id);
            }
        }

        let mut last_pool: Option<(&str, &str)> = None;
        for pool in &snap.pools {
            let key = (pool.function.as_str(), pool.version.as_str());
            if last_pool.is_some_and(|last| last >= key) {
                return Err(corrupt(format!("pool {key:?} is out of order or repeated")));
            }
            last_pool = Some(key);
            if pool.sandbox_ids.is_empty() {
                return Err(corrupt(format!("pool {key:?} is empty")));
            }
            for &id in &pool.sandbox_ids {
                let s = core
                    .sandboxes
                    .get(&id)
                    .ok_or_else(|| corrupt(format!("pool {key:?} lists unknown sandbox {id}")))?;
                if core.version_key(s.fv) != key || !idle.remove(&id) {
                    return Err(corrupt(format!(
                        "pool {key:?} lists sandbox {id}, which is not an idle sandbox of it"
                    )));
                }
                core.append_idle(id);
            }
        }
        if let Some(id) = idle.first() {
            return Err(corrupt(format!("idle sandbox {id} is in no pool")));
        }

        let mut seen = BTreeSet::new();
        for r in &snap.reserved {
            validate::function(&r.function)?;
            if !seen.insert(r.function.as_str()) {
                return Err(corrupt(format!("function {:?} has two reservations", r.function)));
            }
            let f = core.intern_function(&r.function);
            core.set_reserved(f, Some(r.reserved));
        }
        let mut seen = BTreeSet::new();
        for w in &snap.scale_up {
            validate::function(&w.function)?;
            if !seen.insert(w.function.as_str()) || w.created_ms.is_empty() {
                return Err(corrupt(format!("scale-up window of {:?} is repeated or empty", w.function)));
            }
            for &t in &w.created_ms {
                validate::time("created_ms", t)?;
            }
            if w.created_ms.windows(2).any(|p| p[0] > p[1]) {
                return Err(corrupt(format!("scale-up window of {:?} is not sorted", w.function)));
            }
            let f = core.intern_function(&w.function);
            core.functions[f as usize].scale_up.clone_from(&w.created_ms);
        }
        let mut last_pin: Option<(&str, &str)> = None;
        for pin in &snap.provisioned {
            let key = (pin.function.as_str(), pin.version.as_str());
            if last_pin.is_some_and(|last| last >= key) {
                return Err(corrupt(format!("provisioned pin {key:?} is out of order or repeated")));
            }
            last_pin = Some(key);
            validate::function(&pin.function)?;
            validate::version(&pin.version)?;
            if pin.count == 0 {
                return Err(corrupt(format!("provisioned pin {key:?} has count 0")));
            }
            validate::time("until_ms", pin.until_ms)?;
            let fv = core.intern_version(&pin.function, &pin.version);
            core.set_provisioned(fv, pin.count, pin.until_ms);
        }
        Ok(core)
    }
}
