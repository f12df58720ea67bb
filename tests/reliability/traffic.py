"""Traffic for the reliability suites: virtual users running mixed session workflows through
one or more gateways, a client-side ledger of every acknowledged write, and a checker that
compares the ledger with what the gateways serve afterwards.

- Each virtual user (VU) owns a session (or shares it with a second VU, a "racer", when
  ``racers`` > 0) and loops over weighted operations: upload, segment, painted mask, remove,
  move, undo, redo, checkout, chat, and reads (session, image bytes, mask bytes). With two
  gateways a VU sends each request to a random gateway, so read-your-writes is checked
  across processes.
- Every edit carries an ``If-Match`` head and an ``Idempotency-Key``. A 201/200 is written
  into the session's :class:`Ledger`. An edit whose outcome is unknown (connection broken,
  5xx) is retried with the same key when ``retry`` is on, as the SDK would; if it never
  resolves, the session is marked uncertain (it may legitimately hold one more version).
- :func:`verify` then reads every session back and reports lost versions (acknowledged but
  missing, or with another parent or image), phantom versions (present but never
  acknowledged, on a session without uncertain writes), a broken version graph, image bytes
  that do not match their hash, and missing masks or chat turns.

Statuses are counted by operation; latency is recorded for every answered request.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from support import gw as img

DEFAULT_WEIGHTS: dict[str, float] = {
    "get_session": 14,
    "get_image": 12,
    "get_mask": 4,
    "segment": 10,
    "mask": 5,
    "remove": 14,
    "move": 10,
    "undo": 8,
    "redo": 5,
    "checkout": 5,
    "upload": 5,
    "chat": 0,  # on when a chat worker is in the stack
}
EDITS = {"upload", "segment", "mask", "remove", "move", "undo", "redo", "checkout", "chat"}


@dataclass
class TrafficConfig:
    """What to run. ``keys`` are API keys (sessions are spread over them)."""

    gateways: list[str]
    keys: list[str]
    sessions: int = 50
    seconds: float = 5.0
    racers: int = 0
    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    width: int = 96
    height: int = 64
    retry: bool = False
    retry_window: float = 20.0  # how long after the end an unresolved edit may still retry
    request_timeout: float = 30.0
    think: float = 0.0  # seconds a VU waits between operations
    setup_concurrency: int = 32
    seed: int = 1


@dataclass
class Ledger:
    """What the clients were told about one session."""

    sid: str
    key: str
    shared: bool = False
    versions: dict[int, tuple[int | None, str]] = field(default_factory=dict)
    masks: dict[str, int | None] = field(default_factory=dict)
    head: int | None = None
    redo: list[int] = field(default_factory=list)
    messages: int = 0
    uncertain: int = 0  # writes whose outcome stayed unknown


@dataclass
class Stats:
    """Counters and latencies of one run."""

    started: float = field(default_factory=time.monotonic)
    latency: dict[str, list[float]] = field(default_factory=dict)
    status: Counter[str] = field(default_factory=Counter)
    by_op: Counter[str] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    timeline: list[tuple[float, str, str]] = field(default_factory=list)
    retries: int = 0
    replays: int = 0
    stuck_keys: int = 0
    duration: float = 0.0

    def record(self, op: str, status: str, seconds: float | None, code: str | None = None) -> None:
        self.status[status] += 1
        self.by_op[f"{op} {status}"] += 1
        if code:
            self.codes[f"{status} {code}"] += 1
        if seconds is not None:
            self.latency.setdefault(op, []).append(seconds)
        self.timeline.append((time.monotonic() - self.started, op, status))

    def problem(self, text: str) -> None:
        if len(self.problems) < 200:
            self.problems.append(text)

    def count(self, pred: Any) -> int:
        return sum(n for s, n in self.status.items() if pred(s))

    @property
    def server_errors(self) -> int:
        return self.count(lambda s: s.isdigit() and int(s) >= 500)

    def summary(self) -> dict[str, Any]:
        every = sorted(x for xs in self.latency.values() for x in xs)
        answered = len(every)
        ok = self.count(lambda s: s.isdigit() and int(s) < 300)
        per_op = {
            op: {
                "n": len(xs),
                "p50_ms": round(pct(xs, 0.50) * 1000, 1),
                "p99_ms": round(pct(xs, 0.99) * 1000, 1),
            }
            for op, xs in sorted(self.latency.items())
        }
        return {
            "seconds": round(self.duration, 2),
            "requests": answered + self.status.get("transport", 0),
            "answered": answered,
            "ok": ok,
            "throughput_rps": round(answered / self.duration, 1) if self.duration else 0.0,
            "ok_rps": round(ok / self.duration, 1) if self.duration else 0.0,
            "p50_ms": round(pct(every, 0.50) * 1000, 1),
            "p90_ms": round(pct(every, 0.90) * 1000, 1),
            "p99_ms": round(pct(every, 0.99) * 1000, 1),
            "status": dict(sorted(self.status.items())),
            "server_errors": self.server_errors,
            "rate_limited": self.status.get("429", 0),
            "conflicts": self.status.get("409", 0),
            "transport_errors": self.status.get("transport", 0),
            "transport_by_op": {
                k.split()[0]: n for k, n in self.by_op.items() if k.endswith(" transport")
            },
            "retries": self.retries,
            "idempotent_replays": self.replays,
            "stuck_idempotency_keys": self.stuck_keys,
            "codes": dict(self.codes.most_common(20)),
            "per_op": per_op,
            "problems": self.problems[:20],
        }


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _envelope(resp: httpx.Response) -> tuple[str | None, bool]:
    """(error code, whether the body is our envelope)."""
    try:
        err = resp.json()["error"]
        return str(err["code"]), isinstance(err.get("message"), str) and "type" in err
    except (ValueError, KeyError, TypeError):
        return None, False


class Traffic:
    """One run of :class:`TrafficConfig`; ``stop`` ends it early (thread-safe)."""

    def __init__(self, cfg: TrafficConfig) -> None:
        self.cfg = cfg
        self.stats = Stats()
        self.ledgers: list[Ledger] = []
        self.stop = threading.Event()
        self.rng = random.Random(cfg.seed)
        w, h = cfg.width, cfg.height
        self.images = [img.png(img.photo(w, h, seed=s)) for s in range(8)]
        self.mask_pngs = [
            img.mask_png(img.rect_mask(w, h, (x, y, x + w // 4, y + h // 4)))
            for x, y in ((4, 4), (w // 2, h // 2), (w // 3, 6), (8, h // 2))
        ]
        self.clients: list[httpx.AsyncClient] = []
        self._end = 0.0
        self.setup_stats = Stats()
        self.running = threading.Event()  # set when the measured part starts
        self.stopped_at: float | None = None

    # -- plumbing ---------------------------------------------------------------------------
    def client(self) -> httpx.AsyncClient:
        return self.rng.choice(self.clients)

    async def call(
        self,
        op: str,
        ledger: Ledger | None,
        method: str,
        path: str,
        *,
        key: str,
        client: httpx.AsyncClient | None = None,
        **kw: Any,
    ) -> httpx.Response | None:
        """One request; records status, latency and envelope problems. None: no answer."""
        c = client or self.client()
        headers = {"Authorization": f"Bearer {key}", **kw.pop("headers", {})}
        t0 = time.perf_counter()
        try:
            resp = await c.request(method, path, headers=headers, **kw)
        except httpx.HTTPError as e:
            self.stats.record(op, "transport", None, type(e).__name__)
            return None
        dt = time.perf_counter() - t0
        code = None
        if resp.status_code >= 400:
            code, ok = _envelope(resp)
            if not ok:
                self.stats.problem(
                    f"{op} {path}: {resp.status_code} without the error envelope: "
                    f"{resp.text[:200]!r}"
                )
        self.stats.record(op, str(resp.status_code), dt, code)
        if resp.status_code >= 500:
            self.stats.problem(f"{op} {path}: {resp.status_code} {resp.text[:300]}")
        return resp

    async def edit(
        self,
        op: str,
        ledger: Ledger,
        method: str,
        path: str,
        *,
        if_match: bool = True,
        **kw: Any,
    ) -> httpx.Response | None:
        """A write with an Idempotency-Key (and If-Match unless told not to). Retries an
        unknown outcome with the same key when the config says so. None: not done (or
        unknown, then the ledger is marked uncertain)."""
        idem = uuid.uuid4().hex
        headers = {"Idempotency-Key": idem, **kw.pop("headers", {})}
        if if_match:
            headers["If-Match"] = f'"{ledger.head or 0}"'
        unknown = False
        in_progress = 0
        while True:
            resp = await self.call(op, ledger, method, path, key=ledger.key, headers=headers, **kw)
            if resp is not None and resp.status_code < 300:
                if resp.headers.get("idempotent-replayed"):
                    self.stats.replays += 1
                return resp
            status = resp.status_code if resp is not None else 0
            code = _envelope(resp)[0] if resp is not None else None
            deadline = self._retry_deadline()
            if status == 429:
                retry_after = float(resp.headers.get("retry-after", "1")) if resp else 1.0
                if time.monotonic() > deadline:
                    return None
                await asyncio.sleep(min(1.0, retry_after) * self.rng.uniform(0.5, 1.0))
                self.stats.retries += 1
                continue
            if status in (0, 502, 503, 504):
                unknown = True  # the request may or may not have been committed
            elif status == 409 and code == "idempotency_in_progress":
                in_progress += 1
            elif status < 500:
                if unknown and status == 409:
                    # A retry after an unknown outcome was refused (e.g. the head moved
                    # because the first attempt did commit, then its key was released).
                    ledger.uncertain += 1
                return resp  # a definite answer: the caller looks at it
            if not self.cfg.retry or time.monotonic() > deadline:
                if in_progress:
                    self.stats.stuck_keys += 1
                if unknown or in_progress:
                    ledger.uncertain += 1
                return None
            self.stats.retries += 1
            await asyncio.sleep(0.2 + 0.3 * self.rng.random())

    def _retry_deadline(self) -> float:
        """Retries go on until the run's end (or its early stop) plus the retry window."""
        end = self._end
        if self.stopped_at is not None:
            end = min(end, self.stopped_at)
        return end + (self.cfg.retry_window if self.cfg.retry else 0)

    def halt(self) -> None:
        """Start no new operation; edits in progress may still retry within the window."""
        self.stopped_at = time.monotonic()
        self.stop.set()

    # -- operations -------------------------------------------------------------------------
    def _version(self, ledger: Ledger, resp: httpx.Response, op: str) -> None:
        v = resp.json()
        vid, parent = int(v["id"]), v["parent"]
        if op in ("upload", "remove", "move") and not ledger.shared and parent != ledger.head:
            self.stats.problem(
                f"{ledger.sid}: {op} made v{vid} with parent {parent}, expected {ledger.head}"
            )
        known = ledger.versions.get(vid)
        if known is not None and known != (parent, v["image_hash"]):
            self.stats.problem(f"{ledger.sid}: v{vid} answered twice with different contents")
        ledger.versions[vid] = (parent, v["image_hash"])
        if op in ("upload", "remove", "move"):
            ledger.redo.clear()
        if v.get("mask_id"):
            ledger.masks[v["mask_id"]] = vid
        ledger.head = vid

    async def op_upload(self, ledger: Ledger) -> None:
        data = self.rng.choice(self.images)
        resp = await self.edit(
            "upload",
            ledger,
            "POST",
            f"/v1/sessions/{ledger.sid}/images",
            content=data,
            headers={"Content-Type": "image/png"},
        )
        if resp is not None and resp.status_code == 201:
            self._version(ledger, resp, "upload")
            if resp.json()["image_hash"] != sha256(data):
                self.stats.problem(f"{ledger.sid}: upload stored other bytes than sent")
        else:
            await self._refresh_on_conflict(ledger, resp)

    async def op_segment(self, ledger: Ledger) -> None:
        w, h = self.cfg.width, self.cfg.height
        x, y = self.rng.randrange(8, w - 8), self.rng.randrange(8, h - 8)
        body: dict[str, Any] = {"points": [[x, y]], "labels": [1]}
        if self.rng.random() < 0.5:
            body["boxes"] = [[max(0, x - 20), max(0, y - 15), min(w, x + 20), min(h, y + 15)]]
        resp = await self.edit(
            "segment",
            ledger,
            "POST",
            f"/v1/sessions/{ledger.sid}/segment",
            json=body,
            if_match=False,
        )
        if resp is not None and resp.status_code == 201:
            m = resp.json()
            ledger.masks[m["mask_id"]] = m["version"]
        else:
            await self._refresh_on_conflict(ledger, resp)

    async def op_mask(self, ledger: Ledger) -> None:
        resp = await self.edit(
            "mask",
            ledger,
            "POST",
            f"/v1/sessions/{ledger.sid}/masks",
            content=self.rng.choice(self.mask_pngs),
            headers={"Content-Type": "image/png"},
            if_match=False,
        )
        if resp is not None and resp.status_code == 201:
            m = resp.json()
            ledger.masks[m["mask_id"]] = m["version"]
        else:
            await self._refresh_on_conflict(ledger, resp)

    async def op_remove(self, ledger: Ledger) -> None:
        if not ledger.masks:
            return await self.op_mask(ledger)
        mask_id = self.rng.choice(list(ledger.masks))
        resp = await self.edit(
            "remove",
            ledger,
            "POST",
            f"/v1/sessions/{ledger.sid}/remove",
            json={"mask_id": mask_id, "dilate": 2},
        )
        await self._after_edit(ledger, resp, "remove")

    async def op_move(self, ledger: Ledger) -> None:
        if not ledger.masks:
            return await self.op_mask(ledger)
        mask_id = self.rng.choice(list(ledger.masks))
        body = {
            "mask_id": mask_id,
            "dx": self.rng.randint(-8, 8),
            "dy": self.rng.randint(-6, 6),
            "dilate": 2,
        }
        resp = await self.edit("move", ledger, "POST", f"/v1/sessions/{ledger.sid}/move", json=body)
        await self._after_edit(ledger, resp, "move")

    async def _after_edit(self, ledger: Ledger, resp: httpx.Response | None, op: str) -> None:
        if resp is not None and resp.status_code == 201:
            self._version(ledger, resp, op)
        elif resp is not None and resp.status_code == 422:
            # e.g. a moved object's mask left the image: a legitimate refusal.
            pass
        else:
            await self._refresh_on_conflict(ledger, resp)

    async def op_undo(self, ledger: Ledger) -> None:
        head = ledger.versions.get(ledger.head or -1)
        if not ledger.shared and (head is None or head[0] is None):
            return await self.op_redo(ledger)
        resp = await self.edit("undo", ledger, "POST", f"/v1/sessions/{ledger.sid}/undo")
        if resp is not None and resp.status_code == 200:
            old = ledger.head
            v = resp.json()
            if not ledger.shared and head is not None and v["id"] != head[0]:
                self.stats.problem(f"{ledger.sid}: undo from v{old} went to v{v['id']}")
            ledger.head = int(v["id"])
            if old is not None:
                ledger.redo.append(old)
        else:
            await self._refresh_on_conflict(ledger, resp)

    async def op_redo(self, ledger: Ledger) -> None:
        if not ledger.shared and not ledger.redo:
            return
        resp = await self.edit("redo", ledger, "POST", f"/v1/sessions/{ledger.sid}/redo")
        if resp is not None and resp.status_code == 200:
            v = resp.json()
            if not ledger.shared and ledger.redo and v["id"] != ledger.redo[-1]:
                self.stats.problem(f"{ledger.sid}: redo went to v{v['id']}, not {ledger.redo[-1]}")
            if ledger.redo:
                ledger.redo.pop()
            ledger.head = int(v["id"])
        else:
            await self._refresh_on_conflict(ledger, resp)

    async def op_checkout(self, ledger: Ledger) -> None:
        if not ledger.versions:
            return
        target = self.rng.choice(list(ledger.versions))
        resp = await self.edit(
            "checkout",
            ledger,
            "POST",
            f"/v1/sessions/{ledger.sid}/checkout",
            json={"version": target},
        )
        if resp is not None and resp.status_code == 200:
            if target != ledger.head:
                ledger.redo.clear()
            ledger.head = int(resp.json()["id"])
        else:
            await self._refresh_on_conflict(ledger, resp)

    async def op_chat(self, ledger: Ledger) -> None:
        resp = await self.edit(
            "chat",
            ledger,
            "POST",
            f"/v1/sessions/{ledger.sid}/chat",
            json={"message": "What is in the picture?", "max_tokens": 4},
            if_match=False,
        )
        if resp is not None and resp.status_code == 200:
            ledger.messages += 2
        else:
            await self._refresh_on_conflict(ledger, resp)

    async def op_get_session(self, ledger: Ledger) -> None:
        # Only what was acknowledged before this read was sent must be in it (a racer may
        # commit while the read is on its way).
        known = set(ledger.versions)
        resp = await self.call(
            "get_session", ledger, "GET", f"/v1/sessions/{ledger.sid}", key=ledger.key
        )
        if resp is None or resp.status_code != 200:
            return
        s = resp.json()
        ids = {v["id"] for v in s["versions"]}
        missing = known - ids
        if missing:
            self.stats.problem(f"{ledger.sid}: read after write misses versions {sorted(missing)}")
        if not ledger.shared and not ledger.uncertain:
            if s["head"] != ledger.head:
                self.stats.problem(
                    f"{ledger.sid}: read after write head {s['head']} != {ledger.head}"
                )
            if s["can_redo"] != bool(ledger.redo):
                self.stats.problem(f"{ledger.sid}: can_redo {s['can_redo']} but redo {ledger.redo}")
        if ledger.shared or ledger.uncertain:
            ledger.head = s["head"]

    async def op_get_image(self, ledger: Ledger) -> None:
        if not ledger.versions:
            return
        vid = self.rng.choice(list(ledger.versions))
        resp = await self.call(
            "get_image", ledger, "GET", f"/v1/sessions/{ledger.sid}/images/{vid}", key=ledger.key
        )
        ok = resp is not None and resp.status_code == 200
        if ok and sha256(resp.content) != ledger.versions[vid][1]:  # type: ignore[union-attr]
            self.stats.problem(f"{ledger.sid}: image of v{vid} does not match its hash")

    async def op_get_mask(self, ledger: Ledger) -> None:
        if not ledger.masks:
            return
        mid = self.rng.choice(list(ledger.masks))
        resp = await self.call(
            "get_mask", ledger, "GET", f"/v1/sessions/{ledger.sid}/masks/{mid}", key=ledger.key
        )
        if resp is not None and resp.status_code != 200 and resp.status_code < 500:
            self.stats.problem(f"{ledger.sid}: mask {mid} answered {resp.status_code}")

    async def _refresh_on_conflict(self, ledger: Ledger, resp: httpx.Response | None) -> None:
        if resp is None:
            return
        code = _envelope(resp)[0]
        if resp.status_code == 409 and code == "head_moved":
            if not ledger.shared and not ledger.uncertain:
                self.stats.problem(f"{ledger.sid}: head moved under its only user")
            await self.op_get_session(ledger)
        elif resp.status_code == 409 and code in ("nothing_to_undo", "nothing_to_redo"):
            if not ledger.shared and not ledger.uncertain:
                self.stats.problem(f"{ledger.sid}: unexpected {code}")
        elif resp.status_code == 409 and code == "version_limit":
            pass
        elif resp.status_code < 500 and resp.status_code not in (409, 422, 429):
            self.stats.problem(f"{ledger.sid}: unexpected {resp.status_code} {code}")

    # -- the run ----------------------------------------------------------------------------
    async def _setup(self, ledger: Ledger) -> bool:
        resp = await self.call(
            "create", ledger, "POST", "/v1/sessions", key=ledger.key, json={"title": "load"}
        )
        if resp is None or resp.status_code != 201:
            return False
        ledger.sid = resp.json()["id"]
        await self.op_upload(ledger)
        await self.op_mask(ledger)
        return ledger.head is not None

    async def _user(self, ledger: Ledger, rng: random.Random) -> None:
        ops = [op for op, w in self.cfg.weights.items() if w > 0]
        weights = [self.cfg.weights[op] for op in ops]
        while time.monotonic() < self._end and not self.stop.is_set():
            op = rng.choices(ops, weights)[0]
            await getattr(self, f"op_{op}")(ledger)
            if self.cfg.think:
                await asyncio.sleep(self.cfg.think * rng.random())

    async def run(self) -> Stats:
        cfg = self.cfg
        # Idle connections are dropped after 2 s, before uvicorn's 5 s keep-alive timeout
        # closes them from its side (equal timeouts race: a request sent on a connection
        # the server is closing fails with ReadError).
        limits = httpx.Limits(
            max_connections=cfg.sessions * 2 + 8,
            max_keepalive_connections=None,
            keepalive_expiry=2.0,
        )
        self.clients = [
            httpx.AsyncClient(base_url=u, timeout=cfg.request_timeout, limits=limits)
            for u in cfg.gateways
        ]
        try:
            owners = [
                Ledger("", cfg.keys[i % len(cfg.keys)], shared=i < cfg.racers)
                for i in range(cfg.sessions)
            ]
            self._end = time.monotonic() + 3600  # setup is not bounded by the run time
            # Sessions are set up with a ramp (at most ``setup_concurrency`` at once); a
            # burst of creates is a test of its own (test_load_suite.py).
            ramp = asyncio.Semaphore(cfg.setup_concurrency)

            async def setup(lg: Ledger) -> bool:
                async with ramp:
                    return await self._setup(lg)

            ok = await asyncio.gather(*(setup(lg) for lg in owners))
            self.ledgers = [lg for lg, good in zip(owners, ok, strict=True) if good]
            if len(self.ledgers) < len(owners):
                self.stats.problem(f"{len(owners) - len(self.ledgers)} sessions failed setup")
            users: list[tuple[Ledger, random.Random]] = [
                (lg, random.Random(cfg.seed * 1000 + i)) for i, lg in enumerate(self.ledgers)
            ]
            # Racers: a second user on each shared session.
            users += [
                (lg, random.Random(cfg.seed * 7919 + i))
                for i, lg in enumerate(self.ledgers)
                if lg.shared
            ]
            # The measured part starts now; setup keeps its own counters.
            self.setup_stats, self.stats = self.stats, Stats()
            t0 = time.monotonic()
            self._end = t0 + cfg.seconds
            self.running.set()
            await asyncio.gather(*(self._user(lg, r) for lg, r in users))
            self.stats.duration = time.monotonic() - t0
        finally:
            for c in self.clients:
                await c.aclose()
        return self.stats

    def run_sync(self) -> Stats:
        return asyncio.run(self.run())


