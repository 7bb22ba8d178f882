"""Every official WMT system output of a task scored once per test session (``evalharness
score --run-dir``, one run directory per system), shared by the golden test that checks the
official scores and the site tests that browse the boards. With xdist, workers that need a
task at the same time share the work: each scores the systems no other worker has claimed
(a lock file per system), then waits for the rest, so no run is scored twice and no worker
idles while another scores them all."""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
from pathlib import Path

import pytest

# task -> (folder, file prefix, language pair)
WMT = {
    "translation/wmt21_de_en": ("wmt21", "newstest2021", "de-en"),
    "translation/wmt21_en_de": ("wmt21", "newstest2021", "en-de"),
    "translation/wmt23_de_en": ("wmt23", "generaltest2023", "de-en"),
    "translation/wmt23_en_de": ("wmt23", "generaltest2023", "en-de"),
}
N_RESAMPLES = "100"


def system_outputs(shared_data: Path, task_name: str) -> dict[str, Path]:
    """system -> its output file, for every system of the task's official release."""
    folder, prefix, pair = WMT[task_name]
    outputs = sorted((shared_data / folder / "system-outputs").glob(f"{prefix}.{pair}.hyp.*"))
    return {path.name.split(".hyp.")[1].rsplit(".", 1)[0]: path for path in outputs}


def _score_system(shared_data: Path, task_name: str, system: str, output: Path, run_dir: Path) -> None:
    from evalharness.cli import main

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = main(["score", "--task", task_name, "--predictions", str(output), "--data-dir", str(shared_data),
                     "--run-dir", str(run_dir), "--name", system, "--n-resamples", N_RESAMPLES])
    if code != 0:
        raise RuntimeError(f"evalharness score failed for {system}")


def scored_runs(shared_data: Path, tmp_path_factory: pytest.TempPathFactory, task_name: str) -> Path:
    """The folder of run directories (one per system) of ``task_name``, scored on first use."""
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / f"wmt-{task_name.replace('/', '-')}"
    (root / "locks").mkdir(parents=True, exist_ok=True)
    outputs = system_outputs(shared_data, task_name)
    for blocking in (False, True):  # first score what nobody has claimed, then wait for the others
        for system, output in outputs.items():
            with open(root / "locks" / system, "a") as lock:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
                except BlockingIOError:
                    continue  # another worker is scoring it
                if not (root / "locks" / f"{system}.done").exists():
                    _score_system(shared_data, task_name, system, output, root / "runs" / system)
                    (root / "locks" / f"{system}.done").touch()
    return root / "runs"
