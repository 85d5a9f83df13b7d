"""Walking the config models by a pydantic error location or a dotted path.

The loader needs the model behind a location (to list the keys it allows and describe a
missing field); the reference table needs each field's type in words. Both read the
annotations pydantic has already resolved, so nothing here repeats the schema.
"""

from __future__ import annotations

import types
from collections.abc import Sequence
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from shipyard.config.schema import ProjectConfig

Loc = Sequence[str | int]


def is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def strip_annotated(tp: Any) -> Any:
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    return tp


def union_members(tp: Any) -> list[Any]:
    """The non-None members of a union (``[tp]`` for anything else)."""
    tp = strip_annotated(tp)
    if get_origin(tp) in (Union, types.UnionType):
        return [strip_annotated(m) for m in get_args(tp) if m is not type(None)]
    return [tp]


def _step(tp: Any, key: str | int) -> Any:
    """The type one location element below ``tp``; ``tp`` itself for a union tag."""
    members = union_members(tp)
    models = [m for m in members if is_model(m)]
    if len(members) > 1 and len(models) == 1:
        members = models  # into a `str | Model` union, the mapping branch is the one to walk
    inner = members[0] if len(members) == 1 else tp
    if is_model(inner):
        field = inner.model_fields.get(str(key))
        return field.annotation if field else inner
    if get_origin(inner) is dict:
        return get_args(inner)[1]
    if get_origin(inner) is list:
        return get_args(inner)[0]
    return inner


def model_at(loc: Loc, root: type[BaseModel] = ProjectConfig) -> type[BaseModel] | None:
    """The model class at ``loc``, e.g. ``("canary",)`` -> CanaryConfig."""
    tp: Any = root
    for key in loc:
        tp = _step(tp, key)
    models = [m for m in union_members(tp) if is_model(m)]
    return models[0] if models else None


def field_at(loc: Loc, root: type[BaseModel] = ProjectConfig) -> FieldInfo | None:
    """The field a location ends in, e.g. ``("build", "train")``."""
    if not loc:
        return None
    parent = model_at(loc[:-1], root)
    return parent.model_fields.get(str(loc[-1])) if parent else None


def literal_values(tp: Any) -> list[str] | None:
    tp = strip_annotated(tp)
    return [str(v) for v in get_args(tp)] if get_origin(tp) is Literal else None
