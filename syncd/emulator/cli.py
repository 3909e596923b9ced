"""``syncd emulator`` / ``python -m syncd.emulator``: run the emulator until SIGTERM/SIGINT.

Keys come from ``--api-key`` (repeatable) and/or ``SYNCD_EMULATOR_API_KEYS``
(comma-separated) so they need not appear in ``ps``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from syncd.emulator.config import Faults
from syncd.emulator.memories import MemoriesConfig, MemoriesEmulator
from syncd.emulator.memories.config import PUBLISHED_RATE_LIMITS
from syncd.emulator.mikshi.config import FAILABLE_PIPELINES, EmulatorConfig
from syncd.emulator.mikshi.emulator import Emulator

ENV_KEYS = "SYNCD_EMULATOR_API_KEYS"


def build_parser() -> argparse.ArgumentParser:
    d = EmulatorConfig(data_dir=Path("."))
    f = Faults()
    m = MemoriesConfig(data_dir=Path("."))
    p = argparse.ArgumentParser(prog="syncd emulator",
                                description="Run a local emulator of a remote API: Mikshi's "
                                "developer API (default) or memories.ai (v1 and v2 paths on "
                                "one port).")
    p.add_argument("--backend", choices=("mikshi", "memories"), default="mikshi",
                   help="which service to emulate (default: %(default)s)")
    p.add_argument("--host", default=d.host, help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=8765, help="port to listen on; 0 picks a free one (default: %(default)s)")
    p.add_argument("--data-dir", type=Path, required=True,
                   help="where videos, blobs and the emulator's database live (kept across restarts)")
    p.add_argument("--api-key", action="append", default=[], metavar="KEY",
                   help=f"accepted API key (repeatable); also read from ${ENV_KEYS} (default: none; one is needed)")
    p.add_argument("--min-part-size", type=int, default=d.min_part_size, metavar="BYTES",
                   help="smallest multipart part but the last, as S3's EntityTooSmall (default: %(default)s)")
    p.add_argument("--processing-seconds", type=float, default=d.processing_seconds, metavar="S",
                   help="how long thumbnail, transcoding and HLS take (default: %(default)s)")
    p.add_argument("--pipeline-seconds", type=float, default=d.pipeline_seconds, metavar="S",
                   help="how long analyse and search-process take (default: %(default)s)")
    p.add_argument("--url-ttl-seconds", type=int, default=d.url_ttl_seconds, metavar="S",
                   help="lifetime of a pre-signed part URL (default: %(default)s)")
    p.add_argument("--direct-upload-max-bytes", type=int, default=d.direct_upload_max_bytes, metavar="BYTES",
                   help="largest one-request upload; bigger answers 413 (default: %(default)s)")
    p.add_argument("--collections-cache-seconds", type=float, default=d.collections_cache_seconds, metavar="S",
                   help="how long a collection listing may be stale, as the real API's cache (default: %(default)s)")
    p.add_argument("--segment-seconds", type=float, default=d.segment_seconds, metavar="S",
                   help="length of one embedded segment of a video (default: %(default)s)")
    p.add_argument("--fail-share", type=float, default=d.fail_share, metavar="SHARE",
                   help="share (0..1) of videos whose --fail-pipeline fails (default: %(default)s)")
    p.add_argument("--fail-pipeline", choices=FAILABLE_PIPELINES, default=d.fail_pipeline,
                   help="the step --fail-share and --fail-name-glob make fail (default: %(default)s)")
    p.add_argument("--fail-name-glob", default=None, metavar="GLOB",
                   help="videos named like this always fail --fail-pipeline (default: none)")
    p.add_argument("--credits", type=int, default=None, help="per-user credits (default: unlimited)")
    p.add_argument("--seed", type=int, default=d.seed,
                   help="seed of every random choice (faults, failures), for repeatable runs (default: %(default)s)")
    p.add_argument("--status-cache-seconds", type=float, default=d.status_cache_seconds, metavar="S",
                   help="how long a finished pipeline's percentage stays readable (default: %(default)s)")
    p.add_argument("--keepalive-seconds", type=float, default=d.keepalive_seconds, metavar="S",
                   help="idle keep-alive connections close after this long (default: %(default)s)")
    p.add_argument("--rate-limit-share", type=float, default=f.rate_limit_share, metavar="SHARE",
                   help="share of requests answered 429 (default: %(default)s)")
    p.add_argument("--retry-after", type=float, default=f.retry_after, metavar="S",
                   help="the Retry-After of those 429s (default: %(default)s)")
    p.add_argument("--error-share", type=float, default=f.error_share, metavar="SHARE",
                   help="share of requests answered 500 or 503 (default: %(default)s)")
    p.add_argument("--latency-ms", type=float, default=f.latency_ms, metavar="MS",
                   help="delay before every answer (default: %(default)s)")
    p.add_argument("--drop-share", type=float, default=f.drop_share, metavar="SHARE",
                   help="share of requests whose connection is dropped unanswered (default: %(default)s)")
    p.add_argument("--stream-error-share", type=float, default=f.stream_error_share, metavar="SHARE",
                   help="share of streamed chat answers cut off midway (default: %(default)s)")
    p.add_argument("--fault-path-glob", default=None, metavar="GLOB",
                   help="apply faults only to request paths matching this fnmatch pattern (default: all)")
    mem = p.add_argument_group("memories.ai only")
    mem.add_argument("--parse-seconds", type=float, default=m.parse_seconds,
                     metavar="S", help="UNPARSE -> PARSE/FAIL takes this long (default: %(default)s)")
    mem.add_argument("--task-seconds", type=float, default=m.task_seconds,
                     metavar="S", help="a scraper task's videos appear over this long (default: %(default)s)")
    mem.add_argument("--max-upload-bytes", type=int, default=m.max_upload_bytes, metavar="BYTES",
                     help="largest upload accepted; bigger is refused (default: %(default)s)")
    mem.add_argument("--rate-limit", action="append", default=[], metavar="GROUP=RATE",
                     help="override a per-account limit, e.g. upload=2/s or list=off; groups: "
                     + ", ".join(PUBLISHED_RATE_LIMITS) + " (defaults: the published figures)")
    p.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING or ERROR (default: %(default)s)")
    return p


def _keys(args: argparse.Namespace) -> list[str]:
    keys = list(args.api_key)
    keys += [k.strip() for k in os.environ.get(ENV_KEYS, "").split(",") if k.strip()]
    if not keys:
        raise ValueError(f"no API key given (use --api-key or ${ENV_KEYS})")
    return list(dict.fromkeys(keys))


def _faults(args: argparse.Namespace) -> Faults:
    return Faults(rate_limit_share=args.rate_limit_share, retry_after=args.retry_after,
                  error_share=args.error_share, latency_ms=args.latency_ms,
                  drop_share=args.drop_share, stream_error_share=args.stream_error_share,
                  path_glob=args.fault_path_glob)


def memories_config_from_args(args: argparse.Namespace) -> MemoriesConfig:
    limits: dict[str, str | None] = {}
    for item in args.rate_limit:
        group, sep, rate = item.partition("=")
        if not sep:
            raise ValueError(f"--rate-limit {item!r}: use GROUP=RATE, e.g. upload=2/s")
        limits[group.strip()] = None if rate.strip().lower() in ("off", "none") else rate.strip()
    return MemoriesConfig(
        data_dir=args.data_dir, api_keys=_keys(args), host=args.host, port=args.port,
        parse_seconds=args.parse_seconds, task_seconds=args.task_seconds,
        fail_share=args.fail_share, fail_name_glob=args.fail_name_glob, credits=args.credits,
        rate_limits=limits, max_upload_bytes=args.max_upload_bytes,
        segment_seconds=args.segment_seconds, seed=args.seed, faults=_faults(args),
        keepalive_seconds=args.keepalive_seconds)


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    keys = _keys(args)
    faults = _faults(args)
    return EmulatorConfig(
        data_dir=args.data_dir, api_keys=keys, host=args.host,
        port=args.port, min_part_size=args.min_part_size,
        processing_seconds=args.processing_seconds, pipeline_seconds=args.pipeline_seconds,
        url_ttl_seconds=args.url_ttl_seconds,
        direct_upload_max_bytes=args.direct_upload_max_bytes,
        collections_cache_seconds=args.collections_cache_seconds,
        segment_seconds=args.segment_seconds, fail_share=args.fail_share,
        fail_pipeline=args.fail_pipeline, fail_name_glob=args.fail_name_glob,
        credits=args.credits, seed=args.seed, faults=faults,
        status_cache_seconds=args.status_cache_seconds,
        keepalive_seconds=args.keepalive_seconds)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config: EmulatorConfig | MemoriesConfig = (
            memories_config_from_args(args) if args.backend == "memories"
            else config_from_args(args))
    except ValueError as exc:
        parser.error(str(exc))
    # The handler only records the signal. It must take no lock: Python runs it in the main
    # thread between two bytecodes, possibly while that thread holds the very lock (an
    # Event's, inside Event.wait), and then it would wait for itself forever.
    received: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    emulator: Emulator | MemoriesEmulator = (
        MemoriesEmulator(config) if isinstance(config, MemoriesConfig) else Emulator(config))
    try:
        try:
            emulator.start()
        except OSError as exc:
            print(f"syncd emulator: cannot listen on {config.host}:{config.port}: {exc}",
                  file=sys.stderr)
            return 1
        print(f"emulator listening on {emulator.base_url}", flush=True)
        while not received:
            time.sleep(0.2)  # stops at most this long after the signal
    finally:
        emulator.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0
