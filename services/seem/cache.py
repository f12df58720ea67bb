"""An LRU cache of image embeddings, with Prometheus hit/miss counters.

SAM's image encoder is nearly all of a click's cost; its prompt encoder and mask decoder are
cheap. Interactive segmentation sends many prompts for one image, so the embedding of each
recent image is kept, keyed by (model, image content hash). The cache is an optimisation only:
workers stay stateless, and a miss simply recomputes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge

V = TypeVar("V")


class EmbeddingCache(Generic[V]):
    """Thread-safe LRU of at most ``max_items`` values. ``max_items=0`` disables it."""

    def __init__(self, max_items: int) -> None:
        self.max_items = max_items
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self._hit_counter: Counter | None = None
        self._miss_counter: Counter | None = None
        self._size_gauge: Gauge | None = None

    def bind_metrics(self, registry: CollectorRegistry) -> None:
        """Register ``lvi_seem_embedding_cache_{hits,misses}_total`` and ``..._items``."""
        self._hit_counter = Counter(
            "lvi_seem_embedding_cache_hits",
            "Prompts answered from a cached image embedding (decoder only).",
            registry=registry,
        )
        self._miss_counter = Counter(
            "lvi_seem_embedding_cache_misses",
            "Prompts that had to run the image encoder.",
            registry=registry,
        )
        self._size_gauge = Gauge(
            "lvi_seem_embedding_cache_items", "Image embeddings in the cache.", registry=registry
        )

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: V) -> None:
        if self.max_items <= 0:
            return
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)
            if self._size_gauge is not None:
                self._size_gauge.set(len(self._items))

    def get_or_compute(self, key: Hashable, compute: Callable[[], V]) -> tuple[V, bool]:
        """The cached value (and True), or ``compute()`` stored and returned (and False).

        ``compute`` runs outside the lock: two threads missing on one image both compute it,
        which is cheaper than making every other image wait behind one encoder pass.
        """
        value = self.get(key)
        if value is not None:
            self._count(hit=True)
            return value, True
        self._count(hit=False)
        value = compute()
        self.put(key, value)
        return value, False

    def _count(self, *, hit: bool) -> None:
        with self._lock:
            if hit:
                self.hits += 1
            else:
                self.misses += 1
        counter = self._hit_counter if hit else self._miss_counter
        if counter is not None:
            counter.inc()

    def stats(self) -> dict[str, Any]:
        return {
            "cache_size": self.max_items,
            "cache_items": len(self._items),
            "cache_hits": self.hits,
            "cache_misses": self.misses,
        }
