"""`syncd demo --backend memories` runs end to end and leaves nothing behind (like the Mikshi demo)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import syncd_env


def test_the_memories_demo_runs_and_cleans_up_after_itself(tmp_path: Path) -> None:
    env = {**syncd_env(), "TMPDIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "syncd", "demo", "--backend", "memories"],
                            capture_output=True, text=True, env=env, timeout=110)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert re.match(r"syncd demo \(memories\.ai\), working in .*/syncd-demo-\w+ \(removed afterwards", lines[0])
    assert any(re.match(r"all 4 clips parsed in [\d.]+s:$", line) for line in lines), result.stdout
    assert any(re.match(r"both changes reached the remote in [\d.]+s:$", line) for line in lines)
    # Subfolders went as tags, the phone clips' capture metadata with them.
    assert any(re.search(r"forklift-loading-gate\.mp4 +PARSE +tags warehouse-cam3; camera Google Pixel 8", line)
               for line in lines), result.stdout
    assert not any("truck-at-barrier" in line for line in lines[lines.index(next(
        line for line in lines if line.startswith("both changes"))):] if line.lstrip().startswith("remote"))
    assert lines[-1].startswith("demo finished; ")
    assert list(tmp_path.iterdir()) == [], "nothing left behind"
