"""aec: a learned image codec for small grayscale images.

>>> import numpy as np, codec
>>> digit = np.zeros((28, 28), np.uint8); digit[6:22, 12:16] = 255
>>> restored = codec.decompress(codec.compress(digit))
>>> restored.shape, restored.dtype
((28, 28), dtype('uint8'))
"""

from .api import FileInfo, compress, compress_many, decompress, decompress_many, inspect, levels
from .errors import (
    ArgumentError,
    CodecError,
    CorruptFileError,
    FormatError,
    ImageError,
    InputError,
    ModelError,
    ModelMismatchError,
)
from .pillow_plugin import register as _register_pillow_plugin

_register_pillow_plugin()

__version__ = "0.24.0"

__all__ = [
    "ArgumentError",
    "CodecError",
    "CorruptFileError",
    "FileInfo",
    "FormatError",
    "ImageError",
    "InputError",
    "ModelError",
    "ModelMismatchError",
    "compress",
    "compress_many",
    "decompress",
    "decompress_many",
    "inspect",
    "levels",
    "__version__",
]
