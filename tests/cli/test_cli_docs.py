"""Every command the CLI offers is documented in the README."""

from __future__ import annotations

import argparse

from syncd.cli.main import build_parser
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


def _commands() -> dict[str, argparse.ArgumentParser]:
    """Every command's parser by its full name ("sync", "trash empty", "emulator")."""
    from syncd.emulator.cli import build_parser as emulator_parser

    found: dict[str, argparse.ArgumentParser] = {}

    def walk(prefix: str, parser: argparse.ArgumentParser) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    full = f"{prefix} {name}".strip()
                    found[full] = child
                    walk(full, child)

    walk("", build_parser())
    found["emulator"] = emulator_parser()
    return found


def test_every_flag_has_help_with_its_default_and_is_in_the_readme() -> None:
    import re

    readme = (REPO / "README.md").read_text()
    undocumented, no_default, missing = [], [], []
    for name, parser in _commands().items():
        flags = [a for a in parser._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]
        if name != "emulator":
            assert {"-c", "-v"} <= {s for a in flags for s in a.option_strings}, f"{name}: -c/-v in its help"
        for action in flags:
            flag = max(action.option_strings, key=len)
            if not action.help or action.help == argparse.SUPPRESS:
                undocumented.append(f"{name} {flag}")
            takes_value = action.nargs != 0
            if takes_value and not action.required and "default" not in (action.help or ""):
                no_default.append(f"{name} {flag}")
            if flag in ("--config", "--verbose"):
                continue  # documented once for every command
            # In the command's line of the table, or (the emulator's many) each in its own backticks.
            shown = any(re.search(rf"`syncd {re.escape(name)}\b[^`]*{re.escape(f)}\b", readme)
                        for f in action.option_strings)
            if not shown and not (name == "emulator" and f"`{flag}" in readme):
                missing.append(f"syncd {name} {flag}")
        for positional in (a for a in parser._actions if not a.option_strings):
            if not isinstance(positional, argparse._SubParsersAction) and not positional.help:
                undocumented.append(f"{name} {positional.dest}")
    assert undocumented == [], "flags without help text"
    assert no_default == [], "flags taking a value whose help does not give the default"
    assert missing == [], "flags the README does not mention"
    for option in ("-c/--config", "-v"):
        assert option in readme


def test_each_commands_help_shows_config_and_verbose(capfd) -> None:  # type: ignore[no-untyped-def]
    """Through the CLI's entry point in this process (what ``python -m syncd`` calls); one
    command also as a real subprocess, for the exit status a shell sees."""
    import subprocess
    import sys

    import pytest

    from syncd.cli.main import main
    from tests.conftest import syncd_env

    shown = subprocess.run([sys.executable, "-m", "syncd", "sync", "--help"], capture_output=True, text=True,
                           env=syncd_env(), timeout=60)
    assert shown.returncode == 0
    assert "-c CONFIG, --config CONFIG" in shown.stdout and "-v, --verbose" in shown.stdout
    for name in ("sync", "status", "log", "restore", "trash", "search", "ask", "run", "doctor", "demo"):
        with pytest.raises(SystemExit) as exited:
            main([name, "--help"])
        out = capfd.readouterr().out
        assert exited.value.code == 0
        assert "-c CONFIG, --config CONFIG" in out and "-v, --verbose" in out, name
