//! The partition's state and the helpers that keep its indexes true.
//!
//! Primary state: workers, sandboxes (with their leases), warm-pool order, reserved concurrency,
//! provisioned-concurrency pins, scale-up windows and three counters (epoch, next sandbox id, next lease seq). Everything else —
//! free-memory indexes, per-function counts, the expiry and idle orders — is derived and kept in step
//! by the helpers here, which are the only code that touches both.
//!
//! Names are interned to small indexes. Interning order differs between a live core and a restored
//! one, so no decision may depend on it: every ordering breaks ties by name or id.
use std::cmp::Reverse;
use std::collections::BTreeSet;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::config::Config;

pub type WorkerIdx = u32;
pub type ZoneIdx = u32;
pub type FnIdx = u32;
pub type FvIdx = u32;

/// Sandbox ids and lease seqs start at 1; 0 means "none" in the pool links.
pub const NONE: u64 = 0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Token {
    pub epoch: u64,
    pub seq: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxState {
    Creating,
    Idle,
    Busy,
    Resetting,
}

impl SandboxState {
    pub fn name(self) -> &'static str {
        match self {
            Self::Creating => "creating",
            Self::Idle => "idle",
            Self::Busy => "busy",
            Self::Resetting => "resetting",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub token: Token,
    pub expiry_ms: i64,
}

#[derive(Debug, Clone)]
pub struct Sandbox {
    pub worker: WorkerIdx,
    pub fv: FvIdx,
    pub memory_mb: u32,
    pub state: SandboxState,
    pub last_used_ms: i64,
    pub lease: Option<Lease>,
    /// Neighbours in the warm pool (towards the most / least recently used end) while idle.
    pub newer: u64,
    pub older: u64,
}

#[derive(Debug, Clone)]
pub struct Worker {
    pub id: Arc<str>,
    pub zone: ZoneIdx,
    pub address: Arc<str>,
    pub capacity_mb: u32,
    pub used_mb: u64,
    pub healthy: bool,
}

impl Worker {
    pub fn free_mb(&self) -> u32 {
        u64::from(self.capacity_mb).saturating_sub(self.used_mb) as u32
    }
}

/// Healthy workers of a zone by (most free memory, id): the cold path reads the best from the front.
pub type FreeIndex = BTreeSet<(Reverse<u32>, Arc<str>, WorkerIdx)>;

#[derive(Debug, Clone, Default)]
pub struct Zone {
    pub name: Arc<str>,
    pub free: FreeIndex,
}

#[derive(Debug, Clone, Default)]
pub struct Function {
    pub name: Arc<str>,
    pub versions: FxHashMap<Arc<str>, FvIdx>,
    /// Leases held by all versions.
    pub inflight: u32,
    pub reserved: Option<u32>,
    /// Creation times in the scale-up window, sorted.
    pub scale_up: Vec<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct FunctionVersion {
    pub function: FnIdx,
    pub version: Arc<str>,
    /// Warm pool ends: most and least recently used idle sandbox.
    pub newest: u64,
    pub oldest: u64,
    /// This version's sandboxes (any state) per zone and per worker: zone spread and code locality.
    pub per_zone: FxHashMap<ZoneIdx, u32>,
    pub per_worker: FxHashMap<WorkerIdx, u32>,
    /// Provisioned concurrency: idle reclaim keeps this many of the version's sandboxes until
    /// `provisioned_until_ms` (0: no pin).
    pub provisioned: u32,
    pub provisioned_until_ms: i64,
}

impl FunctionVersion {
    /// The version's sandboxes in any state.
    pub fn sandbox_count(&self) -> u32 {
        self.per_zone.values().sum()
    }

    /// How many of its sandboxes idle reclaim must leave at `now_ms`.
    pub fn pinned_at(&self, now_ms: i64) -> u32 {
        if self.provisioned_until_ms > now_ms {
            self.provisioned
        } else {
            0
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Core {
    pub config: Config,
    pub epoch: u64,
    pub next_sandbox_id: u64,
    pub next_lease_seq: u64,

    pub workers: Vec<Option<Worker>>,
    pub worker_by_id: FxHashMap<Arc<str>, WorkerIdx>,
    free_worker_slots: Vec<WorkerIdx>,
    pub zones: Vec<Zone>,
    pub zone_by_name: FxHashMap<Arc<str>, ZoneIdx>,

    pub functions: Vec<Function>,
    pub function_by_name: FxHashMap<Arc<str>, FnIdx>,
    pub versions: Vec<FunctionVersion>,

    pub sandboxes: FxHashMap<u64, Sandbox>,
    /// Active leases: seq → sandbox id.
    pub leases: FxHashMap<u64, u64>,
    /// (expiry, seq) of active leases.
    pub expiry_order: BTreeSet<(i64, u64)>,
    /// (last used, sandbox id) of idle sandboxes.
    pub idle_order: BTreeSet<(i64, u64)>,
    /// Sum of reservations, and leases held by functions without one.
    pub reserved_total: u64,
    pub unreserved_inflight: u64,
}

impl Core {
    pub fn new(config: Config) -> Self {
        Self { config, next_sandbox_id: 1, next_lease_seq: 1, ..Self::default() }
    }

    // ---- lookups -------------------------------------------------------------------------

    pub fn worker(&self, idx: WorkerIdx) -> &Worker {
        self.workers[idx as usize].as_ref().expect("worker index points at a live worker")
    }

    pub fn worker_idx(&self, id: &str) -> Option<WorkerIdx> {
        self.worker_by_id.get(id).copied()
    }

    pub fn function_idx(&self, name: &str) -> Option<FnIdx> {
        self.function_by_name.get(name).copied()
    }

    pub fn version_idx(&self, function: &str, version: &str) -> Option<FvIdx> {
        let f = self.function_idx(function)?;
        self.functions[f as usize].versions.get(version).copied()
    }

    pub fn function_of(&self, fv: FvIdx) -> &Function {
        &self.functions[self.versions[fv as usize].function as usize]
    }

    // ---- interning -----------------------------------------------------------------------

    pub fn intern_zone(&mut self, name: &str) -> ZoneIdx {
        if let Some(&z) = self.zone_by_name.get(name) {
            return z;
        }
        let name: Arc<str> = Arc::from(name);
        let z = self.zones.len() as ZoneIdx;
        self.zones.push(Zone { name: name.clone(), free: FreeIndex::new() });
        self.zone_by_name.insert(name, z);
        z
    }

    pub fn intern_function(&mut self, name: &str) -> FnIdx {
        if let Some(f) = self.function_idx(name) {
            return f;
        }
        let name: Arc<str> = Arc::from(name);
        let f = self.functions.len() as FnIdx;
        self.functions.push(Function { name: name.clone(), ..Function::default() });
        self.function_by_name.insert(name, f);
        f
    }

    pub fn intern_version(&mut self, function: &str, version: &str) -> FvIdx {
        let f = self.intern_function(function);
        if let Some(&fv) = self.functions[f as usize].versions.get(version) {
            return fv;
        }
        let version: Arc<str> = Arc::from(version);
        let fv = self.versions.len() as FvIdx;
        self.versions.push(FunctionVersion { function: f, version: version.clone(), ..FunctionVersion::default() });
        self.functions[f as usize].versions.insert(version, fv);
        fv
    }

    // ---- workers -------------------------------------------------------------------------

    pub fn add_worker(&mut self, id: &str, zone: &str, address: &str, capacity_mb: u32, healthy: bool) -> WorkerIdx {
        let zone = self.intern_zone(zone);
        let id: Arc<str> = Arc::from(id);
        let worker = Worker { id: id.clone(), zone, address: Arc::from(address), capacity_mb, used_mb: 0, healthy };
        let idx = if let Some(slot) = self.free_worker_slots.pop() {
            self.workers[slot as usize] = Some(worker);
            slot
        } else {
            self.workers.push(Some(worker));
            (self.workers.len() - 1) as WorkerIdx
        };
        self.worker_by_id.insert(id, idx);
        self.index_worker(idx, true);
        idx
    }

    /// Drop a worker and every sandbox on it.
    pub fn remove_worker(&mut self, idx: WorkerIdx) {
        let mut doomed: Vec<u64> = self.sandboxes.iter().filter(|(_, s)| s.worker == idx).map(|(&id, _)| id).collect();
        doomed.sort_unstable();
        for id in doomed {
            self.remove_sandbox(id);
        }
        self.index_worker(idx, false);
        let worker = self.workers[idx as usize].take().expect("live worker");
        self.worker_by_id.remove(&worker.id);
        self.free_worker_slots.push(idx);
    }

    /// Change a worker's capacity, usage or health, keeping its zone's free index in step.
    pub fn modify_worker(&mut self, idx: WorkerIdx, change: impl FnOnce(&mut Worker)) {
        self.index_worker(idx, false);
        change(self.workers[idx as usize].as_mut().expect("live worker"));
        self.index_worker(idx, true);
    }

    fn index_worker(&mut self, idx: WorkerIdx, present: bool) {
        let w = self.workers[idx as usize].as_ref().expect("live worker");
        if !w.healthy {
            return;
        }
        let key = (Reverse(w.free_mb()), w.id.clone(), idx);
        let free = &mut self.zones[w.zone as usize].free;
        if present {
            free.insert(key);
        } else {
            free.remove(&key);
        }
    }

    // ---- sandboxes -----------------------------------------------------------------------

    /// Count a sandbox of `fv` on `worker` (delta +1 or -1) and move its memory.
    pub fn place(&mut self, fv: FvIdx, worker: WorkerIdx, memory_mb: u32, add: bool) {
        let zone = self.worker(worker).zone;
        self.modify_worker(worker, |w| {
            if add {
                w.used_mb += u64::from(memory_mb);
            } else {
                w.used_mb -= u64::from(memory_mb);
            }
        });
        let v = &mut self.versions[fv as usize];
        for (map, key) in [(&mut v.per_zone, zone), (&mut v.per_worker, worker)] {
            let count = map.entry(key).or_insert(0);
            if add {
                *count += 1;
            } else {
                *count -= 1;
                if *count == 0 {
                    map.remove(&key);
                }
            }
        }
    }

    /// Remove a sandbox in any state: out of its pool, its lease dropped, its memory freed.
    pub fn remove_sandbox(&mut self, id: u64) {
        if self.sandboxes[&id].state == SandboxState::Idle {
            self.unpool(id);
        }
        if self.sandboxes[&id].lease.is_some() {
            self.drop_lease(id);
        }
        let s = self.sandboxes.remove(&id).expect("sandbox exists");
        self.place(s.fv, s.worker, s.memory_mb, false);
    }

    /// Attach a lease to a sandbox and count it.
    pub fn attach_lease(&mut self, id: u64, lease: Lease) {
        let fv = self.sandboxes[&id].fv;
        let f = self.versions[fv as usize].function as usize;
        self.functions[f].inflight += 1;
        if self.functions[f].reserved.is_none() {
            self.unreserved_inflight += 1;
        }
        self.leases.insert(lease.token.seq, id);
        self.expiry_order.insert((lease.expiry_ms, lease.token.seq));
        self.sandboxes.get_mut(&id).expect("sandbox exists").lease = Some(lease);
    }

    /// Detach a sandbox's lease and uncount it.
    pub fn drop_lease(&mut self, id: u64) {
        let s = self.sandboxes.get_mut(&id).expect("sandbox exists");
        let lease = s.lease.take().expect("sandbox holds a lease");
        let f = self.versions[s.fv as usize].function as usize;
        self.functions[f].inflight -= 1;
        if self.functions[f].reserved.is_none() {
            self.unreserved_inflight -= 1;
        }
        self.leases.remove(&lease.token.seq);
        self.expiry_order.remove(&(lease.expiry_ms, lease.token.seq));
    }

    /// Make a sandbox idle at the most recently used end of its pool.
    pub fn make_idle(&mut self, id: u64, now_ms: i64) {
        let s = self.sandboxes.get_mut(&id).expect("sandbox exists");
        s.state = SandboxState::Idle;
        s.last_used_ms = now_ms;
        let fv = s.fv as usize;
        let head = self.versions[fv].newest;
        s.newer = NONE;
        s.older = head;
        if head == NONE {
            self.versions[fv].oldest = id;
        } else {
            self.sandboxes.get_mut(&head).expect("pool member").newer = id;
        }
        self.versions[fv].newest = id;
        self.idle_order.insert((now_ms, id));
    }

    /// Append an idle sandbox at the least recently used end (restore rebuilds pools this way).
    pub fn append_idle(&mut self, id: u64) {
        let s = self.sandboxes.get_mut(&id).expect("sandbox exists");
        let fv = s.fv as usize;
        let tail = self.versions[fv].oldest;
        s.newer = tail;
        s.older = NONE;
        let last_used = s.last_used_ms;
        if tail == NONE {
            self.versions[fv].newest = id;
        } else {
            self.sandboxes.get_mut(&tail).expect("pool member").older = id;
        }
        self.versions[fv].oldest = id;
        self.idle_order.insert((last_used, id));
    }

    /// Take an idle sandbox out of its pool (its state is for the caller to set).
    pub fn unpool(&mut self, id: u64) {
        let s = &self.sandboxes[&id];
        let (newer, older, fv, last_used) = (s.newer, s.older, s.fv as usize, s.last_used_ms);
        if newer == NONE {
            self.versions[fv].newest = older;
        } else {
            self.sandboxes.get_mut(&newer).expect("pool member").older = older;
        }
        if older == NONE {
            self.versions[fv].oldest = newer;
        } else {
            self.sandboxes.get_mut(&older).expect("pool member").newer = newer;
        }
        let s = self.sandboxes.get_mut(&id).expect("sandbox exists");
        s.newer = NONE;
        s.older = NONE;
        self.idle_order.remove(&(last_used, id));
    }

    /// A pool's sandbox ids, most recently used first.
    pub fn pool(&self, fv: FvIdx) -> PoolIter<'_> {
        PoolIter { core: self, next: self.versions[fv as usize].newest }
    }

    // ---- concurrency ---------------------------------------------------------------------

    /// Pin (or with `count` 0 unpin) a version's sandboxes against idle reclaim.
    pub fn set_provisioned(&mut self, fv: FvIdx, count: u32, until_ms: i64) {
        let version = &mut self.versions[fv as usize];
        version.provisioned = count;
        version.provisioned_until_ms = if count == 0 { 0 } else { until_ms };
    }

    pub fn set_reserved(&mut self, f: FnIdx, reserved: Option<u32>) {
        let func = &mut self.functions[f as usize];
        let inflight = u64::from(func.inflight);
        if let Some(old) = func.reserved {
            self.reserved_total -= u64::from(old);
        } else {
            self.unreserved_inflight -= inflight;
        }
        func.reserved = reserved;
        if let Some(new) = reserved {
            self.reserved_total += u64::from(new);
        } else {
            self.unreserved_inflight += inflight;
        }
    }

    /// Creations of function `f` still inside the scale-up window at `now`.
    pub fn recent_creations(&self, f: &Function, now_ms: i64) -> usize {
        let window = self.config.scale_up_window_ms;
        f.scale_up.len() - f.scale_up.partition_point(|&t| t + window <= now_ms)
    }

    /// Record a creation at `now`: drop times that left the window, insert after equal ones.
    pub fn note_creation(&mut self, f: FnIdx, now_ms: i64) {
        let window = self.config.scale_up_window_ms;
        let times = &mut self.functions[f as usize].scale_up;
        let expired = times.partition_point(|&t| t + window <= now_ms);
        times.drain(..expired);
        let at = times.partition_point(|&t| t <= now_ms);
        times.insert(at, now_ms);
    }
}

pub struct PoolIter<'a> {
    core: &'a Core,
    next: u64,
}

impl Iterator for PoolIter<'_> {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        if self.next == NONE {
            return None;
        }
        let id = self.next;
        self.next = self.core.sandboxes[&id].older;
        Some(id)
    }
}
