"""The model store: every frozen model stored once, by its content, and the presets that name them.

A weights folder holds::

    presets.json            role -> preset: the digest of the stored model the role codes with ("model"),
                            and what belongs to the role rather than the model (a level's search lambda and
                            its measured test metrics)
    models/
      <digest16>.npz        a frozen model, named by the first 16 hex digits of its SHA-256 digest
      <digest16>.json       its metadata: what it is (kind; a level model: the levels it has coded), how it
                            was made
      transforms-NAME.npz   network weights shared by the models whose graph names them

The roles are ``level-N`` (quality level N's model), ``general-N`` (level N's
general variant, for images that are not MNIST-like), ``refine``, ``predictive``, ``lossless``,
``lossless-blocks``, ``denoise``, ``vae`` and ``retrieval-N`` (level N's search
projection). One model may serve several roles (the general model
at one step serves general levels 1-4), stored once. Replacing a model is
storing the new one and pointing its role at it; the former model stays in the
store, named by no role, and the decoder finds it by its kind, level and id like
any other, so the files coded with it still decode. The encoder only ever uses
the models the presets name.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ModelError

#: The presets' file in a weights folder.
PRESETS = "presets.json"
#: The folder of stored models in a weights folder.
MODELS = "models"
#: Hex digits of the digest that name a stored model's files.
NAME_DIGITS = 16
#: The kind of a level's model (its own or its general variant), as its metadata records it (or by default).
LEVEL_KIND = "level"

_DIGEST = re.compile(r"[0-9a-f]{64}")


def model_path(folder: Path, digest: str) -> Path:
    """Where the model of ``digest`` is stored in weights folder ``folder`` (its ``.npz``)."""
    return folder / MODELS / f"{digest[:NAME_DIGITS]}.npz"


def level_role(level: int, general: bool = False) -> str:
    """The role of quality level ``level``'s model, or of its general variant."""
    return f"{'general' if general else 'level'}-{level}"


def presets(folder: Path) -> dict[str, dict[str, Any]]:
    """Role -> preset (``model``: a digest, and the role's own fields) of ``folder`` (none when it has no presets
    file); :class:`ModelError` when the file is damaged."""
    return {role: dict(preset) for role, preset in _presets(folder).items()}


@functools.cache
def _presets(folder: Path) -> dict[str, dict[str, Any]]:
    """:func:`presets`, read once per folder (every encode and decode asks; callers get copies)."""
    path = folder.resolve() / PRESETS
    if not path.is_file():
        return {}
    try:
        table = json.loads(path.read_text())
    except (OSError, ValueError):
        raise ModelError(f"{path}: the presets cannot be read (damaged)") from None
    if not isinstance(table, dict) or not all(
        isinstance(role, str) and isinstance(preset, dict) and _DIGEST.fullmatch(str(preset.get("model")))
        for role, preset in table.items()
    ):
        raise ModelError(f"{path}: the presets are not a table of roles and model digests (damaged)")
    return table


def preset_fields(folder: Path, role: str) -> dict[str, Any]:
    """What the preset ``role`` of ``folder`` holds besides its model (empty when there is no such preset)."""
    preset = _presets(folder).get(role, {})
    return {name: value for name, value in preset.items() if name != "model"}


def preset_path(folder: Path, role: str) -> Path | None:
    """The stored model ``role`` names in ``folder``, None when no preset names one or its file is missing."""
    return _preset_path(folder, role)


@functools.cache
def _preset_path(folder: Path, role: str) -> Path | None:
    """:func:`preset_path`, found once per folder and role (every encode and decode asks)."""
    digest = _presets(folder).get(role, {}).get("model")
    if digest is None:
        return None
    path = model_path(folder, digest)
    return path.resolve() if path.is_file() else None


def preset_digest(folder: Path, role: str) -> str | None:
    """The digest of the model ``role`` names in ``folder`` (read from the presets alone)."""
    digest = _presets(folder).get(role, {}).get("model")
    return None if digest is None else str(digest)


