"""The /v1/score micro-batcher: parallel callers fill shared passes; a lone caller never waits.

Each test drives a real `ScoreBatcher` with the registry's champion on an asyncio loop. The
coalescing waits are set far above what the clients need (their "think time" between answers is a
few milliseconds), so the pass sizes asserted here do not depend on the machine's speed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pandas as pd
from serving_helpers import request_body

from serving.micro_batch import ScoreBatcher
from serving.model_store import LoadedModel
from serving.schemas import ScoreRequest
from serving.score_request import PreparedRequest, prepare_request, score_requests

THINK_SECONDS = 0.005  # client k's turnaround between an answer and its next request: (k + 1) x this


def prepared_requests(registry: Any, scorer: Any, n: int) -> list[PreparedRequest]:
    """One single-customer request per customer, for `n` customers with several purchases."""
    counts = registry.transactions.groupby("customer_id").size().sort_index()
    ids = [str(cid) for cid in counts[counts >= 3].index[:n]]
    bodies = [ScoreRequest.model_validate(request_body(registry.transactions, [cid], registry.as_of)) for cid in ids]
    return [prepare_request(body, scorer.required_columns) for body in bodies]


def loaded(scorer: Any) -> LoadedModel:
    return LoadedModel(scorer=scorer, uri="models:/patron@champion", name="patron", version="1", loaded_at=dt.datetime.now())


async def run_clients(
    batcher: ScoreBatcher, model: LoadedModel, requests: list[PreparedRequest], as_of: pd.Timestamp, rounds: int
) -> list[list[pd.DataFrame]]:
    """One client per request, each sending its request `rounds` times in a row; their answers."""

    async def client(k: int, request: PreparedRequest) -> list[pd.DataFrame]:
        answers = []
        for _ in range(rounds):
            answers.append(await batcher.score(model, request, as_of, False))
            await asyncio.sleep(THINK_SECONDS * (k + 1))
        return answers

    return list(await asyncio.gather(*(client(k, request) for k, request in enumerate(requests))))


def run(batcher: ScoreBatcher, body: Any) -> Any:
    """Start the batcher, run `body(batcher)` on the loop, stop the batcher."""

    async def main() -> Any:
        await batcher.start()
        try:
            return await body(batcher)
        finally:
            await batcher.stop()

    return asyncio.run(main())


def test_parallel_callers_are_scored_together_and_each_gets_its_own_rows(registry, scorer):
    requests = prepared_requests(registry, scorer, 4)
    model, sizes = loaded(scorer), []
    # a window far longer than the test, so a slow (shared) machine cannot make the peak expire between rounds
    batcher = ScoreBatcher(coalesce_seconds=2.0, peak_window_seconds=600, on_pass=lambda n, seconds: sizes.append(n))
    answers = run(batcher, lambda b: run_clients(b, model, requests, registry.as_of, rounds=5))

    # The clients come back one after another: without the wait, the first back would be scored
    # alone and the passes would stay small.
    assert sizes == [4] * 5
    assert batcher.waits >= 4 and batcher.in_server == 0
    for request, client_answers in zip(requests, answers, strict=True):
        (alone,) = score_requests([request], scorer, registry.as_of, False)
        for answer in client_answers:
            pd.testing.assert_frame_equal(answer.scores, alone.scores)
            assert answer.rejects == alone.rejects == []


def test_a_lone_caller_never_waits(registry, scorer):
    requests = prepared_requests(registry, scorer, 1)
    batcher = ScoreBatcher(coalesce_seconds=30.0)  # a wait would show in `waits` and stall the test
    run(batcher, lambda b: run_clients(b, loaded(scorer), requests, registry.as_of, rounds=5))
    assert batcher.passes == 5 and batcher.waits == 0


def test_the_peak_of_parallel_callers_is_forgotten(registry, scorer):
    requests = prepared_requests(registry, scorer, 4)
    model = loaded(scorer)
    batcher = ScoreBatcher(coalesce_seconds=30.0, peak_window_seconds=0.05)

    async def body(b: ScoreBatcher) -> int:
        await run_clients(b, model, requests, registry.as_of, rounds=1)
        await asyncio.sleep(0.2)  # longer than the window: the peak of 4 no longer applies
        waits = b.waits
        await run_clients(b, model, requests[:1], registry.as_of, rounds=3)
        return b.waits - waits

    assert run(batcher, body) == 0


def test_a_wait_for_callers_who_do_not_come_ends_at_its_limit(registry, scorer):
    requests = prepared_requests(registry, scorer, 4)
    model, sizes = loaded(scorer), []
    batcher = ScoreBatcher(coalesce_seconds=0.05, peak_window_seconds=600, on_pass=lambda n, seconds: sizes.append(n))

    async def body(b: ScoreBatcher) -> list[list[pd.DataFrame]]:
        await run_clients(b, model, requests, registry.as_of, rounds=1)  # the peak becomes 4
        return await run_clients(b, model, requests[:2], registry.as_of, rounds=3)  # then only 2 call

    answers = run(batcher, body)
    assert sizes == [4, 2, 2, 2] and batcher.waits == 3
    assert all(len(answer.scores) == 1 for client_answers in answers for answer in client_answers)


def test_small_passes_run_on_the_loop_thread_and_large_ones_on_the_pass_thread(registry, scorer):
    (request,) = prepared_requests(registry, scorer, 1)
    rows = request.n_rows
    model = loaded(scorer)
    batcher = ScoreBatcher(inline_max_rows=rows)

    async def body(b: ScoreBatcher) -> tuple[pd.DataFrame, pd.DataFrame]:
        inline = await b.score(model, request, registry.as_of, False)
        b.inline_max_rows = rows - 1
        on_thread = await b.score(model, request, registry.as_of, False)
        return inline, on_thread

    inline, on_thread = run(batcher, body)
    assert batcher.passes == 2 and batcher.inline_passes == 1
    pd.testing.assert_frame_equal(inline.scores, on_thread.scores)


def test_stopping_answers_requests_the_consumer_was_waiting_with(registry, scorer):
    requests = prepared_requests(registry, scorer, 2)
    model = loaded(scorer)

    async def main() -> Exception | None:
        batcher = ScoreBatcher(coalesce_seconds=30.0)
        await batcher.start()
        await run_clients(batcher, model, requests, registry.as_of, rounds=1)  # the peak becomes 2
        lone = asyncio.create_task(batcher.score(model, requests[0], registry.as_of, False))
        while batcher.waits == 0:  # the consumer took it and waits for a second caller
            await asyncio.sleep(0.001)
        await batcher.stop()
        try:
            await asyncio.wait_for(lone, 5)
        except RuntimeError as exc:
            return exc
        return None

    error = asyncio.run(main())
    assert error is not None and "shutting down" in str(error)


def test_a_tie_at_a_tier_boundary_is_broken_by_the_customer_id_not_the_pass_key(registry, scorer):
    """A customer whose value score equals a boundary's sits below it when their id sorts after the
    boundary's (the batch's rule); the pass key `0|<id>` sorts before any id starting with a letter."""
    request = prepared_requests(registry, scorer, 1)[0]
    alone = score_requests([request], scorer, registry.as_of, False)[0].scores.iloc[0]
    customer_id, value = str(alone["customer_id"]), float(alone["value_score"])
    assert customer_id[0].isalpha() and customer_id > customer_id[0]
    below = [None, None, (value, customer_id[0])]  # same score, boundary id sorts before the customer's
    above = [None, None, (value, customer_id)]  # the boundary is the customer itself
    tier_below = score_requests([request], scorer, registry.as_of, False, below)[0].scores.iloc[0]["value_tier"]
    tier_above = score_requests([request], scorer, registry.as_of, False, above)[0].scores.iloc[0]["value_tier"]
    assert (tier_below, tier_above) == ("regular", "silver")
