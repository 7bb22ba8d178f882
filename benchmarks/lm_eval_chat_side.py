"""The lm-evaluation-harness half of ``parity_chat_template.py``; runs in the peer's own venv.

Builds lm-evaluation-harness's own ``ConfigurableTask`` over the documents it is given (a
``custom_dataset``; its ``doc_to_text``/``doc_to_choice``/``doc_to_target`` mirror the
evalharness task), gives each document the same few-shot demonstrations evalharness drew (the
task's sampler is replaced by that list, nothing else), and renders every request the way
``lm_eval --apply_chat_template [--fewshot_as_multiturn] [--system_instruction]`` does:
``fewshot_context`` then ``construct_requests`` with ``HFLM.apply_chat_template``. Token ids
come from ``HFLM`` itself (``_encode_pair`` for log-likelihoods, ``tok_encode`` for
generation prompts). It imports nothing from evalharness.

Usage: python lm_eval_chat_side.py REQUEST.json RESULT.json
"""

from __future__ import annotations

import json
import sys
from importlib.metadata import version


class _GivenDemonstrations:
    """Stands in for lm-eval's few-shot sampler: the demonstrations evalharness drew."""

    def __init__(self) -> None:
        self.current: list[dict] = []

    def sample(self, n: int, eval_doc: dict | None = None, **_: object) -> list[dict]:
        return self.current[:n]


def main(request_path: str, result_path: str) -> None:
    import datasets
    from lm_eval.api.task import ConfigurableTask
    from lm_eval.models.huggingface import HFLM

    with open(request_path, encoding="utf-8") as handle:
        request = json.load(handle)
    docs = request["docs"]
    config = {
        "task": "evalharness_parity",
        "output_type": request["output_type"],
        "test_split": "test",
        "custom_dataset": lambda **_: {"test": datasets.Dataset.from_list(docs)},
        "doc_to_text": request["doc_to_text"],
        "doc_to_target": request["doc_to_target"],
        "target_delimiter": request["target_delimiter"],
        "fewshot_delimiter": request["fewshot_delimiter"],
        "metadata": {"version": 1},
    }
    if request["output_type"] == "multiple_choice":
        config["doc_to_choice"] = request["doc_to_choice"]
    else:
        config["generation_kwargs"] = {"until": request["until"], "max_gen_toks": 8}
    task = ConfigurableTask(config=config)
    sampler = _GivenDemonstrations()
    task.sampler = sampler
    lm = HFLM(pretrained=request["model"], device="cpu", batch_size=1)
    rows = []
    for doc_id, (doc, demos) in enumerate(zip(docs, request["demonstrations"])):
        sampler.current = demos
        context = task.fewshot_context(
            doc=doc, num_fewshot=len(demos), system_instruction=request["system_instruction"], apply_chat_template=True,
            fewshot_as_multiturn=request["fewshot_as_multiturn"], chat_template=lm.apply_chat_template,
        )
        instances = task.construct_requests(
            doc=doc, ctx=context, metadata=("evalharness_parity", doc_id, 1), apply_chat_template=True,
            chat_template=lm.apply_chat_template,
        )
        for instance in instances if isinstance(instances, list) else [instances]:
            if request["output_type"] == "multiple_choice":
                ctx, continuation = instance.args
                context_ids, continuation_ids = lm._encode_pair(ctx, continuation)
                rows.append({"context": ctx, "continuation": continuation, "ids": context_ids + continuation_ids,
                             "continuation_ids": continuation_ids})
            else:
                ctx = instance.args[0]
                rows.append({"context": ctx, "continuation": None, "ids": lm.tok_encode(ctx), "continuation_ids": []})
    with open(result_path, "w", encoding="utf-8") as handle:
        json.dump({"lm_eval_version": version("lm_eval"), "requests": rows}, handle)


if __name__ == "__main__":
    main(*sys.argv[1:3])
