"""Event source mappings: a queue feeding a function.

:mod:`~assignment.frontend.event_sources.mappings` stores the mappings and the pollers' leases;
the pollers (in every frontend) receive batches, invoke the function and delete what it processed.
"""
