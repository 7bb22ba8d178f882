"""Untrusted inputs never run code: checkpoint code (``auto_map``) only with
``--trust-remote-code``, pickled weights only with ``weights_only=True``, YAML only through
``safe_load``, HTML built from hostile data stays inert in a real browser, and names from
checkpoints cannot steer where files are written.

Every payload here would create a marker file if it ran; each test checks the marker is absent.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest

from tests.inprocess import main  # noqa: F401 - pytest fixture

TASK = """\
version: 1
kind: classification
data:
  local:
    files: [d.tsv]
    format: tsv
    columns: {text: sentence, label: label}
labels: [negative, positive]
metrics: [accuracy]
"""


@pytest.fixture
def workspace(tmp_path: Path) -> tuple[Path, Path]:
    tasks, data = tmp_path / "tasks", tmp_path / "data"
    tasks.mkdir()
    data.mkdir()
    (tasks / "t.yaml").write_text(TASK, encoding="utf-8")
    (data / "d.tsv").write_text("sentence\tlabel\nfine\tpositive\nbad\tnegative\n", encoding="utf-8")
    return tasks, data


def _run(main, model: Path, workspace, out: Path, *extra: str):
    tasks, data = workspace
    return main("run", "--model", str(model), "--tasks", "t", "--tasks-dir", str(tasks), "--data-dir", str(data),
                "--output", str(out), "--device", "cpu", *extra)


# --- checkpoint code ---------------------------------------------------------------------

def _remote_code_checkpoint(tiny_classifier: Path, tmp_path: Path, marker: Path) -> Path:
    """The tiny classifier re-labelled as a custom architecture whose code ships with it."""
    checkpoint = tmp_path / "remote-code"
    shutil.copytree(tiny_classifier, checkpoint)
    payload = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('executed')\n"
    (checkpoint / "configuration_evil.py").write_text(payload + "from transformers import BertConfig\n"
                                                      "class EvilConfig(BertConfig):\n    model_type = 'evil'\n")
    (checkpoint / "modeling_evil.py").write_text(payload + "from transformers import BertForSequenceClassification\n"
                                                 "from .configuration_evil import EvilConfig\n"
                                                 "class EvilForSequenceClassification(BertForSequenceClassification):\n"
                                                 "    config_class = EvilConfig\n")
    config = json.loads((checkpoint / "config.json").read_text())
    config.update(model_type="evil", architectures=["EvilForSequenceClassification"], auto_map={
        "AutoConfig": "configuration_evil.EvilConfig",
        "AutoModelForSequenceClassification": "modeling_evil.EvilForSequenceClassification",
    })
    (checkpoint / "config.json").write_text(json.dumps(config))
    return checkpoint


def test_checkpoint_code_is_not_run_without_trust_remote_code(main, tmp_path, workspace, tiny_classifier):
    marker = tmp_path / "remote-code-ran"
    checkpoint = _remote_code_checkpoint(tiny_classifier, tmp_path, marker)
    out = tmp_path / "out"
    result = _run(main, checkpoint, workspace, out)
    assert result.returncode == 2, result.stderr
    assert "--trust-remote-code" in result.stderr and str(checkpoint) in result.stderr
    assert "modeling_evil.py" in result.stderr
    assert "Traceback" not in result.stderr
    assert not marker.exists()
    assert not (out / "results.json").exists()


def test_trust_remote_code_runs_the_checkpoint_code_when_asked(main, tmp_path, workspace, tiny_classifier):
    """The opt-in works: the same checkpoint's code runs (and the run completes) with the flag."""
    marker = tmp_path / "remote-code-ran"
    checkpoint = _remote_code_checkpoint(tiny_classifier, tmp_path, marker)
    result = _run(main, checkpoint, workspace, tmp_path / "out", "--trust-remote-code")
    assert result.returncode == 0, result.stderr
    assert marker.exists()


