"""Side virtual environments for the peers the speed benchmark compares against.

Both reuse this interpreter's packages through a ``.pth`` file (the same torch, numpy and
tokenizers on every side; no CUDA torch is downloaded) and pip-install only what the peer
adds, into the side venv:

- ``lm-eval``: lm-evaluation-harness (``lm-eval[hf]``), as ``parity_lm_eval.py`` does;
- ``qa-ref``: transformers 5.2.0, the last release with ``QuestionAnsweringPipeline``
  (removed in 5.3), as ``parity_heads.py`` documents.

Usage: ``python benchmarks/peer_envs.py CACHE_DIR`` creates both (minutes, needs PyPI).
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

LM_EVAL_SPEC = os.environ.get("LM_EVAL_SPEC", "lm-eval[hf]==0.4.13")
# kernels: transformers 5.2.0 imports it when present and breaks on this interpreter's newer one
QA_REF_SPECS = [
    "transformers==5.2.0",
    "huggingface_hub>=1.3,<2",
    "tokenizers==0.22.2",
    "kernels>=0.10.2,<0.11",
]

PEERS = {
    "lm-eval": ([LM_EVAL_SPEC], "import lm_eval.models.huggingface"),
    "qa-ref": (
        QA_REF_SPECS,
        (
            "from transformers import pipeline; pipeline.__module__; "
            "import transformers.pipelines.question_answering"
        ),
    ),
}


def ensure_venv(venv: Path, specs: list[str], probe: str) -> Path:
    """A venv that sees this interpreter's packages and has ``specs`` installed on top."""
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        purelib = subprocess.run(
            [
                str(python),
                "-c",
                "import sysconfig; print(sysconfig.get_paths()['purelib'])",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        (Path(purelib) / "_evalharness_parent_env.pth").write_text(
            sysconfig.get_paths()["purelib"] + "\n"
        )
    if (
        subprocess.run(
            [str(python), "-c", probe], capture_output=True, check=False
        ).returncode
        != 0
    ):
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                *specs,
            ],
            check=True,
        )
        probed = subprocess.run(
            [str(python), "-c", probe], capture_output=True, text=True, check=False
        )
        if probed.returncode != 0:
            raise RuntimeError(
                f"{venv}: `{probe}` still fails after installing {specs}:\n{probed.stderr[-2000:]}"
            )
    return python


def peer_python(cache: Path, name: str) -> Path:
    specs, probe = PEERS[name]
    return ensure_venv(cache / f"venv-{name}", specs, probe)


def available(cache: Path, name: str) -> Path | None:
    """The peer's python if it is installed and importable, else None (nothing installed)."""
    python = cache / f"venv-{name}" / "bin" / "python"
    if (
        python.exists()
        and subprocess.run(
            [str(python), "-c", PEERS[name][1]], capture_output=True, check=False
        ).returncode
        == 0
    ):
        return python
    return None


if __name__ == "__main__":
    target = (
        Path(sys.argv[1])
        if len(sys.argv) > 1
        else Path(__file__).resolve().parent / ".cache"
    )
    for peer in PEERS:
        print(peer, peer_python(target, peer))
