"""Postgres: the embedded server, migrations, the pool, named SQL queries and the stores over them.

Other layers need only `open_database` (and the `Database` it yields); `migrate`, `open_pool`, `ToolStore`,
`WorkflowStore`, `LearningStore`, `CapabilityStore`, `RetentionStore` (with its `Retention` policy) and `UserStore`
are here for tools and tests that assemble the pieces themselves.
"""

from gateway.db.capabilities import CapabilityStore
from gateway.db.database import Database, open_database
from gateway.db.learning import LearningStore
from gateway.db.memory import IntentMemory
from gateway.db.migrate import migrate
from gateway.db.pool import Pool, open_pool
from gateway.db.retention import Retention, RetentionStore
from gateway.db.tools import ToolStore
from gateway.db.users import KeyRecord, UserRow, UserStore
from gateway.db.workflows import WorkflowStore

__all__ = [
    "CapabilityStore", "Database", "IntentMemory", "KeyRecord", "LearningStore", "Pool", "Retention", "RetentionStore",
    "ToolStore", "UserRow", "UserStore", "WorkflowStore", "migrate", "open_database", "open_pool",
]
