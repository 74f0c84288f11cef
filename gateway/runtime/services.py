"""What the gateway runs once its index is open, built together from the open database: none is ever missing.

`open_services` starts the background work that lives as long as the database does (learning, telemetry, the
backlog of writes, the listener for other gateways' lessons, retention, resuming cut-off workflows, embedding
what is not yet embedded) in the task group it is given, and returns the frozen bundle the runtime serves from.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.abc

from gateway.catalog import ToolCatalog
from gateway.config import GatewayConfig
from gateway.dag import Task
from gateway.dag.executor import Executor
from gateway.dag.state import TaskResult, WorkflowState
from gateway.db import Database
from gateway.db.notify import LearnedListener
from gateway.db.thresholds import StoredThresholds
from gateway.downstream import Supervisor
from gateway.downstream.user_servers import UserServers
from gateway.errors import GatewayError
from gateway.models import EpisodicEvent, ToolDef
from gateway.ports import Embedder
from gateway.runtime.calls import DagCalls
from gateway.runtime.jobs import Pruner
from gateway.runtime.lessons import Lessons
from gateway.sandbox import MontySandbox
from gateway.services import Indexer, SearchService
from gateway.services.auth import Authenticator, RateLimiter
from gateway.services.backlog import Backlog
from gateway.services.capabilities import CapabilityService
from gateway.services.capability_calls import acting_user
from gateway.services.code import CodeService, Tooling
from gateway.services.learning import LearningService
from gateway.services.planner import Planner
from gateway.services.secrets import SecretService
from gateway.services.sessions import SessionOwners
from gateway.services.telemetry import Telemetry
from gateway.services.user_servers import UserServerService
from gateway.services.workflows import WorkflowService, persisted
from gateway.settings import Settings
from gateway.vault import KeyRing, ReloadingKeyRing, load_keyring

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Shared:
    """What the runtime holds for its whole life and hands to the services."""

    settings: Settings
    config: GatewayConfig
    catalog: ToolCatalog
    supervisor: Supervisor
    telemetry: Telemetry
    backlog: Backlog
    limiter: anyio.CapacityLimiter
    on_indexed: Callable[[], None] = lambda: None
    """Told when the index holds a server's latest listing (`status` shows what is not indexed yet)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Services:
    """The use cases over one open database, and the task group their background work runs in."""

    db: Database
    embedder: Embedder
    indexer: Indexer
    search: SearchService
    learning: LearningService
    planner: Planner
    capabilities: CapabilityService
    calls: DagCalls
    workflows: WorkflowService
    code: CodeService
    user_servers: UserServerService
    sessions: SessionOwners
    auth: Authenticator
    limits: RateLimiter
    tg: anyio.abc.TaskGroup

    async def sync(self, server: str, tools: Sequence[ToolDef], shared: Shared) -> None:
        """Renew the word index, then index what `server` listed (waiting in the backlog through an outage): words
        first, so that a search finds a new tool by its wording while the database is slow, hung or away."""

        async def index() -> None:
            await self.indexer.sync(server, tools)
            self.search.vectors_changed()
            shared.catalog.indexed(server, tools)
            shared.on_indexed()

        try:
            await self.search.set_tools(shared.catalog.known.values())
            await shared.backlog.attempt(f"indexing the tools of {server}", index)
        except GatewayError:
            logger.exception("indexing the tools of %s failed", server)


