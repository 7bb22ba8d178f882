"""Parity of chat-format prompts with lm-evaluation-harness's ``--apply_chat_template``, token by token.

For each document of a task, the requests evalharness builds in the chat format (the
formulation ``evalharness run`` uses, prepared with ``--prompt-format chat`` and the given
``--system-prompt`` / ``--num-fewshot`` / ``--fewshot-as-multiturn``) are compared with the
requests lm-evaluation-harness builds for the same documents and the same demonstrations
(``benchmarks/lm_eval_chat_side.py``, in lm-eval's own venv: its ``ConfigurableTask`` with
``fewshot_context(apply_chat_template=True)`` and ``construct_requests``), as strings and as
the token ids each harness would feed the model (``HFLM._encode_pair`` / ``tok_encode`` vs
the causal adapter's split).

Without ``--model`` it builds the tiny chat models of ``evalharness.testing.instruct`` (ChatML,
ChatML with a default system prompt, Gemma, Llama 2) under ``--work-dir`` and checks each on a
small review task. Known, documented difference: for a template without a system role,
lm-eval drops the system prompt (it catches the template's error); evalharness merges it into
the first user turn, so such runs are reported, not counted as failures, with ``--system-prompt``.

Usage (repository root; the lm-eval venv is ``benchmarks/peer_envs.py``'s):

    python benchmarks/parity_chat_template.py [--model DIR --task NAME --data-dir DIR] [--num-fewshot N]

Exit code 1 when any request differs. Results: ``benchmarks/results/parity_chat_template.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DEFAULT_PEER = REPO / "benchmarks" / ".cache" / "venv-lm-eval" / "bin" / "python"


def _delimiter(texts: list[str]) -> str:
    """The leading whitespace all ``texts`` share (evalharness writes lm-eval's target delimiter into them)."""
    leads = {text[: len(text) - len(text.lstrip())] for text in texts}
    if len(leads) != 1:
        raise SystemExit(f"choices start with different whitespace ({sorted(leads)}); lm-eval has one target_delimiter")
    return leads.pop()


def evalharness_side(model: str, task_name: str, args: argparse.Namespace) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The request for the lm-eval side, and evalharness's own requests with their token ids."""
    from evalharness.data.loader import load_examples
    from evalharness.models import load_model
    from evalharness.models.causal import move_trailing_whitespace
    from evalharness.prompting import FormulationOptions, choose_formulation
    from evalharness.prompting.templates import render, select_demonstrations
    from evalharness.spec.catalog import TaskCatalog

    adapter = load_model(model)
    task = TaskCatalog(args.tasks_dir).load(task_name)
    examples = load_examples(task, args.data_dir, limit=args.limit).examples
    formulation = choose_formulation(task, adapter)
    options = FormulationOptions(
        prompt_format="chat", system_prompt=args.system_prompt, fewshot_as_multiturn=args.fewshot_as_multiturn,
        num_fewshot=args.num_fewshot, data_dir=args.data_dir, seed=args.seed,
    )
    state = formulation.prepare(task, adapter, formulation.accepted_options(options))
    prompt = task.spec.prompt
    generation = formulation.request_kind.value == "generate"
    target = prompt.target or ""
    demos = []
    for example in examples:
        few_shot = state.few_shot
        chosen = select_demonstrations(few_shot.pool, few_shot.n, seed=few_shot.seed, example=example) if few_shot else []
        demos.append([{**dict(demo.fields), "evalharness_target": render(target, demo, task).lstrip()} for demo in chosen])
    docs = []
    for example in examples:
        doc = {**dict(example.fields), "evalharness_target": render(target, example, task).lstrip() if target else ""}
        if not generation:
            doc["evalharness_choices"] = [choice.lstrip() for choice in formulation.choices(task, example)]
        docs.append(doc)
    for pool in demos:  # demonstrations carry their choices too (lm-eval reads them for integer targets)
        for doc in pool:
            if not generation:
                doc["evalharness_choices"] = docs[0]["evalharness_choices"]
    delimiter = _delimiter(formulation.choices(task, examples[0])) if not generation else target[: len(target) - len(target.lstrip())]
    request = {
        "model": model, "docs": docs, "demonstrations": demos, "output_type": "generate_until" if generation else "multiple_choice",
        "doc_to_text": prompt.template, "doc_to_target": "evalharness_target", "doc_to_choice": "evalharness_choices",
        "target_delimiter": delimiter, "fewshot_delimiter": prompt.few_shot.separator if prompt.few_shot else "\n\n",
        "until": list(prompt.stop), "system_instruction": args.system_prompt, "fewshot_as_multiturn": args.fewshot_as_multiturn,
    }
    rows = []
    for requests in formulation.requests(task, examples, state):
        for item in requests:
            if generation:
                rows.append({"context": item, "continuation": None, "ids": adapter.encode_prompts([item])[0], "continuation_ids": []})
            else:
                context, continuation = adapter._pair_tokens([move_trailing_whitespace(item.context, item.continuation)])[0]
                rows.append({"context": item.context, "continuation": item.continuation, "ids": context + continuation,
                             "continuation_ids": continuation})
    request["evalharness_system_role"] = bool(state.prompt.template and state.prompt.template.system_role)
    return request, rows


def compare(model: str, task: str, args: argparse.Namespace) -> dict[str, Any]:
    request, ours = evalharness_side(model, task, args)
    with tempfile.TemporaryDirectory() as scratch:
        request_path, result_path = Path(scratch, "request.json"), Path(scratch, "result.json")
        request_path.write_text(json.dumps(request), encoding="utf-8")
        completed = subprocess.run(
            [str(args.lm_eval_python), str(REPO / "benchmarks" / "lm_eval_chat_side.py"), str(request_path), str(result_path)],
            capture_output=True, text=True, env={"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                                                 "PATH": "/usr/bin:/bin", "TOKENIZERS_PARALLELISM": "false"},
        )
        if completed.returncode != 0:
            raise SystemExit(f"lm-eval side failed:\n{completed.stderr[-3000:]}")
        theirs = json.loads(result_path.read_text(encoding="utf-8"))
    strings = sum(a["context"] == b["context"] and a["continuation"] == b["continuation"] for a, b in zip(ours, theirs["requests"]))
    tokens = sum(a["ids"] == b["ids"] and a["continuation_ids"] == b["continuation_ids"] for a, b in zip(ours, theirs["requests"]))
    first = next(
        ({"evalharness": a, "lm_eval": b} for a, b in zip(ours, theirs["requests"]) if a["context"] != b["context"] or a["ids"] != b["ids"]),
        None,
    )
    return {
        "model": model, "task": task, "lm_eval_version": theirs["lm_eval_version"], "num_fewshot": args.num_fewshot,
        "fewshot_as_multiturn": args.fewshot_as_multiturn, "system_prompt": args.system_prompt,
        "requests": len(ours), "lm_eval_requests": len(theirs["requests"]), "identical_strings": strings, "identical_tokens": tokens,
        "first_difference": first,
        "known_difference": (
            "the template has no system role: lm-eval drops the system prompt, evalharness merges it into the first user turn"
            if args.system_prompt and not request["evalharness_system_role"] else None
        ),
    }


def _tiny_models(work_dir: Path) -> list[tuple[str, Path]]:
    from evalharness.testing.instruct import CHAT_STYLES, build_chat_model, build_chat_tokenizer
    from tests.instruct_fixtures import CHAT_CORPUS

    models = []
    for style in CHAT_STYLES:
        directory = work_dir / f"tiny-{style}"
        if not (directory / "config.json").is_file():
            build_chat_model(directory, build_chat_tokenizer(CHAT_CORPUS, style=style), seed=7)
        models.append((style, directory))
    return models


def _review_task(work_dir: Path) -> tuple[Path, Path]:
    from tests.instruct_fixtures import GENERATION
    from tests.test_prompted_formulations import CLASSIFICATION, REVIEWS, write_reviews

    data_dir = write_reviews(work_dir / "data")
    (data_dir / "gen").mkdir(exist_ok=True)
    rows = [{"id": str(i), "source": text, "references": [label]} for i, (text, label) in enumerate(REVIEWS)]
    (data_dir / "gen" / "data.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    tasks = work_dir / "tasks" / "mine"
    tasks.mkdir(parents=True, exist_ok=True)
    (tasks / "reviews.yaml").write_text(CLASSIFICATION % {"extra": ""}, encoding="utf-8")
    (tasks / "review_words.yaml").write_text(GENERATION, encoding="utf-8")
    return work_dir / "tasks", data_dir


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a chat checkpoint (default: the tiny chat models of every template style)")
    parser.add_argument("--task", action="append", help="task name(s) (default with tiny models: mine/reviews and mine/review_words)")
    parser.add_argument("--tasks-dir", action="append", type=Path, default=[])
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--num-fewshot", type=int, default=0)
    parser.add_argument("--fewshot-as-multiturn", action="store_true")
    parser.add_argument("--system-prompt")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--lm-eval-python", type=Path, default=DEFAULT_PEER)
    parser.add_argument("--work-dir", type=Path, default=REPO / "benchmarks" / ".cache" / "chat-parity")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "parity_chat_template.json")
    args = parser.parse_args()
    if not args.lm_eval_python.is_file():
        raise SystemExit(f"{args.lm_eval_python}: no lm-eval venv (python benchmarks/peer_envs.py benchmarks/.cache)")
    if args.model:
        runs = [(args.model, task) for task in args.task or ["glue/sst2"]]
    else:
        tasks_dir, args.data_dir = _review_task(args.work_dir)
        args.tasks_dir.append(tasks_dir)
        runs = [(str(path), task) for _, path in _tiny_models(args.work_dir) for task in args.task or ["mine/reviews", "mine/review_words"]]
    results = [compare(model, task, args) for model, task in runs]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results[0] if len(results) == 1 else results, indent=2), encoding="utf-8")
    failed = 0
    for result in results:
        same = result["identical_tokens"] == result["requests"] == result["lm_eval_requests"] == result["identical_strings"]
        known = not same and result["known_difference"] is not None
        failed += not (same or known)
        status = "same" if same else ("known" if known else "DIFFERENT")
        print(f"{status:9} {Path(result['model']).name:28} {result['task']:20} "
              f"{result['identical_strings']}/{result['requests']} strings, {result['identical_tokens']}/{result['requests']} token lists"
              + (f" ({result['known_difference']})" if known else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
