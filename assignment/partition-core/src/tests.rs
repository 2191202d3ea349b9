//! Unit tests of the core's decisions, apply and snapshots. The differential test against the
//! Python reference model (`tests/core/`) covers random operation sequences.
use prost::Message;

use crate::decide::{AcquireRequest, Decision, Grant, ThrottleReason};
use crate::error::CoreError;
use crate::proto::{self, record::Kind};
use crate::state::{Core, SandboxState, Token};
use crate::Config;

/// Make a decision and apply its records: `step!(core.release(token, "ok", now))`.
macro_rules! step {
    ($core:ident . $($call:tt)+) => {{
        let records = $core.$($call)+;
        apply(&mut $core, records);
    }};
}

fn core_with(config: Config, workers: &[(&str, &str, u32)]) -> Core {
    let mut core = Core::new(config);
    step!(core.start_epoch(1));
    for (id, zone, capacity) in workers {
        step!(core.join_worker(id, zone, &format!("{id}:7000"), i64::from(*capacity)));
    }
    core
}

fn apply(core: &mut Core, records: crate::error::Result<Vec<proto::Record>>) {
    for r in records.expect("decision") {
        core.apply(&r).expect("apply");
    }
}

fn acquire(core: &Core, function: &str, memory: i64, now: i64) -> Decision {
    let req =
        AcquireRequest { function, version: "1", memory_mb: memory, timeout_ms: 1000, now_ms: now, request_id: "" };
    core.acquire(&req).expect("acquire")
}

/// Acquire and apply; the grant (warm or cold) or the throttle reason.
fn grant(core: &mut Core, function: &str, memory: i64, now: i64) -> Result<(Grant, bool), ThrottleReason> {
    match acquire(core, function, memory, now) {
        Decision::Warm(g) => {
            apply(core, Ok(g.records.clone()));
            Ok((g, false))
        }
        Decision::Cold(g) => {
            apply(core, Ok(g.records.clone()));
            apply(core, core.created(g.sandbox_id, now));
            Ok((g, true))
        }
        Decision::Throttled(reason) => Err(reason),
    }
}

#[test]
fn warm_pool_reuses_the_most_recently_used_sandbox() {
    let mut core = core_with(Config::default(), &[("w1", "a", 4096)]);
    let (a, cold_a) = grant(&mut core, "f", 256, 0).unwrap();
    let (b, cold_b) = grant(&mut core, "f", 256, 1).unwrap();
    assert!(cold_a && cold_b);
    step!(core.release(a.token, "ok", 2));
    step!(core.release(b.token, "function_error", 3));
    let (c, cold_c) = grant(&mut core, "f", 256, 4).unwrap();
    assert!(!cold_c);
    assert_eq!(c.sandbox_id, b.sandbox_id, "most recently released first");
    // Another memory size is another sandbox.
    let (_, cold_d) = grant(&mut core, "f", 512, 5).unwrap();
    assert!(cold_d);
}

#[test]
fn placement_spreads_zones_then_prefers_code_then_free_memory() {
    let mut core = core_with(Config::default(), &[("w1", "a", 4096), ("w2", "a", 8192), ("w3", "b", 1024)]);
    // Empty zones tie at 0: zone "a" first by name, and w2 has the most free memory.
    let (first, _) = grant(&mut core, "f", 256, 0).unwrap();
    assert_eq!(&*first.worker_id, "w2");
    assert_eq!(first.alternatives.iter().map(|w| &**w).collect::<Vec<_>>(), ["w1", "w3"]);
    // Zone a now has one sandbox of f: zone b wins.
    let (second, _) = grant(&mut core, "f", 256, 1).unwrap();
    assert_eq!(&*second.worker_id, "w3");
    // Both zones hold one; back in zone a the holder w2 beats the emptier... w2 is also emptiest, so
    // fill w2 with another function to make w1 the emptier non-holder.
    step!(core.update_worker("w2", 1024, true));
    let (third, _) = grant(&mut core, "f", 256, 2).unwrap();
    assert_eq!(&*third.worker_id, "w2", "code locality beats free memory");
}

#[test]
fn throttles_name_their_reason() {
    let config = Config { account_limit: 4, scale_up_per_window: 2, scale_up_window_ms: 100, ..Config::default() };
    let mut core = core_with(config, &[("w1", "a", 1024)]);
    step!(core.set_reserved_concurrency("r", Some(1)));
    grant(&mut core, "r", 128, 0).unwrap();
    assert_eq!(grant(&mut core, "r", 128, 0).unwrap_err(), ThrottleReason::ReservedLimit);
    grant(&mut core, "f", 128, 0).unwrap();
    grant(&mut core, "f", 128, 0).unwrap();
    assert_eq!(grant(&mut core, "f", 128, 0).unwrap_err(), ThrottleReason::ScaleUpRate);
    // After the window another cold start may go; then the unreserved pool (4 - 1) is full.
    grant(&mut core, "f", 128, 200).unwrap();
    assert_eq!(grant(&mut core, "g", 128, 200).unwrap_err(), ThrottleReason::AccountLimit);
    let mut core = core_with(Config::default(), &[("w1", "a", 256)]);
    grant(&mut core, "f", 256, 0).unwrap();
    assert_eq!(grant(&mut core, "f", 256, 0).unwrap_err(), ThrottleReason::NoCapacity);
}

