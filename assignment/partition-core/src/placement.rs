//! Cold placement: rank the workers that could host a new sandbox of a function version.
//!
//! The order is the key `(zone_count, zone, holds_code ? 0 : 1, worker_count, -free_mb, worker_id)`
//! over healthy workers with enough free memory:
//! spread across zones first (the zone with fewest of this version's sandboxes), then code locality
//! (a worker that already runs this version has its code unpacked), then spread across workers, then
//! the emptiest worker, then the id so that the choice is deterministic.
//!
//! Sorting every worker would cost O(workers) per placement; instead each zone keeps its healthy
//! workers ordered by free memory, and only this version's holders (few) are looked at one by one.
use std::cmp::Reverse;

use crate::state::{Core, FvIdx, WorkerIdx};

impl Core {
    /// The best `want` workers for a sandbox of `fv` (None: a version never seen) with `memory_mb`.
    pub fn rank_workers(&self, fv: Option<FvIdx>, memory_mb: u32, want: usize) -> Vec<WorkerIdx> {
        let mut ranked = Vec::with_capacity(want);
        if want == 0 {
            return ranked;
        }
        let version = fv.map(|fv| &self.versions[fv as usize]);
        let zone_count = |z: u32| version.and_then(|v| v.per_zone.get(&z).copied()).unwrap_or(0);

        let mut zones: Vec<(u32, &str, u32)> = (0..self.zones.len() as u32)
            .filter(|&z| !self.zones[z as usize].free.is_empty())
            .map(|z| (zone_count(z), &*self.zones[z as usize].name, z))
            .collect();
        zones.sort_unstable();
        let mut zone_rank = vec![u32::MAX; self.zones.len()];
        for (rank, &(_, _, z)) in zones.iter().enumerate() {
            zone_rank[z as usize] = rank as u32;
        }

        // This version's holders with room, by (zone rank, worker_count, -free, id). Only the best
        // `want` can be placed, so select them rather than sorting every holder.
        let mut holders: Vec<(u32, u32, Reverse<u32>, &str, WorkerIdx)> = version
            .map(|v| {
                v.per_worker
                    .iter()
                    .filter_map(|(&idx, &count)| {
                        let w = self.worker(idx);
                        let free = w.free_mb();
                        (w.healthy && free >= memory_mb)
                            .then(|| (zone_rank[w.zone as usize], count, Reverse(free), &*w.id, idx))
                    })
                    .collect()
            })
            .unwrap_or_default();
        if holders.len() > want {
            holders.select_nth_unstable(want - 1);
            holders.truncate(want);
        }
        holders.sort_unstable();

        for (rank, &(_, _, zone)) in zones.iter().enumerate() {
            for holder in holders.iter().filter(|h| h.0 == rank as u32) {
                ranked.push(holder.4);
                if ranked.len() == want {
                    return ranked;
                }
            }
            for (Reverse(free), _, idx) in &self.zones[zone as usize].free {
                if *free < memory_mb {
                    break;
                }
                if version.is_some_and(|v| v.per_worker.contains_key(idx)) {
                    continue; // a holder: already ranked above if it had room
                }
                ranked.push(*idx);
                if ranked.len() == want {
                    return ranked;
                }
            }
        }
        ranked
    }
}
