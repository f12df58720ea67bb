"""Fuzz the llava worker's OpenAPI: no 5xx, responses (SSE events included) match the schema."""

from __future__ import annotations

from support.fuzz import schemathesis_run
from support.procs import ProcessFactory


def test_schemathesis_finds_no_server_errors(procs: ProcessFactory) -> None:
    # A 128-token context bounds every generated request (max_tokens above it is a 400), so
    # fuzzing stays fast without a deadline, whose 504 would count as a server error.
    srv = procs.lvi("worker", "llava", env={"LLAVA_PROFILE": "tiny", "LLAVA_MAX_CONTEXT": "128"})
    result = schemathesis_run(srv.url, max_examples=25)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "generated" in result.stdout
    srv.stop()
