"""Finding for a request: tools and learned capabilities together, and the capability that serves an intent."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

from gateway.errors import DatabaseUnavailableError
from gateway.runtime.services import Services
from gateway.services import SearchResult
from gateway.services.capabilities import CapabilityMatch
from gateway.services.telemetry import SEARCH_LATENCY, Telemetry, ms_since

CAPABILITY_HITS = 3
"""Capabilities a search returns beside its tools, at most."""


async def search(services: Services, telemetry: Telemetry, query: str, *, limit: int, server: str | None,
                 context: Sequence[str], include_related: bool, user: str | None) -> SearchResult:
    """The ranked tools for `query`, with the capabilities (of those `user` may see) that match it; while the
    database is unreachable, the tools alone, and a warning that says so."""
    started = time.perf_counter()
    result = await services.search.search(query, limit=limit, server=server, context=context,
                                          include_related=include_related, user=user)
    matches: list[CapabilityMatch] = []
    if result.degraded is None:  # capabilities live in the database only
        vector = await services.search.embed_query(query)
        try:
            matches = await services.capabilities.match(vector, limit=min(limit, CAPABILITY_HITS), server=server,
                                                        user=user)
        except DatabaseUnavailableError as exc:  # gone since the tools were ranked
            result = dataclasses.replace(result, degraded=f"learned capabilities left out: {exc}")
    telemetry.observe(SEARCH_LATENCY, ms_since(started))
    return dataclasses.replace(result, capabilities=matches)


async def capability_for(services: Services, intent: str, *, user: str | None = None
                         ) -> tuple[CapabilityMatch, list[CapabilityMatch]] | None:
    """The learned capability (of those `user` may see) that serves `intent` when its score passes the adaptive
    suggestion threshold, with the runners-up."""
    vector = await services.search.embed_query(intent)
    matches = await services.capabilities.match(vector, limit=CAPABILITY_HITS, user=user)
    if not matches or matches[0].score < services.planner.thresholds.suggestion:
        return None
    return matches[0], matches[1:]
