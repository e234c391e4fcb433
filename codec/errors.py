"""The codec's error types: every failure a user can cause is one of these."""

from __future__ import annotations


class CodecError(Exception):
    """Base class of every error the codec raises on bad input or data."""


class ArgumentError(CodecError, ValueError):
    """An argument the codec does not take: an unknown quality or effort, a target out of range."""


class InputError(CodecError):
    """An input cannot be read: missing, a folder, unreadable, or over its size limit."""


class ImageError(CodecError):
    """The input image cannot be encoded (unreadable, empty, too large)."""


class FormatError(CodecError):
    """The bytes are not a valid ``.aec`` file (bad magic, version, fields)."""


class CorruptFileError(FormatError):
    """The file is an ``.aec`` file but its checksum or payload is damaged."""


class ModelMismatchError(FormatError):
    """The file was written with a model that is not the one installed."""


class ModelError(CodecError):
    """The shipped or given weights are missing, damaged or inconsistent."""


class DataError(CodecError):
    """The MNIST data cannot be found, downloaded or verified."""
