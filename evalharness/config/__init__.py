"""One loader for every configuration file: task specs, gate policies, sweep specs, leaderboard
definitions and label maps.

YAML holds plain data only (no Python objects, no merge keys, no tags beyond the core schema),
scalars resolve as in YAML 1.2 (``no`` is text, not false), duplicate keys are errors, and the
input is bounded before anything is built from it: file size, one document, nesting depth and
number of values while parsing, then values and characters after alias expansion (a "billion
laughs" file, a deeply nested or a 60,000-item flow list is refused in milliseconds instead of
hanging or overflowing the stack of whatever walks it later). Every validation problem is reported as
``file:line: field.path: problem`` with a "did you mean" for misspelt keys.
"""

from evalharness.config.models import (
    Location,
    ModelT,
    StrictModel,
    cli_flag,
    option,
    option_metadata,
    required_option,
)
from evalharness.config.validation import (
    MAX_PROBLEMS,
    LoadedConfig,
    field_path,
    load_config,
    validate_model,
    where,
)
from evalharness.config.yamlfile import (
    MAX_YAML_BYTES,
    MAX_YAML_DEPTH,
    MAX_YAML_NODES,
    YamlValue,
    load_yaml,
    parse_yaml,
)

__all__ = [
    "MAX_PROBLEMS",
    "MAX_YAML_BYTES",
    "MAX_YAML_DEPTH",
    "MAX_YAML_NODES",
    "Location",
    "LoadedConfig",
    "ModelT",
    "StrictModel",
    "field_path",
    "load_config",
    "load_yaml",
    "option",
    "cli_flag",
    "option_metadata",
    "required_option",
    "parse_yaml",
    "validate_model",
    "where",
    "YamlValue",
]
