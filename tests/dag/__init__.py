"""Tests of the pure `execute_dag` model; `TOOLS` is the tool catalogue they validate against."""

from typing import Any

TOOLS: dict[str, Any] = {
    "fs:read_file": {
        "type": "object",
        "properties": {"path": {"type": "string"}},
        "required": ["path"],
        "additionalProperties": False,
    },
    "fs:write_file": {
        "type": "object",
        "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
        "required": ["path", "content"],
    },
    "web:fetch": {
        "type": "object",
        "properties": {
            "url": {"type": "string", "pattern": "^https?://"},
            "options": {"type": "object", "properties": {"max_length": {"type": "integer", "minimum": 1}}},
        },
        "required": ["url"],
    },
    "math:sum": {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {"values": {"type": "array", "items": {"type": "number"}, "minItems": 1}},
        "required": ["values"],
    },
    "util:echo": None,
    "broken:tool": {"type": 12},
}
