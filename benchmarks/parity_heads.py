"""Parity of the fine-tuned-head adapters with the transformers and evaluate references.

On the same local checkpoints and real data from ``../shared/data``:

1. SST-2 dev (872 sentences): ``evalharness run glue/sst2`` predictions and accuracy against
   transformers' ``text-classification`` pipeline and ``evaluate``'s text-classification
   evaluator (driven with a local accuracy module, ``evaluate_metrics/accuracy``, so nothing
   comes from the Hub; ``Evaluator.compute`` itself fails on transformers 5, so its steps
   are run one by one).
2. SQuAD v1.1 and v2.0 dev paragraphs: the ``span_head`` answers of ``evalharness run``
   against transformers' ``question-answering`` pipeline with the same settings
   (``handle_impossible_answer`` for v2.0; the pipeline keeps ``top_k * 2 + 10`` = 12
   candidates per window, hence ``n_best: 12``). transformers removed that pipeline in 5.3, so
   it runs in a second environment with transformers 5.2.0 (``--qa-reference-python``)::

       python -m venv /tmp/qa-ref
       /work/main/.venv/bin/python -c "import site; print(site.getsitepackages()[0])" \\
           > /tmp/qa-ref/lib/python3.11/site-packages/main-venv.pth   # torch, numpy...
       /tmp/qa-ref/bin/pip install "transformers==5.2.0" "huggingface_hub>=1.3,<2" "tokenizers==0.22.2"

Checkpoints are local: by default a tiny BERT classifier fine-tuned for a few hundred steps on
SST-2 train and a tiny random BERT QA head (``evalharness.testing.tiny``), built under ``--work``;
``--classifier`` / ``--qa-model`` take real checkpoint directories instead. Timings compare
inference only (the adapter call against the pipeline call) on this machine, in one run.

    python benchmarks/parity_heads.py --data-dir ../shared/data --qa-reference-python /tmp/qa-ref/bin/python --write
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from evalharness.records.record import read_samples  # noqa: E402
from evalharness.evaluation.runner import RunConfig, run_evaluation  # noqa: E402

MARK_START, MARK_END = "<!-- parity_heads:start -->", "<!-- parity_heads:end -->"
SQUAD = {
    "v1.1": "squad/dev_reconstructed_from_explorer_html/dev-v1.1.from_explorer_html.json",
    "v2.0": "squad/dev_reconstructed_from_explorer_html/dev-v2.0.from_explorer_html.json",
}


def read_sst2(data_dir: Path, split: str) -> list[tuple[str, int]]:
    lines = (data_dir / "glue" / "SST-2" / f"{split}.tsv").read_text(encoding="utf-8").splitlines()[1:]
    return [(sentence, int(label)) for sentence, label in (line.split("\t") for line in lines)]


def train_classifier(work: Path, data_dir: Path, steps: int) -> Path:
    """A tiny BERT classifier fine-tuned on SST-2 train (AdamW, batch 32), so that its
    predictions are not one constant label."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from evalharness.testing.tiny import build_classifier, build_frequency_wordpiece_tokenizer

    rows = read_sst2(data_dir, "train")
    tokenizer = build_frequency_wordpiece_tokenizer([sentence for sentence, _ in rows], vocab_size=4000)
    directory = build_classifier(work / "sst2-classifier", tokenizer, ["negative", "positive"], seed=0, hidden=64)
    model = AutoModelForSequenceClassification.from_pretrained(directory)
    generator = torch.Generator().manual_seed(0)
    optimiser = torch.optim.AdamW(model.parameters(), lr=5e-4)
    model.train()
    for _ in range(steps):
        batch = torch.randint(len(rows), (32,), generator=generator).tolist()
        encoded = tokenizer([rows[i][0] for i in batch], padding=True, truncation=True, return_tensors="pt")
        loss = model(**encoded, labels=torch.tensor([rows[i][1] for i in batch])).loss
        loss.backward()
        optimiser.step()
        optimiser.zero_grad()
    model.eval()
    model.save_pretrained(directory)
    return directory


