"""Coverage-guided fuzzing of the decoder with atheris (libFuzzer for Python).

Every input must decode or end in a :class:`codec.CodecError`; anything else
(another exception, a hang, runaway memory) is a bug. The first input byte picks
the mode: even, the bytes are a file as they are (the checksum guards the
decoder); odd, the rest is a file body that gets a valid checksum appended, so
the fuzzer reaches the header, model and payload checks behind the checksum.

Short run (as the tests do):   python fuzz/fuzz_decoder.py fuzz/corpus -runs=2000
Long run:  python fuzz/fuzz_decoder.py fuzz/corpus -max_total_time=3600 -timeout=5 -rss_limit_mb=2048
New interesting inputs are added to fuzz/corpus; crashes are written as crash-*.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    import codec
    from codec import bitstream, context_tables, decoder


def one_input(data: bytes) -> None:
    if not data:
        return
    mode, body = data[0], data[1:]
    if mode & 1:  # reseal: the checksum of the file's version, with one of its level's model ids (format 4 on)
        version = body[1] >> 4 if len(body) > 1 else 0
        ids = tuple(decoder.known_ids(body[2] & 0x0F)) if len(body) > 2 else ()  # level 0: the pixel model's
        model_id = ids[(mode >> 1) % len(ids)] if ids else 0
        tables = next(iter(context_tables.known_ids()), 0)  # version 10: the installed context tables' id
        body = body + bitstream.checksum(version, model_id, body, tables).to_bytes(2, "little")
    try:
        pixels = codec.decompress(body)
    except codec.CodecError:
        return
    assert pixels.ndim == 2 and pixels.dtype.name == "uint8"


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