class _Payload:
    """Unpickling this calls ``Path.write_text`` (a stand-in for ``os.system``)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "executed"))


def test_pickled_weights_with_a_payload_are_refused_not_executed(main, tmp_path, workspace, tiny_classifier):
    marker = tmp_path / "pickle-ran"
    checkpoint = tmp_path / "pickled"
    shutil.copytree(tiny_classifier, checkpoint)
    (checkpoint / "model.safetensors").unlink()
    import zipfile

    # torch.save's zip layout with a hostile data.pkl: what torch.load(weights_only=False) would run.
    with zipfile.ZipFile(checkpoint / "pytorch_model.bin", "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps(_Payload(marker), protocol=2))
        archive.writestr("archive/version", "3\n")
        archive.writestr("archive/byteorder", "little")
    assert not marker.exists()
    out = tmp_path / "out"
    result = _run(main, checkpoint, workspace, out)
    assert result.returncode == 2, result.stderr
    assert str(checkpoint) in result.stderr and "Traceback" not in result.stderr
    assert not marker.exists()
    assert not (out / "results.json").exists()


def test_plain_pickle_weights_are_refused_not_executed(main, tmp_path, workspace, tiny_classifier):
    """The legacy (non-zip) pickle format too."""
    marker = tmp_path / "pickle-ran"
    checkpoint = tmp_path / "legacy"
    shutil.copytree(tiny_classifier, checkpoint)
    (checkpoint / "model.safetensors").unlink()
    (checkpoint / "pytorch_model.bin").write_bytes(pickle.dumps(_Payload(marker), protocol=2))
    result = _run(main, checkpoint, workspace, tmp_path / "out")
    assert result.returncode == 2, result.stderr
    assert not marker.exists()


def test_safetensors_is_preferred_over_pickled_weights(main, tmp_path, workspace, tiny_classifier):
    """With both files present the safetensors weights load and the pickle is never opened."""
    marker = tmp_path / "pickle-ran"
    checkpoint = tmp_path / "both"
    shutil.copytree(tiny_classifier, checkpoint)
    (checkpoint / "pytorch_model.bin").write_bytes(pickle.dumps(_Payload(marker), protocol=2))
    result = _run(main, checkpoint, workspace, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert not marker.exists()


# --- YAML --------------------------------------------------------------------------------

def _python_tag(marker: Path) -> str:
    return f"!!python/object/apply:pathlib.Path.write_text [{str(marker)!r}, 'executed']"


def test_python_tag_in_a_task_file_is_an_error_and_never_runs(main, tmp_path, workspace, tiny_classifier):
    marker = tmp_path / "yaml-ran"
    tasks, _ = workspace
    (tasks / "t.yaml").write_text(TASK + f"description: {_python_tag(marker)}\n", encoding="utf-8")
    result = _run(main, tiny_classifier, workspace, tmp_path / "out")
    assert result.returncode == 2 and str(tasks / "t.yaml") in result.stderr
    assert "python/object" in result.stderr and "Traceback" not in result.stderr
    assert not marker.exists()


def test_python_tag_in_a_gate_policy_is_an_error_and_never_runs(main, tmp_path):
    from tests.record_factory import metric, task, write_run

    marker = tmp_path / "yaml-ran"
    run = write_run(tmp_path / "run", model="m", tasks={"t": task({"accuracy": metric(70.0, n=4)}, n=4)})
    policy = tmp_path / "gates.yaml"
    policy.write_text(f"rules:\n  - task: t\n    metric: accuracy\n    min: {_python_tag(marker)}\n", encoding="utf-8")
    result = main("gate", "--candidate", str(run), "--policy", str(policy))
    assert result.returncode == 2 and str(policy) in result.stderr
    assert "python/object" in result.stderr and "Traceback" not in result.stderr
    assert not marker.exists()


def test_python_tag_in_a_leaderboard_definition_and_label_map_never_runs(main, tmp_path, workspace, tiny_classifier):
    marker = tmp_path / "yaml-ran"
    definition = tmp_path / "board.yaml"
    definition.write_text(f"title: {_python_tag(marker)}\nruns: [runs]\n", encoding="utf-8")
    result = main("leaderboard", "--definition", str(definition))
    assert result.returncode == 2 and str(definition) in result.stderr and "Traceback" not in result.stderr
    label_map = tmp_path / "labels.yaml"
    label_map.write_text(f"LABEL_0: {_python_tag(marker)}\n", encoding="utf-8")
    result = _run(main, tiny_classifier, workspace, tmp_path / "out", "--label-map", str(label_map))
    assert result.returncode == 2 and str(label_map) in result.stderr and "Traceback" not in result.stderr
    assert not marker.exists()


# --- where files are written ---------------------------------------------------------------

def test_model_name_cannot_steer_the_default_run_directory_out_of_runs(main, tmp_path, workspace, tiny_classifier, monkeypatch):
    """``--model ckpt/sub/..`` names the checkpoint '..'; the default run directory must stay
    below ./runs (it used to be runs/../TIMESTAMP)."""
    (tiny_classifier / "sub").mkdir(exist_ok=True)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    tasks, data = workspace
    result = main("run", "--model", f"{tiny_classifier}/sub/..", "--tasks", "t", "--tasks-dir", str(tasks),
                  "--data-dir", str(data), "--device", "cpu")
    assert result.returncode == 0, result.stderr
    written = [p for p in cwd.rglob("results.json")]
    assert len(written) == 1 and written[0].relative_to(cwd).parts[:2] == ("runs", tiny_classifier.name)
    record = json.loads(written[0].read_text())
    assert record["model"]["name"] == tiny_classifier.name


def test_hand_edited_samples_path_cannot_read_outside_the_run(tmp_path):
    from evalharness.errors import RecordError
    from evalharness.records.record import read_samples
    from tests.record_factory import metric, task, write_run

    run = write_run(tmp_path / "run", model="m", tasks={"t": task({"accuracy": metric(70.0, n=1)}, n=1)})
    record = json.loads((run / "results.json").read_text())
    record["tasks"]["t"]["samples"] = "/etc/passwd"
    (run / "results.json").write_text(json.dumps(record))
    with pytest.raises(RecordError, match="outside the run directory"):
        read_samples(run, "t")


# --- HTML built from a real run on hostile data -------------------------------------------

XSS_TEXT = "<script>alert('data')</script><img src=x onerror=\"alert('img')\">"
XSS_TASK = "evil-task"  # task names are portable path segments (issue 14), so markup cannot be one


@pytest.mark.browser
def test_report_and_site_from_a_real_run_on_hostile_data_show_it_as_text(main, tmp_path, tiny_classifier):
    from tests.test_browser import CHROMIUM, Visit  # noqa: F401 - reuses the browser helpers

    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found")
    tasks, data = tmp_path / "tasks", tmp_path / "data"
    tasks.mkdir()
    data.mkdir()
    (tasks / f"{XSS_TASK}.yaml").write_text(TASK, encoding="utf-8")
    (data / "d.tsv").write_text(f"sentence\tlabel\n{XSS_TEXT}\tpositive\nfine\tnegative\n", encoding="utf-8")
    model = tmp_path / "<svg onload=alert('model')>"
    shutil.copytree(tiny_classifier, model)
    run = tmp_path / "run"
    result = main("run", "--model", str(model), "--tasks", XSS_TASK, "--tasks-dir", str(tasks), "--data-dir", str(data),
                  "--output", str(run), "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert main("report", str(run), "--output", str(tmp_path / "report.html")).returncode == 0
    assert main("leaderboard", str(run), "--site", str(tmp_path / "site")).returncode == 0
    pages = [tmp_path / "report.html", *sorted((tmp_path / "site").rglob("*.html"))]
    for page_path in pages:
        assert "<script>alert(" not in page_path.read_text(encoding="utf-8")
    manager = sync_api.sync_playwright().start()
    try:
        from tests.test_browser import ARGS

        browser = manager.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    except Exception as exc:
        manager.stop()
        pytest.skip(f"chromium cannot be launched ({str(exc).splitlines()[0]})")
    try:
        for page_path in pages:
            dialogs: list[str] = []
            page = browser.new_page(bypass_csp=True)  # escaping alone must keep it inert
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(page_path.resolve().as_uri())
            page.wait_for_load_state("load")
            page.wait_for_timeout(200)
            assert dialogs == [], (page_path, dialogs)
            body = page.text_content("body") or ""
            if page_path.name == "report.html":
                assert XSS_TEXT in page.content() or "alert('data')" in body
                assert "<svg onload=alert('model')>" in body and XSS_TASK in body
            page.close()
    finally:
        browser.close()
        manager.stop()