class Background:
    """Run :class:`Traffic` in a thread while the test injects faults."""

    def __init__(self, cfg: TrafficConfig) -> None:
        self.traffic = Traffic(cfg)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        try:
            self.traffic.run_sync()
        except BaseException as e:  # shown by join()
            self.error = e

    def __enter__(self) -> Background:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.traffic.halt()
        self.thread.join(60)

    def finish(self, tail: float = 1.0, timeout: float = 120.0) -> Traffic:
        """Let the traffic run ``tail`` seconds more, then stop it and wait for it."""
        time.sleep(tail)
        self.traffic.halt()
        return self.join(timeout)

    def join(self, timeout: float = 120.0) -> Traffic:
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise AssertionError("traffic did not finish in time")
        if self.error is not None:
            raise self.error
        return self.traffic

    def wait_started(self, timeout: float = 60.0) -> None:
        """Block until setup is done and the measured part runs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.traffic.running.wait(0.05):
                time.sleep(0.3)  # let the first requests go out
                return
            if not self.thread.is_alive():
                break
        if self.error is not None:
            raise self.error
        raise AssertionError("traffic did not start")


# -- verification ---------------------------------------------------------------------------
@dataclass
class Verdict:
    sessions: int = 0
    versions_acked: int = 0
    versions_found: int = 0
    images_checked: int = 0
    uncertain_sessions: int = 0
    lost: list[str] = field(default_factory=list)
    phantom: list[str] = field(default_factory=list)
    graph: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    masks: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return self.lost + self.phantom + self.graph + self.images + self.masks + self.messages

    def summary(self) -> dict[str, Any]:
        return {
            "sessions": self.sessions,
            "versions_acked": self.versions_acked,
            "versions_found": self.versions_found,
            "images_checked": self.images_checked,
            "uncertain_sessions": self.uncertain_sessions,
            "lost_updates": len(self.lost),
            "phantom_versions": len(self.phantom),
            "graph_errors": len(self.graph),
            "image_mismatches": len(self.images),
            "missing_masks": len(self.masks),
            "chat_mismatches": len(self.messages),
            "examples": self.problems[:10],
        }


async def _verify(
    gateway: str, ledgers: list[Ledger], images: str, concurrency: int = 16
) -> Verdict:
    verdict = Verdict()
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=gateway, timeout=60) as c:

        async def one(lg: Ledger) -> None:
            async with sem:
                await _verify_session(c, lg, verdict, images)

        await asyncio.gather(*(one(lg) for lg in ledgers))
    return verdict


async def _get(c: httpx.AsyncClient, path: str, key: str) -> httpx.Response:
    for _ in range(50):  # ride out a store that is still coming back
        r = await c.get(path, headers={"Authorization": f"Bearer {key}"})
        if r.status_code != 503:
            return r
        await asyncio.sleep(0.2)
    return r


async def _verify_session(c: httpx.AsyncClient, lg: Ledger, v: Verdict, images: str) -> None:
    v.sessions += 1
    v.versions_acked += len(lg.versions)
    v.uncertain_sessions += 1 if lg.uncertain else 0
    r = await _get(c, f"/v1/sessions/{lg.sid}", lg.key)
    if r.status_code != 200:
        v.lost.append(f"{lg.sid}: session answered {r.status_code} {r.text[:200]}")
        return
    s = r.json()
    server = {x["id"]: x for x in s["versions"]}
    v.versions_found += len(server)
    ids = sorted(server)
    if ids != list(range(1, len(ids) + 1)):
        v.graph.append(f"{lg.sid}: version ids are not 1..n: {ids}")
    for vid, x in server.items():
        p = x["parent"]
        if p is not None and (p not in server or p >= vid):
            v.graph.append(f"{lg.sid}: v{vid} has parent {p}")
    if s["head"] is not None and s["head"] not in server:
        v.graph.append(f"{lg.sid}: head {s['head']} is not a version")
    for vid, (parent, digest) in lg.versions.items():
        x = server.get(vid)
        if x is None:
            v.lost.append(f"{lg.sid}: acknowledged v{vid} is gone")
        elif (x["parent"], x["image_hash"]) != (parent, digest):
            v.lost.append(
                f"{lg.sid}: v{vid} is ({x['parent']}, {x['image_hash'][:8]}), "
                f"acknowledged as ({parent}, {digest[:8]})"
            )
    extra = set(server) - set(lg.versions)
    if extra and not lg.uncertain:
        v.phantom.append(f"{lg.sid}: versions {sorted(extra)} were never acknowledged")
    if not lg.shared and not lg.uncertain and s["head"] != lg.head:
        v.lost.append(f"{lg.sid}: head is {s['head']}, the client was told {lg.head}")
    if images == "all" or (images == "head" and s["head"] is not None):
        todo = list(server) if images == "all" else [s["head"]]
        for vid in todo:
            ri = await _get(c, f"/v1/sessions/{lg.sid}/images/{vid}", lg.key)
            v.images_checked += 1
            if ri.status_code != 200 or sha256(ri.content) != server[vid]["image_hash"]:
                v.images.append(f"{lg.sid}: image of v{vid}: {ri.status_code}, hash mismatch")
    masks = {m["mask_id"] for m in s["masks"]}
    for mid in lg.masks:
        if mid not in masks:
            v.masks.append(f"{lg.sid}: acknowledged mask {mid} is gone")
    if not lg.uncertain and len(s["messages"]) != lg.messages and not lg.shared:
        v.messages.append(f"{lg.sid}: {len(s['messages'])} messages, expected {lg.messages}")


def verify(gateway: str, ledgers: list[Ledger], images: str = "all") -> Verdict:
    """Read every session back through ``gateway``; ``images``: all, head or none."""
    return asyncio.run(_verify(gateway, ledgers, images))


def snapshot(gateway: str, ledgers: list[Ledger]) -> dict[str, Any]:
    """Every session as the gateway serves it (for before/after comparisons)."""

    async def run() -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=gateway, timeout=60) as c:
            out: dict[str, Any] = {}
            for lg in ledgers:
                r = await _get(c, f"/v1/sessions/{lg.sid}", lg.key)
                body = r.json()
                for k in ("updated_at", "expires_in"):
                    body.pop(k, None)
                out[lg.sid] = body
            return out

    return asyncio.run(run())


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True)
