"""Exports of run records for other tools, one module per destination.

- :mod:`.model_card`: Hub model-card results (``.eval_results/*.yaml`` and ``model-index``);
- :mod:`.eee`: Every Eval Ever aggregate JSON and instance JSONL (checked by :mod:`.eee_check`);
- :mod:`.details`: per-task samples as Parquet, a Hub details dataset;
- :mod:`.trackers`: MLflow, W&B and Trackio (``--log-to``, parsed by :mod:`.targets`);
- :mod:`.lm_eval`: the other direction, lm-evaluation-harness results imported as a run record.

Everything here reads records through :mod:`evalharness.records.record` and never imports a
model. Heavy libraries (huggingface_hub, pyarrow, mlflow) are imported inside functions.
"""
