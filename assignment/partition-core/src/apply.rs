//! `apply`: the only way the state changes. Each record is checked against the state first and
//! applied only when it fits, so a failed apply changes nothing.
use crate::error::{CoreError, Result};
use crate::proto::record::Kind;
use crate::proto::{DestroyReason, Outcome, Record};
use crate::records::{kind_name, reusable, token_of};
use crate::state::{Core, Lease, Sandbox, SandboxState, Token, NONE};
use crate::validate;

fn invalid(message: String) -> CoreError {
    CoreError::InvalidRecord(message)
}

impl Core {
    /// Apply one record or change nothing.
    pub fn apply(&mut self, record: &Record) -> Result<()> {
        let kind = kind_name(record);
        self.apply_kind(record.kind.as_ref().ok_or_else(|| invalid("empty record: no kind is set".into()))?)
            .map_err(|e| e.in_record(kind))
    }

    fn existing_sandbox(&self, id: u64) -> Result<&Sandbox> {
        self.sandboxes.get(&id).ok_or_else(|| invalid(format!("sandbox {id} does not exist")))
    }

    fn existing_worker(&self, id: &str) -> Result<u32> {
        self.worker_idx(id).ok_or_else(|| invalid(format!("worker {id:?} has not joined")))
    }

    /// The sandbox holding exactly this token.
    fn lease_holder(&self, token: Token) -> Result<u64> {
        self.leases
            .get(&token.seq)
            .copied()
            .filter(|id| self.sandboxes[id].lease.is_some_and(|l| l.token == token))
            .ok_or_else(|| invalid(format!("lease {}/{} is not held", token.epoch, token.seq)))
    }

