"""The Lambda HTTP API's response documents: function configurations, provisioned concurrency, async
settings, layer versions, list pages and timestamps, in AWS's shapes.

The resource modules of :mod:`assignment.frontend.api` build every answer body with these, so a document
one operation returns is the same in another (GetFunction's ``Configuration`` is CreateFunction's answer;
every event source mapping operation answers :func:`event_source_mapping`). ARNs come from the
:class:`~assignment.frontend.registry.Registry` passed in.

Example::

    doc = configuration(registry, version)
    found, doc = one_page(found, limit, lambda last: last.version)
    doc["Versions"] = [configuration(registry, v) for v in found]
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from assignment.frontend.api.logging_config import document as logging_document
from assignment.frontend.event_sources.mappings import Mapping as EventSourceMapping
from assignment.frontend.registry import LATEST, FunctionVersion, LayerVersion, Registry
from assignment.frontend.types import EventInvokeConfig

__all__ = [
    "b64_sha",
    "configuration",
    "event_config",
    "event_source_mapping",
    "layer_item",
    "layer_version",
    "one_page",
    "provisioned",
    "timestamp",
]

_T = TypeVar("_T")


def timestamp(ms: int) -> str:
    """AWS's ``LastModified`` / ``CreatedDate`` form of a time in ms: ``2024-05-01T12:00:00.000+0000``."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def b64_sha(hex_sha: str) -> str:
    """A hex SHA-256 as AWS's ``CodeSha256`` (base64)."""
    return base64.b64encode(bytes.fromhex(hex_sha)).decode()


def one_page(found: list[_T], limit: int, marker_of: Callable[[_T], str]) -> tuple[list[_T], dict[str, Any]]:
    """The first ``limit`` of ``found`` (read with one extra, to know whether there is more) and the start
    of the answer: ``{"NextMarker": ...}`` (``marker_of`` the page's last item) when there is more."""
    if len(found) > limit:
        found = found[:limit]
        return found, {"NextMarker": marker_of(found[-1])}
    return found, {}


def configuration(registry: Registry, version: FunctionVersion) -> dict[str, Any]:
    """The FunctionConfiguration document of a version."""
    spec = version.spec
    qualified = None if version.version == LATEST else version.version
    doc: dict[str, Any] = {
        "FunctionName": version.name,
        "FunctionArn": registry.function_arn(version.name, qualified),
        "Runtime": spec.runtime,
        "Role": spec.role,
        "Handler": spec.handler,
        "CodeSize": version.code_size,
        "Description": spec.description,
        "Timeout": spec.timeout_s,
        "MemorySize": spec.memory_mb,
        "LastModified": timestamp(version.modified_ms),
        "CodeSha256": b64_sha(version.code_sha256),
        "Version": version.version,
        "TracingConfig": {"Mode": spec.tracing_mode},
        "RevisionId": version.revision_id,
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "PackageType": "Zip",
        "Architectures": ["x86_64"],
        "EphemeralStorage": {"Size": spec.ephemeral_storage_mb},
        "SnapStart": {
            "ApplyOn": "PublishedVersions" if spec.snap_start else "None",
            "OptimizationStatus": "On" if spec.snap_start and qualified else "Off",
        },
    }
    if spec.environment:
        doc["Environment"] = {"Variables": dict(spec.environment)}
    if spec.layers:
        doc["Layers"] = [{"Arn": layer.arn, "CodeSize": layer.size} for layer in spec.layers]
    if spec.dead_letter_target:
        doc["DeadLetterConfig"] = {"TargetArn": spec.dead_letter_target}
    doc["LoggingConfig"] = logging_document(spec.logging, version.name)
    return doc


def provisioned(status: Mapping[str, Any], count: int, modified_ms: int) -> dict[str, Any]:
    """A provisioned concurrency config document: ``count`` requested, ``status`` the
    :meth:`~assignment.frontend.provisioning.Provisioner.status` of the version."""
    doc: dict[str, Any] = {
        "RequestedProvisionedConcurrentExecutions": count,
        "AllocatedProvisionedConcurrentExecutions": status["allocated"],
        "AvailableProvisionedConcurrentExecutions": status["allocated"],
        "Status": status["status"],
        "LastModified": timestamp(modified_ms),
    }
    if status["reason"]:
        doc["StatusReason"] = status["reason"]
    return doc


def event_config(function_arn: str, config: EventInvokeConfig, modified_ms: int) -> dict[str, Any]:
    """The FunctionEventInvokeConfig document of a version's async settings."""
    destinations: dict[str, Any] = {}
    if config.on_success:
        destinations["OnSuccess"] = {"Destination": config.on_success}
    if config.on_failure:
        destinations["OnFailure"] = {"Destination": config.on_failure}
    return {
        "LastModified": modified_ms / 1000,
        "FunctionArn": function_arn,
        "MaximumRetryAttempts": config.maximum_retry_attempts,
        "MaximumEventAgeInSeconds": config.maximum_event_age_s,
        "DestinationConfig": destinations,
    }


def layer_version(registry: Registry, layer: LayerVersion) -> dict[str, Any]:
    """The PublishLayerVersion / GetLayerVersion document of a layer version."""
    return {
        "Content": {
            "Location": f"leasehold://code/{layer.sha256}",
            "CodeSha256": b64_sha(layer.sha256),
            "CodeSize": layer.size,
        },
        "LayerArn": registry.layer_arn(layer.name),
        **layer_item(layer),
    }


def layer_item(layer: LayerVersion) -> dict[str, Any]:
    """The LayerVersionsListItem document of a layer version (LicenseInfo only when it has one)."""
    doc: dict[str, Any] = {
        "LayerVersionArn": layer.arn,
        "Version": layer.version,
        "Description": layer.description,
        "CreatedDate": timestamp(layer.created_ms),
        "CompatibleRuntimes": list(layer.runtimes),
        "CompatibleArchitectures": list(layer.architectures),
    }
    if layer.license_info:
        doc["LicenseInfo"] = layer.license_info
    return doc


def event_source_mapping(registry: Registry, mapping: EventSourceMapping) -> dict[str, Any]:
    """The EventSourceMappingConfiguration document of an SQS mapping, with the members AWS returns for
    one (no stream, Kafka, MQ or DocumentDB members). ``LastModified`` is epoch seconds, a number, as AWS
    sends it; ScalingConfig, FilterCriteria and LastProcessingResult only when set."""
    settings = mapping.settings
    doc: dict[str, Any] = {
        "UUID": mapping.uuid,
        "BatchSize": settings.batch_size,
        "MaximumBatchingWindowInSeconds": settings.batching_window_s,
        "EventSourceArn": mapping.source_arn,
        "FunctionArn": registry.function_arn(mapping.function_name, mapping.qualifier or None),
        "LastModified": mapping.modified_ms / 1000,
        "State": mapping.state,
        "StateTransitionReason": mapping.state_reason,
        "FunctionResponseTypes": list(settings.response_types),
        "EventSourceMappingArn": f"arn:aws:lambda:{registry.region}:{registry.account}:event-source-mapping:"
        f"{mapping.uuid}",
    }
    if settings.max_concurrency is not None:
        doc["ScalingConfig"] = {"MaximumConcurrency": settings.max_concurrency}
    if settings.filter_criteria:
        doc["FilterCriteria"] = json.loads(settings.filter_criteria)
    if mapping.last_result:
        doc["LastProcessingResult"] = mapping.last_result
    return doc
