"""Property test of the record rules, on SQLite and PostgreSQL.

Several runs of one partition are offered results in a random interleaving (with repeats,
in random batches); a tiny pure-Python model of the rules predicts every outcome, the state
after every offer, the history and the change feed, and the store must agree with it.

The rules the model encodes (``StateStore._record_batch``), checked in this order:

1. the content equals the LAST result offered for the same (key, run)  -> ``replayed``;
2. the run sorts lower than the state's ``current_run_id``             -> ``superseded``;
3. anything else                                                       -> ``applied``.

Rule 1 comes first: a repeat of an old run's last result is ``replayed``, not
``superseded``. Both leave the state alone, so only the history label depends on the
order (the store's own tests rely on replay winning over a re-point too).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridcat_pipelines.run_ids import new_run_id
from gridcat_pipelines.state import PartitionKey, StateStore, ValidationResult

# A small space of verdicts, so that an offer often repeats its run's last one (a replay).
# tags=None keeps the state's tags; {} clears them.
CONTENTS: list[dict[str, Any]] = [
    dict(status="success", schema_version="1", record_count=10, error_message=None, tags=None),
    dict(status="success", schema_version="1", record_count=10, error_message=None, tags={"team": "core"}),
    dict(status="success", schema_version=None, record_count=0, error_message=None, tags={}),
    dict(status="failed", schema_version="1", record_count=None, error_message="timeout", tags=None),
    dict(status="failed", schema_version="2", record_count=3, error_message="cost < 0", tags={"team": "ads"}),
]
STATE_FIELDS = (
    "status",
    "current_run_id",
    "schema_version",
    "record_count",
    "error_message",
    "attempt_count",
    "version",
    "tags",
)

_customer_ids = itertools.count(1_000_000)


def fresh_key() -> PartitionKey:
    """A key no earlier example touched (examples share the test's database)."""
    return PartitionKey("google_ads", str(next(_customer_ids)), "campaign", date(2026, 11, 1))


@dataclass
class Model:
    """The record rules for one key, in plain Python."""

    current_run: str | None = None
    status: str = "pending"
    schema_version: str | None = None
    record_count: int | None = None
    error_message: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    version: int = 0
    applied_runs: set[str] = field(default_factory=set)
    last_offered: dict[str, int] = field(default_factory=dict)  # run -> content index

    def offer(self, run_id: str, content: int) -> str:
        if self.last_offered.get(run_id) == content:
            outcome = "replayed"
        elif self.current_run is not None and run_id < self.current_run:
            outcome = "superseded"
        else:
            outcome = "applied"
            c = CONTENTS[content]
            self.current_run = run_id
            self.status = c["status"]
            self.schema_version = c["schema_version"]
            self.record_count = c["record_count"]
            self.error_message = c["error_message"]
            if c["tags"] is not None:
                self.tags = dict(c["tags"])
            self.version += 1
            self.applied_runs.add(run_id)
        self.last_offered[run_id] = content
        return outcome

    def fields(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "current_run_id": self.current_run,
            "schema_version": self.schema_version,
            "record_count": self.record_count,
            "error_message": self.error_message,
            "attempt_count": len(self.applied_runs),
            "version": self.version,
            "tags": self.tags,
        }


def state_fields(state) -> dict[str, Any]:
    return {name: getattr(state, name) for name in STATE_FIELDS}


@st.composite
def scenarios(draw):
    """(number of runs, batches of (run index, content index))."""
    n_runs = draw(st.integers(2, 4))
    offer = st.tuples(st.integers(0, n_runs - 1), st.integers(0, len(CONTENTS) - 1))
    offers = draw(st.lists(offer, min_size=1, max_size=14))
    # cut the offers into record_results batches (a batch decides in order, in one transaction)
    cuts = draw(st.lists(st.booleans(), min_size=len(offers) - 1, max_size=len(offers) - 1))
    batches, batch = [], [offers[0]]
    for cut, item in zip(cuts, offers[1:]):
        if cut:
            batches.append(batch)
            batch = []
        batch.append(item)
    batches.append(batch)
    return n_runs, batches


def test_record_rules_match_the_model(store: StateStore):
    examples = 40 if store.dialect == "sqlite" else 25

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(scenarios())
    def check(scenario):
        n_runs, batches = scenario
        key = fresh_key()
        runs = [new_run_id() for _ in range(n_runs)]  # creation order == sort order
        assert runs == sorted(runs) and len(set(runs)) == n_runs
        cursor = store.last_change_seq()
        model = Model()
        offered: list[tuple[str, int, str]] = []  # (run_id, content, expected outcome)

        for batch in batches:
            results = [ValidationResult(key=key, run_id=runs[r], **CONTENTS[c]) for r, c in batch]
            outcomes = store.record_results(results)
            assert len(outcomes) == len(batch)
            for (r, c), got in zip(batch, outcomes):
                expected = model.offer(runs[r], c)
                offered.append((runs[r], c, expected))
                assert got.outcome == expected, (r, c, offered)
                assert state_fields(got.state) == model.fields()

        # the final state, field by field
        final = store.get(key)
        assert state_fields(final) == model.fields()
        assert final.exists and final.updated_at is not None

        # headline: the newest run ever offered is authoritative, with its last offered verdict
        newest = max(run for run, _, _ in offered)
        last_of_newest = [c for run, c, _ in offered if run == newest][-1]
        assert final.current_run_id == newest
        assert final.status == CONTENTS[last_of_newest]["status"]
        assert final.record_count == CONTENTS[last_of_newest]["record_count"]
        assert final.error_message == CONTENTS[last_of_newest]["error_message"]
        assert final.version == sum(1 for *_, o in offered if o == "applied")

        # history: exactly one row per offer, in offer order, with the model's outcomes
        history = store.history(key)
        assert len(history) == len(offered)
        versions = itertools.accumulate(1 if o == "applied" else 0 for *_, o in offered)
        for entry, (run, c, outcome), version in zip(history, offered, versions):
            content = CONTENTS[c]
            assert (entry.run_id, entry.outcome, entry.state_version) == (run, outcome, version)
            assert entry.status == content["status"]
            assert entry.schema_version == content["schema_version"]
            assert entry.record_count == content["record_count"]
            assert entry.error_message == content["error_message"]
            assert entry.tags == content["tags"]
            assert (entry.change_seq is not None) == (outcome == "applied")
        assert [h.id for h in history] == sorted(h.id for h in history)

        # change feed: one change per applied offer, versions 1..n, in order
        changes = [ch for ch in store.changes_since(cursor, limit=1000) if ch.key == key]
        applied = [(run, c) for run, c, o in offered if o == "applied"]
        assert [ch.version for ch in changes] == list(range(1, len(applied) + 1))
        assert [(ch.run_id, ch.status, ch.record_count, ch.kind) for ch in changes] == [
            (run, CONTENTS[c]["status"], CONTENTS[c]["record_count"], "applied") for run, c in applied
        ]
        assert [ch.seq for ch in changes] == [h.change_seq for h in history if h.outcome == "applied"]

    check()
