"""Scale (issue 15): work in proportion to change, counted, never timed. The engine
in-process against the emulator, real folders; the synced state is reached through
the emulator's ``videos/register`` admin call and ``Catalog.link_finished``."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx

from syncd.catalog import Catalog
from syncd.config import Config, load_config
from syncd.emulator import Emulator
from syncd.engine import Engine, file_statuses
from syncd.models import PROCESSING_STEPS
from syncd.remote.mikshi import MikshiClient
from tests.conftest import FAST_RETRY, KEY, syncd_env, write_config


def synced_tree(tmp_path: Path, emu: Emulator, admin: httpx.Client, files: int) -> Config:
    """``files`` small files, catalogued, on the remote and finished, in nested folders."""
    drop = tmp_path / "drop"
    for i in range(files):
        path = drop / f"cam{i // 100:02d}" / f"clip{i:05d}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"clip {i}\n".encode())
    folders = [{"path": str(drop), "collections": "none", "pipelines": []}]
    config = load_config(write_config(tmp_path, emu.base_url, folders), {"SYNCD_TEST_KEY": KEY})
    with Catalog.open(config.state_dir) as catalog, MikshiClient(emu.base_url, KEY, retry=FAST_RETRY) as remote:
        Engine(config, catalog, remote).observe()
        records = catalog.files()
        videos = [{"name": f.rel_path, "size": f.size, "sha256": f.sha256,
                   "md5": hashlib.md5(f.path.read_bytes()).hexdigest()} for f in records]
        ids = admin.post("/videos/register", json={"videos": videos}).json()["video_ids"]
        catalog.link_finished([(f.sha256 or "", v, f.rel_path) for f, v in zip(records, ids, strict=True)],
                              PROCESSING_STEPS)
        catalog.set_meta("adopt_remote", "0")
        # The first pass mirrors every video once (details, sidecars, full text).
        assert Engine(config, catalog, remote).run_pass().plan.actions == []
    return config


def statements(config: Config, emu: Emulator, what: str) -> Counter[str]:
    """SQL statements a fresh process's unchanged pass (or status) sends, by kind."""
    seen: Counter[str] = Counter()
    with Catalog.open(config.state_dir) as catalog, MikshiClient(emu.base_url, KEY, retry=FAST_RETRY) as remote:
        catalog.db.conn.set_trace_callback(lambda sql: seen.update([" ".join(sql.split())[:80]]))
        if what == "pass":
            report = Engine(config, catalog, remote).run_pass()
            assert report.plan.actions == [] and report.hashed == 0
        else:
            assert {s.state for s in file_statuses(config, catalog)} == {"done"}
    return seen


def test_unchanged_pass_and_status_issue_no_per_file_queries(tmp_path: Path, emu: Emulator,
                                                              admin: httpx.Client) -> None:
    small = synced_tree(tmp_path / "small", emu, admin, 500)
    large = synced_tree(tmp_path / "large", emu, admin, 1000)
    for what in ("pass", "status"):
        few, many = statements(small, emu, what), statements(large, emu, what)
        assert sum(many.values()) == sum(few.values()), (what, many - few)
        assert sum(few.values()) < 150, few.most_common(5)


def test_status_imports_no_heavy_modules(tmp_path: Path) -> None:
    """``syncd status`` starts fast: it loads no HTTP client, numpy, PyAV, Prometheus
    client, scheduler or engine (they cost most of a start-up)."""
    config = write_config(tmp_path, "http://127.0.0.1:9")
    heavy = ["numpy", "av", "prometheus_client", "apscheduler", "httpx", "watchdog", "sqlite_utils",
             "syncd.engine"]
    script = (f"import sys; from syncd.cli import main; code = main(['-c', {str(config)!r}, 'status']); "
              f"print(code, [m for m in {heavy!r} if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", script], env=syncd_env(), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "0 []"
