"""``evalharness demo``: the whole pipeline offline in about a minute on a laptop CPU.

It generates a small synthetic sentiment dataset (with negations and contrastive clauses so
the task is not trivial), trains two tiny BERT classifiers on it for a few seconds each (a
weaker "baseline" and a stronger "candidate"), and evaluates both through the same code
path as ``evalharness run`` on the built-in ``demo/sentiment`` task. Finally it gates the
candidate against the baseline with ``DEMO_POLICY``, as a CI job would.
"""

from __future__ import annotations

import random
from pathlib import Path

from evalharness.evaluation.runner import RunConfig, RunResult, run_evaluation

__all__ = ["DEMO_POLICY", "gate_demo", "generate_sentiment_data", "run_demo", "train_demo_classifier"]

SUBJECTS = ["the movie", "this film", "the plot", "the acting", "the soundtrack", "the ending", "the script", "the cast"]
POSITIVE = ["great", "wonderful", "charming", "brilliant", "moving", "delightful", "superb", "funny"]
NEGATIVE = ["dull", "boring", "awful", "clumsy", "tedious", "bland", "painful", "forgettable"]
ADVERBS = ["really", "quite", "truly", "rather", "very"]
LABELS = ["negative", "positive"]


def _sentence(rng: random.Random, noise: float) -> tuple[str, str]:
    positive = rng.random() < 0.5
    adjective = rng.choice(POSITIVE if positive else NEGATIVE)
    subject = rng.choice(SUBJECTS)
    form = rng.randrange(5)
    if form == 0:
        text = f"{subject} was {adjective}"
    elif form == 1:
        text = f"{subject} is {rng.choice(ADVERBS)} {adjective}"
    elif form == 2:  # negation flips the label
        text, positive = f"{subject} was not {adjective}", not positive
    elif form == 3:
        text = f"i thought {subject} was {adjective}"
    else:  # the clause after "but" decides
        other = rng.choice(NEGATIVE if positive else POSITIVE)
        text = f"{rng.choice(SUBJECTS)} was {other} but {subject} was {adjective}"
    if rng.random() < noise:  # annotator noise: no model can reach 100%
        positive = not positive
    return text + " .", LABELS[int(positive)]


def generate_sentiment_data(
    directory: Path, *, n_train: int = 2000, n_test: int = 500, noise: float = 0.04, seed: int = 0
) -> Path:
    """Write ``train.tsv`` and ``test.tsv`` (sentence, label) under ``directory``.

    A share ``noise`` of labels is flipped, as annotation noise would.
    """
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for split, size in (("train", n_train), ("test", n_test)):
        rows = [_sentence(rng, noise) for _ in range(size)]
        body = "".join(f"{text}\t{label}\n" for text, label in rows)
        (directory / f"{split}.tsv").write_text("sentence\tlabel\n" + body, encoding="utf-8")
    return directory


def _read_tsv(path: Path) -> list[tuple[str, str]]:
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    return [(text, label) for text, label in (line.split("\t") for line in lines)]  # generate_sentiment_data wrote text<TAB>label


def train_demo_classifier(directory: Path, train_file: Path, *, steps: int, seed: int) -> Path:
    """A tiny BERT classifier fine-tuned for ``steps`` AdamW steps (seconds on a CPU)."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from evalharness.testing.tiny import build_classifier, build_wordpiece_tokenizer

    rows = _read_tsv(train_file)
    tokenizer = build_wordpiece_tokenizer(text for text, _ in rows)
    build_classifier(directory, tokenizer, LABELS, seed=seed, hidden=64, layers=2)
    model = AutoModelForSequenceClassification.from_pretrained(directory)
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.AdamW(model.parameters(), lr=2e-3)
    model.train()
    for _ in range(steps):
        batch = torch.randint(len(rows), (32,), generator=generator).tolist()
        encoded = tokenizer([rows[i][0] for i in batch], padding=True, return_tensors="pt")
        labels = torch.tensor([LABELS.index(rows[i][1]) for i in batch])
        loss = model(**encoded, labels=labels).loss
        loss.backward()
        optimiser.step()
        optimiser.zero_grad()
    model.eval()
    model.save_pretrained(directory)
    return directory


DEMO_POLICY = """\
# The release gate of `evalharness demo` (see docs/ci.md): the candidate must reach 70%
# accuracy and may not lose more than 1 point against the baseline, where a drop only
# fails the gate when the paired test (McNemar's exact test for accuracy) finds it significant.
rules:
  - task: demo/sentiment
    metric: accuracy
    min: 70
    max_drop: 1.0
    significant: true
"""


def gate_demo(output: Path, *, print_results: bool = True) -> int:
    """Gate ``runs/candidate`` against ``runs/baseline`` under ``output``; writes the policy,
    JUnit XML and a Markdown summary next to the runs and returns the gate's exit code."""
    from evalharness.comparison.gate import evaluate_gate
    from evalharness.comparison.gate_report import print_gate, to_junit, to_markdown

    policy = output / "gates.yaml"
    policy.write_text(DEMO_POLICY, encoding="utf-8")
    report = evaluate_gate(policy, output / "runs" / "candidate", output / "runs" / "baseline")
    (output / "gate.xml").write_text(to_junit(report), encoding="utf-8")
    (output / "gate.md").write_text(to_markdown(report), encoding="utf-8")
    if print_results:
        print()
        print_gate(report)
        print(f"gate summary: {output / 'gate.md'}, JUnit: {output / 'gate.xml'}")
        print(f"compare the runs yourself: evalharness compare {output / 'runs' / 'baseline'} {output / 'runs' / 'candidate'}")
    return report.exit_code


def run_demo(output: Path, *, print_results: bool = True) -> dict[str, RunResult]:
    """Build data and models under ``output`` and evaluate them; returns the runs by name."""
    import torch

    from evalharness.commands.display import print_run
    from evalharness.report.demo import publish_demo

    torch.manual_seed(0)
    output = Path(output)
    data_dir = output / "data"
    generate_sentiment_data(data_dir / "demo" / "sentiment")
    models = {"baseline": 40, "candidate": 400}
    results: dict[str, RunResult] = {}
    for name, steps in models.items():
        checkpoint = train_demo_classifier(
            output / "models" / name, data_dir / "demo" / "sentiment" / "train.tsv", steps=steps, seed=1
        )
        config = RunConfig(model=str(checkpoint), tasks=["demo/sentiment"], data_dir=data_dir, output=output / "runs" / name)
        results[name] = run_evaluation(config)
        if print_results:
            print_run(results[name].record, results[name].run_dir)
    gate_demo(output, print_results=print_results)
    published = publish_demo(output, {name: result.run_dir for name, result in results.items()}, show=print_results)
    if print_results:
        print(f"\ndemo finished: models in {output / 'models'}, run records in {output / 'runs'}")
        print("\n".join(f"{label}: {path}" for label, path in published.items()))
    return results
