"""Reading ``shipyard.yaml`` into a :class:`ProjectConfig`, or saying precisely what is wrong.

Every problem is reported at once, one line each, as ``file:line: field.path: expected ...
(got ...)``, so a user fixes the file in one pass. Line numbers come from PyYAML's node tree
(``compose``), which is walked alongside pydantic's error locations. Duplicate keys are
looked for in the same tree because PyYAML silently keeps the last one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from shipyard.config import _explain
from shipyard.config._types import Loc
from shipyard.config.reference import reference_markdown, schema_json
from shipyard.config.schema import ProjectConfig
from shipyard.errors import ConfigError

# The references are re-exported here too because callers reach for "the config loader".
__all__ = ["CONFIG_FILE", "load_config", "parse_config", "reference_markdown", "schema_json"]

CONFIG_FILE = "shipyard.yaml"
MAX_BYTES = 1_000_000  # a pipeline description is small; anything bigger is a mistake
# Values in the file once every alias is expanded: a real shipyard.yaml has a few hundred, an
# alias bomb ("billion laughs") billions, which pydantic and error messages would walk.
MAX_VALUES = 10_000


class _Loader(yaml.SafeLoader):
    """SafeLoader without YAML 1.1 timestamps: ``until: 2027-01-31`` stays text, as in JSON
    Schema, and a bad date is reported by the schema with its field instead of crashing."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


_BOOL_TAG = "tag:yaml.org,2002:bool"


@dataclass(frozen=True)
class Problem:
    line: int
    text: str  # everything after "file:line: "
    column: int | None = None  # only YAML syntax errors know it

    def render(self, filename: str) -> str:
        where = f"{self.line}:{self.column}" if self.column else str(self.line)
        return f"{filename}:{where}: {self.text}"


def load_config(path: Path) -> ProjectConfig:
    """Load ``path`` (the file, or the folder holding ``shipyard.yaml``)."""
    file = path / CONFIG_FILE if path.is_dir() else path
    if not file.is_file():
        _missing(file)
    return parse_config(_read(file), filename=str(file))


def _missing(file: Path) -> NoReturn:
    if file.suffix in (".yaml", ".yml") and file.name != CONFIG_FILE:
        raise ConfigError(f"{file} does not exist", problems=[f"{file} does not exist"])
    folder = file.parent if file.name == CONFIG_FILE else file
    raise ConfigError(
        f"no {CONFIG_FILE} in {folder}; run `shipyard init`",
        problems=[f"no {CONFIG_FILE} in {folder}"],
        hint="`shipyard init` writes a starter shipyard.yaml for the repository.",
    )


def _read(file: Path) -> str:
    _check_size(file.stat().st_size, str(file))
    data = file.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        _fail(str(file), [Problem(line, "the file is not UTF-8 text")])


def _check_size(size: int, filename: str) -> None:
    if size > MAX_BYTES:
        _fail(filename, [Problem(1, f"the file is larger than {MAX_BYTES} bytes")])


def parse_config(text: str, filename: str = CONFIG_FILE) -> ProjectConfig:
    """Parse the text of a ``shipyard.yaml`` (e.g. from ``git show SHA:shipyard.yaml``)."""
    _check_size(len(text.encode("utf-8", errors="replace")), filename)
    root, data = _compose(text, filename)
    problems = _duplicate_keys(root, [])
    try:
        config = ProjectConfig.model_validate(data)
    except ValidationError as exc:
        problems += [_problem(root, error) for error in exc.errors()]
    if problems:
        _fail(filename, problems)
    return config


def _fail(filename: str, problems: list[Problem]) -> NoReturn:
    unique = sorted(set(problems), key=lambda p: (p.line, p.text))
    lines = [problem.render(filename) for problem in unique]
    header = [f"{filename} has {len(lines)} problems:"] if len(lines) > 1 else []
    raise ConfigError("\n".join(header + lines), problems=lines)


