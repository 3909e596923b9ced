"""The backend seam holds: no module outside ``syncd/remote/`` and ``syncd/emulator/`` names a
Mikshi endpoint, header, status field, processing step or pipeline (issue #12). Those come
from the backend, through ``Remote.features()`` or ``syncd.remote.backend_facts``.

Checked on the source's string literals (``ast``), so comments and docs may still explain.
"""

from __future__ import annotations

import ast
from pathlib import Path

from syncd.remote.facts import MIKSHI

ROOT = Path(__file__).resolve().parents[2] / "syncd"
INSIDE = (ROOT / "remote", ROOT / "emulator")
#: Literals that are Mikshi's vocabulary wherever they appear whole.
NAMES = frozenset((*MIKSHI.processing_steps, *MIKSHI.pipelines))
#: Fragments that are Mikshi's vocabulary wherever they appear in a literal.
#: Literals that spell a step's name for another meaning (path → literals).
ELSEWHERE = {"syncd/ui/app.py": {"hls"}}  # the template's flag for HLS playback (hls.js), a format
FRAGMENTS = ("/api/backend", "/api/chat", "x-api-key", "_generation_status", "transcoding_status",
             "analyse_status", "search_process_status", "s3_object_name")


def _literals(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    docstrings = {
        id(node.body[0].value) for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def test_no_backend_vocabulary_outside_the_backends() -> None:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        if any(path.is_relative_to(inside) for inside in INSIDE):
            continue
        allowed = ELSEWHERE.get(str(path.relative_to(ROOT.parent)), set())
        for line, text in _literals(path):
            lowered = text.lower()
            if (text in NAMES and text not in allowed) or any(fragment in lowered for fragment in FRAGMENTS):
                found.append(f"{path.relative_to(ROOT.parent)}:{line}: {text!r}")
    assert found == [], "backend vocabulary outside syncd/remote and syncd/emulator:\n" + "\n".join(found)


def test_the_check_sees_what_it_looks_for() -> None:
    """The lint is not vacuous: the backend module itself is full of it."""
    names = {text for _, text in _literals(ROOT / "remote" / "facts.py")}
    assert NAMES <= names
