"""A chosen subset of a task's examples, by id: what a sequential gate evaluates batch by
batch and what ``noise`` reruns. Examples keep the data's order; the fingerprint is the
subset's own (so a record never claims the full data), ``n_available`` the full count."""

from __future__ import annotations

from collections.abc import Collection

from evalharness.data.loader import LoadedData, fingerprint_examples
from evalharness.errors import DataError

__all__ = ["select_examples"]


def select_examples(data: LoadedData, ids: Collection[str], *, task: str) -> LoadedData:
    """The examples of ``data`` whose id is in ``ids``; an id the data lacks is refused."""
    wanted = {str(example_id) for example_id in ids}
    subset = [example for example in data.examples if example.id in wanted]
    if len(subset) != len(wanted):
        known = {example.id for example in subset}
        missing = sorted(wanted - known)
        raise DataError(f"{task}: {len(missing)} requested example id(s) are not in {data.location} (e.g. '{missing[0]}')")
    return LoadedData(subset, fingerprint_examples(subset), data.source, data.location, data.n_available)
