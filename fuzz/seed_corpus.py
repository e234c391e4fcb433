"""Seed ``fuzz/corpus`` from the reference files in ``tests/vectors`` (both harness modes)."""

from __future__ import annotations

import hashlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    corpus = ROOT / "fuzz" / "corpus"
    corpus.mkdir(exist_ok=True)
    written = 0
    for path in sorted((ROOT / "tests" / "vectors").glob("*.aec")):
        data = path.read_bytes()
        for seed in (b"\x00" + data, b"\x01" + data[:-2]):
            name = corpus / hashlib.sha1(seed).hexdigest()  # libFuzzer's own naming
            if not name.exists():
                name.write_bytes(seed)
                written += 1
    print(f"{written} seeds added to {corpus}")


if __name__ == "__main__":
    main()
