"""The encoder's arguments checked once: quality, effort, maximum error (numpy integers accepted)."""

from __future__ import annotations

import operator

from . import bitstream
from .errors import ArgumentError
from .search import EFFORTS


def _integer(value: object, name: str) -> int:
    """``value`` as an int (numpy integers included); :class:`ArgumentError` for anything else."""
    if isinstance(value, bool):
        raise ArgumentError(f"{name} must be an integer, got {value!r}")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ArgumentError(f"{name} must be an integer, got {value!r}") from None


def check_effort(effort: object) -> int:
    """``effort`` as an int; :class:`ArgumentError` for an effort the encoder does not have."""
    value = _integer(effort, "effort")
    if value not in EFFORTS:
        raise ArgumentError(f"unknown effort {value}; efforts are {min(EFFORTS)} to {max(EFFORTS)}")
    return value


def check_quality(quality: object) -> int:
    """``quality`` as an int (numpy integers included); :class:`ArgumentError` for a non-integer.

    A level that is not installed is the :class:`ModelError` of :func:`load_model`, where the model is loaded.

    >>> import numpy as np
    >>> check_quality(np.uint8(8))
    8
    """
    return _integer(quality, "quality")


def check_max_error(max_error: object) -> int:
    """``max_error`` as an int in 0..127; :class:`ArgumentError` otherwise."""
    value = _integer(max_error, "max error")
    if not 0 <= value <= bitstream.MAX_REFINE_ERROR:
        raise ArgumentError(f"max error must be 0 to {bitstream.MAX_REFINE_ERROR}, got {value}")
    return value
