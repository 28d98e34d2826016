"""The package's architecture, checked: import directions, no pytest below the plugin, sizes.

Layers, lowest first (a module may import its own subpackage and any lower layer, never a
higher one or a peer; ``pruning/__init__.py`` is the public facade and may import anything):

    common < models, data < metrics < engine < search, healing < reporting < study < plugin
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
    "reporting": 5,
    "study": 6,
    "plugin": 7,
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


@pytest.mark.parametrize(
    "path", [*modules(), PACKAGE / "__init__.py"], ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_modules_and_functions_stay_small(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count("\n") <= MAX_MODULE_LINES
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (node.end_lineno or node.lineno) - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []


def test_the_public_api_resolves_every_name_it_lists() -> None:
    import pruning

    assert sorted(pruning.__all__) == sorted(pruning._HOMES)
    for name in pruning.__all__:
        assert getattr(pruning, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        _ = pruning.nonexistent  # type: ignore[attr-defined]
