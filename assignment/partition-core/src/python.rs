//! The Python face of the core (`assignment._core`): argument checking, conversion, error mapping.
//! The stub `assignment/_core.pyi` documents it; `assignment/partition_core.py` re-exports it.
//!
//! Every argument arrives as a Python object and is checked here, so that a wrong type or an
//! out-of-range integer is an `InvalidArgument` naming the parameter rather than a `TypeError` or an
//! `OverflowError` from the binding layer, and nothing can panic across the boundary.
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use prost::Message;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFrozenSet, PyInt, PyList, PyString, PyTuple};

use crate::config::{Config, DEFAULT_ACCOUNT_LIMIT};
use crate::decide::{AcquireRequest, Decision as CoreDecision, Grant};
use crate::error::CoreError as Error;
use crate::proto;
use crate::query::{SandboxView, WorkerView};
use crate::record_crc::record_crc;
use crate::records::kind_name;
use crate::state::{Core, FvIdx, Token, NONE};

create_exception!(assignment._core, CoreError, PyException, "Base of every error the core raises.");
create_exception!(
    assignment._core,
    InvalidArgument,
    CoreError,
    "An argument is malformed or out of range; the message names it."
);
create_exception!(assignment._core, InvalidState, CoreError, "The request does not fit the current state.");
create_exception!(assignment._core, UnknownWorker, CoreError, "No worker with that id is in the partition.");
create_exception!(assignment._core, UnknownSandbox, CoreError, "No sandbox with that id is in the partition.");
create_exception!(assignment._core, UnknownLease, CoreError, "The lease token was never issued by this partition.");
create_exception!(assignment._core, StaleLease, CoreError, "The lease token was issued but is no longer held.");
create_exception!(assignment._core, NoCapacity, CoreError, "The target worker has no room for the sandbox.");
create_exception!(
    assignment._core,
    InvalidRecord,
    CoreError,
    "A record could not be decoded or does not fit the state."
);
create_exception!(
    assignment._core,
    CorruptSnapshot,
    CoreError,
    "Snapshot bytes could not be decoded or are inconsistent."
);

impl From<Error> for PyErr {
    fn from(err: Error) -> PyErr {
        let message = err.to_string();
        match err {
            Error::InvalidArgument { field, .. } => Python::attach(|py| {
                let err = InvalidArgument::new_err(message);
                // The argument at fault, as data: callers map it without reading the message.
                err.value(py).setattr("field", field).map_or_else(|e| e, |()| err)
            }),
            Error::InvalidState(_) => InvalidState::new_err(message),
            Error::UnknownWorker(_) => UnknownWorker::new_err(message),
            Error::UnknownSandbox(_) => UnknownSandbox::new_err(message),
            Error::UnknownLease(_) => UnknownLease::new_err(message),
            Error::StaleLease(_) => StaleLease::new_err(message),
            Error::NoCapacity(_) => NoCapacity::new_err(message),
            Error::InvalidRecord(_) => InvalidRecord::new_err(message),
            Error::CorruptSnapshot(_) => CorruptSnapshot::new_err(message),
        }
    }
}

fn type_name(value: &Bound<'_, PyAny>) -> String {
    value.get_type().name().map_or_else(|_| "?".to_owned(), |n| n.to_string())
}

fn arg_error(field: &'static str, why: String) -> PyErr {
    Error::invalid_argument(field, why).into()
}

fn int(value: &Bound<'_, PyAny>, what: &'static str) -> PyResult<i64> {
    if value.is_instance_of::<PyBool>() || !value.is_instance_of::<PyInt>() {
        return Err(arg_error(what, format!("must be an int, not {}", type_name(value))));
    }
    value.extract::<i64>().map_err(|_| arg_error(what, format!("is out of range: {value}")))
}

fn uint(value: &Bound<'_, PyAny>, what: &'static str) -> PyResult<u64> {
    uint_part(value, what, "")
}

