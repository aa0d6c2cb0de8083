"""The database bootstrap, in one place.

``JOBGRAPH_MONGODB_URI`` set: connect to it. Otherwise start the embedded
SecantusDB server (the ``embedded`` extra) as a subprocess on a free local port,
its data in a directory that survives restarts, and stop it on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymongo
from bson.tz_util import utc as bson_utc
from pymongo import AsyncMongoClient
from pymongo.errors import (
    AutoReconnect,
    ConfigurationError,
    ConnectionFailure,
    ExecutionTimeout,
    InvalidURI,
    NetworkTimeout,
    OperationFailure,
    PyMongoError,
)

from .batches import BatchRepository
from .deliveries import DeliveryRepository
from .documentation_jobs import DocumentationJobRepository
from .errors import DatabaseUnavailableError, EmbeddedDatabaseError
from .job_history import HistoryRepository
from .jobs import JobRepository
from .limits import Limits
from .mongo_types import Client, Db
from .schedules import ScheduleRepository
from .webhook_feed import FeedState
from .webhooks import WebhookRepository

# What graph/ needs of PyMongo, named here so that graph/ never imports it.
Database = Db
DatabaseError = PyMongoError
"""Any failure talking to MongoDB."""
CommandError = OperationFailure
"""MongoDB refused a command (its ``code`` says why)."""
UNREACHABLE_ERRORS = (AutoReconnect, ConnectionFailure, NetworkTimeout, ExecutionTimeout)
"""MongoDB did not answer (in time): the API says DATABASE_UNAVAILABLE."""
STORED_UTC = bson_utc
"""The time zone of every datetime read from the database (``make_client``'s ``tz_aware``)."""


def deadline(seconds: float) -> contextlib.AbstractContextManager[None]:
    """Every database operation inside runs within ``seconds`` in all (pymongo's timeout)."""
    return pymongo.timeout(seconds)

EMBEDDED_EXECUTABLE = "secantusd-py"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _executable() -> str:
    """The server next to this interpreter (the venv), else on PATH."""
    beside = Path(sys.executable).with_name(EMBEDDED_EXECUTABLE)
    if beside.exists():
        return str(beside)
    found = shutil.which(EMBEDDED_EXECUTABLE)
    if found is None:
        raise EmbeddedDatabaseError(
            "no JOBGRAPH_MONGODB_URI is set and the embedded database is not installed: "
            "pip install 'jobgraph[embedded]', or set JOBGRAPH_MONGODB_URI"
        )
    return found


KNOCK_SECONDS = 0.05
"""How often a stopping embedded server's port is knocked on (see ``EmbeddedServer.stop``)."""
SIGNAL_AGAIN_SECONDS = 0.5
"""How long a stopping embedded server's port may still answer before it is signalled again."""


@dataclass
class EmbeddedServer:
    """A SecantusDB subprocess. Its data directory is kept between runs."""

    data_dir: Path
    port: int = 0
    host: str = "127.0.0.1"
    startup_timeout: float = 30.0
    extra_args: tuple[str, ...] = ()
    """More secantusd-py flags, e.g. ``("--standalone",)`` for a server without change streams."""
    durable: bool = True
    """Journal every commit to disk before acknowledging it (``--sync-on-commit``). Without
    it, SecantusDB acknowledges a write while its journal record may still sit in the
    process's log buffer, and a kill -9 loses the newest acknowledged writes."""
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def uri(self) -> str:
        return f"mongodb://{self.host}:{self.port}/?directConnection=true"

    def start(self) -> str:
        executable = _executable()
        _private_directory(self.data_dir)
        if not self.port:
            self.port = free_port()
        log = _private_log(self.data_dir.parent / f"{self.data_dir.name}.log")
        self.process = subprocess.Popen(
            [executable, "--host", self.host, "--port", str(self.port),
             "--storage-path", str(self.data_dir), "--log-level", "WARNING",
             "--noop-heartbeat-seconds", "5",
             *(["--sync-on-commit"] if self.durable else []), *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            # its own session: a terminal's Ctrl+C signals the whole foreground process
            # group, and the server, killed by it at once, left the app's shutdown without
            # a database (no lease given back: the next start waited out the history
            # writer's); the app, once shut down, stops it
            start_new_session=True, preexec_fn=_die_with_parent,
        )
        log.close()
        self._wait_until_answering()
        return self.uri

    def _wait_until_answering(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                log = self.data_dir.parent / f"{self.data_dir.name}.log"
                if "already being managed by another process" in _tail(log):
                    raise EmbeddedDatabaseError(
                        f"another process is already using the data directory {self.data_dir}; "
                        "stop it, or set JOBGRAPH_DATA_DIR to another directory")
                raise EmbeddedDatabaseError(
                    f"the embedded database exited with code {self.process.returncode}; see {log}")
            if self._answers(timeout=0.5):
                return
            time.sleep(0.05)
        self.stop()
        raise EmbeddedDatabaseError(
            f"the embedded database did not answer within {self.startup_timeout:.0f} s"
        )

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then its port is knocked on until it has gone (SIGKILL after
        ``timeout``). Its handler closes the listening socket, then waits up to 2 s for
        its accept thread, which sees the stop only when a connection comes: every stop
        took 2 s. And a SIGTERM that comes as its main thread starts to wait is never
        handled (the signal reaches the process, its Python handler never runs): a stop
        right after a start took the whole ``timeout``, then a kill, in about one of
        seven. A port that still answers SIGNAL_AGAIN_SECONDS after the signal has not
        closed it, so it is signalled again (a second SIGTERM was always handled)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        deadline = time.monotonic() + timeout
        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        while True:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(KNOCK_SECONDS)
                return
            now = time.monotonic()
            if now >= deadline:
                break
            if self._answers(timeout=KNOCK_SECONDS) and now - signalled >= SIGNAL_AGAIN_SECONDS:
                process.send_signal(signal.SIGTERM)
                signalled = now
        process.kill()
        process.wait(timeout)

    def _answers(self, timeout: float) -> bool:
        """Whether its port takes a connection (which it closes at once)."""
        try:
            with socket.create_connection((self.host, self.port), timeout=timeout):
                return True
        except OSError:
            return False

    def restart(self) -> None:
        """Stop and start again on the same port and data (used by fault tests)."""
        self.stop()
        self.start()

    def crash(self, timeout: float = 15.0) -> None:
        """Kill -9, as a power cut would (fault tests); ``start`` brings it back."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout)


def _private_directory(path: Path) -> None:
    """The data directory, readable by its owner only (0700), however the umask is set;
    one an earlier version left open is closed too. Its parents are made as usual."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.mkdir(mode=0o700, exist_ok=True)  # the umask may take bits away, never add them
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)


def _private_log(path: Path) -> Any:
    """The server's log, appended to, readable by its owner only (0600)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    if os.fstat(descriptor).st_mode & 0o077:
        os.fchmod(descriptor, 0o600)
    return os.fdopen(descriptor, "ab")


def _die_with_parent() -> None:
    """Linux: the server gets SIGTERM if we die without stopping it (e.g. SIGKILL)."""
    with contextlib.suppress(Exception):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _tail(path: Path, size: int = 4096) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(handle.tell() - size, 0))
            return handle.read().decode(errors="replace")
    except OSError:
        return ""


def default_data_dir() -> Path:
    return Path(os.environ.get("JOBGRAPH_DATA_DIR") or Path.cwd() / ".data" / "secantus")


def make_client(uri: str, *, timeout_ms: int = 5000, **options: Any) -> Client:
    try:
        return AsyncMongoClient(
            uri,
            tz_aware=True,
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
            **options,
        )
    except (ConfigurationError, InvalidURI, ValueError) as exc:
        raise DatabaseUnavailableError(f"JOBGRAPH_MONGODB_URI is not usable: {exc}") from None


async def ping(client: Client, uri: str) -> None:
    try:
        await client.admin.command("ping")
    except PyMongoError as exc:
        raise DatabaseUnavailableError(
            f"cannot reach MongoDB at {redact(uri)}: {type(exc).__name__}: {exc}".splitlines()[0]
        ) from None


def redact(uri: str) -> str:
    """The URI without its password, for messages and logs."""
    if "@" not in uri or "://" not in uri:
        return uri
    scheme, rest = uri.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


@dataclass
class Store:
    """The repositories over one database."""

    client: Client
    database_name: str
    limits: Limits = field(default_factory=Limits)

    def __post_init__(self) -> None:
        db = self.client[self.database_name]
        self.db = db
        self.jobs = JobRepository(db["jobs"], self.limits)
        self.queues = self.jobs.queues
        self.workers = self.jobs.workers
        self.batches = BatchRepository(db["batches"], self.jobs, self.limits)
        self.documentation_jobs = DocumentationJobRepository(db["documentation_jobs"], self.limits)
        self.schedules = ScheduleRepository(db["schedules"], self.jobs, self.limits)
        self.webhooks = WebhookRepository(db["webhooks"], db["webhook_deliveries"], self.limits)
        self.deliveries = DeliveryRepository(db["webhook_deliveries"], self.webhooks,
                                             self.limits)
        self.webhook_feed = FeedState(db["webhook_feed"])
        self.history = HistoryRepository(db["job_history"], self.limits.history_days)
        self.history_feed = FeedState(db["history_feed"])

    async def ensure_indexes(self) -> None:
        """Create declared indexes; idempotent, and never drops an index."""
        await asyncio.gather(
            self.jobs.ensure_indexes(),
            self.batches.ensure_indexes(),
            self.documentation_jobs.ensure_indexes(),
            self.schedules.ensure_indexes(),
            self.webhooks.ensure_indexes(),
            self.deliveries.ensure_indexes(),
            self.webhook_feed.ensure_indexes(),
            self.history.ensure_indexes(),
        )
