"""Request bytes to plain values, refusing what no model should see.

The order keeps the cost linear in the body size, and bounded before any of it is spent:

1. the size: a declared ``content-length`` over :data:`MAX_BODY_BYTES` is refused before a
   byte is read, and a streamed body as soon as it passes the limit (413); a body slower
   than ``connections.BODY_SECONDS`` has its connection closed (408 in the metrics);
2. the text: strict UTF-8 (400 with the offset of the first bad byte);
3. the parse: ``json.loads`` in C, with one hook per object to catch duplicated keys. Its
   recursion ends at Python's recursion limit, which here is a 400 like any malformed body;
4. one walk over the parsed values, with an explicit stack (no recursion), that names the path
   of the first value it refuses: nesting deeper than :data:`MAX_DEPTH` and duplicated keys
   (400), unpaired UTF-16 surrogates (400: such a string cannot even be written back as
   UTF-8), and numbers float64 cannot hold: ``NaN``, ``Infinity`` and ``-Infinity`` (JSON has
   none of them; ``null`` is the way to send a missing value), ``1e400``, integers of 309
   digits and more (422).

Only then do the format readers (:mod:`.protocol`) see the body, so none of them has to guard
against depth, duplicates or non-finite numbers again.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Iterable
from typing import Any

from starlette.requests import ClientDisconnect, Request

from .errors import HTTPError

MAX_BODY_BYTES = 10 * 1024 * 1024
MAX_DEPTH = 32  # every format needs at most 6 levels: body, format, rows, row, cell, list cell
FLOAT64_MAX = sys.float_info.max
BEYOND_FLOAT64 = "out of float64's range (about 1.8e308); numbers must fit float64"
SURROGATE = "an unpaired UTF-16 surrogate (\\ud800-\\udfff), which is not Unicode text"


async def read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise HTTPError(413, f"the body is {declared} bytes; the limit is {MAX_BODY_BYTES}")
    try:
        return await read_chunks(request)
    except ClientDisconnect:  # or closed by the body timeout (connections.BODY_SECONDS)
        raise HTTPError(408, "the client went away before the whole body arrived") from None


async def read_chunks(request: Request) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise HTTPError(413, f"the body is over the limit of {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def utf8_text(body: bytes, what: str = "the body") -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPError(
            400, f"{what} is not UTF-8: {exc.reason} at byte {exc.start}; send it as UTF-8"
        ) from None


async def read_json(request: Request) -> Any:
    return parse_json(await read_body(request))


def parse_json(body: bytes) -> Any:
    """The JSON value of ``body``; HTTPError 400/422 naming the first path it refuses."""
    text = utf8_text(body)
    try:
        try:
            value = json.loads(text, object_pairs_hook=unique_keys)
        except DuplicatedKeys:  # parsed again, marking them, so the walk can name the path
            value = json.loads(text, object_pairs_hook=mark_duplicates)
            check_values(value)
    except RecursionError:
        raise HTTPError(400, f"the body is nested deeper than {MAX_DEPTH} levels") from None
    except json.JSONDecodeError as exc:
        raise HTTPError(400, f"the body is not valid JSON: {exc}") from None
    except ValueError:  # Python's own limit on the digits of an integer (4300)
        raise HTTPError(422, f"the body holds an integer {BEYOND_FLOAT64}") from None
    if may_hold_refusals(text):
        check_values(value)
    return value


# Only a body the walk may refuse holds one of these: a NaN or an Infinity, a number of 100
# digits or with an exponent of 3 digits (float64 ends near 1e308), a \\u escape (of a UTF-16
# surrogate). A string that merely looks like them costs a walk, never a refusal.
# Two searches: one alternation of both is three times slower.
MANY_DIGITS = re.compile(r"\d{100}")
BIG_EXPONENT = re.compile(r"[eE][-+]?\d\d\d")


def may_hold_refusals(text: str) -> bool:
    """False when the walk has nothing to find: the common small body skips it (~15 us)."""
    if text.count("[") + text.count("{") > MAX_DEPTH:  # the deepest nesting is at most this
        return True
    if "NaN" in text or "Infinity" in text or "\\u" in text:
        return True
    return bool(MANY_DIGITS.search(text) or BIG_EXPONENT.search(text))


class DuplicatedKeys(ValueError):
    """An object names a key twice: found while parsing, named by the walk."""


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        raise DuplicatedKeys
    return value


class DuplicatedKey(dict[str, Any]):
    """An object that named one key twice; the walk refuses it with its path."""

    key = ""


def mark_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) == len(pairs):
        return value
    marked = DuplicatedKey(pairs)
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            marked.key = key
            break
        seen.add(key)
    return marked


# --- the walk -----------------------------------------------------------------------------------

# How the walk reached a container: (parent step, key, depth); a path only once one is refused.
Step = tuple[Any, str | int, int]
ROOT: Step = (None, "", 0)


def path(step: Step) -> str:
    parts: list[str] = []
    while step[0] is not None:  # the root is the body itself
        key = step[1]
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key}")
        step = step[0]
    return "".join(reversed(parts)).lstrip(".") or "the body"


def check_values(value: Any) -> None:
    if not isinstance(value, dict | list):
        if why := why_refused(value):
            raise HTTPError(why[0], f"the body: {why[1]}")
        return
    stack: list[tuple[Any, Step]] = [(value, ROOT)]
    while stack:
        node, step = stack.pop()
        if step[2] > MAX_DEPTH:
            raise HTTPError(400, f"{path(step)}: nested deeper than {MAX_DEPTH} levels")
        if type(node) is DuplicatedKey:
            raise HTTPError(400, f"{path(step)}: the key {node.key!r} appears twice")
        if plain(node) or (step[2] < MAX_DEPTH and type(node) is list and all(map(plain, node))):
            continue  # the common rows of numbers, checked without a loop in Python
        items = node.items() if type(node) is dict else enumerate(node)
        for key, item in items:
            kind = type(item)
            if kind is dict or kind is DuplicatedKey or kind is list:
                stack.append((item, (step, key, step[2] + 1)))
            elif (kind is float or kind is int or kind is str) and (why := why_refused(item)):
                raise HTTPError(why[0], f"{path((step, key, 0))}: {why[1]}")
            if type(key) is str and not key.isascii() and not is_utf8(key):
                raise HTTPError(400, f"{path(step)}: a key holds {SURROGATE}")


def plain(node: Any) -> bool:
    """A list, or an object with ASCII keys, of finite numbers (or bools) only."""
    kind = type(node)
    if kind is list:
        return finite_numbers(node)
    return kind is dict and finite_numbers(node.values()) and all(map(str.isascii, node))


def finite_numbers(values: Iterable[Any]) -> bool:
    """Whether every value is a finite number (or a bool): no need to look at them one by one."""
    try:
        return all(map(math.isfinite, values))
    except (TypeError, OverflowError):  # not a number, or an integer beyond float64
        return False


def why_refused(value: Any) -> tuple[int, str] | None:
    """Why a number or string cannot reach a model: (status, reason), or None."""
    kind = type(value)
    if kind is str:
        return None if value.isascii() or is_utf8(value) else (400, f"the string holds {SURROGATE}")
    if kind is float:
        if math.isfinite(value):
            return None
        if math.isnan(value):
            return 422, "NaN is not a number JSON allows; send null for a missing value"
        return 422, f"{value} is not a finite number; numbers must fit float64"
    if kind is int and not -FLOAT64_MAX <= value <= FLOAT64_MAX:
        return 422, f"an integer {BEYOND_FLOAT64}"
    return None


def is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