/// An unsigned int that is `part` (e.g. `"epoch "`) of the argument `field`.
fn uint_part(value: &Bound<'_, PyAny>, field: &'static str, part: &str) -> PyResult<u64> {
    if value.is_instance_of::<PyBool>() || !value.is_instance_of::<PyInt>() {
        return Err(arg_error(field, format!("{part}must be an int, not {}", type_name(value))));
    }
    value.extract::<u64>().map_err(|_| arg_error(field, format!("{part}must be in 0..=2**64-1, got {value}")))
}

fn text(value: &Bound<'_, PyAny>, what: &'static str) -> PyResult<PyBackedStr> {
    value
        .extract::<PyBackedStr>()
        .map_err(|_| arg_error(what, format!("must be a str of valid Unicode, not {}", type_name(value))))
}

fn flag(value: &Bound<'_, PyAny>, what: &'static str) -> PyResult<bool> {
    if !value.is_instance_of::<PyBool>() {
        return Err(arg_error(what, format!("must be a bool, not {}", type_name(value))));
    }
    value.is_truthy()
}

fn token(value: &Bound<'_, PyAny>) -> PyResult<Token> {
    let tuple = value
        .cast::<PyTuple>()
        .ok()
        .filter(|t| t.len() == 2)
        .ok_or_else(|| arg_error("token", format!("must be a tuple (epoch, seq), not {value:?}")))?;
    Ok(Token {
        epoch: uint_part(&tuple.get_item(0)?, "token", "epoch ")?,
        seq: uint_part(&tuple.get_item(1)?, "token", "seq ")?,
    })
}

/// One journal record (protobuf `leasehold.journal.v1.Record`).
#[pyclass(module = "assignment._core", frozen, name = "Record")]
pub struct PyRecord {
    inner: proto::Record,
}

#[pymethods]
impl PyRecord {
    #[getter]
    fn kind(&self) -> &'static str {
        kind_name(&self.inner)
    }

    fn encode<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.encode_to_vec())
    }

    #[staticmethod]
    fn decode(data: &Bound<'_, PyAny>) -> PyResult<Self> {
        let bytes = data
            .cast::<PyBytes>()
            .map_err(|_| InvalidRecord::new_err(format!("a record is bytes, not {}", type_name(data))))?;
        let inner = proto::Record::decode(bytes.as_bytes())
            .map_err(|e| InvalidRecord::new_err(format!("undecodable record: {e}")))?;
        if inner.kind.is_none() {
            return Err(InvalidRecord::new_err("empty record: no kind is set"));
        }
        Ok(Self { inner })
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<PyRecord>().is_ok_and(|o| o.get().inner == self.inner)
    }

    fn __hash__(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        self.inner.encode_to_vec().hash(&mut hasher);
        hasher.finish()
    }

    fn __repr__(&self) -> String {
        match &self.inner.kind {
            Some(kind) => format!("Record({kind:?})"),
            None => "Record(empty)".to_owned(),
        }
    }
}