def classifier_parity(classifier: Path, data_dir: Path, work: Path) -> dict:
    import evaluate
    from datasets import Dataset
    from transformers import pipeline

    from evalharness.models import load_model

    run = run_evaluation(
        RunConfig(model=str(classifier), tasks=["glue/sst2"], data_dir=data_dir, output=work / "run-sst2", batch_size=64)
    )
    samples = read_samples(run.run_dir, "glue/sst2")
    ours = [row["prediction"] for row in samples]
    sentences = [row["input"] for row in samples]
    gold = [row["gold"] for row in samples]
    adapter = load_model(str(classifier))
    started = time.perf_counter()
    adapter.classify(sentences, batch_size=64)
    ours_seconds = time.perf_counter() - started

    pipe = pipeline("text-classification", model=str(classifier), tokenizer=str(classifier), device=-1)
    started = time.perf_counter()
    piped = [out["label"] for out in pipe(sentences, batch_size=64, truncation=True)]
    pipe_seconds = time.perf_counter() - started

    # evaluate 0.4.6's Evaluator.compute checks isinstance(..., transformers.TFPreTrainedModel),
    # which transformers 5 no longer has; run compute's other steps as it does, on our pipeline.
    label_ids = {"negative": 0, "positive": 1}
    evaluator = evaluate.evaluator("text-classification")
    metric = evaluate.load(str(HERE / "evaluate_metrics" / "accuracy"))
    data = Dataset.from_dict({"sentence": sentences, "label": [label_ids[g] for g in gold]})
    metric_inputs, pipe_inputs = evaluator.prepare_data(data, input_column="sentence", second_input_column=None, label_column="label")
    outputs, _ = evaluator.call_pipeline(pipe, pipe_inputs)
    evaluator_predictions = evaluator.predictions_processor(outputs, label_ids)
    metric_inputs.update(evaluator_predictions)
    evaluated = evaluator.compute_metric(metric=metric, metric_inputs=metric_inputs, strategy="simple")
    evaluator_predictions = evaluator_predictions["predictions"]
    return {
        "n": len(samples),
        "accuracy": run.record.tasks["glue/sst2"].metrics["accuracy"].value,
        "pipeline_accuracy": 100 * sum(p == g for p, g in zip(piped, gold)) / len(gold),
        "evaluate_accuracy": 100 * evaluated["accuracy"],
        "pipeline_disagreements": sum(a != b for a, b in zip(ours, piped)),
        "evaluate_disagreements": sum(label_ids[a] != b for a, b in zip(ours, evaluator_predictions)),
        "ours_seconds": ours_seconds,
        "pipeline_seconds": pipe_seconds,
    }


def squad_rows(data_dir: Path, version: str, paragraphs: int) -> list[dict]:
    document = json.loads((data_dir / SQUAD[version]).read_text(encoding="utf-8"))
    rows: list[dict] = []
    chosen = [(article, p) for article in document["data"] for p in article["paragraphs"]][:paragraphs]
    for article, paragraph in chosen:
        for qa in paragraph["qas"]:
            rows.append(
                {"id": qa["id"], "title": article["title"], "question": qa["question"],
                 "context": paragraph["context"], "answers": [a["text"] for a in qa["answers"]]}
            )
    return rows


def build_qa_head(work: Path, data_dir: Path) -> Path:
    from evalharness.testing.tiny import build_frequency_wordpiece_tokenizer, build_qa_model

    corpus = [row["context"] for row in squad_rows(data_dir, "v2.0", 400)]
    corpus += [row["question"] for row in squad_rows(data_dir, "v1.1", 400)]
    tokenizer = build_frequency_wordpiece_tokenizer(corpus, vocab_size=4000)
    # null_boost 0.05 makes this head abstain on about a quarter of SQuAD v2.0 questions.
    return build_qa_model(work / "squad-qa-head", tokenizer, seed=0, hidden=64, null_boost=0.05)


