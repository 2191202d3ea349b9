"""The agent's errors, as values with names; ``workers/service.py`` maps each to one gRPC status code."""

from __future__ import annotations

__all__ = [
    "AgentError",
    "CapacityExhausted",
    "CredentialsExpiring",
    "InvalidRequest",
    "SandboxBusy",
    "SandboxExists",
    "SandboxNotFound",
    "ShuttingDown",
    "StaleLease",
]


class AgentError(Exception):
    """Base of every error the agent reports to its callers."""


class InvalidRequest(AgentError):
    """A malformed request or an unusable code package (INVALID_ARGUMENT)."""


class SandboxNotFound(AgentError):
    """No sandbox with that id on this worker (NOT_FOUND)."""


class SandboxExists(AgentError):
    """CreateSandbox with an id already in use (ALREADY_EXISTS)."""


class CapacityExhausted(AgentError):
    """Not enough free memory for the sandbox (RESOURCE_EXHAUSTED)."""


class StaleLease(AgentError):
    """A lease token older than the newest seen for the sandbox (FAILED_PRECONDITION)."""


class CredentialsExpiring(AgentError):
    """The sandbox's function credentials would expire before the invocation's deadline; the sandbox is
    retired and the caller gets a new one (FAILED_PRECONDITION, as for a lost sandbox)."""


class SandboxBusy(AgentError):
    """Another invocation is running in the sandbox (ABORTED)."""


class ShuttingDown(AgentError):
    """The agent is stopping (UNAVAILABLE)."""
