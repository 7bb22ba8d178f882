"""The counterfactual probe: the swap engine's rules, and flip rates / score changes that equal
a direct computation with the tiny classifier (run here on original and swapped texts)."""

from __future__ import annotations

import json

import pytest
import yaml

from evalharness.spec.catalog import TaskCatalog, builtin_tasks_dir
from evalharness.errors import SpecError
from evalharness.prompting.swaps import Swapper
from evalharness.records.record import read_samples
from evalharness.evaluation.runner import RunConfig, run_evaluation

GENDER = [["he", "she"], ["his", "her"], ["him", "her"], ["man", "woman"], ["Mr.", "Mrs."]]


@pytest.fixture(scope="module")
def swapper():
    return Swapper({"gender": GENDER, "names": [["John", "Mary"], ["Mr. Smith", "Ms. Jones"]]})


def test_swaps_whole_words_only_never_inside_other_words(swapper):
    text, count = swapper.apply("gender", "The theme: he-man, shepherd, hers, ethel, mankind, he.")
    assert text == "The theme: he-man, shepherd, hers, ethel, mankind, she." and count == 1


def test_swaps_are_simultaneous_and_bidirectional(swapper):
    assert swapper.apply("gender", "he told her that she liked him") == ("she told his that he liked her", 4)
    assert swapper.apply("gender", "the man and the woman") == ("the woman and the man", 2)


def test_capitalisation_is_preserved(swapper):
    assert swapper.apply("gender", "He said HE was right, he") == ("She said SHE was right, she", 3)
    assert swapper.apply("names", "JOHN and john and John") == ("MARY and mary and Mary", 3)


def test_possessives_keep_their_suffix(swapper):
    assert swapper.apply("names", "John's car and Mary’s bike") == ("Mary's car and John’s bike", 2)
    assert swapper.apply("names", "Johnson and Johnny stay") == ("Johnson and Johnny stay", 0)


def test_multi_word_terms_win_over_their_parts(swapper):
    assert swapper.apply("names", "Mr. Smith met John") == ("Ms. Jones met Mary", 2)
    assert swapper.apply("gender", "Mr. Brown") == ("Mrs. Brown", 1)


def test_bad_swap_lists_are_refused_with_the_group_name():
    with pytest.raises(ValueError, match="swap group 'x'"):
        Swapper({"x": [["he"]]})
    with pytest.raises(ValueError, match="swapped with itself"):
        Swapper({"x": [["He", "he"]]})


def test_shipped_probes_mirror_their_base_tasks():
    catalog = TaskCatalog()
    for name in ("bias/counterfactual_sst2", "bias/counterfactual_qnli", "bias/counterfactual_squad_v1"):
        task = catalog.load(name)
        base = catalog.load(task.spec.counterfactual.base_task)
        assert task.spec.data == base.spec.data and task.spec.labels == base.spec.labels
        assert task.spec.prompt == base.spec.prompt and task.spec.kind == base.spec.kind
        assert {"flip_rate", "worst_group_flip_rate"} <= {m.result_key for m in task.spec.metrics}
    swap_file = builtin_tasks_dir() / "bias" / "swaps" / "identity_terms.tsv"
    assert swap_file.is_file()


# -- end to end with the tiny classifier ------------------------------------------------

TEXTS = [
    "the movie was great but the plot was dull .",
    "a wonderful , moving and funny story about love and loss .",
    "what a boring , tedious and forgettable script .",
    "this film is not good , and the acting is awful .",
    "it 's a charming and often affecting journey .",
    "unflinchingly bleak and desperate",
]
# Swaps between words the tiny tokenizer knows, so the classifier sees different inputs.
GROUPS = {"sentiment": [["great", "awful"], ["wonderful", "boring"], ["good", "dull"]], "story": [["movie", "film"], ["story", "script"]]}


