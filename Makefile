# The two commands of the README. Both are idempotent and work offline (package registries only).
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

PYTEST_ARGS ?=

.PHONY: demo test typecheck setup setup-test

setup:
	bash scripts/setup.sh

setup-test:
	bash scripts/setup.sh --test

demo: setup
	.venv/bin/evalharness demo

# mypy over evalharness/ with the [tool.mypy] settings of pyproject.toml (incremental: .mypy_cache).
typecheck: setup-test
	.venv/bin/mypy

test: setup-test typecheck
	.venv/bin/python -m pytest -n 2 $(PYTEST_ARGS)
