"""One database-level change stream, turned into exact per-change document states.

Events carry what changed (``updateDescription``), never a lookup of the whole document:
we keep the last known state of recently changed documents and apply each event's
``updateDescription`` to it; the ``version`` counter every update increments tells
whether the result is exact. Only when it cannot be (a document this process has not
seen, or a missed version) do we read the document, once, as it is then.

A job's log stays out of all of it: the server strips ``logs`` from every event
(``fullDocument`` and ``updateDescription``) before it is sent, and lookups leave it out.
A job at the log's maxima is megabytes, and every process would otherwise read it on
every append. Whoever needs log entries reads the few it needs (``repository.job_logs``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import bson
from bson.timestamp import Timestamp
from pymongo.errors import OperationFailure, PyMongoError

from .mongo_types import Db

T = TypeVar("T")

WATCHED = ("jobs", "batches", "documentation_jobs", "job_history")
ON_DEMAND = frozenset({"job_history"})
"""Watched only while someone follows them (``ChangeFeed.want``): an entry is written for
every change of a job, about six per worker lifecycle, and every process decoded each
one whether anyone followed a history or not."""
LINGER_SECONDS = 60.0
"""How long an on-demand collection stays watched after its last follower left, so that
followers coming and going do not reopen the stream each time."""
LOOKUP_COMMENT = "jobgraph: change stream lookup"
"""Marks the lookups (in the server's logs and profiler, and for tests counting commands)."""
LEFT_OUT = {"jobs": ("logs",)}
"""Fields of a collection no change event carries (nor a lookup reads), with their subpaths."""
HISTORY_LOST_CODES = {136, 280, 286}
"""CappedPositionLost, ChangeStreamFatalError, ChangeStreamHistoryLost."""
NO_CHANGE_STREAMS_CODES = {40573}
"""``$changeStream`` is only supported on replica sets."""


GATHER_SECONDS = 0.005
"""While changes flow, the hub asks for more at most this often (see ``ChangeFeed``)."""
UNHEARD_GATHER_SECONDS = 0.5
"""The same while no subscriber of this process listens (``ChangeFeed.listen``), whether
changes flow or not: the states are kept up to date for the next subscriber, and no one
waits for them. Each ``getMore`` costs ~300 us of pymongo's command path whatever it
brings; at the embedded database's pace a worker's changes came one per ``getMore``, most
of what the hub cost a process that serves only workers."""
CATCH_UP_AWAIT_MS = 20
"""How long a ``getMore`` waits for a change when none is there while the stream is
``behind`` (instead of the server's default, 1 s): a first subscriber waits for it."""
FULL_REPLY = 100
"""The most events a ``getMore`` reply brings (SecantusDB sends at most 101)."""
MORE_BEHIND = FULL_REPLY // 2
"""A reply with this many events may have left more behind: the stream asks again at
once, gulp or not. Not only a full one: SecantusDB answered a fresh burst of 500 changes
101, 99, 101, ..., and fewer of a collection's when others' writes are in between."""
LAGGING_SECONDS = 1.0
"""A reply whose last change is older than this left the stream behind the flow: it asks
again at once, gulp or not (a gulp must never let the lag grow)."""
LET_IN_SECONDS = 1.0
"""The longest a first subscriber waits for the stream to reach the moment it came (see
``ChangeFeed.caught_up``): a database that does not answer must not hold it. Past it, it
is let in, and the changes from before it that the stream had not read by then are sent
to it as news (a tester saw 99-600 of a 1,000-job batch with 0.25 s here: the stream
reads about 4,000 changes a second on 2 cores)."""


def buffered(stream: Any) -> int | None:
    """How many events ``stream`` holds already read (the next ``try_next`` returns one
    without a round trip); None where this pymongo does not say (then nothing waits).

    pymongo's change stream has no public way to ask, and every ``getMore`` costs a round
    trip's CPU (~100 us in pymongo alone) whether it brings one event or a hundred."""
    data = getattr(getattr(stream, "_cursor", None), "_data", None)
    return len(data) if data is not None else None


def position(stream: Any) -> Any:
    """``stream.resume_token`` without the deep copy pymongo makes on each read (the hub
    read it twice a change: a sixth of its CPU). pymongo replaces its token, never
    changes it in place, and we only keep, compare and save it."""
    token = getattr(stream, "_resume_token", _UNKNOWN)
    return stream.resume_token if token is _UNKNOWN else token


_UNKNOWN = object()


def _settle(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def lagging(wall: Any) -> bool:
    """Whether a change written at ``wall`` (its event's ``wallTime``) is older than
    LAGGING_SECONDS."""
    if not isinstance(wall, datetime):
        return False
    if wall.tzinfo is None:
        wall = wall.replace(tzinfo=UTC)
    return bool((datetime.now(UTC) - wall).total_seconds() > LAGGING_SECONDS)


def token_time(token: Any) -> Any:
    """The cluster time a resume token stands at (a ``Timestamp``), or None where it does
    not say.

    The token is opaque by contract, but an empty reply's token moves with the oplog,
    unwatched writes included, which no event's ``clusterTime`` tells. MongoDB's (4.2 on)
    start with the timestamp's type byte (130) and the timestamp, big-endian;
    SecantusDB's are a BSON document whose ``t`` is the time of the oplog entry its scan
    stopped at (at most 400 entries a ``getMore``)."""
    data = token.get("_data") if isinstance(token, dict) else None
    if not isinstance(data, str) or len(data) < 18:
        return None
    if not data.startswith("82"):
        return _secantus_token_time(data)
    try:
        value = int(data[2:18], 16)
    except ValueError:
        return None
    return Timestamp(value >> 32, value & 0xFFFFFFFF)


def _secantus_token_time(data: str) -> Any:
    try:
        found = bson.decode(bytes.fromhex(data)).get("t")
    except (ValueError, bson.errors.BSONError):
        return None
    return found if isinstance(found, Timestamp) else None


def later(first: Any, second: Any) -> Any:
    """The later of two cluster times, either of which may be None (unknown)."""
    if first is None or second is None:
        return first if second is None else second
    return max(first, second)


@dataclass
class Joiner:
    """A subscriber waiting for the stream to catch up (``ChangeFeed.caught_up``)."""

    target: float
    """The first reply that may let it in: one asked after it came."""
    since: Any
    """The cluster time the stream must reach (``caught_up``)."""
    admitted: asyncio.Future[None]
    """Settled when it is let in (or after a while, by a timer)."""
    told: bool = False
    """Whether the reply ``target`` has told it the database's time (``since`` is then the
    later of the two times)."""
    caught: bool = False
    """Whether it was let in because the stream caught up (not by its timer, nor because
    the stream closed or failed)."""
    holds: bool = False
    """Whether no one awaits it to go on (``Subscriber.window``): it stays while the
    stream is away, until the resumed stream catches up."""


class ChangeHistoryLost(Exception):
    """The resume token is older than the oplog: changes in between are unknown."""


class ChangeStreamsUnsupported(Exception):
    """The server is a standalone mongod: no change streams at all."""


@dataclass(frozen=True)
class Change:
    collection: str
    operation: str
    """insert, update, replace or delete."""
    object_id: Any
    document: dict[str, Any] | None
    """The document right after this change (None after a delete)."""
    exact: bool
    """False when only a later state of the document could be had."""
    wall_time: datetime | None = None
    previous: dict[str, Any] | None = None
    """The state before this change, when this process knew it."""
    changed: frozenset[str] | None = None
    """The top-level fields an update wrote or removed; None for any other change."""
    cluster_time: Any = None
    """The change's place in the database's order (a ``Timestamp``; None if not told)."""
    decoded: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    def written_before(self, seen: Any) -> bool:
        """Whether this change is at or before cluster time ``seen`` (``ChangeFeed.seen``)."""
        return self.cluster_time is not None and self.cluster_time <= seen

    def model(self, decoder: Callable[[dict[str, Any]], T]) -> T:
        """The document decoded once per change, however many subscribers read it; the
        model is shared, so readers must not modify it."""
        found = self.decoded.get(decoder)
        if found is None:
            assert self.document is not None, "a deleted document has no model"
            found = self.decoded[decoder] = decoder(self.document)
        return found

    def shared(self, key: Any, make: Callable[[], T]) -> T:
        """What ``make`` builds of this change, built once per key, however many
        subscribers ask (so that they can share what is done with it)."""
        found = self.decoded.get(key)
        if found is None:
            found = self.decoded[key] = make()
        return found


def apply_update(document: dict[str, Any], description: dict[str, Any]) -> dict[str, Any]:
    """``document`` with an event's ``updateDescription`` applied (dotted paths too).

    Copy on write: ``document`` is left as it was (subscribers may still hold it) and only
    the containers along a changed path are copied, never the whole document.
    """
    result = dict(document)
    for truncated in description.get("truncatedArrays") or ():
        container, key = _parent(result, truncated["field"])
        container[key] = container[key][:truncated["newSize"]]
    for path in description.get("removedFields") or ():
        container, key = _parent(result, path)
        with contextlib.suppress(KeyError, IndexError, TypeError):
            del container[key]
    for path, value in (description.get("updatedFields") or {}).items():
        container, key = _parent(result, path, create=True)
        if isinstance(container, list):
            while len(container) <= key:
                container.append(None)
        container[key] = value
    return result


def _parent(document: Any, path: str, *, create: bool = False) -> tuple[Any, Any]:
    """The container holding ``path``'s last part, copied (with its ancestors) on the way."""
    parts = path.split(".")
    node = document
    for part in parts[:-1]:
        key: Any = int(part) if isinstance(node, list) else part
        if isinstance(node, dict) and key not in node and create:
            node[key] = {}
        child = node[key]
        if isinstance(child, dict | list):
            child = type(child)(child)
            node[key] = child
        node = child
    last = parts[-1]
    return node, int(last) if isinstance(node, list) else last


class StateCache:
    """Last known state of recently changed documents, bounded (LRU)."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self.states: OrderedDict[tuple[str, Any], dict[str, Any]] = OrderedDict()

    def get(self, key: tuple[str, Any]) -> dict[str, Any] | None:
        state = self.states.get(key)
        if state is not None:
            self.states.move_to_end(key)
        return state

    def put(self, key: tuple[str, Any], state: dict[str, Any] | None) -> None:
        if state is None:
            self.states.pop(key, None)
            return
        self.states[key] = state
        self.states.move_to_end(key)
        while len(self.states) > self.size:
            self.states.popitem(last=False)

    def clear(self) -> None:
        self.states.clear()


def stream_pipeline(collections: Iterable[str] = WATCHED) -> list[dict[str, Any]]:
    """The change stream's stages: these collections, without the LEFT_OUT fields."""
    return [{"$match": {"ns.coll": {"$in": list(collections)}}}, *without_left_out()]


def without_left_out() -> list[dict[str, Any]]:
    """Stages that strip the LEFT_OUT fields from events, for every stream that reads jobs.

    ``updateDescription`` names a changed field by its path (``logs``, ``logs.999``), so
    its ``updatedFields`` are filtered by their first path segment, as are
    ``removedFields`` and ``truncatedArrays``; the stream's ``_id`` (its resume token) is
    left alone, as MongoDB requires."""
    fields = sorted({name for names in LEFT_OUT.values() for name in names})

    def kept(path: str) -> dict[str, Any]:
        return {"$not": [{"$in": [{"$arrayElemAt": [{"$split": [path, "."]}, 0]}, fields]}]}

    description = "$updateDescription"
    return [
        {"$unset": [f"fullDocument.{name}" for name in fields]},
        {"$set": {"updateDescription": {"$cond": [
            {"$eq": [{"$type": description}, "object"]},
            {"$mergeObjects": [description, {
                "updatedFields": {"$arrayToObject": {"$filter": {
                    "input": {"$objectToArray": {"$ifNull": [
                        f"{description}.updatedFields", {}]}},
                    "cond": kept("$$this.k")}}},
                "removedFields": {"$filter": {
                    "input": {"$ifNull": [f"{description}.removedFields", []]},
                    "cond": kept("$$this")}},
                "truncatedArrays": {"$filter": {
                    "input": {"$ifNull": [f"{description}.truncatedArrays", []]},
                    "cond": kept("$$this.field")}},
            }]},
            "$$REMOVE"]}}},
    ]


def lookup_projection(collection: str) -> dict[str, int] | None:
    left_out = LEFT_OUT.get(collection)
    return dict.fromkeys(left_out, 0) if left_out else None


SILENT = frozenset({"changed_by", "deleting_admins"})
"""Fields written for the job history alone (``repository.job_history``: who changes, and a
delete's admins, stamped before the delete): an update of nothing else bumps no version and
changes nothing a subscriber sees, so it is no change here."""


def is_silent(event: dict[str, Any]) -> bool:
    if event.get("operationType") != "update":
        return False
    description = event.get("updateDescription") or {}
    return (not description.get("removedFields") and not description.get("truncatedArrays")
            and set(description.get("updatedFields") or {}) <= SILENT)


def needs_lookup(event: dict[str, Any], cache: StateCache) -> bool:
    """Whether ``event``'s document state cannot be had without reading the document: an
    update of a document whose previous version this process does not hold."""
    if event.get("operationType") != "update":
        return False
    key = (str((event.get("ns") or {}).get("coll")), event["documentKey"]["_id"])
    version = ((event.get("updateDescription") or {}).get("updatedFields") or {}).get("version")
    base = cache.get(key)
    return base is None or version is None or base.get("version", 0) + 1 != version


def to_change(event: dict[str, Any], cache: StateCache,
              looked_up: dict[str, Any] | None = None) -> Change | None:
    """The Change an event stands for. ``looked_up``: the document as read now, for an
    update ``needs_lookup`` says cannot be derived (the event's own ``fullDocument``, if
    it has one, otherwise)."""
    operation = event.get("operationType")
    namespace = event.get("ns") or {}
    collection = namespace.get("coll")
    if collection not in WATCHED or operation not in ("insert", "update", "replace", "delete"):
        return None
    object_id = event["documentKey"]["_id"]
    key = (collection, object_id)
    if looked_up is None:
        looked_up = event.get("fullDocument")
    document, exact = looked_up, looked_up is not None
    base = cache.get(key)
    if operation == "delete":
        document, exact = None, True
    elif operation == "update":
        description = event.get("updateDescription") or {}
        version = (description.get("updatedFields") or {}).get("version")
        if base is not None and version is not None and base.get("version", 0) + 1 == version:
            document, exact = apply_update(base, description), True
        elif looked_up is not None and version is not None:
            exact = looked_up.get("version") == version
        else:
            exact = False
    cache.put(key, document)
    return Change(collection, operation, object_id, document, exact, event.get("wallTime"), base,
                  changed_fields(event) if operation == "update" else None,
                  event.get("clusterTime"))


def changed_fields(event: dict[str, Any]) -> frozenset[str]:
    """The top-level fields an update event names (``progress.percent`` is ``progress``)."""
    description = event.get("updateDescription") or {}
    paths = [*(description.get("updatedFields") or {}), *(description.get("removedFields") or ()),
             *(part.get("field", "") for part in description.get("truncatedArrays") or ())]
    return frozenset(path.partition(".")[0] for path in paths)


class ChangeFeed:
    """The database's change stream, resumed with its last token after any error."""

    def __init__(self, db: Db, cache_size: int = 10_000) -> None:
        self.db = db
        self.cache = StateCache(cache_size)
        self.resume_token: Any = None
        self.watched: tuple[str, ...] = ()
        """The collections the open stream reads."""
        self.wanted: dict[str, float] = {}
        """Per ON_DEMAND collection, until when it is watched (inf: someone follows it)."""
        self._stream: Any = None
        self._reopened: list[asyncio.Future[None]] = []
        self.listened = True
        """Whether a subscriber of this process listens (``listen``)."""
        self.behind = False
        """The stream lags: by design while no subscriber listens (changes are read every
        UNHEARD_GATHER_SECONDS), or after a burst (its last reply may have left more), and
        until whoever came then is ``caught_up``: a subscriber let in at once would be
        sent the backlog, from before it came, as news (a reader revoked through another
        process just before heard the job's earlier states, then DELETED)."""
        self.issued = 0
        """Replies asked of the database so far (``getMore``, and ``aggregate`` on open)."""
        self.fetches = 0
        """Replies read so far: a change handed on while this is N came in one of them."""
        self._unheard: asyncio.Future[None] | None = None
        self._joiners: list[Joiner] = []
        self._lagging = False
        """Whether the last reply may have left more behind (MORE_BEHIND changes or more, or
        an old change): the stream lags the flow; it asks again at once, gulp or not, and
        stays ``behind`` until it has caught up."""

    def want(self, collection: str, followed: bool) -> None:
        """Someone follows an ON_DEMAND collection now (``followed``), or no one does any
        more. Takes effect at the stream's next round, which opens it again from the last
        change handed on (``watching`` waits for that)."""
        self.wanted[collection] = math.inf if followed else time.monotonic() + LINGER_SECONDS

    def listen(self, listened: bool) -> None:
        """A subscriber of this process listens now (``listened``), or none does any more.
        While none does, changes are gathered for UNHEARD_GATHER_SECONDS before each
        ``getMore``; the first subscriber ends that wait at once."""
        self.listened = listened
        if listened and self._unheard is not None:
            _settle(self._unheard)

    def seen(self) -> Any:
        """The newest cluster time this process's client has been told (``Timestamp``), or
        None where pymongo does not say. A change after it was written after this call; a
        change at or before it was under way before."""
        topology = getattr(getattr(self.db, "client", None), "_topology", None)
        try:
            found = topology.max_cluster_time() if topology is not None else None
        except Exception:  # pymongo's private API moved: leave nothing out, as before
            return None
        return found.get("clusterTime") if isinstance(found, dict) else None

    async def caught_up(self, since: Any = None) -> Joiner | None:
        """Returns once the stream has read every change visible in the database when this
        was called, as far as it can tell, so that a subscriber let in then is not sent
        older ones as news: the ``Joiner`` that waited (``caught``, or let in by its timer
        after LET_IN_SECONDS; see ``join``). At once, with None, unless the stream is
        ``behind``."""
        if not self.behind:
            return None
        joiner = self.join(since, LET_IN_SECONDS)
        await joiner.admitted
        return joiner

    def join(self, since: Any, seconds: float, holds: bool = False) -> Joiner:
        """A ``Joiner`` whose ``admitted`` settles once the stream has caught up with the
        moment this was called, or after ``seconds`` (a database that does not answer must
        not hold anyone), or at once when the stream closes or fails; its ``since`` is then
        the database's time it caught up to. Awaited by a subscriber that comes while the
        stream is ``behind``; one that is let in at once may hold back its changes until
        then (``Subscriber.window``): ``holds``, it stays while the stream is away.

        ``since`` (the newest cluster time this process's client had been told) may be
        half a second old or more (a quiet process hears nothing from the database), or
        older than what a lagging stream will read next. The database's time is told by
        the first reply to a request asked after this call (every reply carries it): the
        stream's next ``getMore``, which waits CATCH_UP_AWAIT_MS at most while anyone
        waits (no request of its own, however many come). It caught up once that reply
        has been handed on and the stream has reached that time (an event at or after
        it, or a resume token past it: ``token_time``) or the end of what the database holds (a
        reply with nothing, its position unmoved). What was written between ``since`` and
        that time may be from before the subscriber came or after it: it is all sent (a
        write after it came must not be lost: ``jobsChanged`` with ``initial: 0`` reads
        no state), and ``Subscriber.before_told`` says which of it a follower may pass
        over."""
        loop = asyncio.get_running_loop()
        joiner = Joiner(self.issued + 1, since, loop.create_future(), holds=holds)
        self._joiners.append(joiner)
        timer = loop.call_later(seconds, _settle, joiner.admitted)
        joiner.admitted.add_done_callback(lambda _: timer.cancel())
        return joiner

    def _caught_up(self, read: float = math.inf, reached: Any = None,
                   at_end: bool = True) -> None:
        """Every reply up to ``read`` is handed on (the last of them has told this
        process's client the database's time), the stream has read up to cluster time
        ``reached``, and ``at_end`` says whether the last reply found the end: lets in
        whoever waited for no more; the others need the next reply. With none left
        waiting and a subscriber listening, the stream keeps up again."""
        told: Any = _UNKNOWN
        waiting = []
        for joiner in self._joiners:
            if joiner.admitted.done():  # (let in by its timer, or gone)
                continue
            if read == math.inf:
                if joiner.holds:
                    waiting.append(joiner)  # (for the resumed stream)
                else:
                    _settle(joiner.admitted)
                continue
            if joiner.target > read:
                waiting.append(joiner)
                continue
            if not joiner.told:
                if told is _UNKNOWN:
                    told = self.seen()
                joiner.since, joiner.told = later(joiner.since, told), True
            if at_end or joiner.since is None or (
                    reached is not None and reached >= joiner.since):
                joiner.caught = True
                _settle(joiner.admitted)
            else:
                waiting.append(joiner)
        self._joiners = waiting
        if not waiting and self.listened and not self._lagging:
            self.behind = False

    def _stop_waiting(self) -> None:
        """The stream closed or failed: whoever waits is let in (a subscriber must not
        hang while the database is away); one that only holds back its changes holds
        them until the resumed stream catches up (there are none meanwhile)."""
        self._lagging = False
        self._caught_up()
        self.behind = False

    async def _gather(self, left_more: bool) -> None:
        """Let more changes arrive before the next ``getMore`` (see ``changes``); not while
        no one listens if the last reply ``left_more`` behind."""
        if self.listened:
            await asyncio.sleep(GATHER_SECONDS)
            return
        self.behind = True
        if left_more:
            return
        loop = asyncio.get_running_loop()
        waiter = self._unheard = loop.create_future()
        timer = loop.call_later(UNHEARD_GATHER_SECONDS, _settle, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._unheard = None

    async def reopened(self) -> None:
        """Returns once the stream was opened again, or closed."""
        waiter = asyncio.get_running_loop().create_future()
        self._reopened.append(waiter)
        await waiter

    def _wake(self) -> None:
        waiters, self._reopened = self._reopened, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def collections(self) -> tuple[str, ...]:
        """The collections to watch now."""
        if not self.wanted:
            return tuple(name for name in WATCHED if name not in ON_DEMAND)
        now = time.monotonic()
        return tuple(name for name in WATCHED
                     if name not in ON_DEMAND or self.wanted.get(name, 0.0) > now)

    async def open(self) -> None:
        """Start watching. Changes after this returns are never missed."""
        watched = self.collections()
        self.issued += 1  # (asked before the await: one who comes meanwhile needs the next)
        try:
            self._stream = await self.db.watch(stream_pipeline(watched),
                                               resume_after=self.resume_token)
        except OperationFailure as exc:
            if exc.code in NO_CHANGE_STREAMS_CODES:
                raise ChangeStreamsUnsupported(str(exc)) from None
            if exc.code in HISTORY_LOST_CODES or "resume" in str(exc).lower():
                self.resume_token = None
                self.cache.clear()
                raise ChangeHistoryLost(str(exc)) from None
            raise
        self.watched = watched
        self.fetches = self.issued
        opened_at = position(self._stream)
        if opened_at is not None:
            self.resume_token = opened_at
        self._wake()

    async def close(self) -> None:
        self._stop_waiting()
        await self._close_stream()

    async def _close_stream(self) -> None:
        self.watched = ()
        self._wake()
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(PyMongoError):
                await stream.close()

    async def changes(self) -> AsyncIterator[Change]:
        """Changes in order until the stream fails (the caller reopens and resumes).

        Every event updates the state cache, even with nobody subscribed: a filtered
        subscription needs each job's state before a change to tell that it left the filter.
        """
        assert self._stream is not None, "open() first"
        flowing = at_end = False
        reached: Any = None  # the cluster time of the last change read
        try:
            while True:
                fetching = not buffered(self._stream)  # (None: pymongo does not say)
                if fetching and (self.behind or self._joiners):  # (all read is handed on)
                    self._caught_up(self.fetches,
                                    later(reached, token_time(position(self._stream))), at_end)
                if self.wanted and self.collections() != self.watched:
                    # from the last change handed on (what the old stream read past it is
                    # read again), with the collections followed now
                    await self._close_stream()
                    await self.open()
                    flowing = at_end = False
                    fetching = not buffered(self._stream)
                if fetching and (flowing or not self.listened):
                    # the last getMore brought events and all are handed on: let a few more
                    # arrive before the next one (one round trip per change under a steady
                    # flow of writes was half of this consumer's CPU); a quiet stream waits
                    # for nothing, as a getMore that found no events leaves ``flowing``
                    # False, unless no subscriber listens (then it always waits, unless
                    # the last reply may have left more behind)
                    await self._gather(not self.listened and self._lagging)
                before = position(self._stream)
                if fetching:
                    self.issued += 1
                event = await (self._catch_up() if fetching and (self.behind or self._joiners)
                               else self._stream.try_next())
                token = position(self._stream)
                if fetching:  # what follows describes this reply alone
                    self.fetches = self.issued
                    at_end = event is None and token == before
                    self._lagging = event is not None and (
                        1 + (buffered(self._stream) or 0) >= MORE_BEHIND
                        or lagging(event.get("wallTime")))
                    if self._lagging:  # a subscriber coming now catches up first
                        self.behind = True
                flowing = event is not None
                if event is None:
                    self.resume_token = token
                    await asyncio.sleep(0)
                    continue
                reached = event.get("clusterTime")
                if is_silent(event):  # (a delete's stamp: seen by the hub as a lookup race)
                    self.resume_token = token
                    continue
                looked_up = (await self._lookup(event) if needs_lookup(event, self.cache)
                             else None)
                change = to_change(event, self.cache, looked_up)
                # past this event only once it is handed on: a lookup that failed (the
                # database gone) resumes at this event, not after it
                self.resume_token = token
                if change is not None:
                    yield change
        finally:
            self._stop_waiting()

    async def _catch_up(self) -> dict[str, Any] | None:
        """A ``getMore`` while the stream is ``behind`` or a subscriber waits for it to catch
        up (``join``), waiting only CATCH_UP_AWAIT_MS for a change when none is there. pymongo
        has no public way to set one ``getMore``'s wait; without it, the usual."""
        cursor: Any = getattr(self._stream, "_cursor", None)
        if not hasattr(cursor, "_max_await_time_ms"):
            return await self._stream.try_next()  # type: ignore[no-any-return]
        usual, cursor._max_await_time_ms = cursor._max_await_time_ms, CATCH_UP_AWAIT_MS
        try:
            return await self._stream.try_next()  # type: ignore[no-any-return]
        finally:
            cursor._max_await_time_ms = usual

    async def _lookup(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """The document as it is now (a later state than the event's, maybe), without the
        LEFT_OUT fields; None once it is gone."""
        collection = event["ns"]["coll"]
        return await self.db[collection].find_one({"_id": event["documentKey"]["_id"]},
                                                  projection=lookup_projection(collection),
                                                  comment=LOOKUP_COMMENT)