    #[allow(clippy::too_many_lines)] // one arm per record kind reads best side by side
    fn apply_kind(&mut self, kind: &Kind) -> Result<()> {
        match kind {
            Kind::EpochStarted(r) => {
                if r.epoch <= self.epoch {
                    return Err(invalid(format!("epoch {} is not newer than {}", r.epoch, self.epoch)));
                }
                self.epoch = r.epoch;
            }
            Kind::WorkerJoined(r) => {
                validate::worker_id(&r.worker_id)?;
                validate::zone(&r.zone)?;
                validate::address(&r.address)?;
                validate::capacity(i64::from(r.capacity_mb))?;
                if self.worker_idx(&r.worker_id).is_some() {
                    return Err(invalid(format!("worker {:?} has already joined", r.worker_id)));
                }
                self.add_worker(&r.worker_id, &r.zone, &r.address, r.capacity_mb, true);
            }
            Kind::WorkerLeft(r) => {
                let idx = self.existing_worker(&r.worker_id)?;
                self.remove_worker(idx);
            }
            Kind::WorkerUpdated(r) => {
                validate::capacity(i64::from(r.capacity_mb))?;
                let idx = self.existing_worker(&r.worker_id)?;
                let (capacity_mb, healthy) = (r.capacity_mb, r.healthy);
                self.modify_worker(idx, |w| {
                    w.capacity_mb = capacity_mb;
                    w.healthy = healthy;
                });
            }
            Kind::FunctionConcurrencySet(r) => {
                validate::function(&r.function)?;
                let f = self.intern_function(&r.function);
                self.set_reserved(f, r.reserved);
            }
            Kind::VersionProvisioned(r) => {
                validate::function(&r.function)?;
                validate::version(&r.version)?;
                // No check against this core's account limit: a record journaled under another
                // configuration must still replay (as with reserved concurrency).
                validate::time("until_ms", r.until_ms)?;
                if r.count > 0 || self.version_idx(&r.function, &r.version).is_some() {
                    let fv = self.intern_version(&r.function, &r.version);
                    self.set_provisioned(fv, r.count, r.until_ms);
                }
            }
            Kind::SandboxCreating(r) => {
                if r.sandbox_id != self.next_sandbox_id {
                    return Err(invalid(format!(
                        "sandbox id {} is not the next one ({})",
                        r.sandbox_id, self.next_sandbox_id
                    )));
                }
                validate::function(&r.function)?;
                validate::version(&r.version)?;
                validate::memory(i64::from(r.memory_mb))?;
                let now = validate::time("now_ms", r.now_ms)?;
                let worker = self.existing_worker(&r.worker_id)?;
                let fv = self.intern_version(&r.function, &r.version);
                let sandbox = Sandbox {
                    worker,
                    fv,
                    memory_mb: r.memory_mb,
                    state: SandboxState::Creating,
                    last_used_ms: now,
                    lease: None,
                    newer: NONE,
                    older: NONE,
                };
                self.sandboxes.insert(r.sandbox_id, sandbox);
                self.place(fv, worker, r.memory_mb, true);
                self.note_creation(self.versions[fv as usize].function, now);
                self.next_sandbox_id += 1;
            }
            Kind::SandboxRelocated(r) => {
                let s = self.existing_sandbox(r.sandbox_id)?;
                if s.state != SandboxState::Creating {
                    return Err(invalid(format!("sandbox {} is {}, not creating", r.sandbox_id, s.state.name())));
                }
                let (from, fv, memory) = (s.worker, s.fv, s.memory_mb);
                let to = self.existing_worker(&r.worker_id)?;
                if to == from {
                    return Err(invalid(format!("sandbox {} is already on {:?}", r.sandbox_id, r.worker_id)));
                }
                self.place(fv, from, memory, false);
                self.place(fv, to, memory, true);
                self.sandboxes.get_mut(&r.sandbox_id).expect("checked").worker = to;
            }
            Kind::SandboxCreated(r) => {
                let now = validate::time("now_ms", r.now_ms)?;
                let s = self.existing_sandbox(r.sandbox_id)?;
                if s.state != SandboxState::Creating {
                    return Err(invalid(format!("sandbox {} is {}, not creating", r.sandbox_id, s.state.name())));
                }
                if s.lease.is_some() {
                    let s = self.sandboxes.get_mut(&r.sandbox_id).expect("checked");
                    s.state = SandboxState::Busy;
                    s.last_used_ms = now;
                } else {
                    self.make_idle(r.sandbox_id, now);
                }
            }
            Kind::SandboxReset(r) => {
                let now = validate::time("now_ms", r.now_ms)?;
                let s = self.existing_sandbox(r.sandbox_id)?;
                if s.state != SandboxState::Resetting {
                    return Err(invalid(format!("sandbox {} is {}, not resetting", r.sandbox_id, s.state.name())));
                }
                self.make_idle(r.sandbox_id, now);
            }
            Kind::SandboxDestroyed(r) => {
                validate::time("now_ms", r.now_ms)?;
                match DestroyReason::try_from(r.reason) {
                    Ok(DestroyReason::Unspecified) | Err(_) => {
                        return Err(invalid(format!("unknown destroy reason {}", r.reason)));
                    }
                    Ok(_) => {}
                }
                self.existing_sandbox(r.sandbox_id)?;
                self.remove_sandbox(r.sandbox_id);
            }
            Kind::LeaseGranted(r) => {
                let token = token_of(r.token.as_ref())?;
                if token.epoch != self.epoch || token.seq != self.next_lease_seq {
                    return Err(invalid(format!(
                        "lease {}/{} is not the next token ({}/{})",
                        token.epoch, token.seq, self.epoch, self.next_lease_seq
                    )));
                }
                let now = validate::time("now_ms", r.now_ms)?;
                validate::request_id(&r.request_id)?;
                let s = self.existing_sandbox(r.sandbox_id)?;
                match (s.state, s.lease) {
                    (SandboxState::Idle, _) => self.unpool(r.sandbox_id),
                    (SandboxState::Creating, None) => {}
                    (state, _) => {
                        return Err(invalid(format!(
                            "sandbox {} is {} and cannot be leased",
                            r.sandbox_id,
                            state.name()
                        )));
                    }
                }
                let s = self.sandboxes.get_mut(&r.sandbox_id).expect("checked");
                if s.state == SandboxState::Idle {
                    s.state = SandboxState::Busy;
                }
                s.last_used_ms = now;
                self.attach_lease(r.sandbox_id, Lease { token, expiry_ms: r.expiry_ms });
                self.next_lease_seq += 1;
            }
            Kind::LeaseReleased(r) => {
                let token = token_of(r.token.as_ref())?;
                let now = validate::time("now_ms", r.now_ms)?;
                let outcome = match Outcome::try_from(r.outcome) {
                    Ok(Outcome::Unspecified) | Err(_) => return Err(invalid(format!("unknown outcome {}", r.outcome))),
                    Ok(outcome) => outcome,
                };
                let id = self.lease_holder(token)?;
                if self.sandboxes[&id].state != SandboxState::Busy {
                    return Err(invalid(format!("sandbox {id} is still creating; its lease cannot be released")));
                }
                self.drop_lease(id);
                if reusable(outcome) {
                    self.make_idle(id, now);
                } else {
                    self.remove_sandbox(id);
                }
            }
            Kind::LeaseExpired(r) => {
                let token = token_of(r.token.as_ref())?;
                let now = validate::time("now_ms", r.now_ms)?;
                let id = self.lease_holder(token)?;
                self.drop_lease(id);
                let s = self.sandboxes.get_mut(&id).expect("checked");
                s.state = SandboxState::Resetting;
                s.last_used_ms = now;
            }
        }
        Ok(())
    }
}
