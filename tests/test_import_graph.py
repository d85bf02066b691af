"""No import cycle among beat's modules at run time.

A cycle works only as long as every module in it happens to read its partners' names after
they exist; one reordered import turns it into an ``ImportError`` for some users' first
import. The graph is read from the source with :mod:`ast`, counting only imports that execute
while a module loads:

* module-level ``import`` / ``from … import`` (relative ones resolved), including those inside
  module-level ``if`` / ``try`` / ``with`` blocks and class bodies;
* not those under ``if TYPE_CHECKING:`` (never executed) nor inside functions (deferred).

``from pkg import name`` imports ``pkg.name`` when that is a module, else ``pkg`` itself.
Importing ``a.b.c`` also runs the ``__init__`` of ``a.b`` — except for the importer's own
parent packages, which are already loading by then. So ``from beat import X`` inside a module
that ``beat/__init__.py`` (re-exporting everything) loads is reported as the cycle it is.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

Graph = dict[str, set[str]]


def _module_names(package_dir: Path, package: str) -> dict[str, Path]:
    """Module name -> file, for every ``*.py`` under ``package_dir`` (a package named so)."""
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = [package, *path.relative_to(package_dir).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _load_time_imports(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements that run when the module loads (see the module docstring)."""
    for stmt in body:
        if isinstance(stmt, ast.Import | ast.ImportFrom):
            yield stmt
        elif isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            continue  # deferred until called
        elif isinstance(stmt, ast.If) and _is_type_checking(stmt.test):
            yield from _load_time_imports(stmt.orelse)
        else:
            for field in ("body", "orelse", "finalbody"):
                nested = getattr(stmt, field, None)
                if isinstance(nested, list):
                    yield from _load_time_imports(nested)
            for handler in getattr(stmt, "handlers", ()):  # try / except
                yield from _load_time_imports(handler.body)
            for case in getattr(stmt, "cases", ()):  # match
                yield from _load_time_imports(case.body)


def _prefixes(name: str) -> list[str]:
    """``a.b.c`` -> ``[a, a.b, a.b.c]``: the packages Python runs to import it, and itself."""
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def import_graph(package_dir: Path, package: str) -> Graph:
    """Module -> the modules of the same package it imports while loading."""
    modules = _module_names(package_dir, package)
    graph: Graph = {name: set() for name in modules}
    for name, path in modules.items():
        own_package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        loading = set(_prefixes(own_package))  # already running when ``name`` loads
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for stmt in _load_time_imports(tree.body):
            explicit: set[str] = set()
            implicit: set[str] = set()
            if isinstance(stmt, ast.Import):
                for alias in stmt.names:
                    explicit.add(alias.name)
                    implicit.update(_prefixes(alias.name)[:-1])
            else:
                if stmt.level:
                    base_parts = own_package.split(".")
                    base_parts = base_parts[: len(base_parts) - (stmt.level - 1)]
                    base = ".".join([*base_parts, *([stmt.module] if stmt.module else [])])
                else:
                    base = stmt.module or ""
                implicit.update(_prefixes(base))
                for alias in stmt.names:
                    sub = f"{base}.{alias.name}"
                    explicit.add(sub if sub in modules else base)
            targets = explicit | (implicit - loading)
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def find_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """A cycle ``[a, b, …, a]`` in ``graph`` if there is one, else ``None`` (deterministic)."""
    done: set[str] = set()
    for start in sorted(graph):
        if start in done:
            continue
        path = [start]
        on_path = {start}
        stack = [iter(sorted(graph.get(start, ())))]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                stack.pop()
                done.add(path[-1])
                on_path.discard(path.pop())
            elif nxt in on_path:
                return [*path[path.index(nxt) :], nxt]
            elif nxt not in done:
                path.append(nxt)
                on_path.add(nxt)
                stack.append(iter(sorted(graph.get(nxt, ()))))
    return None


def test_beat_has_no_import_cycle() -> None:
    graph = import_graph(ROOT / "beat", "beat")
    # The reader must see the edges that matter, or "no cycle" would prove nothing.
    assert "beat._scheduler" in graph["beat"]
    assert {"beat._events", "beat.coordinators", "beat.coordinators._base"} <= graph[
        "beat._scheduler"
    ]
    assert "beat._scheduler" not in graph["beat._context"]  # only under TYPE_CHECKING
    assert "beat._runner" not in graph["beat._cli"]  # only inside a function
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle among beat's modules: " + " -> ".join(cycle)


def test_find_cycle_reports_a_cycle_and_accepts_a_dag() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"a"}}) == ["a", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set(), "d": {"a"}}) is None


def test_reimporting_the_package_from_a_submodule_is_a_cycle(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from ._a import A\nfrom .sub import B\n")
    (pkg / "_a.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from ._b import Hidden\n"
        "def later():\n    from . import A\n"
        "A = 1\n"
    )
    (pkg / "_b.py").write_text("Hidden = 1\n")
    (pkg / "sub" / "__init__.py").write_text("from ._c import B\n")
    (pkg / "sub" / "_c.py").write_text(
        "try:\n    from .. import _a\nexcept ImportError:\n    pass\n"
    )
    graph = import_graph(pkg, "pkg")
    assert graph == {
        "pkg": {"pkg._a", "pkg.sub"},
        "pkg._a": set(),
        "pkg._b": set(),
        "pkg.sub": {"pkg.sub._c"},
        "pkg.sub._c": {"pkg._a"},
    }
    assert find_cycle(graph) is None

    (pkg / "sub" / "_c.py").write_text("from pkg import A as B\n")
    assert find_cycle(import_graph(pkg, "pkg")) == ["pkg", "pkg.sub", "pkg.sub._c", "pkg"]