fn records_list(py: Python<'_>, records: Vec<proto::Record>) -> PyResult<Bound<'_, PyList>> {
    PyList::new(py, records.into_iter().map(|inner| PyRecord { inner }))
}

/// The answer to `PartitionCore.acquire`.
#[pyclass(module = "assignment._core", frozen, name = "Decision")]
pub struct PyDecision {
    #[pyo3(get)]
    outcome: &'static str,
    #[pyo3(get)]
    reason: Option<&'static str>,
    records: Vec<proto::Record>,
    #[pyo3(get)]
    token: Option<(u64, u64)>,
    #[pyo3(get)]
    sandbox_id: Option<u64>,
    worker_id: Option<Arc<str>>,
    worker_address: Option<Arc<str>>,
    #[pyo3(get)]
    expiry_ms: Option<i64>,
    alternatives: Vec<Arc<str>>,
}

impl PyDecision {
    fn granted(outcome: &'static str, g: Grant) -> Self {
        Self {
            outcome,
            reason: None,
            records: g.records,
            token: Some((g.token.epoch, g.token.seq)),
            sandbox_id: Some(g.sandbox_id),
            worker_id: Some(g.worker_id),
            worker_address: Some(g.worker_address),
            expiry_ms: Some(g.expiry_ms),
            alternatives: g.alternatives,
        }
    }
}

#[pymethods]
impl PyDecision {
    #[getter]
    fn records<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        records_list(py, self.records.clone())
    }

    #[getter]
    fn worker_id(&self) -> Option<&str> {
        self.worker_id.as_deref()
    }

    #[getter]
    fn worker_address(&self) -> Option<&str> {
        self.worker_address.as_deref()
    }

    #[getter]
    fn alternatives(&self) -> Vec<&str> {
        self.alternatives.iter().map(|a| &**a).collect()
    }

    fn __repr__(&self) -> String {
        format!(
            "Decision(outcome={:?}, reason={}, token={}, sandbox_id={}, worker_id={})",
            self.outcome,
            self.reason.map_or("None".into(), |r| format!("{r:?}")),
            self.token.map_or("None".into(), |(e, s)| format!("({e}, {s})")),
            self.sandbox_id.map_or("None".into(), |id| id.to_string()),
            self.worker_id.as_ref().map_or("None".into(), |w| format!("{w:?}")),
        )
    }
}

/// A worker as the partition knows it (`PartitionCore.worker`).
#[pyclass(module = "assignment._core", frozen, name = "WorkerView")]
pub struct PyWorkerView {
    view: WorkerView,
}

#[pymethods]
impl PyWorkerView {
    #[getter]
    fn id(&self) -> &str {
        &self.view.id
    }

    #[getter]
    fn zone(&self) -> &str {
        &self.view.zone
    }

    #[getter]
    fn address(&self) -> &str {
        &self.view.address
    }

    #[getter]
    fn capacity_mb(&self) -> u32 {
        self.view.capacity_mb
    }

    #[getter]
    fn used_mb(&self) -> u64 {
        self.view.used_mb
    }

    #[getter]
    fn healthy(&self) -> bool {
        self.view.healthy
    }

    fn __repr__(&self) -> String {
        let v = &self.view;
        format!("WorkerView(id={:?}, zone={:?}, address={:?}, capacity_mb={})", v.id, v.zone, v.address, v.capacity_mb)
    }
}

/// A sandbox as the partition knows it (`PartitionCore.sandbox`).
#[pyclass(module = "assignment._core", frozen, name = "SandboxView")]
pub struct PySandboxView {
    view: SandboxView,
}

#[pymethods]
impl PySandboxView {
    #[getter]
    fn id(&self) -> u64 {
        self.view.id
    }

    #[getter]
    fn worker_id(&self) -> &str {
        &self.view.worker_id
    }

    #[getter]
    fn function(&self) -> &str {
        &self.view.function
    }

    #[getter]
    fn version(&self) -> &str {
        &self.view.version
    }

    #[getter]
    fn memory_mb(&self) -> u32 {
        self.view.memory_mb
    }

    #[getter]
    fn state(&self) -> &'static str {
        self.view.state.name()
    }

    #[getter]
    fn last_used_ms(&self) -> i64 {
        self.view.last_used_ms
    }

    #[getter]
    fn lease(&self) -> Option<(u64, u64, i64)> {
        self.view.lease
    }

    fn __repr__(&self) -> String {
        let v = &self.view;
        format!(
            "SandboxView(id={}, worker_id={:?}, function={:?}, version={:?}, state={:?})",
            v.id,
            v.worker_id,
            v.function,
            v.version,
            v.state.name()
        )
    }
}

/// The state of one partition and every decision about it.
#[pyclass(module = "assignment._core", name = "PartitionCore")]
pub struct PyPartitionCore {
    core: Core,
}

