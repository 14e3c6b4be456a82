"""Configuration YAML, read one way by every loader: the master scale (models) and the credit
policy and warning rules (pipelines/decisions).

`parse_yaml_mapping` composes the document once, refuses a duplicate key and a number that is not
finite (``.inf``, ``.nan``) with its line, and returns the mapping with the line of every path in
it. Each loader raises its subclass of `ConfigError` with (line, message) problems, so every
message reads ``file:line: what is wrong; what to do``. Lives in ``models`` because the master
scale cannot import ``pipelines``; the policy and the warning rules import it from here.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

Problem = tuple[int | None, str]
LineIndex = dict[tuple, int]


class ConfigError(ValueError):
    """A configuration file is invalid; ``problems`` lists (line, message) pairs."""

    what = "configuration"

    def __init__(self, source: str | None, problems: Sequence[Problem]):
        self.source = source
        self.problems = list(problems)
        lines = [
            msg if source is None else f"{source}:{line or '?'}: {msg}"
            for line, msg in self.problems
        ]
        super().__init__(f"invalid {self.what}\n" + "\n".join(lines))

    @property
    def line(self) -> int | None:
        """The line of the first problem, when known."""
        return self.problems[0][0] if self.problems else None

    @property
    def reason(self) -> str:
        """All problems in one line: the first, then the others with their lines."""
        rest = [f"line {line}: {msg}" if line else msg for line, msg in self.problems[1:]]
        return "; ".join([self.problems[0][1], *rest]) if self.problems else f"invalid {self.what}"


def read_yaml_text(path: Path, error: type[ConfigError], what: str) -> str:
    """The text of a YAML file; a missing, non-UTF-8 or folder path raises ``error`` naming it."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise error(
            str(path), [(None, f"file not found; pass the path of a {what} YAML")]
        ) from None
    except IsADirectoryError:
        raise error(str(path), [(None, f"is a folder; pass the path of a {what} YAML")]) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        reason = f"not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the file as UTF-8"
        raise error(str(path), [(line, reason)]) from None


def yaml_line_index(node: yaml.Node, path: tuple = ()) -> LineIndex:
    """Map every path (keys and list positions) in a composed YAML document to its 1-based line."""
    index = {path: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in _scalar_keys(node):
            index.update(yaml_line_index(value, (*path, key.value)))
            index[(*path, key.value)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            index.update(yaml_line_index(item, (*path, i)))
    return index


def line_of(index: LineIndex, loc: Sequence[Any]) -> int | None:
    """The line of ``loc``, or of its nearest ancestor in the document."""
    loc = tuple(loc)
    while loc and loc not in index:
        loc = loc[:-1]
    return index.get(loc)


def parse_yaml_mapping(
    text: str, source: str, error: type[ConfigError], expected: str
) -> tuple[dict, LineIndex]:
    """A YAML mapping and the line of every path in it; problems raise ``error``.

    Invalid YAML, duplicate keys and numbers that are not finite are refused with their lines;
    ``expected`` is the message when the document is empty or not a mapping.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = None if node is None else loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise error(source, [_yaml_problem(exc)]) from None
    finally:
        loader.dispose()
    if node is None or not isinstance(data, dict):
        raise error(source, [(1, expected)])
    index = yaml_line_index(node)
    problems = list(_duplicate_keys(node))
    problems += [(line_of(index, loc), msg) for loc, msg in _not_finite(data)]
    if problems:
        raise error(source, sorted(problems, key=lambda p: p[0] or 0))
    return data, index


def dotted(loc: Sequence[Any]) -> str:
    """A path as ``rules.0.limit.cap``."""
    return ".".join(str(p) for p in loc)


def _yaml_problem(exc: yaml.YAMLError) -> Problem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    detail = f"{problem} ({context})" if context else problem
    return (mark.line + 1 if mark else None, f"not valid YAML: {detail}")


def _scalar_keys(node: yaml.MappingNode) -> Iterator[tuple[yaml.ScalarNode, yaml.Node]]:
    return ((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode))


def _duplicate_keys(node: yaml.Node, loc: tuple = ()) -> Iterator[Problem]:
    """A key given twice in one mapping: YAML would keep the last one silently."""
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key, value in _scalar_keys(node):
            line = key.start_mark.line + 1
            if key.value in first:
                yield (
                    line,
                    f"{dotted((*loc, key.value))}: duplicate key (first on line "
                    f"{first[key.value]}); keep one of them",
                )
            first.setdefault(key.value, line)
            yield from _duplicate_keys(value, (*loc, key.value))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _duplicate_keys(item, (*loc, i))


def _not_finite(data: Any, loc: tuple = ()) -> Iterator[tuple[tuple, str]]:
    """Numbers spelled ``.inf`` or ``.nan``: no limit, band or threshold may be one."""
    if isinstance(data, float) and not math.isfinite(data):
        spelling = ".nan" if math.isnan(data) else ("-.inf" if data < 0 else ".inf")
        yield loc, f"{dotted(loc)}: not a finite number ({spelling}); give a number"
    elif isinstance(data, dict):
        for key, value in data.items():
            yield from _not_finite(value, (*loc, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _not_finite(value, (*loc, i))
