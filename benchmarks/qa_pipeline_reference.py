"""Answers from transformers' ``question-answering`` pipeline, for ``parity_heads.py``.

transformers 5.3 removed ``QuestionAnsweringPipeline``; this script runs under a Python that
still has it (transformers 5.2.0, the last release with it; see ``parity_heads.py`` for the
set-up). It imports nothing from evalharness.

    python qa_pipeline_reference.py REQUEST.json ANSWERS.json

REQUEST: ``{"model": DIR, "settings": {pipeline call kwargs}, "rows": [{"question", "context"}]}``.
ANSWERS: ``{"transformers": VERSION, "answers": [{"answer", "start", "score"}], "seconds": S}``.
"""

from __future__ import annotations

import json
import sys
import time


def main(request_path: str, answers_path: str) -> None:
    import transformers
    from transformers import pipeline

    request = json.loads(open(request_path, encoding="utf-8").read())
    qa = pipeline("question-answering", model=request["model"], tokenizer=request["model"], device=-1)
    started = time.perf_counter()
    answers = []
    for row in request["rows"]:  # one question per call: the pipeline's own windowing, batch size 1
        best = qa(question=row["question"], context=row["context"], top_k=1, **request["settings"])
        answers.append({"answer": best["answer"], "start": best["start"], "score": float(best["score"])})
    result = {"transformers": transformers.__version__, "answers": answers, "seconds": time.perf_counter() - started}
    with open(answers_path, "w", encoding="utf-8") as stream:
        json.dump(result, stream)


if __name__ == "__main__":
    main(*sys.argv[1:3])
