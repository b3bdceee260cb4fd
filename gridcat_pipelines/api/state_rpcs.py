"""``gridapi.v1.StateService``: GetState, ListStates, GetStateHistory, RecordResult,
SetAuthoritative — the CLI's ``states`` commands over HTTP, same store, same rules."""

from __future__ import annotations

from typing import Any

from gridcat_pipelines.api.calls import Call
from gridcat_pipelines.api.route import Route, rpc_route
from gridcat_pipelines.api.services import ApiServices
from gridcat_pipelines.state.keys import DEFAULT_SOURCE, PartitionKey
from gridcat_pipelines.state.models import StateFilter, ValidationResult


def _key(message: dict[str, Any]) -> PartitionKey:
    return PartitionKey.parse(
        message["customer_id"], message["query_name"], message["logical_date"], message.get("source", DEFAULT_SOURCE)
    )


def get_state(services: ApiServices, call: Call) -> dict[str, Any]:
    """``{"state"}``: pending with no run when the key has no row."""
    return {"state": services.store.get(_key(call.message)).to_json()}


def list_states(services: ApiServices, call: Call) -> dict[str, Any]:
    """The tag-facet contract's ListStates: facet filters, base filters, page tokens."""
    m = call.message
    state_filter = StateFilter.parse(
        status=m.get("status"),
        customer_id=m.get("customer_id"),
        query_name=m.get("query_name"),
        source=m.get("source"),
        from_date=m.get("from_date"),
        to_date=m.get("to_date"),
    )
    page = services.store.list_states(
        state_filter,
        page_size=m.get("page_size"),
        page_token=m.get("page_token") or None,
        filters=m.get("filters"),
    )
    payload = page.to_json()
    payload.setdefault("applied_facets", [])
    payload.setdefault("non_facet_filters", [])
    return payload


def get_history(services: ApiServices, call: Call) -> dict[str, Any]:
    """``{"history": [...]}``, oldest first."""
    return {"history": [e.to_json() for e in services.store.history(_key(call.message))]}


def record_result(services: ApiServices, call: Call) -> dict[str, Any]:
    """``{"outcome", "state"}``: the validators' write path."""
    m = call.message
    result = ValidationResult.parse(
        customer_id=m["customer_id"],
        query_name=m["query_name"],
        logical_date=m["logical_date"],
        source=m.get("source", DEFAULT_SOURCE),
        run_id=m["run_id"],
        status=m["status"],
        schema_version=m.get("schema_version"),
        record_count=m.get("record_count"),
        error_message=m.get("error_message"),
        tags=m.get("tags"),
    )
    return services.store.record_result(result).to_json()


def set_authoritative(services: ApiServices, call: Call) -> dict[str, Any]:
    """``{"state"}`` after an operator re-point guarded by ``expected_version``."""
    m = call.message
    state = services.store.set_authoritative(_key(m), m["run_id"], m["expected_version"])
    return {"state": state.to_json()}


def _rpc(method: str, handler, summary: str, *, mutation: bool = False) -> Route:
    return rpc_route("StateService", method, handler, summary, mutation=mutation)


ROUTES = [
    _rpc("GetState", get_state, "The state of one partition (pending with no run when none was recorded)"),
    _rpc("ListStates", list_states, "One page of states: base filters, tag-facet filters (EQ on promoted keys)"),
    _rpc("GetStateHistory", get_history, "Every result offered for a partition and every re-point"),
    _rpc(
        "RecordResult",
        record_result,
        "Record a validation result (superseded when older than the current run)",
        mutation=True,
    ),
    _rpc(
        "SetAuthoritative",
        set_authoritative,
        "Re-point the authoritative run, guarded by expected_version",
        mutation=True,
    ),
]