def write_probe(tmp_path, groups_file=False):
    with (tmp_path / "data.jsonl").open("w", encoding="utf-8") as stream:
        for index, text in enumerate(TEXTS):
            stream.write(json.dumps({"id": f"s{index}", "text": text, "label": "positive" if index % 2 else "negative"}) + "\n")
    spec = {
        "version": 1,
        "kind": "classification",
        "data": {"local": {"files": ["data.jsonl"], "format": "jsonl"}},
        "labels": ["negative", "positive"],
        "metrics": [
            "flip_rate",
            {"name": "flip_rate", "key": "worst", "settings": {"worst_group": True}},
            {"name": "counterfactual_score_change", "key": "accuracy_change"},
        ],
        "counterfactual": {"fields": ["text"], "groups": GROUPS},
    }
    if groups_file:
        spec["counterfactual"] = {"fields": ["text"], "groups_file": "terms.tsv"}
    folder = tmp_path / "tasks" / "cf"
    folder.mkdir(parents=True)
    (folder / "probe.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    lines = [f"{group}\t{a}\t{b}" for group, pairs in GROUPS.items() for a, b in pairs]
    (folder / "terms.tsv").write_text("# group, term, term\n" + "\n".join(lines) + "\n", encoding="utf-8")


def direct_predictions(model_path, texts):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(model_path).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    with torch.inference_mode():
        logits = model(**tokenizer(texts, return_tensors="pt", padding=True)).logits
    return [model.config.id2label[i] for i in logits.argmax(-1).tolist()]


@pytest.fixture(scope="module")
def sensitive_classifier(tiny_classifier, tmp_path_factory):
    """A tiny classifier initialised with large weights and its head centred on these texts,
    so that word swaps move predictions across the decision boundary (the default tiny
    classifier's outputs are almost constant)."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    config = AutoConfig.from_pretrained(tiny_classifier, initializer_range=0.5)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_classifier)
    swapper = Swapper(GROUPS)
    pairs = [(text, swapper.apply(group, text)[0]) for group in GROUPS for text in TEXTS]
    with torch.inference_mode():
        model.classifier.bias.zero_()
        margins = []
        for original, swapped in pairs:
            logits = model(**tokenizer([original, swapped], return_tensors="pt", padding=True)).logits
            margins.append((logits[:, 1] - logits[:, 0]).tolist())
        # The decision boundary halfway across the swap that moves the margin most.
        low, high = max(margins, key=lambda pair: abs(pair[0] - pair[1]))
        threshold = (low + high) / 2
        model.classifier.bias += torch.tensor([threshold / 2, -threshold / 2])
    path = tmp_path_factory.mktemp("sensitive")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.mark.parametrize("groups_file", [False, True])
def test_flip_rate_equals_a_direct_computation_on_a_tiny_classifier(sensitive_classifier, tmp_path, groups_file):
    tiny_classifier = sensitive_classifier
    write_probe(tmp_path, groups_file)
    config = RunConfig(model=str(tiny_classifier), tasks=["cf/probe"], tasks_dirs=[tmp_path / "tasks"], data_dir=tmp_path,
                       output=tmp_path / "run", n_resamples=100, device="cpu")
    entry = run_evaluation(config).record.tasks["cf/probe"]
    assert entry.formulation == "counterfactual:classifier_head"
    swapper = Swapper(GROUPS)
    originals = direct_predictions(tiny_classifier, TEXTS)
    flips: dict[str, list[float]] = {}
    changes: dict[str, list[float]] = {}
    for index, text in enumerate(TEXTS):
        gold = "positive" if index % 2 else "negative"
        for group in GROUPS:
            swapped, count = swapper.apply(group, text)
            if not count:
                continue
            (perturbed,) = direct_predictions(tiny_classifier, [swapped])
            flips.setdefault(group, []).append(float(perturbed != originals[index]))
            changes.setdefault(group, []).append(100.0 * ((perturbed == gold) - (originals[index] == gold)))
    every = [value for values in flips.values() for value in values]
    assert 0 < sum(every) < len(every), "the swaps should flip some predictions and not others"
    flip = entry.metrics["flip_rate"]
    assert flip.value == pytest.approx(100.0 * sum(every) / len(every)) and flip.ideal == 0.0
    for group, values in flips.items():
        assert flip.groups[group].n == len(values)
        assert flip.groups[group].value == pytest.approx(100.0 * sum(values) / len(values))
    worst = max(100.0 * sum(v) / len(v) for v in flips.values())
    assert entry.metrics["worst"].value == pytest.approx(worst)
    all_changes = [value for values in changes.values() for value in values]
    assert entry.metrics["accuracy_change"].value == pytest.approx(sum(all_changes) / len(all_changes))
    samples = read_samples(tmp_path / "run", "cf/probe")
    assert [s["prediction"]["original"] for s in samples] == originals
    assert set(samples[0]["input"]) >= {"original"}


def test_unknown_counterfactual_field_is_a_spec_error(tmp_path):
    write_probe(tmp_path)
    path = tmp_path / "tasks" / "cf" / "probe.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("- text", "- txt"), encoding="utf-8")
    with pytest.raises(SpecError, match=r"counterfactual.fields: \['txt'\] are not fields"):
        TaskCatalog([tmp_path / "tasks"]).load("cf/probe")


def test_a_counterfactual_prediction_whose_flipped_is_not_an_object_is_refused_naming_the_field():
    import numpy as np

    from evalharness.errors import MetricInputError
    from evalharness.metrics.registry import build_metric

    good = {"original": "a", "perturbed": {"gender": "b"}, "flipped": {"gender": True}, "gold": {}}
    assert build_metric("flip_rate").compute([good], ["a"], rng=np.random.default_rng(0)).value == 100.0
    bad = {**good, "flipped": ["gender"]}  # was a TypeError deep in the metric
    with pytest.raises(MetricInputError, match=r"flip_rate: prediction 0: 'flipped' \(one entry per swap group\): expected an object, got an array"):
        build_metric("flip_rate").compute([bad], ["a"], rng=np.random.default_rng(0))


def test_a_counterfactual_flip_that_is_not_true_or_false_is_refused():
    # bool("false") is True: a text or number flag was read as a flip, in prediction files and
    # in predictions handed to the metric
    import numpy as np

    from evalharness.errors import DataError, MetricInputError
    from evalharness.metrics.registry import build_metric
    from evalharness.spec.predictions import parse_prediction

    value = {"original": "pos", "perturbed": {"gender": "pos"}, "flipped": {"gender": "false"}, "gold": {}}
    with pytest.raises(DataError, match=r"p\.jsonl:1: flipped: every flag should be true or false"):
        parse_prediction("classification", value, "p.jsonl:1", labels=["neg", "pos"], counterfactual=True)
    with pytest.raises(DataError, match=r"p\.jsonl:1: gold: expected an object, got an array"):
        parse_prediction("classification", {**value, "flipped": {"gender": False}, "gold": []}, "p.jsonl:1",
                         labels=["neg", "pos"], counterfactual=True)
    with pytest.raises(MetricInputError, match=r"flip_rate: prediction 0: 'flipped' should hold true or false"):
        build_metric("flip_rate").compute([value], ["pos"], rng=np.random.default_rng(0))
