"""The package's architecture, checked: import directions, no pytest below the plugin, sizes.

Layers, lowest first (a module may import its own subpackage and any lower layer, never a
higher one or a peer; ``pruning/__init__.py`` is the public facade and may import anything):

    common < models, data < metrics < engine < search, healing, tasks < results < study < reporting
        < plugin < cli
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pruning"
RANK = {
    "common": 0,
    "models": 1,
    "data": 1,
    "metrics": 2,
    "engine": 3,
    "search": 4,
    "healing": 4,
    "tasks": 4,
    "results": 5,
    "study": 6,
    "reporting": 7,
    "plugin": 8,
    "cli": 9,
}
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 40


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE)


def layer(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0]


def imported(source: str) -> list[tuple[int, str]]:
    """(line, dotted module) of every import in ``source``, including those inside functions."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [
                (node.lineno, f"{node.module}.{a.name}") for a in node.names if node.module == "pruning"
            ]
    return found


def violations(source: str, own: str, where: str) -> list[str]:
    """Imports in ``source`` (a module of layer ``own``) of a higher layer, a peer, or pytest."""
    bad = []
    for line, name in imported(source):
        parts = name.split(".")
        if parts[0] in ("pytest", "_pytest") and own != "plugin":
            bad.append(f"{where}:{line} imports {name} (only the plugin may)")
        if parts[0] != "pruning" or len(parts) < 2:
            continue
        target = parts[1]
        if target not in RANK:  # the facade (``pruning.__version__`` etc.)
            bad.append(f"{where}:{line} imports the facade {name}")
        elif target != own and RANK[target] >= RANK[own]:
            bad.append(f"{where}:{line} ({own}) imports {name} ({target})")
    return bad


def test_every_subpackage_has_a_layer_and_a_docstring() -> None:
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert packages == set(RANK)
    for name in packages:
        doc = ast.get_docstring(ast.parse((PACKAGE / name / "__init__.py").read_text(encoding="utf-8")))
        assert doc and "import" in doc, f"pruning/{name}/__init__.py must say what it owns and may import"


def test_imports_point_only_downward() -> None:
    found = [
        v
        for path in modules()
        for v in violations(path.read_text(encoding="utf-8"), layer(path), str(path.relative_to(PACKAGE)))
    ]
    assert found == []


def test_the_check_catches_upward_peer_and_pytest_imports() -> None:
    source = (
        "import pytest\nfrom pruning.search.racing import race\n\n"
        "def f():\n    from pruning.data import windows\n"
    )
    found = violations(source, "models", "probe.py")
    assert found == [
        "probe.py:1 imports pytest (only the plugin may)",
        "probe.py:2 (models) imports pruning.search.racing (search)",
        "probe.py:5 (models) imports pruning.data (data)",
    ]
    assert violations("from pruning.models.surgery import get_blocks\n", "engine", "ok.py") == []
    # the results model sits below the study, presentation above it
    assert violations("from pruning.reporting.tables import table\n", "study", "s.py") == [
        "s.py:1 (study) imports pruning.reporting.tables (reporting)"
    ]
    assert violations("from pruning.study.plan import parse_plan\n", "results", "r.py") == [
        "r.py:1 (results) imports pruning.study.plan (study)"
    ]
    downward = "from pruning.results.rows import Row\nfrom pruning.study.plan import Best\n"
    assert violations(downward, "reporting", "ok.py") == []


def oversized(text: str, where: str) -> list[str]:
    """A module over ``MAX_MODULE_LINES`` lines and each function over ``MAX_FUNCTION_LINES``."""
    lines = text.count("\n")
    found = [f"{where}: {lines} lines"] if lines > MAX_MODULE_LINES else []
    return found + [
        f"{where}: {node.name} ({(node.end_lineno or node.lineno) - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (node.end_lineno or node.lineno) - node.lineno + 1 > MAX_FUNCTION_LINES
    ]


def test_modules_and_functions_stay_small() -> None:
    found = [
        problem
        for path in [*modules(), PACKAGE / "__init__.py"]
        for problem in oversized(path.read_text(encoding="utf-8"), str(path.relative_to(PACKAGE)))
    ]
    assert found == []


def test_the_size_check_catches_a_long_module_and_a_long_function() -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    assert oversized(f"def f():\n{body}", "probe.py") == [f"probe.py: f ({MAX_FUNCTION_LINES + 1} lines)"]
    too_long = MAX_MODULE_LINES + 1
    assert oversized("x = 1\n" * too_long, "big.py") == [f"big.py: {too_long} lines"]
    assert oversized("def g():\n    return 1\n", "ok.py") == []


def test_the_public_api_resolves_every_name_it_lists() -> None:
    import pruning

    assert sorted(pruning.__all__) == sorted(pruning._HOMES)
    for name in pruning.__all__:
        assert getattr(pruning, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        _ = pruning.nonexistent  # type: ignore[attr-defined]
