"""The ``shipyard.yaml`` reference, generated from the models: JSON Schema and a markdown table.

Editors validate the file with the JSON Schema (``shipyard schema > shipyard.schema.json``);
the README embeds the markdown table, and a docs test checks every key is in it.
"""

from __future__ import annotations

import json
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, BeforeValidator
from pydantic.fields import FieldInfo

from shipyard.config._types import is_model, literal_values, strip_annotated, union_members
from shipyard.config.schema import ProjectConfig, duration_text, parse_duration

__all__ = ["reference_markdown", "schema_json"]

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def schema_json() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``shipyard.yaml``."""
    generated = ProjectConfig.model_json_schema()
    head = {
        "$schema": JSON_SCHEMA_DIALECT,
        "title": "shipyard.yaml",
        "description": "Shipyard pipeline configuration: from a git commit to a live model.",
    }
    definitions = {"$defs": generated.pop("$defs")}  # last, so a reader meets the keys first
    generated.pop("title", None)
    return head | generated | definitions


def reference_markdown() -> str:
    """A markdown table of every key: dotted path, type, default, description."""
    header = ["| key | type | default | description |", "|---|---|---|---|"]
    rows = [_row(path, field) for path, field in _fields(ProjectConfig, "")]
    return "\n".join(header + rows) + "\n"


def _fields(model: type[BaseModel], prefix: str) -> Iterator[tuple[str, FieldInfo]]:
    """Every field, depth first, with its dotted path (``<name>`` for a mapping's keys)."""
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        yield path, field
        for nested, suffix in _nested(field.annotation):
            yield from _fields(nested, f"{path}{suffix}")


def _nested(annotation: Any) -> Iterator[tuple[type[BaseModel], str]]:
    for member in union_members(annotation):
        origin = get_origin(member)
        if is_model(member):
            yield member, "."
        elif origin is list and is_model(item := strip_annotated(get_args(member)[0])):
            yield item, "[]."
        elif origin is dict and is_model(value := strip_annotated(get_args(member)[1])):
            yield value, ".<name>."


def _row(path: str, field: FieldInfo) -> str:
    cells = [f"`{path}`", _type_text(field), _default_text(field), field.description or ""]
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _is_duration(field: FieldInfo) -> bool:
    """Whether ``field`` is read by ``parse_duration`` (some fields bind its limits), alone
    or as an optional ``Duration | None``."""
    return any(
        isinstance(m, BeforeValidator) and getattr(m.func, "func", m.func) is parse_duration
        for m in [*field.metadata, *_optional_metadata(field.annotation)]
    )


def _optional_metadata(annotation: Any) -> list[Any]:
    if get_origin(annotation) not in (Union, types.UnionType):
        return []
    members = get_args(annotation)
    return [meta for m in members if get_origin(m) is Annotated for meta in get_args(m)[1:]]


def _type_text(field: FieldInfo) -> str:
    if _is_duration(field):
        return "duration (20s, 5m, 1h or seconds)"
    return _words(field.annotation)


def _words(annotation: Any) -> str:
    members = union_members(annotation)
    if len(members) > 1:
        return " or ".join(_words(m) for m in members)
    tp = members[0]
    if (values := literal_values(tp)) is not None:
        return _alternatives(values)
    if get_origin(tp) is list:
        return f"list of {_words(get_args(tp)[0])}"
    if get_origin(tp) is dict:
        return f"mapping of {_key_words(get_args(tp)[0])} to {_words(get_args(tp)[1])}"
    if is_model(tp):
        return "mapping"
    return {str: "string", int: "integer", float: "number", bool: "boolean"}.get(tp, str(tp))


def _key_words(key: Any) -> str:
    for meta in get_args(key)[1:]:
        allowed = getattr(meta, "json_schema", None) or {}
        if "enum" in allowed:
            return _alternatives(allowed["enum"])
    return "name"


def _alternatives(values: list[str]) -> str:
    quoted = [f"`{v}`" for v in values]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _default_text(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "not set"
    if isinstance(value, BaseModel):
        text = json.dumps(value.model_dump(exclude_none=True))
        return f"`{text}`" if len(text) <= 30 else "see below"
    if _is_duration(field):
        return f"`{duration_text(float(value))}`"
    return f"`{json.dumps(value)}`"


START, END = "<!-- reference:start -->", "<!-- reference:end -->"


def write_into(document: Path) -> None:
    """Replace the table between the reference markers of ``document`` (the README)."""
    text = document.read_text()
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    document.write_text(f"{head}{START}\n{reference_markdown().strip()}\n{END}{tail}")
