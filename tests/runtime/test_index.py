"""The index opens in the background; while Postgres cannot be reached it says why and searches by wording."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from gateway.catalog import ToolCatalog
from gateway.config import GatewayConfig
from gateway.downstream import Supervisor
from gateway.errors import DatabaseError
from gateway.models import ToolDef
from gateway.runtime.index import Index
from gateway.runtime.services import Shared
from gateway.services.backlog import Backlog
from gateway.services.telemetry import Telemetry
from gateway.settings import Settings

pytestmark = pytest.mark.anyio

UNREACHABLE = "postgresql://nobody@127.0.0.1:1/nothing?connect_timeout=2"


def shared(settings: Settings, catalog: ToolCatalog) -> Shared:
    async def nothing(*_: object) -> None:
        return None

    return Shared(settings=settings, config=GatewayConfig(), catalog=catalog,
                  supervisor=Supervisor(servers=(), on_tools=nothing, on_status=nothing), telemetry=Telemetry(),
                  backlog=Backlog(), limiter=anyio.CapacityLimiter(2))


async def test_an_unreachable_postgres_is_named_and_the_listed_tools_are_found_by_wording(tmp_path: Path) -> None:
    catalog = ToolCatalog(servers=["time"])
    catalog.listed("time", [ToolDef(server="time", name="get_current_time", description="Get the current time",
                                    input_schema={"type": "object"})])
    standby = anyio.Event()
    changes: list[str] = []

    def changed() -> None:
        changes.append(index.state())
        if index.standby is not None:
            standby.set()

    index = Index(shared(Settings(database_url=UNREACHABLE, data_dir=tmp_path), catalog), on_change=changed)
    assert index.state() == "opening"
    async with anyio.create_task_group() as tg:
        tg.start_soon(index.keep_open)
        with anyio.fail_after(60):
            await standby.wait()  # the model loads once the database has failed
        with pytest.raises(DatabaseError, match="the tool index is not available: cannot reach Postgres"):
            await index.services()
        assert index.standby is not None
        found = await index.standby.search("what time is it", limit=1, server=None)
        tg.cancel_scope.cancel()
    assert changes[0].startswith("unavailable: cannot reach Postgres") and len(changes) == 2
    assert [hit.tool_id for hit in found.hits] == ["time:get_current_time"]
