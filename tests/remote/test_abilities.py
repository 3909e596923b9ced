"""``Features.abilities`` (what config checks read without a connection) says exactly what a
connected remote's ``features()`` fills in, for every backend; and ``check_urls`` refuses
without a request."""

from __future__ import annotations

import pytest

from syncd.config import RemoteConfig, Secret
from syncd.remote import open_remote
from syncd.remote.base import ABILITIES
from syncd.remote.facts import BACKENDS, backend_facts


@pytest.mark.parametrize("backend", BACKENDS)
def test_declared_abilities_are_the_bound_ones(backend: str) -> None:
    # Port 9 (discard) on loopback: nothing here may send a request.
    remote = open_remote(RemoteConfig(backend, "http://127.0.0.1:9", Secret("k"), "test", 1.0, 0))
    try:
        features = remote.features()
        bound = {name for name in ABILITIES if getattr(features, name) is not None}
        assert backend_facts(backend).abilities == bound == features.abilities
        importer = features.url_import
        assert importer is not None
        assert importer.check_urls([]) is not None
        assert importer.check_urls(["https://www.youtube.com/watch?v=abc"]) is None
        assert "ftp://x" in (importer.check_urls(["ftp://x"]) or "")
    finally:
        remote.close()
