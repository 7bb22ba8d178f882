"""The ``main`` fixture: run ``evalharness`` in-process (no interpreter start-up per call) and
get back what a subprocess would give: ``returncode``, ``stdout``, ``stderr``."""

from __future__ import annotations

from types import SimpleNamespace

import pytest


@pytest.fixture
def main(capsys):
    from evalharness.cli import main as cli_main

    def run(*args: str) -> SimpleNamespace:
        code = cli_main(list(args))
        captured = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=captured.out, stderr=captured.err)

    return run
