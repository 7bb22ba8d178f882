"""``--model-args``: what users pass to ``from_pretrained`` without a code change, checked and recorded.

``from_pretrained`` sets any keyword it does not know on the model's config, silently, so a
misspelt argument would change nothing and be believed. Here every key must be a loading
argument listed below or an attribute of the checkpoint's ``config.json`` (an explicit
override of it); anything else is refused with a suggestion. Arguments are split by what they
can do to the answers:

- ``revision``, ``variant``, ``attn_implementation``, quantization (``load_in_4bit``,
  ``load_in_8bit`` and the ``bnb_*``/``llm_int8_*`` settings) and config overrides change the
  numbers: they are written into the model notes, so into the run record and the
  prediction cache key;
- ``low_cpu_mem_usage``, ``max_memory``, ``offload_folder`` and ``offload_buffers`` only place
  weights: recorded with the run's settings, never part of the cache key;
- ``torch_dtype`` (or ``dtype``) is ``--dtype`` said another way; the two must agree.

Quantization goes through bitsandbytes, which needs a CUDA GPU: elsewhere the run stops with
a clear error rather than silently loading full-precision weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from evalharness.config.yamlfile import YamlScalar, YamlValue
from evalharness.errors import ModelError, UsageError, did_you_mean
from evalharness.jsonvalues import JsonValue

__all__ = ["FLAG", "ModelArgs", "parse_model_args", "resolve_model_args"]

FLAG = "--model-args"


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _text(value: object) -> str:
    if not isinstance(value, (str, int)) or isinstance(value, bool) or not str(value).strip():
        raise ValueError(f"expected a non-empty text, got {value!r}")
    return str(value)


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {value!r}")
    return float(value)


def _memory(value: object) -> dict[YamlScalar, YamlValue]:
    if not isinstance(value, Mapping) or not value:
        raise ValueError(f"expected a mapping of device -> memory such as {{0: 20GiB, cpu: 60GiB}}, got {value!r}")
    # GPU indices stay integers (also when a JSON record wrote them as text); "cpu", "disk" are names
    return {(int(key) if str(key).isdigit() else str(key)): str(size) for key, size in value.items()}


def _names(value: object) -> list[YamlValue]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"expected a list of module names, got {value!r}")
    return [str(item) for item in value]


def _plain(value: object, key: str) -> YamlValue:
    """A config override as plain data (what a YAML file holds), else refused naming the argument:
    it is recorded in the model notes and the prediction cache key."""
    if isinstance(value, float) and not math.isfinite(value):
        raise UsageError(f"{FLAG} {key}: expected a finite number, got {value!r} (the record could only write it as null)")
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(item, key) for item in value]
    if isinstance(value, Mapping):
        plain: dict[YamlScalar, YamlValue] = {}
        for name, item in value.items():
            if name is not None and not isinstance(name, (str, int, float, bool)):
                break
            plain[name] = _plain(item, key)
        else:
            return plain
    raise UsageError(
        f"{FLAG} {key}: expected text, a number, true/false, null, a list or a mapping of them, got {type(value).__name__} {value!r}"
    )


# Loading argument -> (what it does, its value check). "answers": changes the numbers.
_ANSWERS, _PLACEMENT, _QUANTIZATION, _DTYPE = "answers", "placement", "quantization", "dtype"
LOADING_ARGS: dict[str, tuple[str, Callable[[object], YamlValue]]] = {
    "revision": (_ANSWERS, _text),
    "variant": (_ANSWERS, _text),
    "attn_implementation": (_ANSWERS, _text),
    "torch_dtype": (_DTYPE, _text),
    "dtype": (_DTYPE, _text),
    "low_cpu_mem_usage": (_PLACEMENT, _bool),
    "max_memory": (_PLACEMENT, _memory),
    "offload_folder": (_PLACEMENT, _text),
    "offload_buffers": (_PLACEMENT, _bool),
    "load_in_4bit": (_QUANTIZATION, _bool),
    "load_in_8bit": (_QUANTIZATION, _bool),
    "bnb_4bit_compute_dtype": (_QUANTIZATION, _text),
    "bnb_4bit_quant_type": (_QUANTIZATION, _text),
    "bnb_4bit_use_double_quant": (_QUANTIZATION, _bool),
    "llm_int8_threshold": (_QUANTIZATION, _number),
    "llm_int8_skip_modules": (_QUANTIZATION, _names),
}


def _split_pairs(text: str) -> list[str]:
    """``a=1,b={x: 1, y: 2}`` -> ``["a=1", "b={x: 1, y: 2}"]``: commas inside brackets stay."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        depth += char in "[{("
        depth -= char in "]})"
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part for part in (p.strip() for p in parts) if part]


def _parse_pairs(text: str) -> dict[str, YamlValue]:
    from evalharness.config import parse_yaml
    from evalharness.errors import SpecError

    values: dict[str, YamlValue] = {}
    for pair in _split_pairs(text):
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"'{pair}' is not KEY=VALUE (or give a YAML file)")
        if key in values:
            raise ValueError(f"'{key}' is given twice")
        try:  # YAML scalars: true/false, numbers, null, [lists] and {mappings}
            values[key] = parse_yaml(raw.strip(), f"{FLAG} {key}")[0] if raw.strip() else ""
        except SpecError as exc:
            raise ValueError(str(exc)) from None
    return values


def parse_model_args(value: object) -> dict[str, object] | None:
    """``KEY=VALUE,...``, a YAML file of them, or a mapping; values read as YAML scalars
    (checked by ``resolve_model_args`` once the checkpoint's config is read)."""
    if value is None:
        return None
    data: Iterable[tuple[object, object]]
    if isinstance(value, Mapping):
        data = value.items()
    else:
        text = str(value)
        path = Path(text).expanduser()
        if "=" not in text and path.is_file():
            from evalharness.config import load_yaml
            from evalharness.errors import SpecError

            try:
                loaded = load_yaml(path)
            except SpecError as exc:
                raise ValueError(str(exc)) from None
            if not isinstance(loaded, dict):
                raise ValueError(f"{path}: expected a mapping of from_pretrained argument -> value")
            data = loaded.items()
        elif "=" not in text:
            raise ValueError(f"'{text}' is neither KEY=VALUE,... nor an existing YAML file")
        else:
            data = _parse_pairs(text).items()
    names: dict[str, object] = {}
    for key, item in data:
        if not isinstance(key, str) or not key.isidentifier():
            raise ValueError(f"'{key}' is not an argument name")
        names[key] = item
    return names or None


@dataclass(frozen=True)
class ModelArgs:
    """The checked arguments: what goes to ``from_pretrained`` and what is recorded where."""

    kwargs: dict[str, object] = field(default_factory=dict)  # for from_pretrained (quantization built lazily)
    revision: str | None = None
    dtype: str | None = None
    quantization: dict[str, YamlValue] = field(default_factory=dict)
    answers: dict[str, YamlValue] = field(default_factory=dict)  # model notes, so the cache key

    def from_pretrained(self, device: str) -> dict[str, object]:
        """Keyword arguments for ``from_pretrained``; a quantized model is placed while loading."""
        if not self.quantization:
            return dict(self.kwargs)
        from transformers import BitsAndBytesConfig

        settings: dict[str, object] = dict(self.quantization)
        if "bnb_4bit_compute_dtype" in settings:
            import torch

            settings["bnb_4bit_compute_dtype"] = getattr(torch, str(settings["bnb_4bit_compute_dtype"]))
        placement = {} if "device_map" in self.kwargs else {"device_map": {"": device}}
        # from_dict: BitsAndBytesConfig(**settings), for settings held as a mapping (checked by LOADING_ARGS)
        return {**self.kwargs, **placement, "quantization_config": BitsAndBytesConfig.from_dict(settings)}


def _check_quantization(quantization: Mapping[str, YamlValue], device: str, *, source: str) -> None:
    import importlib.util

    if quantization.get("load_in_4bit") and quantization.get("load_in_8bit"):
        raise UsageError(f"{FLAG}: load_in_4bit and load_in_8bit exclude each other; choose one")
    if not (quantization.get("load_in_4bit") or quantization.get("load_in_8bit")):
        if quantization:
            raise UsageError(f"{FLAG}: {', '.join(sorted(quantization))} need load_in_4bit=true or load_in_8bit=true")
        return
    wanted = "load_in_4bit" if quantization.get("load_in_4bit") else "load_in_8bit"
    missing = []
    if not device.startswith("cuda"):
        missing.append(f"a CUDA GPU (this run's device is {device})")
    if importlib.util.find_spec("bitsandbytes") is None:
        missing.append("the bitsandbytes package (pip install bitsandbytes)")
    if missing:
        raise ModelError(
            f"{source}: {FLAG} {wanted}=true quantizes through bitsandbytes, which needs {' and '.join(missing)}; "
            "nothing was loaded in full precision instead. Drop it, or run where bitsandbytes and CUDA are available"
        )


def _dtype(values: Mapping[str, object], requested: str) -> str | None:
    given = {key: value for key, value in values.items() if key in ("torch_dtype", "dtype")}
    if len(set(given.values())) > 1:
        raise UsageError(f"{FLAG}: torch_dtype and dtype disagree ({given}); give one")
    if not given:
        return None
    from evalharness.models.base import select_dtype

    chosen = select_dtype(str(next(iter(given.values()))), "cpu")
    if requested != "auto" and select_dtype(requested, "cpu") != chosen:
        raise UsageError(f"{FLAG} {next(iter(given))}={chosen} contradicts --dtype {requested}; give the dtype once")
    return chosen


def resolve_model_args(
    values: Mapping[str, object] | None,
    *,
    config: Mapping[str, JsonValue],
    source: str,
    device: str,
    dtype: str,
    local: bool,
    device_map: str | None = None,
) -> ModelArgs:
    """Check ``values`` against the loading arguments and the checkpoint's config attributes."""
    if not values:
        return ModelArgs()
    kwargs: dict[str, object] = {}
    answers: dict[str, YamlValue] = {}
    quantization: dict[str, YamlValue] = {}
    for key, value in values.items():
        checked: YamlValue
        if key in LOADING_ARGS:
            role, check = LOADING_ARGS[key]
            try:
                checked = check(value)
            except ValueError as exc:
                raise UsageError(f"{FLAG} {key}: {exc}") from None
        elif key in config:
            role, checked = _ANSWERS, _plain(value, key)  # an override of config.json, applied by from_pretrained
        else:
            known = [*LOADING_ARGS, *config]
            raise UsageError(
                f"{FLAG} {key}: neither a loading argument ({', '.join(LOADING_ARGS)}) nor an attribute of "
                f"{source}/config.json{did_you_mean(key, known)}; from_pretrained would set it on the config and ignore it"
            )
        if role == _QUANTIZATION:
            quantization[key] = checked
            answers[key] = checked
        elif role == _ANSWERS:
            answers[key] = checked
            if key != "revision":
                kwargs[key] = checked if key in LOADING_ARGS else value  # a config override as given
        elif role == _PLACEMENT:
            kwargs[key] = checked
    if "revision" in answers and local:
        raise UsageError(f"{FLAG} revision={answers['revision']}: {source} is a local directory; a revision applies to Hub ids")
    spread = sorted({"max_memory", "offload_folder", "offload_buffers"} & set(kwargs))
    if spread and not device_map:
        raise UsageError(f"{FLAG} {', '.join(spread)}: these place weights over several devices; give --device-map auto too")
    _check_quantization(quantization, device, source=source)
    revision = answers.get("revision")
    return ModelArgs(
        kwargs=kwargs,
        revision=revision if isinstance(revision, str) else None,
        dtype=_dtype(dict(values), dtype),
        quantization=quantization,
        answers=answers,
    )
