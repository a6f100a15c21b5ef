"""reasonlab: reference implementations of ten 2025 methods for reasoning, memory and alignment of LMs."""

from reasonlab.errors import UserError

__version__ = "0.1.0"
__all__ = ["UserError", "__version__"]