impl PyPartitionCore {
    /// Apply a decision's records at once (`apply=True`). A decision's records always fit the state
    /// they were decided on, so a failure here is a bug, reported as `InvalidRecord`.
    fn apply_records(&mut self, records: &[proto::Record]) -> PyResult<()> {
        for record in records {
            self.core.apply(record)?;
        }
        Ok(())
    }
}

#[pymethods]
impl PyPartitionCore {
    #[new]
    #[pyo3(signature = (
        *, account_limit = None, scale_up_per_window = None, scale_up_window_ms = None,
        lease_margin_ms = None, idle_keepalive_ms = None, alternatives = None,
    ))]
    fn new(
        account_limit: Option<&Bound<'_, PyAny>>,
        scale_up_per_window: Option<&Bound<'_, PyAny>>,
        scale_up_window_ms: Option<&Bound<'_, PyAny>>,
        lease_margin_ms: Option<&Bound<'_, PyAny>>,
        idle_keepalive_ms: Option<&Bound<'_, PyAny>>,
        alternatives: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let d = Config::default();
        let get =
            |v: Option<&Bound<'_, PyAny>>, what: &'static str, default: i64| v.map_or(Ok(default), |v| int(v, what));
        let config = Config::new(
            get(account_limit, "account_limit", i64::from(d.account_limit))?,
            get(scale_up_per_window, "scale_up_per_window", i64::from(d.scale_up_per_window))?,
            get(scale_up_window_ms, "scale_up_window_ms", d.scale_up_window_ms)?,
            get(lease_margin_ms, "lease_margin_ms", d.lease_margin_ms)?,
            get(idle_keepalive_ms, "idle_keepalive_ms", d.idle_keepalive_ms)?,
            get(alternatives, "alternatives", i64::from(d.alternatives))?,
        )?;
        Ok(Self { core: Core::new(config) })
    }

    #[getter]
    fn epoch(&self) -> u64 {
        self.core.epoch
    }

    #[getter]
    fn worker_count(&self) -> usize {
        self.core.worker_by_id.len()
    }

    #[getter]
    fn sandbox_count(&self) -> usize {
        self.core.sandboxes.len()
    }

    #[getter]
    fn lease_count(&self) -> usize {
        self.core.leases.len()
    }

    #[pyo3(signature = (function, version, memory_mb, timeout_ms, now_ms, request_id = None, *, apply = false))]
    #[allow(clippy::too_many_arguments)] // the Python signature
    fn acquire(
        &mut self,
        function: &Bound<'_, PyAny>,
        version: &Bound<'_, PyAny>,
        memory_mb: &Bound<'_, PyAny>,
        timeout_ms: &Bound<'_, PyAny>,
        now_ms: &Bound<'_, PyAny>,
        request_id: Option<&Bound<'_, PyAny>>,
        apply: bool,
    ) -> PyResult<PyDecision> {
        let function = text(function, "function")?;
        let version = text(version, "version")?;
        let request_id = request_id.map(|r| text(r, "request_id")).transpose()?;
        let request = AcquireRequest {
            function: &function,
            version: &version,
            memory_mb: int(memory_mb, "memory_mb")?,
            timeout_ms: int(timeout_ms, "timeout_ms")?,
            now_ms: int(now_ms, "now_ms")?,
            request_id: request_id.as_deref().unwrap_or(""),
        };
        let decision = self.core.acquire(&request)?;
        if apply {
            if let CoreDecision::Warm(g) | CoreDecision::Cold(g) = &decision {
                self.apply_records(&g.records)?;
            }
        }
        Ok(match decision {
            CoreDecision::Warm(g) => PyDecision::granted("warm", g),
            CoreDecision::Cold(g) => PyDecision::granted("cold", g),
            CoreDecision::Throttled(reason) => PyDecision {
                outcome: "throttled",
                reason: Some(reason.name()),
                records: Vec::new(),
                token: None,
                sandbox_id: None,
                worker_id: None,
                worker_address: None,
                expiry_ms: None,
                alternatives: Vec::new(),
            },
        })
    }

    #[pyo3(signature = (token, outcome, now_ms, *, apply = false))]
    fn release<'py>(
        &mut self,
        py: Python<'py>,
        token: &Bound<'_, PyAny>,
        outcome: &Bound<'_, PyAny>,
        now_ms: &Bound<'_, PyAny>,
        apply: bool,
    ) -> PyResult<Bound<'py, PyList>> {
        let token = self::token(token)?;
        let outcome = text(outcome, "outcome")?;
        let records = self.core.release(token, &outcome, int(now_ms, "now_ms")?)?;
        if apply {
            self.apply_records(&records)?;
        }
        records_list(py, records)
    }

    #[pyo3(signature = (now_ms, limit = None))]
    fn expire<'py>(
        &self,
        py: Python<'py>,
        now_ms: &Bound<'_, PyAny>,
        limit: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let limit = limit.map_or(Ok(1024), |l| int(l, "limit"))?;
        records_list(py, self.core.expire(int(now_ms, "now_ms")?, limit)?)
    }

    fn created<'py>(
        &self,
        py: Python<'py>,
        sandbox_id: &Bound<'_, PyAny>,
        now_ms: &Bound<'_, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        records_list(py, self.core.created(uint(sandbox_id, "sandbox_id")?, int(now_ms, "now_ms")?)?)
    }

    fn relocate<'py>(
        &self,
        py: Python<'py>,
        sandbox_id: &Bound<'_, PyAny>,
        worker_id: &Bound<'_, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let sandbox_id = uint(sandbox_id, "sandbox_id")?;
        records_list(py, self.core.relocate(sandbox_id, &text(worker_id, "worker_id")?)?)
    }

    fn reset_done<'py>(
        &self,
        py: Python<'py>,
        sandbox_id: &Bound<'_, PyAny>,
        now_ms: &Bound<'_, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        records_list(py, self.core.reset_done(uint(sandbox_id, "sandbox_id")?, int(now_ms, "now_ms")?)?)
    }

    fn destroy<'py>(
        &self,
        py: Python<'py>,
        sandbox_id: &Bound<'_, PyAny>,
        reason: &Bound<'_, PyAny>,
        now_ms: &Bound<'_, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let sandbox_id = uint(sandbox_id, "sandbox_id")?;
        let reason = text(reason, "reason")?;
        records_list(py, self.core.destroy(sandbox_id, &reason, int(now_ms, "now_ms")?)?)
    }

    fn join_worker<'py>(
        &self,
        py: Python<'py>,
        worker_id: &Bound<'_, PyAny>,
        zone: &Bound<'_, PyAny>,
        address: &Bound<'_, PyAny>,
        capacity_mb: &Bound<'_, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let (worker_id, zone) = (text(worker_id, "worker_id")?, text(zone, "zone")?);
        let address = text(address, "address")?;
        records_list(py, self.core.join_worker(&worker_id, &zone, &address, int(capacity_mb, "capacity_mb")?)?)
    }

    fn leave_worker<'py>(&self, py: Python<'py>, worker_id: &Bound<'_, PyAny>) -> PyResult<Bound<'py, PyList>> {
        records_list(py, self.core.leave_worker(&text(worker_id, "worker_id")?)?)
    }

    fn update_worker<'py>(
        &self,
        py: Python<'py>,
        worker_id: &Bound<'_, PyAny>,
        capacity_mb: &Bound<'_, PyAny>,
        healthy: &Bound<'_, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let worker_id = text(worker_id, "worker_id")?;
        let capacity_mb = int(capacity_mb, "capacity_mb")?;
        records_list(py, self.core.update_worker(&worker_id, capacity_mb, flag(healthy, "healthy")?)?)
    }

    fn set_reserved<'py>(
        &self,
        py: Python<'py>,
        function: &Bound<'_, PyAny>,
        reserved: &Bound<'_, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let function = text(function, "function")?;
        let reserved = if reserved.is_none() { None } else { Some(int(reserved, "reserved")?) };
        records_list(py, self.core.set_reserved_concurrency(&function, reserved)?)
    }

    fn set_provisioned<'py>(
        &self,
        py: Python<'py>,
        function: &Bound<'_, PyAny>,
        version: &Bound<'_, PyAny>,
        count: &Bound<'_, PyAny>,
        until_ms: &Bound<'_, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let function = text(function, "function")?;
        let version = text(version, "version")?;
        let (count, until_ms) = (int(count, "count")?, int(until_ms, "until_ms")?);
        records_list(py, self.core.set_provisioned_concurrency(&function, &version, count, until_ms)?)
    }

    fn start_epoch<'py>(&self, py: Python<'py>, epoch: &Bound<'_, PyAny>) -> PyResult<Bound<'py, PyList>> {
        records_list(py, self.core.start_epoch(uint(epoch, "epoch")?)?)
    }

    fn apply(&mut self, record: &Bound<'_, PyAny>) -> PyResult<()> {
        let record = record
            .cast::<PyRecord>()
            .map_err(|_| arg_error("record", format!("must be a Record, not {}", type_name(record))))?;
        Ok(self.core.apply(&record.get().inner)?)
    }

    fn apply_all(&mut self, records: &Bound<'_, PyAny>) -> PyResult<()> {
        for record in records.try_iter()? {
            self.apply(&record?)?;
        }
        Ok(())
    }

    /// Decode and apply encoded records in order without a `Record` object per record (replay's path).
    /// Stops at the first that cannot be decoded or applied; returns how many were applied and that
    /// error (`None` when all were), so the caller can name the exact record that failed.
    fn apply_encoded(&mut self, py: Python<'_>, payloads: &Bound<'_, PyAny>) -> PyResult<(usize, Option<Py<PyAny>>)> {
        let mut applied = 0;
        for item in payloads.try_iter()? {
            let item = item?;
            let Ok(bytes) = item.cast::<PyBytes>() else {
                let err = InvalidRecord::new_err(format!("a record is bytes, not {}", type_name(&item)));
                return Ok((applied, Some(err.into_value(py).into_any())));
            };
            let result = match proto::Record::decode(bytes.as_bytes()) {
                Err(e) => Err(InvalidRecord::new_err(format!("undecodable record: {e}"))),
                Ok(inner) if inner.kind.is_none() => Err(InvalidRecord::new_err("empty record: no kind is set")),
                Ok(inner) => self.core.apply(&inner).map_err(PyErr::from),
            };
            if let Err(err) = result {
                return Ok((applied, Some(err.into_value(py).into_any())));
            }
            applied += 1;
        }
        Ok((applied, None))
    }

    fn snapshot<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.core.snapshot_bytes())
    }

    fn restore(&mut self, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let bytes = data
            .cast::<PyBytes>()
            .map_err(|_| CorruptSnapshot::new_err(format!("a snapshot is bytes, not {}", type_name(data))))?;
        self.core = Core::from_snapshot_bytes(self.core.config.clone(), bytes.as_bytes())?;
        Ok(())
    }

    // ---- narrow queries (query.rs): what the leader asks between decisions

    fn worker(&self, worker_id: &Bound<'_, PyAny>) -> PyResult<Option<PyWorkerView>> {
        Ok(self.core.worker_view(&text(worker_id, "worker_id")?).map(|view| PyWorkerView { view }))
    }

    fn workers(&self) -> Vec<PyWorkerView> {
        self.core.worker_views().into_iter().map(|view| PyWorkerView { view }).collect()
    }

    fn sandbox(&self, sandbox_id: &Bound<'_, PyAny>) -> PyResult<Option<PySandboxView>> {
        Ok(self.core.sandbox_view(uint(sandbox_id, "sandbox_id")?).map(|view| PySandboxView { view }))
    }

    fn lease_sandbox(&self, seq: &Bound<'_, PyAny>) -> PyResult<Option<u64>> {
        Ok(self.core.lease_sandbox(uint(seq, "seq")?))
    }

    fn sandboxes_on(&self, worker_id: &Bound<'_, PyAny>) -> PyResult<Vec<u64>> {
        Ok(self.core.sandboxes_on(&text(worker_id, "worker_id")?))
    }

    fn creating(&self) -> Vec<u64> {
        self.core.creating()
    }

    fn version_sandboxes(
        &self,
        function: &Bound<'_, PyAny>,
        version: &Bound<'_, PyAny>,
        memory_mb: &Bound<'_, PyAny>,
    ) -> PyResult<(u32, u32)> {
        let (function, version) = (text(function, "function")?, text(version, "version")?);
        let memory_mb = u32::try_from(int(memory_mb, "memory_mb")?).unwrap_or(u32::MAX);
        Ok(self.core.version_sandboxes(&function, &version, memory_mb))
    }

    fn provisioned_pin(&self, function: &Bound<'_, PyAny>, version: &Bound<'_, PyAny>) -> PyResult<Option<(u32, i64)>> {
        Ok(self.core.provisioned_pin(&text(function, "function")?, &text(version, "version")?))
    }

    fn state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let core = &self.core;
        let out = PyDict::new(py);
        out.set_item("epoch", core.epoch)?;
        out.set_item("next_sandbox_id", core.next_sandbox_id)?;
        out.set_item("next_lease_seq", core.next_lease_seq)?;
        let workers = PyDict::new(py);
        for w in core.workers.iter().flatten() {
            let zone = &*core.zones[w.zone as usize].name;
            workers.set_item(&*w.id, (zone, &*w.address, w.capacity_mb, w.used_mb, w.healthy))?;
        }
        out.set_item("workers", workers)?;
        let sandboxes = PyDict::new(py);
        for (id, s) in &core.sandboxes {
            let v = &core.versions[s.fv as usize];
            let function = &*core.functions[v.function as usize].name;
            let lease = s.lease.map(|l| (l.token.epoch, l.token.seq, l.expiry_ms));
            let worker = &*core.worker(s.worker).id;
            let row = (worker, function, &*v.version, s.memory_mb, s.state.name(), s.last_used_ms, lease);
            sandboxes.set_item(id, row)?;
        }
        out.set_item("sandboxes", sandboxes)?;
        let pools = PyDict::new(py);
        let provisioned = PyDict::new(py);
        for fv in 0..core.versions.len() as FvIdx {
            let v = &core.versions[fv as usize];
            let key = (&*core.functions[v.function as usize].name, &*v.version);
            if v.newest != NONE {
                pools.set_item(key, core.pool(fv).collect::<Vec<u64>>())?;
            }
            if v.provisioned > 0 {
                provisioned.set_item(key, (v.provisioned, v.provisioned_until_ms))?;
            }
        }
        out.set_item("pools", pools)?;
        out.set_item("provisioned", provisioned)?;
        let reserved = PyDict::new(py);
        let scale_up = PyDict::new(py);
        for f in &core.functions {
            if let Some(r) = f.reserved {
                reserved.set_item(&*f.name, r)?;
            }
            if !f.scale_up.is_empty() {
                scale_up.set_item(&*f.name, f.scale_up.clone())?;
            }
        }
        out.set_item("reserved", reserved)?;
        out.set_item("scale_up", scale_up)?;
        Ok(out)
    }
}

