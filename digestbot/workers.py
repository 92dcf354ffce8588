"""CPU work off the event loop: feed parsing and HTML-to-text, in threads or worker processes.

Threads keep the event loop answering but share one core (the GIL); a first poll of hundreds
of feeds is mostly parsing and text extraction, so with a process pool it uses every core.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import logging
import multiprocessing
import operator
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from multiprocessing.reduction import ForkingPickler
from typing import Any, TypeVar

from digestbot.errors import DigestbotError

T = TypeVar("T")
log = logging.getLogger("digestbot.workers")

# Loaded once in the fork server, so each worker starts with them imported.
_PRELOAD = ["digestbot.pipeline", "digestbot.feeds", "digestbot.extract"]
_OWNER_CHECK_SECONDS = 0.5


class WorkerError(DigestbotError):
    """A worker process died (crash or out of memory) while handling one job."""


class Offload:
    """Runs a function off the event loop: in the process pool when there is one, else in a
    thread; after the pool breaks, in threads."""

    def __init__(self, pool: Executor | None = None) -> None:
        self.pool = pool
        self.broken = False
        self._started: asyncio.Future[Any] | None = None
        self._ready = False

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Take a picklable top-level function and its arguments; return its result."""
        if self.pool is None or self.broken:
            return await asyncio.to_thread(fn, *args)
        try:
            await self._start(self.pool)
            return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)
        except BrokenProcessPool:
            # The job that killed a worker is not retried in this process: it might kill it too.
            if not self.broken:
                log.error("worker pool broken: parsing goes on in threads of this process")
            self.broken = True
            raise WorkerError("worker: process died while parsing") from None

    async def _start(self, pool: Executor) -> None:
        """Take the pool; return once its workers are started, started from a thread."""
        # A process pool starts its workers inside the first submit, holding a lock that
        # every other submit waits on: started on the event loop, the fork server's start-up
        # (half a second) would stall every fetch. From a thread, fetches go on meanwhile.
        if self._ready:
            return
        if self._started is None or self._started.get_loop() is not asyncio.get_running_loop():
            self._started = asyncio.ensure_future(asyncio.to_thread(pool.submit, int))
        await asyncio.shield(self._started)
        self._ready = True


@functools.cache
def pickle_by_fields(cls: type) -> None:
    """Take a dataclass whose __init__ takes exactly its fields, in order; make pickles between
    processes rebuild it by calling the class (any other class keeps default pickling)."""
    # A frozen dataclass with slots pickles through dataclasses' __getstate__/__setstate__,
    # which look up fields() for every object: for a parsed feed's entries and their
    # features that costs the poll's process more than reading the rest of the results.
    names = [field.name for field in dataclasses.fields(cls)]
    params = inspect.signature(cls).parameters.values()
    if ([p.name for p in params] != names or hasattr(cls, "__post_init__")
            or any(p.kind is not p.POSITIONAL_OR_KEYWORD for p in params)):
        return
    values = operator.attrgetter(*names)
    if len(names) == 1:
        ForkingPickler.register(cls, lambda obj: (cls, (values(obj),)))
    else:
        ForkingPickler.register(cls, lambda obj: (cls, values(obj)))


def watch_owner(owner: int) -> None:
    """Take the pid of the process that made the pool; exit this worker once it is gone."""
    # A pool's owner killed with SIGKILL (a cron timeout, the OOM killer) runs no cleanup, and
    # its idle workers would wait for work forever, holding memory and the fork server.
    def watch() -> None:
        while True:
            time.sleep(_OWNER_CHECK_SECONDS)
            try:
                os.kill(owner, 0)
            except ProcessLookupError:
                os._exit(0)
            except PermissionError:
                pass  # alive, and owned by someone else: cannot be ours after a pid reuse

    threading.Thread(target=watch, name="digestbot-owner-watch", daemon=True).start()


def default_worker_count() -> int:
    """Return how many worker processes a poll uses when the config leaves it open."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return min(cores or 1, 8)


@contextmanager
def worker_pool(count: int | None) -> Iterator[Offload]:
    """Take a worker count (None: one per core); yield an Offload over that many processes
    (threads when below 2)."""
    count = default_worker_count() if count is None else count
    if count < 2:
        yield Offload()
        return
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)
    # Workers start on first use, so a poll of unchanged feeds never pays for them.
    pool = ProcessPoolExecutor(max_workers=count, mp_context=context, initializer=watch_owner,
                               initargs=(os.getpid(),))
    try:
        yield Offload(pool)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
