"""A small notes store as an MCP stdio server: write, read, list and delete titled text notes.

Run it as ``python examples/notes_server.py``. Notes live in one JSON file, named by the environment variable
``NOTES_FILE`` (default: ``pml-notes.json`` in the system temp directory); each write replaces the file
atomically.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations

server = MCPServer("notes", instructions="Keep short text notes by title: write, read, list and delete them.")


def _notes_path() -> Path:
    default = Path(tempfile.gettempdir()) / "pml-notes.json"
    return Path(os.environ.get("NOTES_FILE") or default)


def _load() -> dict[str, str]:
    path = _notes_path()
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _save(notes: dict[str, str]) -> None:
    path = _notes_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(path.suffix + ".tmp")
    scratch.write_text(json.dumps(notes, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(scratch, path)


@server.tool(title="Write a note",
             annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True))
def write_note(title: str, text: str) -> str:
    """Save a note under `title`, replacing the text of any note with the same title."""
    notes = _load()
    notes[title] = text
    _save(notes)
    return f"saved note {title!r} ({len(text)} characters)"


@server.tool(title="Read a note", annotations=ToolAnnotations(read_only_hint=True))
def read_note(title: str) -> str:
    """Return the text of the note called `title`; fails if there is none (see list_notes)."""
    notes = _load()
    if title not in notes:
        raise ToolError(f"no note titled {title!r}; list_notes shows the titles")
    return notes[title]


@server.tool(title="List the notes", annotations=ToolAnnotations(read_only_hint=True))
def list_notes() -> list[str]:
    """Return the titles of all notes, sorted."""
    return sorted(_load())


@server.tool(title="Delete a note",
             annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True))
def delete_note(title: str) -> str:
    """Delete the note called `title` for good; fails if there is none."""
    notes = _load()
    if notes.pop(title, None) is None:
        raise ToolError(f"no note titled {title!r}")
    _save(notes)
    return f"deleted note {title!r}"


if __name__ == "__main__":
    server.run("stdio")
