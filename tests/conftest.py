"""Shared fixtures: a real emulator on loopback, real files in temp folders.

Every test also checks that the API key never reached a log record or the
captured output.
"""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from syncd.emulator.mikshi import Emulator, EmulatorConfig, Faults
from syncd.remote.http import RetryPolicy
from syncd.remote.mikshi import MikshiClient
from syncd.store.catalog import Catalog

KEY = "sk_test_Zq8LrT4nVw2pXs9KjH3m"
OTHER_KEY = "sk_other_Yb7NcM2qWe5rTu8IoP1a"
FAST_RETRY = RetryPolicy(max_retries=8, backoff_base=0.01, backoff_cap=0.05)
MiB = 1024 * 1024
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def key_never_logged(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)
    yield
    out, err = capfd.readouterr()
    sys.stdout.write(out)
    sys.stderr.write(err)
    for secret in (KEY, OTHER_KEY):
        assert secret not in caplog.text, "API key found in log records"
        assert secret not in out and secret not in err, "API key found in test output"


@pytest.fixture(autouse=True)
def root_logging_restored() -> Iterator[None]:
    """An in-process CLI call (``main([...])``) puts syncd's stderr handler on the root
    logger, writing to the stream pytest captures for that test. Left there, a later
    test's emulator thread logs to that stream once it is closed ("I/O operation on
    closed file"): take it away with the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = [h for h in root.handlers if h in handlers or h.get_name() != "syncd-stderr"]
    root.setLevel(level)


def emulator_config(data_dir: Path, **overrides: Any) -> EmulatorConfig:
    settings: dict[str, Any] = dict(
        data_dir=data_dir,
        api_keys=[KEY, OTHER_KEY],
        host="127.0.0.1",
        port=0,
        processing_seconds=0.4,
        pipeline_seconds=0.4,
        collections_cache_seconds=0,
    )
    settings.update(overrides)
    return EmulatorConfig(**settings)


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[Emulator]:
    with Emulator(emulator_config(tmp_path / "emulator")) as emulator:
        yield emulator


@pytest.fixture
def client(emu: Emulator) -> Iterator[MikshiClient]:
    with MikshiClient(emu.base_url, KEY, retry=FAST_RETRY) as c:
        yield c


@pytest.fixture
def admin(emu: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{emu.base_url}/_admin", timeout=10) as c:
        yield c


def set_faults(admin: httpx.Client, **faults: Any) -> None:
    admin.post("/faults", json=Faults(**faults).to_dict()).raise_for_status()


def write_random(path: Path, size: int, seed: int = 0) -> Path:
    """A file of ``size`` pseudo-random bytes (distinct per seed)."""
    import random

    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        left = size
        while left:
            n = min(left, MiB)
            fh.write(rng.randbytes(n))
            left -= n
    return path


def write_config(tmp_path: Path, base_url: str, folders: list[dict[str, Any]] | None = None,
                 **sections: Any) -> Path:
    """A config file for a test; folders default to one ``drop`` folder."""
    data: dict[str, Any] = {
        "remote": {"base_url": base_url, "api_key_env": "SYNCD_TEST_KEY", "timeout": "10s", "max_retries": 8},
        "state_dir": str(tmp_path / "state"),
        "folders": folders or [{"path": str(tmp_path / "drop")}],
        "upload": {"settle_seconds": 0, "part_size": "5MiB", "concurrency": 4},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    for folder in data["folders"]:
        Path(folder["path"]).mkdir(parents=True, exist_ok=True)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


#: Not passed on from the test runner: pytest-xdist workers set COLUMNS=80, which would make
#: `syncd status` output depend on how the suite is run. A test that wants a width sets it.
RUNNER_ONLY = {"COLUMNS", "LINES"}

#: Where the suite's syncd subprocesses keep syncd's compiled bytecode, outside the tree.
#: Under PYTHONDONTWRITEBYTECODE (set in this machine's shells) no .pyc was ever
#: written, so each of the suite's hundreds of `python -m syncd` processes compiled
#: syncd's source again: ~0.1-0.16 CPU-s each (docs/performance-scale.md, "Start-up").
PYCACHE = Path(tempfile.gettempdir()) / f"syncd-tests-pycache-{os.getuid()}"


def syncd_env(key: str = KEY) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_") and k not in RUNNER_ONLY}
    env["SYNCD_TEST_KEY"] = key
    env["PYTHONPATH"] = str(REPO)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("PYTHONPYCACHEPREFIX", str(PYCACHE))
    return env


def run_syncd(config: Path, *args: str, key: str = KEY, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess, as a user would."""
    result = subprocess.run(
        [sys.executable, "-m", "syncd", "-c", str(config), *args],
        env=syncd_env(key), capture_output=True, text=True, timeout=timeout,
    )
    for secret in (KEY, OTHER_KEY):
        assert secret not in result.stdout + result.stderr, "API key in syncd output"
    return result