/// Where a journal reader stands in one partition: the next seq it expects, the newest epoch it saw, and
/// the head it reads against (records end before `end`; no epoch is newer than `head_epoch`).
struct RowCursor {
    partition: u32,
    expected: u64,
    prev_epoch: u64,
    head_epoch: u64,
    end: u64,
}

impl RowCursor {
    /// The payload of `row` when it passes every check of `journal.checker.Checker.check`, else `None`
    /// (also for a row of an unexpected shape: the caller's Python check then names what is wrong).
    fn accept<'py>(
        &self,
        row: &Bound<'py, PyAny>,
        kinds: &Bound<'py, PyFrozenSet>,
    ) -> Option<(u64, Bound<'py, PyBytes>)> {
        let row = row.cast::<PyTuple>().ok()?;
        if row.len() != 5 {
            return None;
        }
        let seq: u64 = row.get_item(0).ok()?.extract().ok()?;
        let epoch: u64 = row.get_item(1).ok()?.extract().ok()?;
        let kind = row.get_item(2).ok()?;
        let payload = row.get_item(3).ok()?;
        let crc: u32 = row.get_item(4).ok()?.extract().ok()?;
        if seq != self.expected || seq >= self.end || epoch < self.prev_epoch || epoch > self.head_epoch {
            return None;
        }
        let kind_str = kind.cast_exact::<PyString>().ok()?;
        if !kinds.contains(kind_str).ok()? {
            return None;
        }
        let kind_name = kind_str.to_str().ok()?;
        let payload = payload.cast_exact::<PyBytes>().ok()?;
        let bytes = payload.as_bytes();
        if bytes.is_empty() || record_crc(self.partition, seq, epoch, kind_name.as_bytes(), bytes) != crc {
            return None;
        }
        Some((epoch, payload.clone()))
    }
}

