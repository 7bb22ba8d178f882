"""The lm-evaluation-harness half of ``parity_lm_eval.py``; runs in the peer's own venv.

Reads a request file written by ``parity_lm_eval.py``, builds lm-evaluation-harness's
``Instance`` objects with its own SST-2 prompt (``tasks/glue/sst2/default.yaml``), calls
``HFLM.loglikelihood`` and ``HFLM.loglikelihood_rolling`` directly, scores them with its own
metric code, and writes the numbers as JSON. It imports nothing from evalharness.

Usage: python lm_eval_side.py REQUESTS.json RESULTS.json
"""

from __future__ import annotations

import json
import sys
import time
from importlib.metadata import version
from pathlib import Path


def sst2_instances(rows: list[dict], task_config: dict) -> tuple[list, list[str]]:
    from lm_eval.api.instance import Instance
    from lm_eval.utils import apply_template

    instances, contexts = [], []
    for doc_id, row in enumerate(rows):
        context = apply_template(task_config["doc_to_text"], {"sentence": row["sentence"]})
        contexts.append(context)
        for choice in task_config["doc_to_choice"]:
            instances.append(
                Instance("loglikelihood", row, (context, " " + choice), idx=len(instances), metadata=("sst2", doc_id, 1))
            )
    return instances, contexts


def main(requests_path: str, results_path: str) -> None:
    import lm_eval
    import numpy as np
    import yaml
    from lm_eval.api.instance import Instance
    from lm_eval.api.metrics import bits_per_byte, weighted_perplexity
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks.wikitext.preprocess_wikitext import process_results

    request = json.loads(Path(requests_path).read_text(encoding="utf-8"))
    task_config = yaml.safe_load((Path(lm_eval.__file__).parent / "tasks/glue/sst2/default.yaml").read_text())
    model = HFLM(
        pretrained=request["model"],
        backend="causal",
        device="cpu",
        dtype="float32",
        batch_size=request["batch_size"],
        max_length=request["max_length"],
    )

    instances, contexts = sst2_instances(request["sst2"], task_config)
    started = time.perf_counter()
    loglikelihoods = model.loglikelihood(instances, disable_tqdm=True)
    sst2_seconds = time.perf_counter() - started
    lls = np.array([value for value, _ in loglikelihoods]).reshape(len(contexts), -1)
    choices = task_config["doc_to_choice"]
    completion_len = np.array([float(len(choice)) for choice in choices])  # lm-eval's acc_norm
    golds = np.array([row["label"] for row in request["sst2"]])
    predictions = lls.argmax(axis=1)
    predictions_norm = (lls / completion_len).argmax(axis=1)

    documents = request["wikitext"]
    rolling = [Instance("loglikelihood_rolling", {"page": d}, (d,), idx=i) for i, d in enumerate(documents)]
    started = time.perf_counter()
    document_lls = model.loglikelihood_rolling(rolling, disable_tqdm=True)
    rolling_seconds = time.perf_counter() - started
    per_doc = [process_results({"page": d}, [ll]) for d, ll in zip(documents, document_lls)]

    results = {
        "lm_eval_version": version("lm_eval"),
        "transformers_version": version("transformers"),
        "torch_version": version("torch"),
        "max_length": model.max_length,
        "prefix_token_id": model.prefix_token_id,
        "sst2": {
            "contexts": contexts,
            "loglikelihoods": [value for value, _ in loglikelihoods],
            "is_greedy": [greedy for _, greedy in loglikelihoods],
            "predictions": predictions.tolist(),
            "acc": float((predictions == golds).mean()),
            "acc_norm": float((predictions_norm == golds).mean()),
            "seconds": sst2_seconds,
        },
        "wikitext": {
            "loglikelihoods": list(document_lls),
            "word_perplexity": weighted_perplexity([r["word_perplexity"] for r in per_doc]),
            "byte_perplexity": weighted_perplexity([r["byte_perplexity"] for r in per_doc]),
            "bits_per_byte": bits_per_byte([r["bits_per_byte"] for r in per_doc]),
            "seconds": rolling_seconds,
        },
    }
    Path(results_path).write_text(json.dumps(results), encoding="utf-8")


if __name__ == "__main__":
    main(*sys.argv[1:3])
