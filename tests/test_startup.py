"""Start-up: `syncd status` and a `syncd sync` with nothing to do load no heavy module.

Counted, not timed: the real command runs in a fresh interpreter, and the test looks at
which packages it had imported when it returned. numpy alone costs ~0.1 CPU-s a process
(`python -X importtime -m syncd ...`); the modules below are imported where they are used
(search and the mirror's index, the daemon, the web UI, media), never at start-up.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from syncd.emulator.mikshi import Emulator
from tests.conftest import REPO, syncd_env, write_config, write_random

#: Packages no command loads before it needs them: numpy (search, the mirror's index and
#: embeddings), usearch (the ANN index), PyAV (media), the daemon's scheduler, watcher and
#: metrics, and the web UI's framework, server and templates.
HEAVY = {"numpy", "usearch", "av", "apscheduler", "watchdog", "prometheus_client",
         "starlette", "uvicorn", "jinja2"}
#: `status` reads only the catalog: no HTTP client (httpx loads click, pygments and rich
#: for its own command line) and no progress display.
NO_REMOTE = {"httpx", "httpcore", "h11", "rich", "click", "pygments"}

#: The CLI's entry point, then the top-level packages loaded by the time it returned.
PROBE = """
import sys
from syncd.cli.main import main
try:
    code = main(sys.argv[1:])
finally:
    print("LOADED:" + ",".join(sorted({name.split(".")[0] for name in sys.modules})), file=sys.stderr)
raise SystemExit(code)
"""


def loaded_by(config: Path, *args: str) -> set[str]:
    result = subprocess.run([sys.executable, "-c", PROBE, "-c", str(config), *args], capture_output=True,
                            text=True, env=syncd_env(), cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    line = [ln for ln in result.stderr.splitlines() if ln.startswith("LOADED:")][-1]
    return set(line.removeprefix("LOADED:").split(","))


def test_empty_sync_and_status_load_no_heavy_module(tmp_path: Path, emu: Emulator) -> None:
    config = write_config(tmp_path, emu.base_url)
    loaded = loaded_by(config, "sync")
    assert "syncd" in loaded and "httpx" in loaded  # the probe saw the real pass
    assert loaded & HEAVY == set()

    write_random(tmp_path / "drop" / "cam" / "a.mp4", 4096)  # a small catalog: one file synced
    assert "syncd" in loaded_by(config, "sync")
    loaded = loaded_by(config, "status")
    assert loaded & (HEAVY | NO_REMOTE) == set()
