"""At shutdown, the notes psycopg writes about the queries it cancelled stay out of the log (unless at DEBUG)."""

from __future__ import annotations

import logging

import pytest

from gateway.shutdown import ShutdownNoise


def test_a_stopping_gateway_drops_psycopg_s_cancelled_query_notes_and_nothing_else(
    caplog: pytest.LogCaptureFixture,
) -> None:
    noise = ShutdownNoise()
    pool = logging.getLogger("psycopg.pool")
    try:
        noise.install()
        with caplog.at_level(logging.INFO):
            pool.warning("discarding closed connection: <conn 1>")  # while running: a real problem, shown
            noise.stopping = True
            logging.getLogger("psycopg").warning("query cancellation interrupted (CancelledError): closing connection")
            pool.warning("discarding closed connection: <conn 2>")
            pool.warning("error connecting in 'pool-1': connection refused")  # not a shutdown's doing: shown
        assert [r.getMessage() for r in caplog.records] == [
            "discarding closed connection: <conn 1>",
            "error connecting in 'pool-1': connection refused",
        ]
        caplog.clear()
        with caplog.at_level(logging.DEBUG):
            pool.warning("discarding closed connection: <conn 3>")
        assert [r.getMessage() for r in caplog.records] == ["discarding closed connection: <conn 3>"]
    finally:
        for name in noise.LOGGERS:
            logging.getLogger(name).removeFilter(noise)
