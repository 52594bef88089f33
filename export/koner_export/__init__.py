"""koner_export: checkpoint -> int8 ONNX model folder, and the parity suite (the `[export]` extra)."""
from .export import export_model
from .quantize import QuantOptions

__all__ = ["export_model", "QuantOptions"]
