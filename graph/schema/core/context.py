"""Per-request context: the caller, the repositories and this request's loaders."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from strawberry.dataloader import DataLoader
from strawberry.types import Info as StrawberryInfo

from graph.config.settings import Settings
from repository.access import Principal
from repository.database import Store
from repository.models import BatchCounts, BatchJob

if TYPE_CHECKING:
    from graph.realtime.hub import Hub


@dataclass
class Loaders:
    """Built per request, never shared: each caller sees only what it may read."""

    store: Store
    principal: Principal
    batch: DataLoader[str, BatchJob | None] = field(init=False)
    batch_counts: DataLoader[str, BatchCounts] = field(init=False)

    def __post_init__(self) -> None:
        self.batch = DataLoader(self._load_batches)
        self.batch_counts = DataLoader(self._load_counts)

    async def _load_batches(self, ids: list[str]) -> list[BatchJob | None]:
        found = await self.store.batches.get_many(self.principal, ids, with_counts=False)
        return [found.get(batch_id) for batch_id in ids]

    async def _load_counts(self, ids: list[str]) -> list[BatchCounts]:
        counts = await self.store.batches.counts(ids)
        return [counts[batch_id] for batch_id in ids]


class Connection:
    """What the operations of one connection (a request, or a WebSocket for as long as it
    is open) share."""

    __slots__ = ("open_subscriptions",)

    def __init__(self) -> None:
        self.open_subscriptions = 0
        """Subscriptions the connection holds now (``subscribing`` counts them)."""


@dataclass(slots=True)  # one per request, one per WebSocket, and a copy per execution
class Context:
    store: Store
    settings: Settings
    principal: Principal
    request: Any = None
    hub: Hub | None = None
    expires_at: float | None = None
    connection_params: dict[str, Any] | None = None
    """A WebSocket's connection-init payload (Strawberry fills it in)."""
    connection: Connection = field(default_factory=Connection, repr=False)
    caller_gone: Callable[[], Awaitable[None]] | None = None
    """Over HTTP: returns once the client has disconnected (the server supplies it), so a
    resolver whose answer must reach its caller can tell; None where nobody can tell."""
    parking: Any = None
    """Where the transport can deliver a subscription's changes for it: the connection's
    (``graph/realtime/parking.py``); an operation's copy holds one bound to its executor."""
    _loaders: Loaders | None = field(default=None, init=False, repr=False)

    @property
    def loaders(self) -> Loaders:
        """Built on first use: most requests (and every subscription) need none."""
        if self._loaders is None:
            self._loaders = Loaders(self.store, self.principal)
        return self._loaders

    def for_execution(self, executor: Any = None) -> Context:
        """A copy for one operation or one subscription event (``graph.engine.executor``
        makes one per execution): caches of its own, the connection's counters. An
        operation's (``executor`` given) may park its subscription with that executor."""
        parking = self.parking
        if parking is not None:
            parking = None if executor is None else parking.bind(executor)
        return Context(self.store, self.settings, self.principal, self.request, self.hub,
                       self.expires_at, None, self.connection, self.caller_gone, parking)

    def detached(self) -> Context:
        """A copy that holds nothing of its connection: what executes events for several
        subscribers, who share the caller (or a selection that reads no caller)."""
        return Context(self.store, self.settings, self.principal)

    def share_key(self) -> Any:
        """Who results are shared among (``graph/engine/sharing.py``): this caller; None
        when sharing is switched off."""
        return self.principal if self.settings.shared_subscriptions else None

    def authenticate(self, principal: Principal, expires_at: float | None) -> None:
        """Set the caller of a WebSocket once its connection-init payload is known."""
        self.principal = principal
        self.expires_at = expires_at
        self._loaders = None


Info = StrawberryInfo[Context, None]
