"""Leasehold's worker agent and sandboxes.

Data flow of an invocation::

    gRPC Invoke ──► service.py ──► agent.py (lease + busy checks) ──► sandbox.py ──► runtime_api.py
                                                                          │             ▲  GET /next, POST /response
                                                                          ▼             │
                                                             process tree (bwrap → prlimit → setpriv → runtime)
                                                             stdout/stderr pipe ──► logs.py (START/END/REPORT)

Modules, each with one job (arrows point down only):

- ``cli.py``: ``leasehold worker`` (flags, signals) → ``service.py`` + ``agent.py`` + ``registration.py``.
- ``service.py``: the ``leasehold.workers.v1.Worker`` gRPC servicer, health, reflection; the only module that
  maps between protobuf and the agent, and agent errors (``errors.py``) to status codes.
- ``agent.py``: the sandbox table, memory budget, lease-token and one-at-a-time rules, sandbox users,
  cleanup after a restart, heartbeats through a ``registration.Registrar``.
- ``templates.py``: snapshot-fork templates and the sandboxes forked from them.
- ``sandbox.py``: one sandbox's processes, confinement (bubblewrap, user, limits, /tmp), init, invoke,
  timeouts, crashes, restarts, output capture.
- ``runtime_api.py``: one sandbox's Lambda Runtime API (asyncio HTTP/1.1).
- ``code.py``: code packages and layers (zip safety, limits, content-hash cache).
- ``logs.py``: the CloudWatch-style lines.
- ``runtimes/``: what runs inside a sandbox (stdlib only): ``python_bootstrap.py`` (the built-in Python
  runtime), ``snapshot.py`` (the template side of snapshot-fork), ``snapshot_restore_py.py`` (AWS's hook API).
- ``v1/``: generated from ``proto/workers/v1/worker.proto``.
"""
