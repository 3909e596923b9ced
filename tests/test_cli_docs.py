"""Every command the CLI offers is documented in the README."""

from __future__ import annotations

import argparse

from syncd.cli import build_parser
from tests.conftest import REPO


def test_every_command_is_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = [name for name in sub.choices if f"syncd {name}" not in readme]
    assert missing == []


def test_errors_are_one_line_without_traceback(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import run_syncd

    missing = run_syncd(tmp_path / "nope.yaml", "status")
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    assert "Traceback" not in missing.stderr
