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


def test_the_units_and_the_readme_command_lines_parse() -> None:
    """`-c`/`-v` work after the command too: the units run `syncd run -c FILE`, and the
    README writes `syncd doctor -c config.yaml`."""
    import re
    import shlex

    parser = build_parser()
    units = [REPO / "systemd" / "syncd.service", REPO / "systemd" / "user" / "syncd.service"]
    for unit in units:
        [line] = re.findall(r"^ExecStart=(.*)$", unit.read_text(), re.MULTILINE)
        args = parser.parse_args(shlex.split(line)[1:])
        assert (args.command, args.config) == ("run", shlex.split(line)[-1]), unit
    readme = (REPO / "README.md").read_text()
    lines = [m.split("#")[0] for m in re.findall(r"\bsyncd ([a-z].*)$", readme, re.MULTILINE)]
    with_config = [line for line in lines if " -c " in line]
    assert with_config, "the README shows commands with -c"
    for line in with_config:
        args = parser.parse_args(shlex.split(line))
        assert args.config, line
    later = parser.parse_args(["status", "-v", "-c", "b.yaml"])
    assert (later.config, later.verbose) == ("b.yaml", True)
    before = parser.parse_args(["-v", "-c", "a.yaml", "status"])
    assert (before.config, before.verbose) == ("a.yaml", True)
