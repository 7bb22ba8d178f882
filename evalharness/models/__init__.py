"""Model adapters: one small batched adapter per checkpoint kind."""

from evalharness.models.base import ModelAdapter, ModelInfo
from evalharness.models.loading import ADAPTERS, adapter_class, load_model

__all__ = ["ADAPTERS", "ModelAdapter", "ModelInfo", "adapter_class", "load_model"]