def qa_parity(qa_model: Path, data_dir: Path, work: Path, version: str, paragraphs: int, reference_python: str) -> dict:
    from evalharness.models import load_model

    rows = squad_rows(data_dir, version, paragraphs)
    impossible = version == "v2.0"
    folder = work / f"squad-{version}"
    (folder / "tasks").mkdir(parents=True, exist_ok=True)
    with (folder / "dev.jsonl").open("w", encoding="utf-8") as stream:
        stream.writelines(json.dumps(row) + "\n" for row in rows)
    (folder / "tasks" / "squad_parity.yaml").write_text(
        "version: 1\nkind: extractive_qa\ndata: {local: {files: [dev.jsonl], format: jsonl}}\nmetrics: [accuracy]\n"
        f"formulations: {{span_head: {{n_best: 12, allow_no_answer: {str(impossible).lower()}}}}}\n",
        encoding="utf-8",
    )
    run = run_evaluation(
        RunConfig(model=str(qa_model), tasks=["squad_parity"], tasks_dirs=[folder / "tasks"], data_dir=folder,
                  output=folder / "run", batch_size=32)
    )
    samples = read_samples(run.run_dir, "squad_parity")
    adapter = load_model(str(qa_model))
    started = time.perf_counter()
    direct = adapter.answer([(r["question"], r["context"]) for r in rows], batch_size=32, n_best=12, allow_no_answer=impossible)
    ours_seconds = time.perf_counter() - started

    request = {"model": str(qa_model), "settings": {"handle_impossible_answer": impossible}, "rows": rows}
    (folder / "request.json").write_text(json.dumps(request), encoding="utf-8")
    subprocess.run(
        [reference_python, str(HERE / "qa_pipeline_reference.py"), str(folder / "request.json"), str(folder / "answers.json")],
        check=True, env={**os.environ, "PYTHONPATH": ""},
    )
    reference = json.loads((folder / "answers.json").read_text(encoding="utf-8"))
    ours = [row["prediction"]["text"] for row in samples]
    theirs = [a["answer"] for a in reference["answers"]]
    starts_differ = sum(
        d.start != a["start"] for d, a in zip(direct, reference["answers"]) if d.text and a["answer"]
    )
    scored = [abs(d.score - a["score"]) / max(abs(a["score"]), 1e-12) for d, a in zip(direct, reference["answers"])]
    return {
        "version": version,
        "n": len(rows),
        "paragraphs": paragraphs,
        "reference_transformers": reference["transformers"],
        "text_disagreements": sum(a != b for a, b in zip(ours, theirs)),
        "runner_vs_direct": sum(a != d.text for a, d in zip(ours, direct)),
        "start_disagreements": starts_differ,
        "max_relative_score_difference": max(scored),
        "no_answer_ours": sum(text == "" for text in ours),
        "no_answer_pipeline": sum(text == "" for text in theirs),
        "ours_seconds": ours_seconds,
        "pipeline_seconds": reference["seconds"],
    }


