"""The running gateway behind the MCP face: the index, the supervisor, workflows and learning, wired together.

It opens the database in the background (the client is answered at once), routes calls to known tools before
their servers are up, keeps the index and the word index in step with the servers, and feeds every finished
workflow to the learning path. If the database cannot be opened it keeps serving the proxy path and answers
searches with the reason, rather than dying.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

import anyio
import anyio.abc
import anyio.to_thread
import mcp_types as types

from gateway.catalog import NameTable
from gateway.config import GatewayConfig, Settings
from gateway.dag import Dag, Task
from gateway.dag.executor import Executor
from gateway.dag.state import WorkflowState
from gateway.db import Database, open_database
from gateway.db.capabilities import node_id
from gateway.db.notify import LearnedListener
from gateway.db.thresholds import StoredThresholds
from gateway.downstream import Supervisor
from gateway.downstream.outputs import to_output
from gateway.embed import load_embedder
from gateway.errors import DatabaseError, DatabaseUnavailableError, GatewayError, ServerUnavailableError
from gateway.graph.view import render_html
from gateway.models import EpisodicEvent, ServerState, ServerStatus, ToolDef, ToolOutput
from gateway.ports import Ask, Cancelled, Embedder, Progress
from gateway.runstate import RunFile
from gateway.server import capability_tools as caps
from gateway.services import Indexer, SearchResult, SearchService
from gateway.services.auth import Authenticator, Principal, RateLimiter
from gateway.services.backlog import Backlog
from gateway.services.capabilities import CapabilityMatch, CapabilityService, labelled_view
from gateway.services.capability_calls import CapabilityCalls
from gateway.services.learning import LearningService
from gateway.services.planner import Planner
from gateway.services.suggest import Suggestion
from gateway.services.telemetry import (
    CALL_LATENCY,
    RESTARTS,
    SEARCH_LATENCY,
    STATE_CHANGES,
    WORKFLOW_WALL,
    WORKFLOWS,
    Telemetry,
    ms_since,
)
from gateway.services.workflows import WorkflowService, needs_approval, persisted

logger = logging.getLogger(__name__)

READY_TIMEOUT_S = 60.0
OPEN_RETRY_FIRST_S = 1.0
OPEN_RETRY_MAX_S = 30.0
ROUTE_WAIT_S = 30.0
LIST_WAIT_S = 5.0
CPU_THREADS = 2
LEARNED_WAIT_S = 2.0
"""Capabilities are read once what the workflows just finished teach is learned, waiting at most this long."""
CAPABILITY_HITS = 3
"""Capabilities a search returns beside its tools, at most."""
SESSIONS_KEPT = 10_000
"""HTTP session owners kept in memory (for when the database cannot say)."""
PRUNE_DELAY_S = 60.0
"""The first retention prune waits this long after the index opens (start-up work goes first)."""
PRUNE_INTERVAL_S = 6 * 3600.0
"""Then the retention policies are applied again this often."""


class Runtime:
    """The running gateway behind the MCP face (implements `GatewayBackend`)."""

    def __init__(self, *, settings: Settings, config: GatewayConfig,
                 on_tools_changed: Callable[[], Coroutine[Any, Any, None]] | None = None) -> None:
        """`on_tools_changed` is told when a server's tools change (clients that list them re-list)."""
        self.names = NameTable()
        self.expose = config.expose
        self._on_tools_changed = on_tools_changed
        self._settings = settings
        self._config = config
        self._ready = anyio.Event()
        self._failure: str | None = None
        self._db: Database | None = None
        self._search: SearchService | None = None
        self._standby: SearchService | None = None
        """Search by wording while the index has never been opened (the database not reached yet)."""
        self._loaded_embedder: Embedder | None = None
        self._indexer: Indexer | None = None
        self._workflows: WorkflowService | None = None
        self._learning: LearningService | None = None
        self._planner: Planner | None = None
        self._capabilities: CapabilityService | None = None
        self._calls: CapabilityCalls | None = None
        self._auth: Authenticator | None = None
        self._limits: RateLimiter | None = None
        self._sub_executor: Executor | None = None
        self._listed: dict[str, Sequence[ToolDef]] = {}
        self._stored: dict[str, list[ToolDef]] = {}
        self._known: dict[str, ToolDef] = {}
        self._schemas: dict[str, dict[str, Any]] = {}
        self._settled = False
        self._limiter = anyio.CapacityLimiter(CPU_THREADS)
        self._tg: anyio.abc.TaskGroup | None = None
        self.telemetry = Telemetry()
        self._backlog = Backlog()
        self._owners: OrderedDict[str, str] = OrderedDict()
        self._unrecorded: set[str] = set()
        self.supervisor = Supervisor(servers=config.servers, on_tools=self._on_tools, on_status=self._on_status)
        self._runfile = RunFile(settings.data_dir)

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Start the supervisor, report started at once, then open the index; runs until cancelled.

        A Postgres that cannot be reached yet (a shared one starting after the gateway, say) is tried again,
        `OPEN_RETRY_FIRST_S` doubling to `OPEN_RETRY_MAX_S`; proxied calls work meanwhile, and the meta-tools say
        why they cannot. Other failures (a missing extension, a failed migration, a locked data directory) are
        not retried: they need the user.
        """
        try:
            await self._run(task_status)
        finally:
            self._runfile.remove()

    async def _run(self, task_status: anyio.abc.TaskStatus[None]) -> None:
        async with anyio.create_task_group() as tg:
            self._tg = tg
            await tg.start(self.supervisor.run)
            self._publish()
            task_status.started()
            delay = OPEN_RETRY_FIRST_S
            while True:
                unreachable = False
                try:
                    await self._serve_index(tg)
                except* DatabaseUnavailableError as failed:
                    self._fail(f"{_first_leaf(failed)} (the gateway keeps trying to reach it)")
                    unreachable = True
                except* GatewayError as failed:
                    self._fail(str(_first_leaf(failed)))
                if unreachable and self._standby is None and self._search is None:
                    await self._open_standby()
                if not unreachable:
                    await anyio.sleep_forever()
                logger.info("trying to open the tool index again in %.0f s", delay)
                await anyio.sleep(delay)
                delay = min(delay * 2, OPEN_RETRY_MAX_S)

    async def _open_standby(self) -> None:
        """A search by wording over the listed tools, for while the index has never been opened."""
        try:
            embedder = await self._embedder()
        except GatewayError:
            logger.exception("no search by wording while the database is away: the embedding model did not load")
            return
        standby = SearchService(index=None, embedder=embedder, limiter=self._limiter,
                                statuses=self.supervisor.statuses, servers=self.active_servers())
        await standby.set_tools(self.known_tools().values())
        self._standby = standby  # from here on, servers listing their tools update it
        await standby.set_tools(self.known_tools().values())  # those listed while it was built (else a no-op)

    async def _embedder(self) -> Embedder:
        if self._loaded_embedder is None:
            self._loaded_embedder = await anyio.to_thread.run_sync(
                lambda: load_embedder(self._settings.model_dir, threads=self._settings.embed_threads))
        return self._loaded_embedder

    async def _serve_index(self, tg: anyio.abc.TaskGroup) -> None:
        async with open_database(url=self._settings.database_url, pgdata=self._settings.pgdata,
                                 share_running=True) as db:
            try:
                # What uses the database runs in this group, so that a shutdown cancels it and waits for
                # it (an embedding batch ending in its thread, a last write) before the pool closes.
                async with anyio.create_task_group() as with_db:
                    self._tg = with_db
                    await self._open_index(db)
                    await anyio.sleep_forever()
            finally:
                self._tg, self._indexer = tg, None  # late callbacks (a server stopping) start nothing here
                await db.tools.record_stopped(self.supervisor.statuses())
                await self.telemetry.close(db.learning)

    async def search(
        self, query: str, *, limit: int, server: str | None, context: Sequence[str] = (),
        include_related: bool = False, user: str | None = None,
    ) -> SearchResult:
        if (standby := self._standby) is not None:
            return await standby.search(query, limit=limit, server=server, context=context,
                                        include_related=include_related)
        await self._wait_ready()
        assert self._search is not None and self._capabilities is not None
        started = time.perf_counter()
        result = await self._search.search(query, limit=limit, server=server, context=context,
                                           include_related=include_related)
        matches: list[CapabilityMatch] = []
        if result.degraded is None:  # capabilities live in the database only
            await self._learned()
            vector = await self._search.embed_query(query)
            try:
                matches = await self._capabilities.match(vector, limit=min(limit, CAPABILITY_HITS), server=server,
                                                         user=user)
            except DatabaseUnavailableError as exc:  # gone since the tools were ranked
                result = dataclasses.replace(result, degraded=f"learned capabilities left out: {exc}")
        self.telemetry.observe(SEARCH_LATENCY, ms_since(started))
        return dataclasses.replace(result, capabilities=matches)

    async def suggest_capability(
        self, intent: str, *, user: str | None = None
    ) -> tuple[CapabilityMatch, list[CapabilityMatch]] | None:
        """The learned capability (of those `user` may see) that serves `intent` when its score passes the
        adaptive suggestion threshold, with the runners-up."""
        await self._wait_ready()
        assert self._search is not None and self._capabilities is not None and self._planner is not None
        vector = await self._search.embed_query(intent)
        matches = await self._capabilities.match(vector, limit=CAPABILITY_HITS, user=user)
        if not matches or matches[0].score < self._planner.thresholds.suggestion:
            return None
        return matches[0], matches[1:]

    async def suggest(self, intent: str) -> tuple[Suggestion, bool]:
        """A suggested DAG for `intent`, and whether it passes the adaptive suggestion threshold."""
        await self._wait_ready()
        assert self._planner is not None
        suggestion = await self._planner.suggest(intent)
        return suggestion, self._planner.above_threshold(suggestion)

    async def call_tool(self, server: str, tool: str, arguments: dict[str, Any] | None, *,
                        progress: Progress | None = None, ask: Ask | None = None) -> types.CallToolResult:
        with self.telemetry.timed(CALL_LATENCY, tool=f"{server}:{tool}", outcome="error") as labels:
            result = await self.supervisor.call_tool(server, tool, arguments, progress=progress, ask=ask)
            labels["outcome"] = "error" if result.is_error else "ok"
        return result

    async def resolve(self, name: str) -> tuple[str, str] | None:
        """Wait for the stored routes, then for the servers to settle, before calling a name unknown."""
        with anyio.move_on_after(ROUTE_WAIT_S):
            await self._ready.wait()
            if (route := self.names.resolve(name)) is not None:
                return route
            with contextlib.suppress(ServerUnavailableError):
                await self.supervisor.wait_settled(ROUTE_WAIT_S)
        return self.names.resolve(name)

    async def listed_tools(self) -> Mapping[str, ToolDef]:
        """Every tool by id, once the stored routes are loaded (waiting at most `LIST_WAIT_S` at start-up)."""
        with anyio.move_on_after(LIST_WAIT_S):
            await self._ready.wait()
        return self.known_tools()

    def active_servers(self) -> frozenset[str]:
        return frozenset(s.name for s in self._config.servers if not s.disabled)

    def listed_schemas(self) -> Mapping[str, dict[str, Any]]:
        """Input schema by tool id (read-only; rebuilt when a server's tools change)."""
        return self._schemas

    def known_tools(self) -> Mapping[str, ToolDef]:
        """Every tool by id: as its server listed it this run, else as the index stored it (read-only)."""
        return self._known

    def _refresh_known(self) -> None:
        """Rebuild the tool maps once per change of a server's tools, not once per lookup on the call path."""
        by_id = {t.tool_id: t for tools in self._stored.values() for t in tools}
        by_id.update({t.tool_id: t for tools in self._listed.values() for t in tools})
        self._known = by_id
        self._schemas = {tool_id: tool.input_schema for tool_id, tool in by_id.items()}

    async def execute_dag(self, document: dict[str, Any], *, owner: str | None = None,
                          progress: Progress | None = None, cancelled: Cancelled | None = None) -> WorkflowState:
        await self._wait_ready()
        assert self._workflows is not None
        return await self._workflows.execute(document, owner=owner, progress=progress, cancelled=cancelled)

    async def control_workflow(
        self, workflow_id: str, action: str, *, approved: bool | None, tasks: Any, owner: str | None = None,
        progress: Progress | None = None, cancelled: Cancelled | None = None,
    ) -> WorkflowState:
        await self._wait_ready()
        assert self._workflows is not None
        return await self._workflows.control(workflow_id, action, approved=approved, tasks=tasks, owner=owner,
                                             progress=progress, cancelled=cancelled)

    async def _call_for_dag(self, tool_id: str, arguments: dict[str, Any], timeout_s: float) -> ToolOutput:
        if tool_id not in self._known and self._calls is not None:
            return await self._calls.call(tool_id, arguments, timeout_s)
        server, _, tool = tool_id.partition(":")
        if not self._settled:  # a DAG sent at start-up waits for its servers first, once
            with contextlib.suppress(ServerUnavailableError):
                await self.supervisor.wait_settled(ROUTE_WAIT_S)
                self._settled = True
        with self.telemetry.timed(CALL_LATENCY, tool=tool_id, outcome="error") as labels:
            output = to_output(await self.supervisor.call_tool(server, tool, arguments, timeout_s=timeout_s))
            labels["outcome"] = "error" if output.is_error else "ok"
        return output

    async def _checkpoint(self, state: WorkflowState) -> None:
        if self._db is not None and persisted(state.dag):
            await self._db.workflows.save_checkpoint(state.workflow_id, state.next_layer, state.to_json())

    async def _run_sub_dag(self, dag: Dag) -> WorkflowState:
        """Run a capability's DAG to its end, without checkpoints (its calling task is the unit of resumption)."""
        assert self._sub_executor is not None
        return await self._sub_executor.advance(WorkflowState(workflow_id=f"cap_{uuid.uuid4().hex[:16]}", dag=dag))

    def _needs_approval(self, tool_id: str) -> bool:
        """A destructive or listed tool, or a capability that calls one."""
        known = self.known_tools()
        if tool_id in known or self._calls is None or (row := self._calls.known(tool_id)) is None:
            return needs_approval(known.get(tool_id), self._config.approval)
        return any(needs_approval(known.get(t), self._config.approval) for t in row.tools)

    def _schema_of(self, tool_id: str) -> dict[str, Any] | None:
        if (schema := self._schemas.get(tool_id)) is not None or self._calls is None:
            return schema
        row = self._calls.known(tool_id)
        return row.parameters_schema if row is not None else None

    def _executor(self, db: Database) -> Executor:
        def approval(task: Task) -> bool:
            return self._needs_approval(task.tool)

        self._sub_executor = Executor(call=self._call_for_dag, checkpoint=_nothing, schema_of=self._schema_of)

        async def events(rows: Sequence[EpisodicEvent]) -> None:
            await self._backlog.attempt(f"recording {len(rows)} events of workflow {rows[0].workflow_id}",
                                        lambda: db.workflows.record_events(rows))

        return Executor(call=self._call_for_dag, checkpoint=self._checkpoint, events=events,
                        needs_approval=approval, schema_of=self._schema_of)

    async def _open_index(self, db: Database) -> None:
        embedder = await self._embedder()
        self._db = db
        self._indexer = Indexer(index=db.tools, embedder=embedder, limiter=self._limiter)
        assert self._tg is not None
        learning = LearningService(store=db.learning, limiter=self._limiter, memory=db.memory, embedder=embedder)
        await self._tg.start(learning.run)
        await self._tg.start(self.telemetry.run, db.learning)
        await self._tg.start(self._backlog.run)
        await self._tg.start(LearnedListener(url=db.url, origin=db.learning.origin,
                                             on_change=learning.changed_elsewhere).run)
        self._search = SearchService(
            index=db.tools, embedder=embedder, limiter=self._limiter, statuses=self.supervisor.statuses,
            graph=lambda: learning.graph, reliability=learning.reliability, memory=db.memory,
            servers=self.active_servers(),
        )
        self._planner = Planner(search=self._search, memory=db.memory, store=StoredThresholds(db.learning),
                                prior=lambda: learning.tool_prior)
        await self._planner.load()
        await self._load_stored(db)
        await self._search.set_tools(self.known_tools().values())
        self._learning = learning
        self._capabilities = CapabilityService(store=db.capabilities, edges=db.learning, embedder=embedder,
                                               limiter=self._limiter, tool_usage=learning.usage)
        self._calls = CapabilityCalls(store=db.capabilities, schemas=self.listed_schemas, run_dag=self._run_sub_dag)
        self._auth = Authenticator(db.users)
        self._limits = RateLimiter(db.users, limit=self._settings.rate_limit, window_s=self._settings.rate_window_s)
        self._workflows = WorkflowService(
            store=db.workflows, executor=self._executor(db), schemas=self.listed_schemas, task_group=self._tg,
            on_finished=self._learn, resolve=self._calls.schemas_for, backlog=self._backlog,
        )
        self._failure, self._standby = None, None
        self._ready.set()
        self._publish()
        logger.info("index ready (%s, model %s)", db.location, embedder.model_id)
        for status in self.supervisor.statuses():  # those that changed before the database could be written
            self._tg.start_soon(self._record_status, status)
        self._tg.start_soon(self._embed_stored)
        self._tg.start_soon(self._workflows.resume_unfinished)
        self._tg.start_soon(self._prune_periodically, db)
        for server, tools in list(self._listed.items()):
            self._tg.start_soon(self._sync, server, tools)

    async def _load_stored(self, db: Database) -> None:
        """Route calls to known tools before their servers are up.

        Tools of servers this gateway does not run (disabled here, or another gateway's on a shared database)
        stay stored, nothing is deleted, but they are neither routed nor found by this gateway's searches.
        """
        active = self.active_servers()
        for tool in await db.tools.all_tools():
            if tool.server in active:
                self._stored.setdefault(tool.server, []).append(tool)
        for server, tools in self._stored.items():
            if server not in self._listed:
                self.names.set_server(server, [t.name for t in tools])
        self._refresh_known()

    async def _embed_stored(self) -> None:
        assert self._indexer is not None
        try:
            await self._indexer.embed_pending()
        except GatewayError:
            logger.exception("embedding the stored tools failed")

    async def _prune_periodically(self, db: Database) -> None:
        """Apply the retention policies `PRUNE_DELAY_S` after start, then every `PRUNE_INTERVAL_S`; a failed
        round is logged and the next one comes all the same."""
        await anyio.sleep(PRUNE_DELAY_S)
        while True:
            try:
                deleted = await db.retention.prune()
                logger.info("pruned: %s", ", ".join(f"{table} {count}" for table, count in deleted.items()))
            except GatewayError:
                logger.exception("pruning the database failed")
            await anyio.sleep(PRUNE_INTERVAL_S)

    async def _on_tools(self, server: str, tools: Sequence[ToolDef]) -> None:
        changed = self._listed.get(server, self._stored.get(server)) != list(tools)
        self._listed[server] = list(tools)
        self.names.set_server(server, [t.name for t in tools])
        self._refresh_known()
        if changed and self._on_tools_changed is not None and self._tg is not None:
            self._tg.start_soon(self._on_tools_changed)
        if self._ready.is_set() and self._indexer is not None and self._tg is not None:
            self._tg.start_soon(self._sync, server, list(tools))
        elif (standby := self._standby) is not None and self._tg is not None:
            self._tg.start_soon(standby.set_tools, list(self.known_tools().values()))

    async def _sync(self, server: str, tools: Sequence[ToolDef]) -> None:
        assert self._indexer is not None and self._search is not None
        indexer = self._indexer
        try:
            await self._backlog.attempt(f"indexing the tools of {server}", lambda: indexer.sync(server, tools))
            await self._search.set_tools(self.known_tools().values())
        except GatewayError:
            logger.exception("indexing the tools of %s failed", server)

    async def _learn(self, state: WorkflowState) -> None:
        self.telemetry.count(WORKFLOWS, status=state.status.value)
        self.telemetry.observe(WORKFLOW_WALL, state.wall_ms, status=state.status.value)
        assert self._learning is not None and self._planner is not None and self._capabilities is not None
        assert self._calls is not None
        learning, capabilities, backlog = self._learning, self._capabilities, self._backlog
        named = self._calls.with_stable_names(state, lambda row: node_id(row.id))
        await backlog.attempt(f"learning the graph from workflow {state.workflow_id}", lambda: learning.record(named))
        await backlog.attempt(f"remembering the intent of workflow {state.workflow_id}",
                              lambda: learning.remember(named))
        await self._planner.observe(state)  # keeps its thresholds in memory when the database is away
        as_capability = self._calls.with_stable_names(state, lambda row: str(row.id))
        known = self.known_tools()
        await backlog.attempt(f"registering workflow {state.workflow_id} as a capability",
                              lambda: capabilities.register(as_capability, known))

    async def finish(self, timeout_s: float) -> None:
        """Before a shutdown: let what the finished workflows teach be learned (at most `timeout_s`), and say in
        the log which lessons a shutdown now cuts off. New calls are no longer read by then."""
        if self._workflows is None:
            return
        left = await self._workflows.learned(timeout_s)
        if left:
            logger.error("shutting down before learning from %d workflows (%s): what they taught is lost",
                         len(left), ", ".join(left[:10]))

    async def _learned(self) -> None:
        """Wait (bounded) for the lessons of workflows just finished, so capability counts include them."""
        if self._workflows is not None:
            await self._workflows.learned(LEARNED_WAIT_S)

    async def capabilities(
        self, action: str, arguments: dict[str, Any], *, user: str | None = None
    ) -> types.CallToolResult:
        await self._wait_ready()
        assert self._capabilities is not None
        service = self._capabilities
        await self._learned()
        if action == caps.CAP_LIST:
            offset = int(arguments.get("offset", 0))
            rows, total = await service.list(pattern=arguments.get("pattern"), offset=offset,
                                             unnamed_only=bool(arguments.get("unnamed_only", False)),
                                             limit=int(arguments.get("limit", 50)), user=user)
            return caps.list_result(rows, total, offset)
        if action == caps.CAP_RENAME:
            row = await service.rename(arguments["name"], namespace=arguments.get("namespace"),
                                       action=arguments.get("action"), description=arguments.get("description"),
                                       tags=arguments.get("tags"), visibility=arguments.get("visibility"), user=user)
            return caps.one_result("renamed to", row)
        row = await service.merge(arguments["source"], arguments["target"], user=user,
                                  prefer_source_code=bool(arguments.get("prefer_source_code", False)))
        return caps.one_result("merged into", row)

    async def authenticate(self, authorization: str | None) -> Principal:
        """The principal of an HTTP request's API key (`AuthenticationError` if there is none that holds)."""
        await self._wait_ready()
        assert self._auth is not None
        return await self._auth.authenticate(authorization)

    async def check(self, principal: Principal) -> float | None:
        """None when the key may go on, else the seconds left in its rate-limit window."""
        assert self._limits is not None
        return await self._limits.check(principal)

    async def session_opened(self, session_id: str, principal: Principal) -> None:
        """Record who opened an HTTP session; while the database is unreachable, in memory only (sessions live
        in this process anyway)."""
        assert self._db is not None
        self._owners[session_id] = principal.user_id
        if len(self._owners) > SESSIONS_KEPT:
            forgotten, _ = self._owners.popitem(last=False)
            self._unrecorded.discard(forgotten)
        try:
            await self._db.users.open_session(session_id, principal.user_id)
        except DatabaseUnavailableError as exc:
            logger.warning("session %s... of %s kept in memory only: %s", session_id[:8], principal.username, exc)
            self._unrecorded.add(session_id)

    async def session_owner(self, session_id: str) -> str | None:
        """Who may use this session: as stored (expired or revoked: None); as opened here when the database could
        not store it, or cannot answer now."""
        assert self._db is not None
        try:
            owner = await self._db.users.session_owner(session_id)
        except DatabaseUnavailableError:
            if session_id not in self._owners:
                raise
            return self._owners[session_id]
        return self._owners.get(session_id) if owner is None and session_id in self._unrecorded else owner

    def metrics_text(self) -> str:
        """The gateway's metrics in Prometheus text format."""
        return self.telemetry.prometheus()

    async def graph_page(self) -> str:
        """The learned graph as a self-contained HTML page."""
        await self._wait_ready()
        assert self._learning is not None and self._db is not None
        return render_html(await labelled_view(self._learning.graph, self._db.capabilities, self._limiter))

    def record_error(self, kind: str, message: str, stack: str | None) -> None:
        """Keep an error answered to a client in ``error_log`` (queued; written by the telemetry task)."""
        self.telemetry.error(kind, message, stack)

    async def _on_status(self, status: ServerStatus) -> None:
        self._publish()
        self.telemetry.count(STATE_CHANGES, server=status.name, state=status.state.value)
        if status.state is ServerState.RESTARTING:
            self.telemetry.count(RESTARTS, server=status.name)
        if self._db is not None and self._tg is not None:
            self._tg.start_soon(self._record_status, status)

    async def _record_status(self, status: ServerStatus) -> None:
        assert self._db is not None
        try:
            await self._db.tools.record_server_status(status)
        except GatewayError as exc:
            logger.warning("could not record the status of %s: %s", status.name, exc,
                           exc_info=not isinstance(exc, DatabaseUnavailableError))

    async def _wait_ready(self) -> None:
        with anyio.move_on_after(READY_TIMEOUT_S):
            await self._ready.wait()
        if self._failure is not None:
            raise DatabaseError(f"the tool index is not available: {self._failure}")
        if not self._ready.is_set():
            raise DatabaseError(f"the tool index is still starting after {READY_TIMEOUT_S:.0f} s; retry shortly")

    def _fail(self, reason: str) -> None:
        logger.error("the tool index could not be opened: %s", reason)
        self._failure = reason
        self._ready.set()
        self._publish()

    def _publish(self) -> None:
        """Tell `pml-gateway status` what this gateway sees now (its file in the data directory)."""
        index = "open" if self._db is not None and self._failure is None else (
            f"unavailable: {self._failure}" if self._failure else "opening")
        database = self._db.location if self._db is not None else None
        model = self._loaded_embedder.model_id if self._loaded_embedder is not None else None
        self._runfile.write(config=self._config.source, database=database, index=index, model=model,
                            servers=self.supervisor.statuses())


def _first_leaf(group: BaseExceptionGroup[GatewayError]) -> GatewayError:
    """The first exception of a (possibly nested) group, for a one-line reason."""
    found: BaseException = group
    while isinstance(found, BaseExceptionGroup):
        found = found.exceptions[0]
    assert isinstance(found, GatewayError)
    return found


async def _nothing(state: WorkflowState) -> None:
    """A capability's sub-workflow keeps no checkpoints."""
