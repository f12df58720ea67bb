"""Every server's limits, against a real worker under uvicorn (``lvi worker inpaint``).

A body that stops halfway gets 408 within the deadline (not a 500), uvicorn's header-size bound
closes an endless header block, the internal token guards inference routes but not health,
and metrics move to their own port when asked.
"""

from __future__ import annotations

import socket
import time

import httpx
import pytest
from support.procs import ProcessFactory, ServerProcess, free_port

TOKEN = "internal-secret"


@pytest.fixture(scope="module")
def metrics_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def worker(procs: ProcessFactory, metrics_port: int) -> ServerProcess:
    return procs.lvi(
        "worker",
        "inpaint",
        env={
            "LVI_BODY_TIMEOUT_S": "1.5",
            "LVI_MAX_HEADER_BYTES": "8192",
            "LVI_INTERNAL_TOKEN": TOKEN,
            "LVI_METRICS_PORT": str(metrics_port),
            "LVI_METRICS_ON_MAIN_PORT": "false",
        },
    )


def read_all(sock: socket.socket, timeout: float) -> bytes:
    """Everything the server sends until it closes the connection (or ``timeout``)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        pass
    return data


def test_a_body_that_stops_halfway_gets_408_within_the_deadline(worker: ServerProcess) -> None:
    body = b'{"image": "' + b"A" * 2000 + b'"}'
    head = (
        f"POST /v1/inpaint HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"X-LVI-Internal-Token: {TOKEN}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", worker.port)) as sock:
        t0 = time.monotonic()
        sock.sendall(head + body[: len(body) // 2])
        answer = read_all(sock, 20)
        took = time.monotonic() - t0
    assert answer.startswith(b"HTTP/1.1 408"), answer[:300]
    assert b'"request_body_timeout"' in answer and b'"error"' in answer
    assert 1.0 < took < 10, took
    time.sleep(0.3)
    log = worker.log_tail(200)
    assert "request body not received within" in log
    assert "Traceback" not in log and " 500" not in log, log


def test_a_complete_slow_body_is_served(worker: ServerProcess) -> None:
    """The deadline is for the whole body, so a client that finishes in time is served."""
    body = b"{}"
    head = (
        f"POST /v1/inpaint HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"X-LVI-Internal-Token: {TOKEN}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", worker.port)) as sock:
        sock.sendall(head + body[:1])
        time.sleep(0.5)
        sock.sendall(body[1:])
        sock.settimeout(20)
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 422"), answer[:300]  # the body is read: a validation error


def test_an_endless_header_block_is_cut_off_by_size(worker: ServerProcess) -> None:
    """uvicorn cannot bound the *time* to receive headers (a proxy must: docs/DEPLOY.md), but it
    bounds their size: a client that keeps sending header lines is answered and dropped."""
    with socket.create_connection(("127.0.0.1", worker.port)) as sock:
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n")
        closed = False
        for i in range(200):
            try:
                sock.sendall(f"X-Pad-{i}: {'a' * 100}\r\n".encode())
            except OSError:
                closed = True
                break
        answer = b"" if closed else read_all(sock, 10)
    assert closed or answer.startswith((b"HTTP/1.1 431", b"HTTP/1.1 400")) or answer == b"", answer


def test_the_internal_token_guards_inference_not_health(worker: ServerProcess) -> None:
    r = httpx.post(f"{worker.url}/v1/inpaint", json={})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_internal_token"
    r = httpx.post(f"{worker.url}/v1/inpaint", json={}, headers={"X-LVI-Internal-Token": "nope"})
    assert r.status_code == 401
    r = httpx.post(f"{worker.url}/v1/inpaint", json={}, headers={"X-LVI-Internal-Token": TOKEN})
    assert r.status_code == 422  # past the guard: the (empty) body is refused by validation
    assert httpx.get(f"{worker.url}/v2/health/ready").status_code == 200
    assert httpx.get(f"{worker.url}/v2/health/live").status_code == 200


def test_metrics_are_served_on_their_own_port(worker: ServerProcess, metrics_port: int) -> None:
    r = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics")
    assert r.status_code == 200 and "lvi_" in r.text
    r = httpx.get(f"{worker.url}/metrics")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
