"""The generated references: JSON Schema and the README's markdown table of keys."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from shipyard.config import ProjectConfig, reference_markdown, schema_json
from shipyard.config._types import is_model, strip_annotated, union_members
from shipyard.config.schema import NAME_PATTERN

IRIS = Path(__file__).parents[2] / "examples" / "iris" / "shipyard.yaml"
GOOD = Path(__file__).parent / "good"


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    assert ref.startswith("#/$defs/"), ref
    return schema["$defs"][ref.removeprefix("#/$defs/")]


def objects(schema: dict[str, Any], node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The object schemas a value described by ``node`` may match."""
    node = resolve(schema, node)
    for alternative in node.get("anyOf", []) + node.get("oneOf", []):
        yield from objects(schema, alternative)
    if node.get("type") == "object":
        yield node


def declared(candidates: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    """The schema of ``key`` in the first object schema that allows it."""
    for node in candidates:
        found: dict[str, Any] | None = node.get("properties", {}).get(key)
        for pattern, child in node.get("patternProperties", {}).items():
            found = found or (child if re.search(pattern, key) else None)
        names = node.get("propertyNames", {}).get("enum")
        if isinstance(node.get("additionalProperties"), dict) and (names is None or key in names):
            found = found or node["additionalProperties"]
        if found is not None:
            return found
    return None


def check_keys(schema: dict[str, Any], node: dict[str, Any], value: Any, path: str) -> int:
    """Every key of ``value`` is declared where it sits; returns how many keys were checked."""
    if isinstance(value, list):
        items = resolve(schema, node).get("items", {})
        return sum(check_keys(schema, items, item, f"{path}[]") for item in value)
    if not isinstance(value, dict):
        return 0
    candidates = list(objects(schema, node))
    assert candidates, f"{path} is a mapping in the file but not in the schema"
    checked = 0
    for key, item in value.items():
        child = declared(candidates, str(key))
        assert child is not None, f"{path}.{key} is not in the schema"
        checked += 1 + check_keys(schema, child, item, f"{path}.{key}")
    return checked


def test_key_check_catches_unknown_keys() -> None:
    schema = schema_json()
    bad = [
        {"bogus": 1},
        {"qa": {"quality": {"metrix": {}}}},
        {"qa": {"quality": {"metrics": {"acuracy": {}}}}},
        {"environments": {"s": {"prot": 1}}},
        {"environments": {"Bad": {}}},
        {"model": {"serve": {"fmt": 1}}},
        {"analyze": {"allow": [{"idd": 1}]}},
    ]
    for data in bad:
        with pytest.raises(AssertionError, match="is not in the schema"):
            check_keys(schema, schema, data, "")


def test_schema_is_draft_2020_12_with_a_title() -> None:
    schema = schema_json()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "shipyard.yaml"
    assert schema["description"]
    assert json.loads(json.dumps(schema)) == schema
    assert set(schema["required"]) == {"name", "build", "model"}
    assert schema["additionalProperties"] is False


def test_every_property_has_a_description_and_every_object_refuses_unknown_keys() -> None:
    schema = schema_json()
    nodes = [schema, *schema["$defs"].values()]
    for node in nodes:
        assert node.get("additionalProperties") is False, node.get("title")
        for name, prop in node["properties"].items():
            assert prop.get("description"), f"{node.get('title')}.{name} has no description"


def test_every_ref_resolves() -> None:
    schema = schema_json()
    text = json.dumps(schema)
    for name in schema["$defs"]:
        assert f'"#/$defs/{name}"' in text
    for ref in {part.split('"')[0] for part in text.split('"$ref": "')[1:]}:
        assert ref.removeprefix("#/$defs/") in schema["$defs"], ref


def test_durations_and_serve_accept_what_the_loader_accepts() -> None:
    schema = schema_json()
    timeout = schema["$defs"]["BuildConfig"]["properties"]["timeout"]
    assert {alt["type"] for alt in timeout["anyOf"]} == {"number", "string"}
    serve = schema["$defs"]["ModelConfig"]["properties"]["serve"]
    assert len(serve["oneOf"]) == 2
    environments = schema["properties"]["environments"]
    assert environments["additionalProperties"] is False
    assert list(environments["patternProperties"]) == [NAME_PATTERN]


def test_schema_declares_every_key_of_the_example_files() -> None:
    schema = schema_json()
    for file in [IRIS, GOOD / "full.yaml", GOOD / "minimal.yaml"]:
        data = yaml.safe_load(file.read_text())
        assert check_keys(schema, schema, data, "") >= len(data)
    assert check_keys(schema, schema, yaml.safe_load(IRIS.read_text()), "") > 40


def field_paths(model: type[Any], prefix: str = "") -> Iterator[str]:
    """Every dotted key, walked here independently of reference.py."""
    for name, field in model.model_fields.items():
        yield prefix + name
        for member in union_members(field.annotation):
            args = getattr(member, "__args__", ())
            inner = strip_annotated(args[-1]) if args else member
            suffix = "[]." if getattr(member, "__origin__", None) is list else ".<name>."
            if is_model(member):
                yield from field_paths(member, f"{prefix}{name}.")
            elif is_model(inner):
                yield from field_paths(inner, f"{prefix}{name}{suffix}")


def test_reference_lists_every_key_once() -> None:
    table = reference_markdown()
    rows = [line for line in table.splitlines()[2:] if line]
    keys = [row.split("|")[1].strip().strip("`") for row in rows]
    expected = list(field_paths(ProjectConfig))
    assert keys == expected
    assert len(expected) > 60
    for key in ["canary.analysis.prediction_drift", "analyze.allow[].until", "model.serve.format"]:
        assert key in keys


def test_reference_rows_have_type_default_and_description() -> None:
    rows = reference_markdown().splitlines()
    assert rows[0] == "| key | type | default | description |"
    by_key = {row.split(" | ")[0].strip("| `"): row for row in rows[2:]}
    assert all(row.count(" | ") == 3 for row in rows[2:])
    assert "| required |" in by_key["build.train"]
    assert "duration" in by_key["canary.interval"] and "`1m`" in by_key["canary.interval"]
    assert "`low`, `medium`, `high` or `critical`" in by_key["analyze.fail_on"]
    assert "string or mapping" in by_key["model.serve"]
    assert all(row.split(" | ")[3].strip(" |") for row in rows[2:]), "a key has no description"
