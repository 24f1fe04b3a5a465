"""Coalesce concurrent /v1/score calls into one validate -> features -> score pass.

The cost of a pass is mostly fixed per call (pandas and LightGBM overhead), so scoring the customers
of several waiting requests together serves them in about the time of one. A single consumer takes
every request waiting in the queue (up to a customer budget) and runs one `score_requests` pass per
(model, as_of, fields sent, duplicate setting). A lone request is scored at once; requests that
arrive while a pass runs form the next pass.

Clients that call in parallel wait for each other's answers, so after a pass the clients it
answered send their next request a moment later -- too late for the pass that starts at once, which
then holds only the others, and passes stay small. So when fewer requests are waiting than were in
the server at once recently (the peak of the last second), the consumer waits up to
`coalesce_seconds` (settings: `score_coalesce_ms`) for the rest. A client calling alone never
raises the peak above one and never waits. Measured (benchmarks/RESULTS.md, API): at concurrency 4,
passes of 2.0 requests and 138-152 req/s without the wait, 3.8 requests and 202-229 req/s with it. A customer's row does not depend on
who shares the pass -- scores are per customer, the same property that lets the batch job work in
chunks (tests/serving/test_batch.py checks both).

A small pass (at most `inline_max_rows` transactions) runs on the event loop's own thread: handing
it to another thread and back cost about 1 ms of a ~7 ms single-customer pass, and the two threads
share one GIL anyway, so the hop bought no parallelism. Larger passes run on one dedicated thread,
so that /healthz, /metrics and the parsing of new requests are not held up behind them. Passes run
one at a time. (LightGBM predicts small inputs on the calling thread alone for every caller:
`models.boosting.SMALL_PREDICT_ROWS`.)
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pandas as pd
from starlette.concurrency import run_in_threadpool

from serving.model_store import LoadedModel
from serving.score_request import PreparedRequest, ScoredRequest, score_requests
from targeting.tiers import BoundaryKey

logger = logging.getLogger(__name__)


@dataclass
class _Waiting:
    model: LoadedModel
    as_of: pd.Timestamp
    keep_duplicates: bool
    request: PreparedRequest
    tier_boundaries: tuple[BoundaryKey | None, ...] | None
    future: asyncio.Future[ScoredRequest] = field(repr=False)

    @property
    def key(self) -> tuple[object, ...]:
        return (id(self.model), self.as_of, self.keep_duplicates, self.request.fields, self.tier_boundaries)


class ScoreBatcher:
    """Scores waiting requests in shared passes.

    Parameters
    ----------
    max_customers : int
        Most customers taken into one pass (a larger request still forms a pass of its own).
    coalesce_seconds : float
        Longest wait for requests expected to join a pass (0: never wait).
    peak_window_seconds : float
        How long the peak of concurrent requests is remembered.
    on_pass : callable, optional
        Called after each pass with the number of requests it served and its seconds (metrics).
    inline_max_rows : int
        Passes of at most this many transactions run on the event loop's thread, larger ones on the
        pass thread.
    """

    def __init__(
        self,
        max_customers: int = 2000,
        coalesce_seconds: float = 0.0,
        peak_window_seconds: float = 1.0,
        on_pass: Callable[[int, float], None] | None = None,
        inline_max_rows: int = 2000,
    ):
        self.max_customers = max_customers
        self.on_pass = on_pass
        self.inline_max_rows = inline_max_rows
        self.inline_passes = 0
        """Passes run on the event loop's thread."""
        self.coalesce_seconds = coalesce_seconds
        self.peak_window_seconds = peak_window_seconds
        self.passes = 0
        self.waits = 0
        """Passes that waited for expected requests (`coalesce_seconds`)."""
        self.in_server = 0
        """Requests handed to `score` and not answered yet."""
        self._peak = 0
        self._peak_since = float("-inf")
        self._taken: list[_Waiting] = []
        self._queue: asyncio.Queue[_Waiting] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        """Start the consumer on the running event loop, and the thread its passes run on."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="patron-score")
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._run(), name="patron-score-batcher")

    async def stop(self) -> None:
        """Stop the consumer; requests still waiting fail with a clear error."""
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
            self._worker = None
        left = list(self._taken)  # taken by the consumer, not answered (it was waiting or scoring)
        while self._queue is not None and not self._queue.empty():
            left.append(self._queue.get_nowait())
        for waiting in left:
            if not waiting.future.done():
                waiting.future.set_exception(RuntimeError("the server is shutting down"))
        self._taken = []
        self._queue = None
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    async def score(
        self,
        model: LoadedModel,
        request: PreparedRequest,
        as_of: pd.Timestamp,
        keep_duplicates: bool,
        tier_boundaries: Sequence[BoundaryKey | None] | None = None,
    ) -> ScoredRequest:
        """The request's scores in request order and its rejected rows (raises its 422 if refused)."""
        boundaries = None if tier_boundaries is None else tuple(tier_boundaries)
        if self._queue is None:  # not started (an app driven without its lifespan): score inline
            (answer,) = await run_in_threadpool(
                score_requests, [request], model.scorer, as_of, keep_duplicates, boundaries
            )
            return _unwrap(answer)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ScoredRequest] = loop.create_future()
        self.in_server += 1
        self._note_peak(loop.time())
        try:
            await self._queue.put(_Waiting(model, as_of, keep_duplicates, request, boundaries, future))
            return await future
        finally:
            self.in_server -= 1

    def _note_peak(self, now: float) -> None:
        """Remember the most requests in the server at once, over windows of `peak_window_seconds`."""
        if now - self._peak_since > self.peak_window_seconds:
            self._peak, self._peak_since = self.in_server, now
        else:
            self._peak = max(self._peak, self.in_server)

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = self._taken = [await self._queue.get()]
            size = len(batch[0].request.ids)
            size = self._take_waiting(batch, size)
            if self.coalesce_seconds > 0 and len(batch) < self._peak and size < self.max_customers:
                self.waits += 1
                deadline = loop.time() + self.coalesce_seconds
                while len(batch) < self._peak and size < self.max_customers:
                    try:
                        waiting = await asyncio.wait_for(self._queue.get(), deadline - loop.time())
                    except asyncio.TimeoutError:
                        break
                    batch.append(waiting)
                    size = self._take_waiting(batch, size + len(waiting.request.ids))
            groups: dict[tuple[object, ...], list[_Waiting]] = {}
            for waiting in batch:  # a handful of requests
                groups.setdefault(waiting.key, []).append(waiting)
            for group in groups.values():
                await self._pass(group)
            self._taken = []

    def _take_waiting(self, batch: list[_Waiting], size: int) -> int:
        """Move queued requests into `batch` up to the customer budget; the batch's customers after."""
        assert self._queue is not None
        while size < self.max_customers and not self._queue.empty():
            waiting = self._queue.get_nowait()
            batch.append(waiting)
            size += len(waiting.request.ids)
        return size

    async def _pass(self, group: list[_Waiting]) -> None:
        first = group[0]
        score = functools.partial(
            score_requests,
            [w.request for w in group],
            first.model.scorer,
            first.as_of,
            first.keep_duplicates,
            first.tier_boundaries,
        )
        inline = sum(w.request.n_rows for w in group) <= self.inline_max_rows
        start = time.perf_counter()
        try:
            if inline:
                self.inline_passes += 1
                answers = score()
            else:
                answers = await asyncio.get_running_loop().run_in_executor(self._executor, score)
        except Exception as exc:  # the pass failed: every request in it gets the error
            answers = [exc] * len(group)
        self.passes += 1
        if self.on_pass is not None:
            self.on_pass(len(group), time.perf_counter() - start)
        for waiting, answer in zip(group, answers, strict=True):
            if waiting.future.done():  # the client went away
                continue
            if isinstance(answer, Exception):
                waiting.future.set_exception(answer)
            else:
                waiting.future.set_result(answer)


def _unwrap(answer: ScoredRequest | Exception) -> ScoredRequest:
    if isinstance(answer, Exception):
        raise answer
    return answer