#[test]
fn release_outcomes_and_token_errors() {
    let mut core = core_with(Config::default(), &[("w1", "a", 1024)]);
    let (g, _) = grant(&mut core, "f", 256, 0).unwrap();
    step!(core.release(g.token, "crash", 1));
    assert!(core.sandboxes.is_empty(), "a crashed sandbox is destroyed");
    assert_eq!(core.worker(0).used_mb, 0);
    assert!(matches!(core.release(g.token, "ok", 2), Err(CoreError::StaleLease(_))));
    assert!(matches!(core.release(Token { epoch: 1, seq: 99 }, "ok", 2), Err(CoreError::UnknownLease(_))));
    assert!(matches!(core.release(g.token, "bogus", 2), Err(CoreError::InvalidArgument { .. })));
    let (g2, _) = grant(&mut core, "f", 256, 3).unwrap();
    let forged = Token { epoch: 7, seq: g2.token.seq };
    assert!(matches!(core.release(forged, "ok", 4), Err(CoreError::StaleLease(_))));
}

#[test]
fn expiry_orders_leases_then_idle_and_respects_the_limit() {
    let config = Config { idle_keepalive_ms: 100, lease_margin_ms: 0, ..Config::default() };
    let mut core = core_with(config, &[("w1", "a", 4096)]);
    let (idle, _) = grant(&mut core, "f", 256, 0).unwrap();
    step!(core.release(idle.token, "ok", 0));
    let (busy, _) = grant(&mut core, "g", 256, 0).unwrap();
    let records = core.expire(5000, 10).unwrap();
    let kinds: Vec<&str> = records.iter().map(crate::records::kind_name).collect();
    assert_eq!(kinds, ["lease_expired", "sandbox_destroyed"]);
    assert_eq!(core.expire(5000, 1).unwrap().len(), 1);
    apply(&mut core, Ok(records));
    assert_eq!(core.sandboxes[&busy.sandbox_id].state, SandboxState::Resetting);
    assert!(
        core.acquire(&AcquireRequest {
            function: "g",
            version: "1",
            memory_mb: 256,
            timeout_ms: 1,
            now_ms: 5001,
            request_id: ""
        })
        .is_ok_and(|d| matches!(d, Decision::Cold(_))),
        "a resetting sandbox is never handed out"
    );
    step!(core.reset_done(busy.sandbox_id, 5002));
    assert_eq!(core.sandboxes[&busy.sandbox_id].state, SandboxState::Idle);
}

#[test]
fn worker_leaving_drops_its_sandboxes_and_leases() {
    let mut core = core_with(Config::default(), &[("w1", "a", 1024), ("w2", "b", 1024)]);
    let (g, _) = grant(&mut core, "f", 256, 0).unwrap();
    step!(core.leave_worker(&g.worker_id));
    assert!(core.sandboxes.is_empty() && core.leases.is_empty());
    assert!(matches!(core.release(g.token, "ok", 1), Err(CoreError::StaleLease(_))));
    let (again, _) = grant(&mut core, "f", 256, 1).unwrap();
    assert_ne!(again.worker_id, g.worker_id);
}

#[test]
fn a_record_that_does_not_fit_changes_nothing() {
    let mut core = core_with(Config::default(), &[("w1", "a", 1024)]);
    let (g, _) = grant(&mut core, "f", 256, 0).unwrap();
    let before = core.snapshot_bytes();
    let bad = [
        Kind::LeaseGranted(proto::LeaseGranted { token: None, sandbox_id: g.sandbox_id, ..Default::default() }),
        Kind::SandboxCreating(proto::SandboxCreating {
            sandbox_id: 1,
            worker_id: "w1".into(),
            function: "f".into(),
            version: "1".into(),
            memory_mb: 256,
            now_ms: 0,
        }),
        Kind::SandboxCreating(proto::SandboxCreating {
            sandbox_id: 2,
            worker_id: "nope".into(),
            function: "f".into(),
            version: "1".into(),
            memory_mb: 256,
            now_ms: 0,
        }),
        Kind::SandboxReset(proto::SandboxReset { sandbox_id: g.sandbox_id, now_ms: 1 }),
        Kind::EpochStarted(proto::EpochStarted { epoch: 1 }),
        Kind::SandboxDestroyed(proto::SandboxDestroyed { sandbox_id: g.sandbox_id, reason: 99, now_ms: 1 }),
        Kind::WorkerJoined(proto::WorkerJoined {
            worker_id: "w\u{0}".into(),
            zone: "a".into(),
            address: String::new(),
            capacity_mb: 1,
        }),
    ];
    for kind in bad {
        let err = core.apply(&proto::Record { kind: Some(kind) }).unwrap_err();
        assert!(matches!(err, CoreError::InvalidRecord(_)), "{err}");
        assert_eq!(core.snapshot_bytes(), before);
    }
    assert!(core.apply(&proto::Record { kind: None }).is_err());
}

