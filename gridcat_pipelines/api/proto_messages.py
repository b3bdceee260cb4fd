"""Protobuf messages of the gridapi.v1 contract ↔ the JSON-shaped dicts the handlers take and return.

The handlers speak the JSON API's dicts (snake_case names, enum values as bare words,
timestamps as ISO 8601 strings, ``null`` for unset). A binary or gRPC request is turned into
the same dict the JSON path would build (:func:`to_dict`), checked against the same JSON Schema,
and the handler's answer is filled into the response message (:func:`fill`), so the three
wire formats share one implementation.

Mapping rules, read off the message descriptors:

* fields keep their proto names (``FilterValue.string_value`` is ``stringValue``, as the
  tag-facet contract spells it);
* a field with presence (``optional``, messages) appears in the dict only when set; a field
  without presence always appears, with its default (so ``expected_version: 0`` is a value),
  except an enum left at ``*_UNSPECIFIED``, which is absent;
* enum value ``STATE_STATUS_SUCCESS`` ↔ ``"success"``: the enum's name prefix is dropped and
  the word keeps the JSON API's case (lower case for ``StateStatus`` and ``ResultOutcome``,
  upper case for the facet enums);
* ``google.protobuf.Timestamp`` ↔ ISO 8601 UTC string; ``Struct``/``Value`` ↔ JSON values.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from gridcat_pipelines.api.gen.gridapi.v1 import common_pb2

# Enums whose JSON words are lower case; every other enum keeps its upper-case words.
LOWER_CASE_ENUMS = frozenset({"gridapi.v1.StateStatus", "gridapi.v1.ResultOutcome"})
# Messages whose JSON names are the protobuf JSON (camelCase) names.
CAMEL_CASE_MESSAGES = frozenset({"gridapi.v1.FilterValue"})

_TIMESTAMP = "google.protobuf.Timestamp"
_STRUCT = "google.protobuf.Struct"
_VALUE = "google.protobuf.Value"


def snake(name: str) -> str:
    """``GetStateHistory`` → ``get_state_history`` (generated method names, enum prefixes)."""
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))


def _prefix(enum: EnumDescriptor) -> str:
    """``StateStatus`` → ``STATE_STATUS_`` (buf's ENUM_VALUE_PREFIX rule)."""
    return snake(enum.name).upper() + "_"


_WORDS: dict[str, dict[int, str]] = {}
_NUMBERS: dict[str, dict[str, int]] = {}


def _enum_words(enum: EnumDescriptor) -> dict[int, str]:
    words = _WORDS.get(enum.full_name)
    if words is None:
        prefix = _prefix(enum)
        lower = enum.full_name in LOWER_CASE_ENUMS
        words = {
            v.number: (v.name.removeprefix(prefix).lower() if lower else v.name.removeprefix(prefix))
            for v in enum.values
            if v.number != 0
        }
        _WORDS[enum.full_name] = words
        _NUMBERS[enum.full_name] = {w: n for n, w in words.items()}
    return words


def enum_word(enum: EnumDescriptor, number: int) -> str | None:
    """The JSON word of an enum value (``None`` for ``*_UNSPECIFIED`` or an unknown number)."""
    return _enum_words(enum).get(number)


def enum_number(enum: EnumDescriptor, word: str) -> int:
    """The enum value for a JSON word; ``ValueError`` when the contract has no such value."""
    _enum_words(enum)
    try:
        return _NUMBERS[enum.full_name][word]
    except KeyError:
        raise ValueError(f"{enum.full_name} has no value for {word!r}") from None


def _key(descriptor: Descriptor, field: FieldDescriptor) -> str:
    return field.json_name if descriptor.full_name in CAMEL_CASE_MESSAGES else field.name


def iso_timestamp(ts: Timestamp) -> str:
    """A Timestamp as the JSON API writes times (``2026-12-06T13:07:59.123456+00:00``)."""
    return ts.ToDatetime(tzinfo=UTC).isoformat()


# ------------------------------------------------------------------------------ message → dict


def to_dict(message: Message) -> dict[str, Any]:
    """The request as the JSON API's dict (see the module docstring for the rules)."""
    descriptor = message.DESCRIPTOR
    out: dict[str, Any] = {}
    for field in descriptor.fields:
        if field.label == FieldDescriptor.LABEL_REPEATED:
            value = getattr(message, field.name)
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                out[_key(descriptor, field)] = _map_to_dict(field, value)
            else:
                out[_key(descriptor, field)] = [_single_to_json(field, v) for v in value]
            continue
        if field.has_presence and not message.HasField(field.name):
            continue
        value = _single_to_json(field, getattr(message, field.name))
        if value is not None:
            out[_key(descriptor, field)] = value
    return out


def _map_to_dict(field: FieldDescriptor, value: Any) -> dict[str, Any]:
    value_field = field.message_type.fields_by_name["value"]
    return {k: _single_to_json(value_field, v) for k, v in value.items()}


def _single_to_json(field: FieldDescriptor, value: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_ENUM:
        return enum_word(field.enum_type, value)
    if field.type != FieldDescriptor.TYPE_MESSAGE:
        return value
    name = field.message_type.full_name
    if name == _TIMESTAMP:
        return iso_timestamp(value)
    if name in (_STRUCT, _VALUE):
        return json_format.MessageToDict(value)
    return to_dict(value)


# ------------------------------------------------------------------------------ dict → message


def fill(message: Message, payload: dict[str, Any]) -> None:
    """Set ``message``'s fields from ``payload`` (``None`` values stay unset)."""
    setters = _setters(message.DESCRIPTOR)
    for key, value in payload.items():
        if value is not None:
            setter = setters.get(key)
            if setter is not None:
                setter(message, value)


_SETTERS: dict[str, dict[str, Any]] = {}


def _setters(descriptor: Descriptor) -> dict[str, Any]:
    """Per JSON key, a function that sets that field from a JSON value (built once per message)."""
    setters = _SETTERS.get(descriptor.full_name)
    if setters is None:
        setters = _SETTERS[descriptor.full_name] = {_key(descriptor, f): _setter(f) for f in descriptor.fields}
    return setters


def _setter(field: FieldDescriptor):
    name = field.name
    if field.label == FieldDescriptor.LABEL_REPEATED:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            if value_field.type == FieldDescriptor.TYPE_MESSAGE:
                return lambda m, v: [fill(getattr(m, name)[k], item) for k, item in v.items()]
            convert = _converter(value_field)
            return lambda m, v: getattr(m, name).update({k: convert(item) for k, item in v.items()})
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            return lambda m, v: [_set_message(getattr(m, name).add(), item) for item in v]
        convert = _converter(field)
        return lambda m, v: getattr(m, name).extend(convert(item) for item in v)
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        if field.message_type.full_name == _TIMESTAMP:
            return lambda m, v: _set_timestamp(getattr(m, name), v)
        return lambda m, v: _set_message(getattr(m, name), v)
    convert = _converter(field)
    return lambda m, v: setattr(m, name, convert(v))


def _converter(field: FieldDescriptor):
    if field.type == FieldDescriptor.TYPE_ENUM:
        enum = field.enum_type
        return lambda v: enum_number(enum, v)
    return lambda v: v


def _set_timestamp(target: Timestamp, value: str | datetime) -> None:
    moment = _parse_time(value)
    target.seconds = int(moment.timestamp() // 1)
    target.nanos = moment.microsecond * 1000


def _set_message(target: Message, value: Any) -> None:
    name = target.DESCRIPTOR.full_name
    if name == _TIMESTAMP:
        _set_timestamp(target, value)
    elif name in (_STRUCT, _VALUE):
        json_format.ParseDict(value, target)
    else:
        target.SetInParent()
        fill(target, value)


def _parse_time(value: str | datetime) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def error_detail(value: Any) -> common_pb2.ErrorDetail:
    """One JSON error detail as the ``gridapi.v1.ErrorDetail`` message that carries it."""
    detail = common_pb2.ErrorDetail()
    json_format.ParseDict(value, detail.value)
    return detail