def _compose(text: str, filename: str) -> tuple[yaml.MappingNode, dict[str, Any]]:
    """The document's node tree and its Python value; refuses anything but a mapping."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is not None:
            _check_expansion(root, filename)
        data = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        _fail(filename, [_syntax_problem(exc)])
    except RecursionError:
        _fail(filename, [Problem(1, "the file nests mappings or lists too deeply")])
    except (ValueError, TypeError) as exc:  # an explicit tag such as !!timestamp with bad text
        _fail(filename, [Problem(1, f"YAML value error: {exc}")])
    finally:
        loader.dispose()
    if root is None:
        empty = "the file is empty; expected a mapping with at least name, build and model"
        _fail(filename, [Problem(1, f"{empty} (`shipyard init` writes a starter)")])
    if not isinstance(root, yaml.MappingNode) or not isinstance(data, dict):
        got = _explain.given(data)
        where = root.start_mark.line + 1
        _fail(
            filename, [Problem(where, f"expected a mapping of keys at the top level (got {got})")]
        )
    return root, data


def _check_expansion(root: yaml.Node, filename: str) -> None:
    """Refuse aliases that expand past ``MAX_VALUES`` values, or into themselves.

    Sizes are counted once per node (an alias is the anchored node itself), so the count
    costs as little as the file is long, however far the aliases would expand.
    """
    sizes: dict[int, int] = {}
    inside: set[int] = set()

    def size(node: yaml.Node) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if id(node) in inside:
            text = "a YAML alias (*name) refers to the mapping or list it is in"
            _fail(filename, [Problem(_line(node), text)])
        inside.add(id(node))
        total = 1 + sum(size(child) for child in _child_nodes(node))
        inside.discard(id(node))
        if total > MAX_VALUES:
            text = f"more than {MAX_VALUES} values, counting each use of a YAML alias (*name)"
            _fail(filename, [Problem(_line(node), f"{text}; use fewer aliases")])
        sizes[id(node)] = total
        return total

    size(root)


def _child_nodes(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


# What usually causes PyYAML's terser complaints, as the next thing to try.
_SYNTAX_HINTS = {
    "found character '\\t'": "indent with spaces, not tabs",
    "mapping values are not allowed here": "quote a value that contains ': '",
    "expected <block end>": "check the indentation of this line and the one above",
    "found another document": "a shipyard.yaml holds one document; remove the extra `---`",
}


def _syntax_problem(exc: yaml.YAMLError) -> Problem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    text = f"YAML syntax error: {problem}" + (f" ({context})" if context else "")
    hints = [hint for cue, hint in _SYNTAX_HINTS.items() if cue in problem]
    text += "".join(f"; {hint}" for hint in hints)
    if mark is None:
        return Problem(1, text)
    return Problem(mark.line + 1, text, column=mark.column + 1)


def _duplicate_keys(
    node: yaml.Node, path: list[str | int], seen: set[int] | None = None
) -> list[Problem]:
    """Every key that appears twice in one mapping, anywhere in the tree."""
    seen = set() if seen is None else seen
    if id(node) in seen:  # an alias visits its anchor's node again
        return []
    seen.add(id(node))
    problems: list[Problem] = []
    for child, child_path in _children(node, path):
        problems += _duplicate_keys(child, child_path, seen)
    if isinstance(node, yaml.MappingNode):
        problems += _duplicates_in(node, path)
    return problems


def _duplicates_in(node: yaml.MappingNode, path: list[str | int]) -> list[Problem]:
    first: dict[str, int] = {}
    problems = []
    for key, _value in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.value == "<<":
            continue
        line = key.start_mark.line + 1
        if key.value in first:
            where = _dotted([*path, key.value])
            text = f"duplicate key (first at line {first[key.value]})"
            problems.append(Problem(line, f"{where}: {text}; YAML keeps only the last, remove one"))
        else:
            first[key.value] = line
    return problems


def _children(node: yaml.Node, path: list[str | int]) -> list[tuple[yaml.Node, list[str | int]]]:
    if isinstance(node, yaml.MappingNode):
        return [(value, [*path, str(key.value)]) for key, value in node.value]
    if isinstance(node, yaml.SequenceNode):
        return [(value, [*path, i]) for i, value in enumerate(node.value)]
    return []


@dataclass
class _Spot:
    """Where an error location lands in the file."""

    line: int
    path: list[str | int]
    node: yaml.Node
    container_line: int  # the line of the key holding the innermost mapping reached


def _locate(root: yaml.MappingNode, loc: Loc) -> tuple[_Spot, bool]:
    """Follow ``loc`` down the node tree; returns the spot and whether it ended on a key."""
    first_line = root.start_mark.line + 1
    spot = _Spot(first_line, [], root, first_line)
    for element in loc:
        if element == "[key]":
            return spot, True
        _descend(spot, element)
    return spot, False


def _descend(spot: _Spot, element: str | int) -> None:
    found = _child(spot.node, element)
    if found is None:
        return  # not in the file: a union tag such as "loader", or a missing key
    key, spot.node = found
    key_line = key.start_mark.line + 1 if key else None
    spot.line = key_line or spot.node.start_mark.line + 1
    spot.container_line = key_line or spot.container_line
    spot.path.append(key.value if key else element)  # the key as the user wrote it


def _child(node: yaml.Node, element: str | int) -> tuple[yaml.Node | None, yaml.Node] | None:
    """The node under ``element``, with its key node when it is a mapping's value."""
    if isinstance(node, yaml.MappingNode):
        return next(((k, v) for k, v in node.value if _key_is(k, element)), None)
    if isinstance(node, yaml.SequenceNode) and isinstance(element, int):
        return (None, node.value[element]) if element < len(node.value) else None
    return None


def _key_is(key: yaml.Node, element: str | int) -> bool:
    if not isinstance(key, yaml.ScalarNode):
        return False
    if key.value == str(element):
        return True
    # YAML 1.1 reads `on`, `yes`, `off` as booleans; pydantic reports them as 1 and 0.
    return key.tag == _BOOL_TAG and yaml.load(key.value, Loader=_Loader) == element


def _problem(root: yaml.MappingNode, error: ErrorDetails) -> Problem:
    loc = error["loc"]
    spot, is_key = _locate(root, loc)
    if error["type"] == "missing":
        path = _dotted([*spot.path, loc[-1]])
        return Problem(spot.container_line, _explain.missing(loc, path))
    where = _dotted(spot.path) or "(top level)"
    if error["type"] == "extra_forbidden":
        return Problem(spot.line, f"{where}: {_explain.unknown_key(loc)}")
    if error["type"] == "invalid_key":
        return Problem(spot.line, f"{where}: {_explain.text_key(error.get('input'))}")
    return Problem(spot.line, f"{where}: {_explain.expected(error, where, is_key)}")


def _dotted(path: list[str | int] | tuple[str | int, ...]) -> str:
    text = ""
    for element in path:
        text += f"[{element}]" if isinstance(element, int) else f".{element}"
    return text.lstrip(".")