/// Recovery's hot loop for the journal (`journal.checker.Checker.check_rows` via `journal.native`): check the rows
/// `(seq, epoch, kind, payload, crc)` of `rows[start:]` in order — continuity from `expected`, before
/// `end`, a known `kind`, a non-empty bytes payload, epochs between `prev_epoch` and `head_epoch`, the
/// CRC — appending each good row's payload to `payloads`. Stops before the first row that fails and
/// returns `(rows_accepted, expected, prev_epoch)`; the caller re-checks that row in Python, which
/// names the exact fault.
#[pyfunction]
#[pyo3(signature = (rows, start, partition, expected, prev_epoch, head_epoch, end, kinds, payloads))]
#[allow(clippy::too_many_arguments)]
fn check_record_rows(
    rows: &Bound<'_, PyList>,
    start: usize,
    partition: u32,
    expected: u64,
    prev_epoch: u64,
    head_epoch: u64,
    end: u64,
    kinds: &Bound<'_, PyFrozenSet>,
    payloads: &Bound<'_, PyList>,
) -> PyResult<(usize, u64, u64)> {
    let mut cursor = RowCursor { partition, expected, prev_epoch, head_epoch, end };
    let mut accepted = 0;
    for index in start..rows.len() {
        let row = rows.get_item(index)?;
        let Some((epoch, payload)) = cursor.accept(&row, kinds) else {
            break;
        };
        payloads.append(payload)?;
        cursor.expected += 1;
        cursor.prev_epoch = epoch;
        accepted += 1;
    }
    Ok((accepted, cursor.expected, cursor.prev_epoch))
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<PyRecord>()?;
    m.add_class::<PyDecision>()?;
    m.add_class::<PyPartitionCore>()?;
    m.add_class::<PyWorkerView>()?;
    m.add_class::<PySandboxView>()?;
    m.add_function(wrap_pyfunction!(check_record_rows, m)?)?;
    m.add("DEFAULT_ACCOUNT_LIMIT", DEFAULT_ACCOUNT_LIMIT)?;
    m.add("CoreError", py.get_type::<CoreError>())?;
    m.add("InvalidArgument", py.get_type::<InvalidArgument>())?;
    m.add("InvalidState", py.get_type::<InvalidState>())?;
    m.add("UnknownWorker", py.get_type::<UnknownWorker>())?;
    m.add("UnknownSandbox", py.get_type::<UnknownSandbox>())?;
    m.add("UnknownLease", py.get_type::<UnknownLease>())?;
    m.add("StaleLease", py.get_type::<StaleLease>())?;
    m.add("NoCapacity", py.get_type::<NoCapacity>())?;
    m.add("InvalidRecord", py.get_type::<InvalidRecord>())?;
    m.add("CorruptSnapshot", py.get_type::<CorruptSnapshot>())?;
    Ok(())
}
