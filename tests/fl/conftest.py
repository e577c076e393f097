"""Fixtures of the federated-learning tests; the helpers are in fl_support.py."""

from __future__ import annotations

import os

import pytest
from fl_support import BIN, QUIET


@pytest.fixture(scope="session")
def quiet_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("flwr-home")
    return {
        **os.environ,
        **QUIET,
        "FLWR_HOME": str(home / "flwr"),
        "UV_CACHE_DIR": str(home / "uv"),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