#[test]
fn idle_reclaim_leaves_a_pinned_version_its_provisioned_count_until_the_pin_lapses() {
    let config = Config { idle_keepalive_ms: 100, lease_margin_ms: 0, ..Config::default() };
    let mut core = core_with(config, &[("w1", "a", 4096)]);
    let held: Vec<Grant> = (0..3).map(|i| grant(&mut core, "f", 256, i).unwrap().0).collect();
    let other = grant(&mut core, "g", 256, 3).unwrap().0;
    for g in held.iter().chain([&other]) {
        step!(core.release(g.token, "ok", 10));
    }
    step!(core.set_provisioned_concurrency("f", "1", 2, 10_000));
    let destroyed = |records: &[proto::Record]| -> Vec<u64> {
        records
            .iter()
            .filter_map(|r| match &r.kind {
                Some(Kind::SandboxDestroyed(d)) => Some(d.sandbox_id),
                _ => None,
            })
            .collect()
    };
    // Past the keep-alive, f keeps two of its three (the most recently used), g keeps none.
    let records = core.expire(5000, 10).unwrap();
    assert_eq!(destroyed(&records).len(), 2);
    assert!(destroyed(&records).contains(&other.sandbox_id));
    apply(&mut core, Ok(records));
    assert_eq!(core.expire(6000, 10).unwrap(), vec![], "the pinned two stay");
    // The pin survives a snapshot; once it lapses (or is removed) idle reclaim takes the rest.
    let restored = Core::from_snapshot_bytes(core.config.clone(), &core.snapshot_bytes()).unwrap();
    assert_eq!(restored.snapshot_bytes(), core.snapshot_bytes());
    assert_eq!(restored.expire(6000, 10).unwrap(), vec![]);
    assert_eq!(destroyed(&restored.expire(10_000, 10).unwrap()).len(), 2, "lapsed at until_ms");
    step!(core.set_provisioned_concurrency("f", "1", 0, 0));
    assert_eq!(destroyed(&core.expire(6000, 10).unwrap()).len(), 2, "unpinned");
    // Bad input names the field.
    for (count, until) in [(-1, 1), (1_001, 1), (1, -1), (1, 1 << 54)] {
        let err = core.set_provisioned_concurrency("f", "1", count, until).unwrap_err();
        assert!(matches!(err, CoreError::InvalidArgument { .. }), "{err:?}");
    }
    assert!(core.set_provisioned_concurrency("f", "", 1, 1).is_err());
}

#[test]
fn snapshot_round_trips_and_restore_rejects_inconsistency() {
    let mut core = core_with(Config::default(), &[("w1", "a", 4096), ("w2", "b", 4096)]);
    step!(core.set_reserved_concurrency("f", Some(6)));
    let mut tokens = Vec::new();
    for i in 0..6 {
        tokens.push(grant(&mut core, "f", 256, i).unwrap().0.token);
    }
    for t in tokens.iter().take(3) {
        step!(core.release(*t, "ok", 10));
    }
    let bytes = core.snapshot_bytes();
    let restored = Core::from_snapshot_bytes(Config::default(), &bytes).unwrap();
    assert_eq!(restored.snapshot_bytes(), bytes);

    let snap = proto::PartitionSnapshot::decode(bytes.as_slice()).unwrap();
    let mut broken = snap.clone();
    broken.sandboxes[0].worker_id = "ghost".into();
    let mut busy_in_pool = snap.clone();
    let busy = busy_in_pool.sandboxes.iter().find(|s| s.lease.is_some()).unwrap().sandbox_id;
    busy_in_pool.pools[0].sandbox_ids.push(busy);
    let mut future_format = snap.clone();
    future_format.format = 2;
    for bad in [broken, busy_in_pool, future_format] {
        let result = Core::from_snapshot_bytes(Config::default(), &bad.encode_to_vec());
        assert!(matches!(result, Err(CoreError::CorruptSnapshot(_))));
    }
    assert!(Core::from_snapshot_bytes(Config::default(), &bytes[..bytes.len() / 2]).is_err());
}

