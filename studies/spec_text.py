"""The bounded reading of a study definition's text, before its schema is checked.

A definition comes from clients: :func:`parse_text` reads YAML (or JSON) with nesting
bounded while composing, and :func:`check_shape` refuses nesting, alias ("billion
laughs") and self-containing bombs in any parsed value without recursing. Both raise
:class:`~labcore.errors.SpecError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from labcore.errors import SpecError

MAX_NESTING = 32  # deepest nesting of mappings/lists in a definition (the schema needs ~6)
MAX_NODES = 100_000  # values in a definition, aliases expanded (a 100 KB grid is ~10k)


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing documents nested deeper than :data:`MAX_NESTING`.

    PyYAML composes nodes recursively: a 10,000-level document would otherwise raise
    RecursionError instead of a YAML error.
    """

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        """Compose one node, counting the nesting depth (PyYAML's hook)."""
        self._depth += 1
        try:
            if self._depth > MAX_NESTING:
                mark = self.peek_event().start_mark
                raise yaml.YAMLError(
                    f"nested deeper than {MAX_NESTING} levels "
                    f"(line {mark.line + 1}, column {mark.column + 1})"
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def parse_text(text: str) -> Any:
    """Parse YAML (or JSON) text with bounded nesting.

    Raises:
        SpecError: Not YAML/JSON, or nested too deeply.
    """
    try:
        return yaml.load(text, Loader=_BoundedLoader)  # a SafeLoader subclass
    except (yaml.YAMLError, RecursionError) as e:
        raise SpecError(f"not valid YAML/JSON: {e}") from None


def _children(obj: Any) -> list[Any]:
    if isinstance(obj, Mapping):
        return [*obj.keys(), *obj.values()]
    if isinstance(obj, list | tuple):
        return list(obj)
    return []


def check_shape(data: Any, *, max_nesting: int = MAX_NESTING, max_nodes: int = MAX_NODES) -> None:
    """Refuse nesting bombs, alias bombs and cycles, without recursion.

    Counts values as if every YAML alias were expanded (a shared list counts once per
    reference), so a "billion laughs" document is refused before anything walks it.

    Raises:
        SpecError: Nested deeper than ``max_nesting``, more than ``max_nodes`` values
            once aliases are expanded, or a structure that contains itself.
    """
    size: dict[int, int] = {}
    height: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[Any, bool]] = [(data, False)]
    while stack:
        obj, done = stack.pop()
        key = id(obj)
        if key in size:
            continue
        kids = _children(obj)
        if not done:
            if key in open_:
                raise SpecError("the definition contains itself (a recursive YAML alias)")
            open_.add(key)
            stack.append((obj, True))
            for kid in kids:
                if id(kid) in open_:
                    raise SpecError("the definition contains itself (a recursive YAML alias)")
                if id(kid) not in size:
                    stack.append((kid, False))
            continue
        open_.discard(key)
        size[key] = 1 + sum(size[id(k)] for k in kids)
        height[key] = 1 + max((height[id(k)] for k in kids), default=0)
        if height[key] > max_nesting:
            raise SpecError(f"the definition is nested deeper than {max_nesting} levels")
        if size[key] > max_nodes:
            raise SpecError(
                f"the definition holds more than {max_nodes} values (YAML aliases expanded)"
            )
