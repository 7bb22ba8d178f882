#!/usr/bin/env bash
# Idempotent set-up: a virtual environment in .venv with evalharness installed (editable).
#   scripts/setup.sh          runtime dependencies (enough for the demo)
#   scripts/setup.sh --test   plus the test dependencies and Debian's chromium for browser tests
# Torch is pinned to the CPU wheel here (not in pyproject.toml): an unpinned torch pulls
# several GB of CUDA packages on a machine without a GPU. Override with TORCH_SPEC.
set -euo pipefail
cd "$(dirname "$0")/.."

with_tests=0
[[ "${1:-}" == "--test" ]] && with_tests=1
python=${PYTHON:-python3}
torch_spec=${TORCH_SPEC:-torch==2.13.0}

if [[ ! -x .venv/bin/python ]]; then
  "$python" -m venv .venv
fi
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)

# Reinstall only when the dependency declaration (or the wanted extras) changed.
extras=$([[ $with_tests == 1 ]] && echo ".[test]" || echo ".")
stamp=".venv/.evalharness-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)-${with_tests}"
if [[ ! -f "$stamp" ]]; then
  "${pip[@]}" "$torch_spec"
  "${pip[@]}" -e "$extras"
  rm -f .venv/.evalharness-*-"${with_tests}"
  touch "$stamp"
fi

if [[ $with_tests == 1 ]]; then
  # The Every Eval Ever export is validated against the JSON Schemas inside the every-eval-ever
  # wheel (it needs Python >= 3.12, so it is downloaded, never installed). Tests skip without it.
  eee_wheel=every_eval_ever-0.3.0-py3-none-any.whl
  if [[ ! -f .eh-cache/wheels/$eee_wheel ]]; then
    mkdir -p .eh-cache/wheels
    .venv/bin/python -m pip download --quiet --disable-pip-version-check --no-deps every-eval-ever==0.3.0 \
      --python-version 3.12 --only-binary=:all: -d .eh-cache/wheels \
      || echo "warning: could not download $eee_wheel; Every Eval Ever schema tests will be skipped" >&2
  fi
fi

if [[ $with_tests == 1 && ! -x /usr/bin/chromium ]]; then
  # Browser tests drive Debian's chromium through Playwright (never a browser download).
  if command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "warning: could not install chromium; browser tests will be skipped" >&2
  else
    echo "warning: chromium missing and apt-get unavailable (not root?); browser tests will be skipped" >&2
  fi
fi
