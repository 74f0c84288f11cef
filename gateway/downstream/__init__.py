"""The downstream layer: one owner task per MCP stdio server, supervised, restarted, and called directly."""

from gateway.downstream.supervisor import Supervisor

__all__ = ["Supervisor"]
