"""What the run callable of a subcommand receives: its arguments, the settings, the environment, the shutdown."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from gateway.config import GatewayConfig, load_config
from gateway.errors import ConfigError
from gateway.settings import Settings

if TYPE_CHECKING:
    from gateway.shutdown import Shutdown


@dataclass(frozen=True, slots=True, kw_only=True)
class Invocation:
    """One run of a subcommand: what `main` read from argv and the environment, passed down whole."""

    args: argparse.Namespace
    settings: Settings
    environ: Mapping[str, str]
    shutdown: Shutdown
    """Set by the first SIGTERM or SIGINT; `serve` stops gracefully on it, other commands are cancelled."""

    def servers(self) -> GatewayConfig | None:
        """The servers file of the settings, read and validated; None if no file is named."""
        if self.settings.config_path is None:
            return None
        return load_config(self.settings.config_path, self.environ, default_timeout_s=self.settings.call_timeout_s,
                           bin_dir=Path(sys.executable).parent)

    def required_servers(self) -> GatewayConfig:
        """The servers file, for the commands that start the servers; naming none is a configuration error."""
        config = self.servers()
        if config is None:
            raise ConfigError("no servers file: pass --config PATH (or set PML_CONFIG)")
        return config


Run: TypeAlias = Callable[[Invocation], Awaitable[int]]
"""A subcommand, bound to its parser with ``set_defaults(run=...)``: returns the exit code."""
