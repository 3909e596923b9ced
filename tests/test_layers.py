"""The tree is the architecture: each layer of ``syncd`` imports only the layers below it
(docs/architecture.md, "Layout"). Every import counts — at module level, inside a function,
or under ``TYPE_CHECKING`` — since each is a dependency a reader must follow.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "syncd"

#: Top to bottom; a layer may import itself and any layer after it. The last entry is the
#: base every layer shares (records, the error tree, units, the package's version).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("__main__",),
    ("cli",),
    ("service",),
    ("ui",),
    ("sync",),
    ("mirror",),
    ("store",),
    ("config",),
    ("remote",),
    ("media",),
    ("models", "errors", "units", "folders", "__init__"),
)
#: The emulators stand beside the product: they may use the base layer, and only these
#: modules of the product may import them (`syncd emulator`, `syncd demo`).
EMULATOR = "emulator"
EMULATOR_USERS = frozenset({"syncd.cli.main", "syncd.cli.demo", "syncd.cli.demo_memories"})


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every ``syncd`` import in ``path``, relative ones resolved."""
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target == "syncd" or (node.level and not node.module):
                found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, target))
    return [(line, name) for line, name in found if name == "syncd" or name.startswith("syncd.")]


def _layer(module: str) -> str:
    """``syncd.sync.engine`` -> ``sync``; the package itself (and its attributes) -> ``__init__``."""
    parts = module.split(".")
    if len(parts) == 1 or not ((ROOT / parts[1]).is_dir() or (ROOT / f"{parts[1]}.py").exists()):
        return "__init__"
    return parts[1]


def _rank(layer: str) -> int:
    for rank, names in enumerate(LAYERS):
        if layer in names:
            return rank
    raise AssertionError(f"syncd.{layer} belongs to no layer: add it to LAYERS and docs/architecture.md")


def _violation(source: str, target: str) -> str | None:
    here, there = _layer(source), _layer(target)
    if here == there:
        return None
    if there == EMULATOR:
        return None if source in EMULATOR_USERS else "only `syncd emulator` and `syncd demo` import the emulators"
    if here == EMULATOR:
        return None if _rank(there) == len(LAYERS) - 1 else "the emulators use only the base layer"
    if _rank(there) < _rank(here):
        return f"{here} sits below {there}"
    return None


def test_every_layer_imports_only_layers_below_it() -> None:
    wrong = []
    for path in sorted(ROOT.rglob("*.py")):
        source = _module(path)
        for line, target in _imports(path):
            why = _violation(source, target)
            if why:
                wrong.append(f"{path.relative_to(ROOT.parent)}:{line}: imports {target} ({why})")
    assert wrong == []


def test_every_package_has_a_layer() -> None:
    names = {p.stem for p in ROOT.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
    for name in sorted(names - {EMULATOR}):
        _rank(name)


@pytest.mark.parametrize(("source", "target", "allowed"), [
    ("syncd.sync.engine", "syncd.mirror.mirror", True),
    ("syncd.store.catalog", "syncd.mirror.records", False),
    ("syncd.sync.executor", "syncd.models", True),
    ("syncd.remote.http", "syncd.config", False),
    ("syncd.service.daemon", "syncd.emulator", False),
    ("syncd.cli.demo", "syncd.emulator", True),
    ("syncd.emulator.server", "syncd.units", True),
    ("syncd.emulator.server", "syncd.remote.base", False),
])
def test_the_rule_itself(source: str, target: str, allowed: bool) -> None:
    assert (_violation(source, target) is None) is allowed
