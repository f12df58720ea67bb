"""The one error envelope: our errors, validation errors, HTTP errors and surprises."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from lvi.errors import Conflict, RateLimited, install_error_handlers


class Body(BaseModel):
    n: int = Field(ge=0)


def make_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/body")
    async def body(b: Body) -> dict[str, int]:
        return {"n": b.n}

    @app.get("/conflict")
    async def conflict() -> None:
        raise Conflict("head moved", param="If-Match")

    @app.get("/busy")
    async def busy() -> None:
        raise RateLimited("busy", retry_after=2.4)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internal detail")

    return app


def envelope_ok(body: dict[str, object]) -> dict[str, object]:
    assert set(body) == {"error"}
    err = body["error"]
    assert isinstance(err, dict)
    assert set(err) == {"type", "message", "code", "param"}
    return err


def test_our_errors_keep_status_and_headers() -> None:
    c = TestClient(make_app(), raise_server_exceptions=False)
    r = c.get("/conflict")
    assert r.status_code == 409
    assert envelope_ok(r.json())["param"] == "If-Match"
    r = c.get("/busy")
    assert r.status_code == 429 and r.headers["retry-after"] == "2"


def test_validation_and_http_errors_use_the_envelope() -> None:
    c = TestClient(make_app(), raise_server_exceptions=False)
    r = c.post("/body", json={"n": -1})
    assert r.status_code == 422
    assert envelope_ok(r.json())["param"] == "n"
    r = c.post("/body", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    envelope_ok(r.json())
    r = c.get("/nope")
    assert r.status_code == 404
    assert envelope_ok(r.json())["type"] == "not_found_error"
    r = c.delete("/body")
    assert r.status_code == 405
    envelope_ok(r.json())


def test_unexpected_errors_leak_nothing() -> None:
    c = TestClient(make_app(), raise_server_exceptions=False)
    r = c.get("/boom")
    assert r.status_code == 500
    err = envelope_ok(r.json())
    assert "secret" not in r.text and "Traceback" not in r.text
    assert err["type"] == "internal_error"
