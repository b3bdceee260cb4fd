"""The synthetic source's simulated network latency: ``latency_ms`` is slept once per query
before its first batch, ``batch_delay_ms`` before each later batch, both lazily while the
returned iterator is consumed; the rows never change, and pulls in threads overlap.

Real wall-clock timings (no mocked time); each delay is kept small so the file runs in ~1 s.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest

from gridcat_pipelines.errors import INVALID_ARGUMENT, GridcatError
from gridcat_pipelines.feeds.loader import load_pipeline_config
from gridcat_pipelines.sources.base import SourceCrash, TransientSourceError
from gridcat_pipelines.sources.faults import FaultPlan
from gridcat_pipelines.sources.synthetic import SyntheticSource

CONFIG = load_pipeline_config()
FEEDS = CONFIG.feeds
CUSTOMERS = list(CONFIG.customers.values())
DAY = date(2026, 2, 3)
# a busy partition: several hundred rows, so several batches of BATCH_ROWS
FEED, CUSTOMER = FEEDS["search_term_view"], CUSTOMERS[0]
BATCH_ROWS = 50


def test_defaults_are_zero_and_stored():
    src = SyntheticSource(seed=11)
    assert (src.latency_ms, src.batch_delay_ms) == (0.0, 0.0)
    slow = SyntheticSource(seed=11, latency_ms=5, batch_delay_ms=1.5)
    assert (slow.latency_ms, slow.batch_delay_ms) == (5.0, 1.5)
    assert isinstance(slow.latency_ms, float) and isinstance(slow.batch_delay_ms, float)


def test_latency_does_not_change_the_data():
    plain = SyntheticSource(seed=11, batch_rows=BATCH_ROWS)
    slow = SyntheticSource(seed=11, batch_rows=BATCH_ROWS, latency_ms=5, batch_delay_ms=1)
    for feed in FEEDS.values():
        want = list(plain.fetch(feed, CUSTOMER, DAY))
        got = list(slow.fetch(feed, CUSTOMER, DAY))
        assert len(got) == len(want), feed.name
        assert all(g.equals(w) for g, w in zip(got, want)), feed.name
    assert len(list(plain.fetch(FEED, CUSTOMER, DAY))) >= 3  # the multi-batch case is covered


def test_latency_is_slept_while_iterating_not_in_fetch():
    src = SyntheticSource(seed=11, latency_ms=200)
    start = time.perf_counter()
    stream = src.fetch(FEED, CUSTOMER, DAY)
    assert time.perf_counter() - start < 0.1  # fetch() only decides the fault
    batches = list(stream)
    assert time.perf_counter() - start >= 0.2
    assert batches  # the partition is not empty


def test_latency_is_slept_once_before_the_first_batch():
    src = SyntheticSource(seed=11, batch_rows=BATCH_ROWS, latency_ms=150)
    stream = src.fetch(FEED, CUSTOMER, DAY)
    start = time.perf_counter()
    next(stream)
    first = time.perf_counter() - start
    rest = list(stream)
    total = time.perf_counter() - start
    assert first >= 0.15
    assert len(rest) >= 2
    assert total - first < 0.1  # not again before later batches


def test_batch_delay_applies_between_batches_only():
    delay = 0.06
    src = SyntheticSource(seed=11, batch_rows=BATCH_ROWS, batch_delay_ms=delay * 1000)
    src.universe(CUSTOMER)  # build the entity tables up front: time only the pull
    stream = src.fetch(FEED, CUSTOMER, DAY)
    start = time.perf_counter()
    next(stream)
    assert time.perf_counter() - start < delay  # none before the first batch
    rest = list(stream)
    elapsed = time.perf_counter() - start
    batches = 1 + len(rest)
    assert batches >= 3
    assert elapsed >= (batches - 1) * delay


def test_fetches_in_threads_overlap():
    src = SyntheticSource(seed=11, latency_ms=300)
    customers = [CUSTOMERS[i % len(CUSTOMERS)] for i in range(8)]
    for customer in customers:  # build the entity tables up front: time only the pulls
        src.universe(customer)

    def pull(customer) -> int:
        return sum(batch.num_rows for batch in src.fetch(FEED, customer, DAY))

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=8) as pool:
        rows = list(pool.map(pull, customers))
    elapsed = time.perf_counter() - start
    assert elapsed >= 0.3
    assert elapsed < 1.5, f"8 pulls of 0.3 s in 8 threads took {elapsed:.2f} s: they did not overlap"
    plain = SyntheticSource(seed=11)
    assert rows == [sum(b.num_rows for b in plain.fetch(FEED, c, DAY)) for c in customers]


def test_faults_behave_as_without_latency():
    key = (CUSTOMER.customer_id, FEED.name, DAY.isoformat())
    transient = FaultPlan(seed=0, rate=0.0, forced={key: "transient_error"})
    src = SyntheticSource(seed=11, faults=transient, latency_ms=50)
    start = time.perf_counter()
    stream = src.fetch(FEED, CUSTOMER, DAY)  # decided here, raised while iterating
    with pytest.raises(TransientSourceError):
        next(stream)
    assert time.perf_counter() - start >= 0.05  # the round-trip happens before the error

    crash = FaultPlan(seed=0, rate=0.0, forced={key: "crash_mid_write"})
    src = SyntheticSource(seed=11, faults=crash, batch_rows=BATCH_ROWS, latency_ms=1, batch_delay_ms=1)
    plain = SyntheticSource(seed=11, faults=crash, batch_rows=BATCH_ROWS)
    for source in (src, plain):
        got = []
        with pytest.raises(SourceCrash):
            for batch in source.fetch(FEED, CUSTOMER, DAY):
                got.append(batch)
        assert len(got) == 1
    assert list(src.fetch(FEED, CUSTOMER, DAY, attempt=1)) == list(plain.fetch(FEED, CUSTOMER, DAY, attempt=1))


def test_empty_day_still_pays_the_latency():
    src = SyntheticSource(seed=11, latency_ms=50)
    customer = CUSTOMERS[-1]  # the mostly-dark sandbox account
    days = [date(2026, 1, i) for i in range(1, 32)]
    day = next(d for d in days if src.table(FEED, customer, d).num_rows == 0)
    start = time.perf_counter()
    assert list(src.fetch(FEED, customer, day)) == []
    assert time.perf_counter() - start >= 0.05


@pytest.mark.parametrize("name", ["latency_ms", "batch_delay_ms"])
@pytest.mark.parametrize("value", [-1, -0.5, True, False, "5", None, 1e9, 600_001, float("nan"), float("inf")])
def test_bad_delays_are_invalid_arguments(name, value):
    with pytest.raises(GridcatError, match=name) as info:
        SyntheticSource(**{name: value})
    assert info.value.code == INVALID_ARGUMENT


@pytest.mark.parametrize("name", ["latency_ms", "batch_delay_ms"])
@pytest.mark.parametrize("value", [0, 0.0, 1, 2.5, 600_000])
def test_good_delays_are_accepted(name, value):
    assert getattr(SyntheticSource(**{name: value}), name) == float(value)


def test_delays_are_keyword_only():
    with pytest.raises(TypeError):
        SyntheticSource(0, None, 500, 1.0, 5)  # type: ignore[misc]