def admin_videos(admin: httpx.Client) -> list[dict[str, Any]]:
    response = admin.get("/videos")
    response.raise_for_status()
    body = response.json()
    return body["videos"] if isinstance(body, dict) and "videos" in body else body


def register_videos(admin: httpx.Client, videos: list[tuple[str, bytes]], user_id: str | None = None) -> list[str]:
    """Finished videos (name, bytes) as direct uploads would leave them, without the
    requests (the Mikshi emulator's admin ``videos/register``); their ids in order. 200 a
    request: the emulator writes and probes each object, so a request stays short under load."""
    ids: list[str] = []
    for start in range(0, len(videos), 200):
        body: dict[str, Any] = {"videos": [{"name": name, "content": base64.b64encode(content).decode()}
                                           for name, content in videos[start:start + 200]]}
        if user_id is not None:
            body["user_id"] = user_id
        response = admin.post("/videos/register", json=body, timeout=60)
        response.raise_for_status()
        ids += response.json()["video_ids"]
    return ids


def collections(admin: httpx.Client, *, markers: bool = False) -> dict[str, list[str]]:
    """Collection name → sorted names of its videos, as the remote holds them; without the
    syncd instances' marker collections unless ``markers``."""
    names = {v["video_id"]: v["name"] for v in admin_videos(admin)}
    return {c["name"]: sorted(names.get(v, v) for v in c["video_ids"]) for c in admin.get("/collections").json()
            if markers or not c["name"].startswith("syncd-instance:")}


# ------------------------------------------------------------------ daemon helpers (issue 6)
def at_work(catalog: Catalog, processing: Sequence[str], pipelines: Mapping[str, Sequence[str]] | None = None,
            *, marks: Sequence[str] | None) -> set[str]:
    """Every content ``Catalog.fill_slices`` finds at work (``every``), its slices read
    through; none counts as changed (``plan_dirty``), as after a pass planned them all."""
    catalog.db.execute("DELETE FROM plan_dirty")
    catalog.fill_slices(processing, pipelines or {}, marks=marks, every=True)
    return set(catalog.slice_after("", 1 << 30))


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Any, timeout: float = 60, what: str = "condition", details: Any = None) -> None:
    """Poll ``predicate`` until true; on timeout fail naming ``what`` (plus ``details()``, e.g. a log)."""
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            extra = f"\n{details()}" if details is not None else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{extra}")
        time.sleep(0.1)


# ------------------------------------------------------------------ mirror helpers (issue 5)
def clear_requests(admin: httpx.Client, quiet: float = 0.2) -> None:
    """Clear the emulator's request log once it is quiet.

    The emulator logs a request after its answer is sent, so a client can hold the
    answer before the entry exists; clearing at once could let it land afterwards.
    """
    import time

    seen, since = -1, time.monotonic()
    while True:
        count = len(admin.get("/requests").json())
        if count != seen:
            seen, since = count, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
        time.sleep(0.05)
    admin.post("/requests/clear").raise_for_status()
