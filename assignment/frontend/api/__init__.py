"""The Lambda-compatible HTTP API (the REST paths boto3's ``lambda`` client uses) and the admin JSON API,
one module per resource.

``app`` assembles the application and answers errors; ``requests`` reads requests and ``documents`` builds
answers for every resource module: ``functions`` (and versions), ``invoke``, ``concurrency`` (reserved and
provisioned), ``event_configs``, ``event_sources`` (event source mappings), ``layers``, ``admin``, and
``sqs`` (the SQS JSON API on ``POST /``). List operations page with ``Marker`` / ``MaxItems`` and answer
``NextMarker`` when there is more. The frontend process imports :class:`LambdaHttpApi` from here.

Example::

    from assignment.frontend.api import LambdaHttpApi

    runner = web.AppRunner(LambdaHttpApi(registry, invoker, provisioner).app())
"""

from assignment.frontend.api.app import LambdaHttpApi
from assignment.frontend.api.context import EventSink
from assignment.frontend.api.requests import MAX_BODY_BYTES, REQUEST_ID

__all__ = ["MAX_BODY_BYTES", "REQUEST_ID", "EventSink", "LambdaHttpApi"]
