"""Local emulators of the remote services syncd talks to, over real HTTP on loopback.

Shared plumbing lives here; each backend is one package on top of it:

    mikshi/          the Mikshi developer API + pre-signed object store (``Emulator``)
    memories/        memories.ai v1 and v2 hosts (``MemoriesEmulator``)

Shared modules, each owning one thing:

    base.py          EmulatorBase: start/stop, context manager, faults/clock/request-log controls
    server.py        HTTP plumbing: keep-alive, bodies, faults, auth, request log; the
                     per-service ``ServerHooks`` protocol (each backend has a ``hooks.py``)
    routing.py       the regex router; route kinds (api / s3 / admin)
    wire.py          Request / Response / body reader
    validation.py    FastAPI-style 422 validation (JSON bodies, query strings)
    errors.py        ApiError (JSON) and S3Error (XML)
    admin.py         /_admin/ routes every emulator serves (health, request log, faults, clock)
    config.py        Faults: injected misbehaviour, changeable at runtime
    faults.py        FaultInjector: which request gets which fault
    context.py       Clock: wall time plus an offset tests advance
    auth.py          KeyRing: API key -> account
    requestlog.py    the request log tests assert on
    embeddings.py    deterministic vectors and captions
    formdata.py      streaming multipart/form-data parser
    media.py         PyAV probe, thumbnail bytes
    cli.py           ``syncd emulator`` / ``python -m syncd.emulator`` (``--backend``)

The shared modules import no backend package; only ``cli.py`` picks one.
"""

from syncd.emulator.config import Faults

__all__ = ["Faults"]
