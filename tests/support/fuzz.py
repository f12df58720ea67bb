"""Property-based fuzzing of a live server's OpenAPI with schemathesis (its real CLI)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance"


def schemathesis_run(
    base_url: str,
    *,
    max_examples: int = 40,
    headers: dict[str, str] | None = None,
    include_path_regex: str | None = None,
    exclude_path_regex: str | None = None,
    timeout: float = 240,
    checks: str = CHECKS,
) -> subprocess.CompletedProcess[str]:
    """Run ``schemathesis run`` against ``base_url``/openapi.json; returns the finished process.

    Bounded by ``--max-examples`` per operation and a wall-clock timeout; seeded, so a failure
    reproduces. The caller asserts ``returncode == 0`` and shows ``stdout`` when it is not.
    """
    exe = Path(sys.executable).with_name("schemathesis")
    args = [
        str(exe),
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        checks,
        "--max-examples",
        str(max_examples),
        "--seed",
        "1",
        "--request-timeout",
        "30",
    ]
    for k, v in (headers or {}).items():
        args += ["-H", f"{k}: {v}"]
    if include_path_regex:
        args += ["--include-path-regex", include_path_regex]
    if exclude_path_regex:
        args += ["--exclude-path-regex", exclude_path_regex]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": ""}
    return subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=os.environ.get("TMPDIR", "/tmp"),
    )