async def open_services(db: Database, embedder: Embedder, shared: Shared, tg: anyio.abc.TaskGroup) -> Services:
    """Build the services over `db`, starting their background work in `tg` (cancelled before `db` closes)."""
    catalog, limiter = shared.catalog, shared.limiter
    learning = LearningService(store=db.learning, limiter=limiter, memory=db.memory, embedder=embedder)
    await tg.start(learning.run)
    await tg.start(shared.telemetry.run, db.learning)
    await tg.start(shared.backlog.run)
    await tg.start(LearnedListener(url=db.url, origin=db.learning.origin, on_change=learning.changed_elsewhere).run)
    search = SearchService(index=db.tools, embedder=embedder, limiter=limiter, statuses=shared.supervisor.statuses,
                           graph=lambda: learning.graph, reliability=learning.reliability, memory=db.memory,
                           servers=catalog.servers, unindexed=catalog.unindexed)
    planner = Planner(search=search, memory=db.memory, store=StoredThresholds(db.learning),
                      prior=lambda: learning.tool_prior)
    await planner.load()
    catalog.stored(await db.tools.all_tools())
    await search.set_tools(catalog.known.values())
    capabilities = CapabilityService(store=db.capabilities, edges=db.learning, embedder=embedder, limiter=limiter,
                                     tool_usage=learning.usage)
    async def embed(texts: list[str]) -> Any:
        return await anyio.to_thread.run_sync(embedder.embed, texts, limiter=limiter)

    own = UserServerService(store=db.user_servers, secrets=_secrets(db, shared.settings),
                            bin_dir=Path(sys.executable).parent, embed=embed)

    async def listed(user_id: str, server: str, tools: Sequence[ToolDef]) -> None:
        await shared.backlog.attempt(f"keeping the tools of a user's server {server}",
                                     functools.partial(own.remember, user_id, server, tools))

    instances = UserServers(resolve=own.resolve, on_tools=listed)
    await tg.start(instances.run)
    own.attach(instances)
    calls = DagCalls(supervisor=shared.supervisor, catalog=catalog, telemetry=shared.telemetry,
                     approval=shared.config.approval, capabilities=db.capabilities, user_servers=instances)
    lessons = Lessons(learning=learning, planner=planner, capabilities=capabilities, calls=calls.capabilities,
                      catalog=catalog, backlog=shared.backlog, telemetry=shared.telemetry,
                      successes=lambda code_hash, owner, run: db.workflows.code_successes(code_hash, owner=owner,
                                                                                          until=run))
    workflows = WorkflowService(store=db.workflows, executor=_executor(db, calls, shared.backlog),
                                schemas=calls.schemas, task_group=tg, on_finished=lessons,
                                resolve=calls.schemas_for, backlog=shared.backlog)
    code = await _code_mode(db, calls, search, lessons, workflows, shared, tg)
    settings = shared.settings
    return Services(
        db=db, embedder=embedder, indexer=Indexer(index=db.tools, embedder=embedder, limiter=limiter),
        search=search, learning=learning, planner=planner, capabilities=capabilities, calls=calls,
        workflows=workflows, code=code, user_servers=own, sessions=SessionOwners(db.users),
        auth=Authenticator(db.users),
        limits=RateLimiter(db.users, limit=settings.rate_limit, window_s=settings.rate_window_s), tg=tg,
    )


async def start_background(services: Services, shared: Shared) -> None:
    """Once serving: embed what is not embedded yet, continue cut-off workflows, prune, index what was listed."""
    tg = services.tg
    tg.start_soon(_embed_stored, services.indexer, services.search)
    tg.start_soon(services.workflows.resume_unfinished)
    await tg.start(Pruner(services.db.retention).run)
    for server, tools in shared.catalog.listings().items():
        tg.start_soon(services.sync, server, tools, shared)


def _secrets(db: Database, settings: Settings) -> SecretService:
    """Users' secrets, under the master keyring read when first needed and again after a rotation."""

    def load() -> KeyRing:
        return load_keyring(environ_value=settings.master_key, path=settings.keyring_path, create=False)

    return SecretService(store=db.secrets, keys=ReloadingKeyRing(load))


async def _code_mode(db: Database, calls: DagCalls, search: SearchService, lessons: Lessons,
                     workflows: WorkflowService, shared: Shared, tg: anyio.abc.TaskGroup) -> CodeService:
    """`execute_code` over a sandbox started in `tg`; programs learned as capabilities run through it too."""
    sandbox = MontySandbox()
    await tg.start(sandbox.run)

    async def find(query: str, limit: int) -> list[dict[str, Any]]:
        found = await search.search(query, limit=limit, user=acting_user.get())
        return [{"tool_id": h.tool_id, "description": h.description, "input_schema": h.input_schema,
                 "score": round(h.score, 4)} for h in found.hits]

    tooling = Tooling(call=calls.call, schema_of=calls.schema_of, search=find, tools=lambda: shared.catalog.known,
                      needs_approval=lambda tool: calls.needs_approval(Task(id="call", tool=tool)))
    code = CodeService(sandbox=sandbox, tooling=tooling, store=db.workflows, backlog=shared.backlog,
                       limits=shared.config.code, task_group=tg, teach=workflows.teach, learn=lessons.code)
    calls.capabilities.run_program = code.run_program
    return code


def _executor(db: Database, calls: DagCalls, backlog: Backlog) -> Executor:
    """An executor whose saves wait in the backlog through an outage (a workflow runs on in memory meanwhile)."""

    async def checkpoint(state: WorkflowState) -> None:
        if persisted(state.dag):
            await backlog.attempt(f"checkpointing workflow {state.workflow_id}", functools.partial(
                db.workflows.save_checkpoint, state.workflow_id, state.next_layer, state.to_json()))

    async def task_saved(state: WorkflowState, result: TaskResult) -> None:
        if persisted(state.dag):
            await backlog.attempt(f"saving task {result.id} of workflow {state.workflow_id}", functools.partial(
                db.workflows.save_task_result, state.workflow_id, result.id, result.to_json()))

    async def events(rows: Sequence[EpisodicEvent]) -> None:
        await backlog.attempt(f"recording {len(rows)} events of workflow {rows[0].workflow_id}",
                              lambda: db.workflows.record_events(rows))

    return Executor(call=calls.call, checkpoint=checkpoint, task_saved=task_saved, events=events,
                    needs_approval=calls.needs_approval, schema_of=calls.schema_of)


async def _embed_stored(indexer: Indexer, search: SearchService) -> None:
    try:
        if await indexer.embed_pending():
            search.vectors_changed()
    except GatewayError:
        logger.exception("embedding the stored tools failed")
