"""Evaluation data: local files or hub datasets mapped onto canonical fields."""

from evalharness.data.loader import (
    DATA_DIR_ENV,
    LoadedData,
    check_local_source,
    fingerprint_examples,
    load_examples,
    resolve_data_dir,
)
from evalharness.data.readers import READERS

__all__ = [
    "DATA_DIR_ENV",
    "LoadedData",
    "READERS",
    "check_local_source",
    "fingerprint_examples",
    "load_examples",
    "resolve_data_dir",
]
