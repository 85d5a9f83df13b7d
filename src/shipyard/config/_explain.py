"""Pydantic's validation errors, rewritten as "what was expected, what was given".

Pydantic speaks in Python types ("Input should be a valid dictionary or instance of
BuildConfig"); a user editing YAML needs "expected a mapping (got nothing)". Each function
here turns one error into the text after ``file:line: field.path:``.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from pydantic_core import ErrorDetails

from shipyard.config._types import Loc, field_at, model_at
from shipyard.config.schema import NAME_PATTERN, PYTHON_PATTERN

_NAME_TEXT = (
    "expected a name of lower case letters, digits, '.', '_' or '-', "
    "starting with a letter or digit, at most 63 characters"
)
_PYTHON_TEXT = 'expected a quoted Python version such as "3.11"'
_SERVE_TEXT = (
    "expected `module.path:ClassName` (e.g. iris_model.serve:Model) "
    "or a built-in loader such as {format: skops, path: model.skops}"
)

# Field paths whose type error deserves more than "expected a string".
_EXPECTED_BY_PATH = {"python": _PYTHON_TEXT, "model.serve": _SERVE_TEXT, "name": _NAME_TEXT}

_TYPE_WORDS = {
    "string_type": "expected a string",
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "dict_type": "expected a mapping of keys to values",
    "model_type": "expected a mapping of keys to values",
    "model_attributes_type": "expected a mapping of keys to values",
    "list_type": "expected a list, e.g. [a, b]",
}

_BOUNDS = {
    "greater_than": ("gt", "expected a number greater than {}"),
    "greater_than_equal": ("ge", "expected a number of at least {}"),
    "less_than": ("lt", "expected a number less than {}"),
    "less_than_equal": ("le", "expected a number of at most {}"),
}


def shown(value: Any, limit: int = 60) -> str:
    """A value as the user wrote it, roughly: strings quoted, lists and mappings inline."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    try:
        text = json.dumps(value, default=str, ensure_ascii=False)
    except ValueError:  # a recursive structure built with YAML aliases
        text = repr(value)
    if isinstance(value, str):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def given(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return shown(value)
    for kind, words in ((str, "a string"), (int | float, "a number"), (list, "a list")):
        if isinstance(value, kind):
            return f"{words}: {shown(value)}"
    return "a mapping" if isinstance(value, dict) else f"{type(value).__name__}: {shown(value)}"


def _describe(loc: Loc) -> str:
    field = field_at(loc)
    text = (field.description or "") if field else ""
    text = text.rstrip(".")
    return f" ({text[:1].lower()}{text[1:]})" if text else ""


def text_key(value: Any) -> str:
    """A key YAML did not read as text: ``on:`` is true, ``5:`` is a number."""
    if isinstance(value, bool):
        return "expected a text key; YAML reads on, off, yes and no as true/false, so quote it"
    return f"expected a text key (got {given(value)}); quote it"


def missing(loc: Loc, path: str) -> str:
    return f"field required: {path}{_describe(loc)}"


def unknown_key(loc: Loc) -> str:
    model = model_at(loc[:-1])
    allowed = list(model.model_fields) if model else []
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
    guess = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key; expected one of {', '.join(allowed)}{guess}"


def _pattern(pattern: str) -> str:
    if pattern == NAME_PATTERN:
        return _NAME_TEXT
    if pattern == PYTHON_PATTERN:
        return _PYTHON_TEXT
    return f"expected text matching {pattern}"


def _type_error(kind: str, value: Any, path: str, is_key: bool) -> str:
    expected = _EXPECTED_BY_PATH.get(path) or _TYPE_WORDS[kind]
    if is_key:
        expected = f"{expected} as the key"
    hint = "; put it in quotes" if kind == "string_type" and isinstance(value, int | float) else ""
    return f"{expected} (got {given(value)}{hint})"


def _literal(error: ErrorDetails) -> str:
    allowed = str(error.get("ctx", {}).get("expected", "")).replace("'", "")
    return f"expected one of: {allowed}"


def _value_error(error: ErrorDetails) -> str:
    return error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")


def expected(error: ErrorDetails, path: str, is_key: bool) -> str:
    """The "expected ... (got ...)" text of one error that is not missing or unknown key."""
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx", {})
    if kind in _TYPE_WORDS:
        return _type_error(kind, value, "" if is_key else path, is_key)
    if kind in _BOUNDS:
        name, words = _BOUNDS[kind]
        text = words.format(ctx.get(name))
    elif kind == "string_pattern_mismatch":
        text = _pattern(str(ctx.get("pattern", "")))
    elif kind == "literal_error":
        text = _literal(error)
    elif kind == "string_too_short":
        text = "expected a non-empty string"
    elif kind == "value_error":
        text = _value_error(error)
    else:
        text = error["msg"][:1].lower() + error["msg"][1:]  # pydantic's own words, rarely met
    # A message that already quotes the value (an unknown key names itself) needs no "got".
    if "(got" in text or shown(value) in text:
        return text
    return f"{text} (got {shown(value)})"