def set_preset(folder: Path, role: str, digest: str, fields: Mapping[str, Any] | None = None) -> None:
    """Point ``role`` at the stored model ``digest``, with the role's own ``fields`` (the presets file rewritten
    atomically). A level model's metadata gains the level, so that its files find it once no role names it."""
    path = model_path(folder, digest)
    if not path.is_file():
        raise ModelError(f"no stored model {digest[:NAME_DIGITS]} in {folder / MODELS}")
    kind, _, level = role.partition("-")
    if kind in ("level", "general") and level.isdigit():
        record = read_metadata(path)
        levels = sorted({*record.get("levels", []), int(level)})
        if record.get("levels") != levels:
            write_metadata(folder, digest, {**record, "levels": levels})
    update_preset(folder, role, {**(fields or {}), "model": digest})


def update_preset(folder: Path, role: str, fields: Mapping[str, Any]) -> None:
    """Set ``fields`` in the preset ``role`` (which must exist unless ``fields`` names its model)."""
    from .fileio import write_json

    table = presets(folder)
    if role not in table and "model" not in fields:
        raise ModelError(f"no preset '{role}' in {folder / PRESETS}")
    table[role] = {"model": table.get(role, {}).get("model"), **table.get(role, {}), **fields}
    write_json(folder / PRESETS, dict(sorted(table.items())))
    clear_cache()


def write_metadata(folder: Path, digest: str, metadata: Mapping[str, Any]) -> Path:
    """Write a stored model's metadata (its ``.json`` beside its ``.npz``); returns its path."""
    from .fileio import write_json

    path = model_path(folder, digest).with_suffix(".json")
    write_json(path, dict(metadata))
    clear_cache()
    return path


def read_metadata(path: Path) -> dict[str, Any]:
    """The metadata beside a stored model's ``.npz`` (empty when there is none); :class:`ModelError` when it is
    damaged."""
    meta = path.with_suffix(".json")
    if not meta.is_file():
        return {}
    try:
        record = json.loads(meta.read_text())
    except (OSError, ValueError):
        raise ModelError(f"{meta}: the model's metadata cannot be read (damaged)") from None
    if not isinstance(record, dict):
        raise ModelError(f"{meta}: the model's metadata is not a record (damaged)")
    return record


def find(folder: Path, kind: str, model_id: int, level: int | None = None) -> Path | None:
    """A stored model of ``kind`` (and ``level``) whose id is ``model_id``, named by a role or not: how a file
    coded with a replaced model finds it. Scans the store's metadata once per folder."""
    return dict(_index(folder)).get((kind, level, model_id))


@functools.cache
def _index(folder: Path) -> tuple[tuple[tuple[str, int | None, int], Path], ...]:
    """(kind, level, id) -> model of every stored model whose metadata can be read and records its digest."""
    found = []
    for meta in sorted((folder.resolve() / MODELS).glob("*.json")):
        try:
            record = json.loads(meta.read_text())
            digest, kind = record["model_sha256"], record.get("kind", LEVEL_KIND)
            levels = [int(level) for level in record["levels"]] if kind == LEVEL_KIND else [None]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue  # not a model this store can name; loading it by a role reports the damage
        path = meta.with_suffix(".npz")
        if isinstance(digest, str) and _DIGEST.fullmatch(digest) and path.is_file():
            found += [((str(kind), level, int(digest[:3], 16)), path.resolve()) for level in levels]
    return tuple(found)


def stored_ids(folder: Path, kind: str, level: int | None = None) -> tuple[int, ...]:
    """The ids of every stored model of ``kind`` (and ``level``), named by a role or not."""
    return tuple(key[2] for key, _ in _index(folder) if key[:2] == (kind, level))


def paths_of(folder: Path, kind: str) -> tuple[Path, ...]:
    """The files of every stored model of ``kind`` (a kind that is no level's), named by a role or not."""
    return tuple(path for key, path in _index(folder) if key[:2] == (kind, None))


def clear_cache() -> None:
    """Forget the presets and the index read (after the store changed)."""
    _presets.cache_clear()
    _preset_path.cache_clear()
    _index.cache_clear()
