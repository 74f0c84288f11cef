"""The command line `pml-gateway`: argv and environment -> `Settings`, then the run callable of one subcommand.

One module per command group declares its arguments and binds each subcommand to its run callable:
`serve`; `index` (index, search, status); `stats` (stats, prune); `evaluate` (eval); `graph`; `caps`; `users`;
`init`. A group imports the runtime, the database and the model inside the commands that need them, so that
``--help``, ``--version`` and `status` of a running gateway stay fast. Only this package and `gateway.config`
read the environment. Logs go to stderr; stdout belongs to the MCP wire under `serve`, and to the tables of the
other commands.
"""

from gateway.cli._main import main

__all__ = ["main"]
