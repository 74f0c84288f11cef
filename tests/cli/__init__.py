"""Tests of the command line: each command group, run in-process through `gateway.cli.main` or as a subprocess."""
