"""Parsing bombs: deep nesting, alias expansion and cycles give SpecError, never a crash."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from labcore.errors import SpecError
from studies.spec import load_spec
from studies.spec_text import MAX_NESTING, check_shape

LAUGHS = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{n}: &{n} [{','.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)
)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("a: " + "[" * 10_000 + "]" * 10_000, "nested deeper than"),
        ('{"name": "x", "tasks": ' + "[" * 10_000 + "]" * 10_000 + "}", "nested deeper than"),
        ("\n".join(" " * i + f"k{i}:" for i in range(10_000)), "nested deeper than"),
        ('{"a": ' * 10_000 + "1" + "}" * 10_000, "nested deeper than"),
        (LAUGHS, "more than 100000 values"),
        ("a: &a [*a]\n", "contains itself"),
    ],
    ids=["flow-10k", "json-10k", "block-10k", "json-objects-10k", "billion-laughs", "cycle"],
)
def test_text_bombs_are_spec_errors(text: str, needle: str) -> None:
    start = time.perf_counter()
    with pytest.raises(SpecError) as e:
        load_spec(text)
    assert needle in str(e.value)
    assert time.perf_counter() - start < 5  # refused early, not after expanding


def test_file_bomb_is_a_spec_error(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text("name: " + "[" * 10_000 + "]" * 10_000)
    with pytest.raises(SpecError, match="nested deeper than"):
        load_spec(path)


def test_mapping_bombs() -> None:
    deep: dict = {}
    node = deep
    for _ in range(10_000):
        node["x"] = {}
        node = node["x"]
    with pytest.raises(SpecError, match="nested deeper"):
        load_spec({"name": "x", "tasks": [deep]})
    shared = ["x"] * 10
    for _ in range(8):
        shared = [shared] * 10  # 10^9 values once expanded, 90 objects in memory
    with pytest.raises(SpecError, match="more than"):
        check_shape({"a": shared})


def test_nesting_just_under_the_limit_still_parses() -> None:
    doc = {"name": "ok", "tasks": [{"name": "quadratic"}], "optimizers": [{"name": "adamw"}]}
    nested: object = 1
    for _ in range(MAX_NESTING - 5):
        nested = [nested]
    doc["description"] = ""  # structure stays valid; the nesting goes in task options
    doc["tasks"][0]["options"] = {"deep": nested}
    assert load_spec(json.dumps(doc)).tasks[0].options["deep"]
