"""Fuzz the inpaint worker's OpenAPI: no 5xx, responses match the schema."""

from __future__ import annotations

from support.fuzz import schemathesis_run
from support.procs import ProcessFactory


def test_schemathesis_finds_no_server_errors(procs: ProcessFactory) -> None:
    srv = procs.lvi("worker", "inpaint", env={"INPAINT_PROFILE": "tiny"})
    result = schemathesis_run(srv.url, max_examples=40)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "generated" in result.stdout
    srv.stop()