#[test]
fn placement_at_scale_is_correct_against_a_full_sort() {
    // 300 workers over 3 zones, random-ish capacities: the indexed ranking equals sorting by the key.
    let mut workers = Vec::new();
    let mut x: u32 = 7;
    for i in 0..300 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        workers.push((format!("w{i:03}"), ["a", "b", "c"][i % 3], 512 + (x >> 8) % 4096));
    }
    let refs: Vec<(&str, &str, u32)> = workers.iter().map(|(i, z, c)| (i.as_str(), *z, *c)).collect();
    let mut core = core_with(Config { alternatives: 5, ..Config::default() }, &refs);
    for now in 0..200 {
        let Decision::Cold(g) = acquire(&core, "f", 512, now) else { panic!("expected a cold placement") };
        let fv = core.version_idx("f", "1");
        let mut keys: Vec<(u32, String, u32, u32, i64, String)> = core
            .workers
            .iter()
            .flatten()
            .enumerate()
            .filter(|(_, w)| w.healthy && w.free_mb() >= 512)
            .map(|(idx, w)| {
                let v = fv.map(|fv| &core.versions[fv as usize]);
                let zc = v.and_then(|v| v.per_zone.get(&w.zone).copied()).unwrap_or(0);
                let wc = v.and_then(|v| v.per_worker.get(&(idx as u32)).copied()).unwrap_or(0);
                (
                    zc,
                    core.zones[w.zone as usize].name.to_string(),
                    u32::from(wc == 0),
                    wc,
                    -i64::from(w.free_mb()),
                    w.id.to_string(),
                )
            })
            .collect();
        keys.sort();
        let expected: Vec<String> = keys.iter().take(6).map(|k| k.5.clone()).collect();
        let mut got = vec![g.worker_id.to_string()];
        got.extend(g.alternatives.iter().map(ToString::to_string));
        assert_eq!(got, expected, "at step {now}");
        apply(&mut core, Ok(g.records));
    }
}

#[test]
fn queries_answer_from_the_state_without_copying_it() {
    let mut core = core_with(Config::default(), &[("w2", "b", 4096), ("w1", "a", 4096)]);
    assert_eq!(core.worker_views().iter().map(|w| &*w.id).collect::<Vec<_>>(), ["w1", "w2"]);
    let w1 = core.worker_view("w1").unwrap();
    assert_eq!((&*w1.zone, &*w1.address, w1.capacity_mb, w1.used_mb), ("a", "w1:7000", 4096, 0));
    assert!(core.worker_view("w9").is_none());

    let (busy, _) = grant(&mut core, "f", 256, 0).unwrap();
    let (idle, _) = grant(&mut core, "f", 256, 1).unwrap();
    step!(core.release(idle.token, "ok", 2));
    let creating = match acquire(&core, "f", 512, 3) {
        Decision::Cold(g) => {
            apply(&mut core, Ok(g.records.clone()));
            g
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(core.creating(), [creating.sandbox_id]);
    assert_eq!(core.lease_sandbox(busy.token.seq), Some(busy.sandbox_id));
    assert_eq!(core.lease_sandbox(idle.token.seq), None);
    let view = core.sandbox_view(busy.sandbox_id).unwrap();
    assert_eq!((&*view.function, &*view.version, view.memory_mb, view.state), ("f", "1", 256, SandboxState::Busy));
    assert_eq!(view.lease, Some((busy.token.epoch, busy.token.seq, busy.expiry_ms)));
    assert_eq!(core.version_sandboxes("f", "1", 256), (2, 1));
    assert_eq!(core.version_sandboxes("f", "1", 512), (1, 0));
    assert_eq!(core.version_sandboxes("g", "1", 256), (0, 0));
    let on = |w: &str| core.sandboxes_on(w).len();
    assert_eq!(on("w1") + on("w2"), 3);
    assert!(core.sandboxes_on("w9").is_empty());

    assert_eq!(core.provisioned_pin("f", "1"), None);
    step!(core.set_provisioned_concurrency("f", "1", 2, 100));
    assert_eq!(core.provisioned_pin("f", "1"), Some((2, 100)));
}

#[test]
fn an_invalid_argument_names_its_field_apart_from_the_reason() {
    let core = core_with(Config::default(), &[("w1", "a", 4096)]);
    let req = AcquireRequest { function: "f", version: "1", memory_mb: 5, timeout_ms: 1000, now_ms: 0, request_id: "" };
    let err = core.acquire(&req).unwrap_err();
    assert!(matches!(&err, CoreError::InvalidArgument { field: "memory_mb", .. }), "{err:?}");
    assert_eq!(err.to_string(), "memory_mb must be in 128..=10240, got 5");
}