def markdown(classification: dict, squad: list[dict], environment: dict) -> str:
    c = classification
    lines = [
        MARK_START,
        "## Fine-tuned heads: classifier and extractive-QA adapters (`benchmarks/parity_heads.py`)",
        "",
        f"Run {environment['date']} on {environment['machine']}; evalharness with transformers "
        f"{environment['transformers']}, evaluate {environment['evaluate']}, torch {environment['torch']}. "
        "Checkpoints: " + environment["checkpoints"] + ". Data: `glue/SST-2/dev.tsv` and the first "
        "paragraphs of the reconstructed SQuAD dev sets in `../shared/data`.",
        "",
        "### GLUE SST-2 dev: `evalharness run glue/sst2` vs transformers `text-classification` pipeline vs `evaluate` evaluator",
        "",
        "| | examples | accuracy | predictions differing from evalharness | inference s |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| evalharness | {c['n']} | {c['accuracy']:.3f} | - | {c['ours_seconds']:.2f} |",
        f"| transformers pipeline | {c['n']} | {c['pipeline_accuracy']:.3f} | {c['pipeline_disagreements']} | {c['pipeline_seconds']:.2f} |",
        f"| evaluate evaluator (local accuracy module) | {c['n']} | {c['evaluate_accuracy']:.3f} | {c['evaluate_disagreements']} | - |",
        "",
        "### SQuAD dev paragraphs: `span_head` vs transformers `question-answering` pipeline "
        f"(transformers {squad[0]['reference_transformers'] if squad else '-'}, same settings)",
        "",
        "| set | paragraphs | questions | answers differing | starts differing | max rel. score diff | no-answer (ours / pipeline) | inference s (ours / pipeline) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in squad:
        lines.append(
            f"| {s['version']} | {s['paragraphs']} | {s['n']} | {s['text_disagreements']} | {s['start_disagreements']} | "
            f"{s['max_relative_score_difference']:.1e} | {s['no_answer_ours']} / {s['no_answer_pipeline']} | "
            f"{s['ours_seconds']:.2f} / {s['pipeline_seconds']:.2f} |"
        )
    if not squad:
        lines.append("| (skipped: no --qa-reference-python with transformers<5.3) | | | | | | | |")
    lines += [
        "",
        "Settings: SST-2 batch size 64, truncation at the model limit. SQuAD: pipeline defaults "
        "(max_seq_len = min(model limit, 384), doc_stride = min(max_seq_len // 2, 128), max_answer_len 15, "
        "align_to_words) and `span_head` defaults (the same) with `n_best: 12`; v2.0 adds "
        "`handle_impossible_answer=True` / `allow_no_answer: true`. The pipeline runs one question per call "
        "(batch size 1), evalharness batches windows (32). Scores compared are the pipeline's summed "
        "probabilities; answers are compared as strings, starts as character offsets. transformers "
        "removed `QuestionAnsweringPipeline` in 5.3, so the reference runs under transformers 5.2.0 in a "
        "second environment (`--qa-reference-python`, set-up in the script's docstring). evaluate 0.4.6's "
        "`Evaluator.compute` fails on transformers 5 (it checks `transformers.TFPreTrainedModel`), so its "
        "steps (`prepare_data`, `call_pipeline`, `predictions_processor`, `compute_metric`) run one by one "
        "on the same pipeline. Timings are wall-clock seconds of inference on a machine shared with other "
        "jobs: indicative only.",
        MARK_END,
    ]
    return "\n".join(lines) + "\n"


def write_section(section: str) -> Path:
    path = HERE / "PARITY.md"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Parity with reference implementations\n\n"
    if MARK_START in text and MARK_END in text:
        before, rest = text.split(MARK_START, 1)
        text = before + section.rstrip("\n") + rest.split(MARK_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text, encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    import platform
    from datetime import date

    import evaluate
    import torch
    import transformers

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("EVALHARNESS_DATA_DIR", HERE.parent.parent / "shared" / "data")))
    parser.add_argument("--work", type=Path, help="where checkpoints and runs go (default: a temporary folder)")
    parser.add_argument("--classifier", type=Path, help="a local sequence-classifier checkpoint (labels negative/positive)")
    parser.add_argument("--qa-model", type=Path, help="a local extractive-QA checkpoint")
    parser.add_argument("--qa-reference-python", help="a Python with transformers<5.3 (QuestionAnsweringPipeline)")
    parser.add_argument("--squad-paragraphs", type=int, default=30)
    parser.add_argument("--train-steps", type=int, default=600)
    parser.add_argument("--write", action="store_true", help="write the section into benchmarks/PARITY.md")
    args = parser.parse_args(argv)

    from evalharness.models.loading import quiet_transformers

    quiet_transformers()
    work = args.work or Path(tempfile.mkdtemp(prefix="parity-heads-"))
    work.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    classifier = args.classifier or train_classifier(work, args.data_dir, args.train_steps)
    qa_model = args.qa_model or build_qa_head(work, args.data_dir)
    classification = classifier_parity(classifier, args.data_dir, work)
    print(json.dumps(classification, indent=2))
    squad = []
    if args.qa_reference_python:
        for version in SQUAD:
            squad.append(qa_parity(qa_model, args.data_dir, work, version, args.squad_paragraphs, args.qa_reference_python))
            print(json.dumps(squad[-1], indent=2))
    checkpoints = (
        (f"`{args.classifier}`" if args.classifier else f"tiny BERT classifier (hidden 64) fine-tuned {args.train_steps} steps on SST-2 train")
        + "; "
        + (f"`{args.qa_model}`" if args.qa_model else "tiny random BERT QA head (hidden 64, `evalharness.testing.tiny.build_qa_model`, WordPiece trained on SQuAD dev text)")
    )
    environment = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}",
        "transformers": transformers.__version__,
        "evaluate": evaluate.__version__,
        "torch": torch.__version__,
        "checkpoints": checkpoints,
    }
    section = markdown(classification, squad, environment)
    print(section)
    if args.write:
        print(f"written to {write_section(section)}")
    failed = classification["pipeline_disagreements"] or classification["evaluate_disagreements"] or any(
        s["text_disagreements"] for s in squad
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
