"""What every command shares: the typer app, the common options, usage errors and output checks."""

from __future__ import annotations

import contextlib
import copy
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Annotated

import typer

from .. import batch
from ..batch import STDIO
from ..errors import CodecError
from ..search import EFFORTS

app = typer.Typer(
    name="aec",
    help="aec: a learned image codec for small grayscale images (MNIST-like digits).",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Exit codes: 0 everything worked, 1 some input failed, 2 usage error.",
)

Quiet = Annotated[bool, typer.Option("--quiet", help="Print nothing but errors.")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Also print notices about each input.")]
Force = Annotated[bool, typer.Option("--force", "-f", help="Overwrite existing output files.")]
Jobs = Annotated[int, typer.Option("--jobs", "-j", min=0, help="Worker processes (0: one per core).")]
Effort = Annotated[
    int,
    typer.Option(
        "--effort",
        "-e",
        min=min(EFFORTS),
        max=max(EFFORTS),
        help="How hard the encoder works: 0 (fastest: the level's own model, rounded latents) to 3 (smallest "
        "files for the quality); from 1 each image may take any level's model (and scale) where it codes cheaper, "
        "one set of files weighed at every level so that quality rises with the level (not in archives: one "
        "model codes them all).",
    ),
]
Quality = Annotated[int, typer.Option("--quality", "-q", help="Quality level (see 'aec levels').")]
Recursive = Annotated[bool, typer.Option("--recursive", "-r", help="Descend into sub-folders of folder inputs.")]
Output = Annotated[
    str | None, typer.Option("--output", "-o", help="Output file, or folder with several inputs ('-': stdout).")
]


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        from .. import __version__
        from ..bitstream import SUPPORTED_VERSIONS, VERSION
        from ..models import available_levels, load_model

        try:
            models = ", ".join(f"{n}:{load_model(n).model_id:03x}" for n in available_levels()) or "none"
        except CodecError as exc:
            models = f"unavailable ({exc})"
        reads = f"{min(SUPPORTED_VERSIONS)}-{max(SUPPORTED_VERSIONS)}"
        typer.echo(f"aec {__version__}, format version {VERSION} (reads {reads}), models {models}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show versions and exit.")
    ] = False,
) -> None:
    """aec: a learned image codec for small grayscale images (MNIST-like digits)."""


def _check_quality(level: int) -> None:
    """A usage error (exit 2) for a level that is not installed; an error (exit 1) for weights that cannot be
    read."""
    from ..models import available_levels

    try:
        have = available_levels()
    except CodecError as exc:
        raise _fail(str(exc)) from None
    if level not in have:
        raise _fail(f"unknown quality {level}; levels are {', '.join(map(str, have)) or 'none installed'}", 2)


def _stdout() -> IO[bytes]:
    """Standard output for binary data: refused when closed or a terminal (where bytes would garble it)."""
    if sys.stdout is None or sys.stdout.closed:
        raise _fail("standard output is closed", 2)
    if sys.stdout.isatty():
        raise _fail("refusing to write binary data to a terminal: redirect it or name a file with -o", 2)
    return sys.stdout.buffer


def _same_file(a: str, b: str) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve() or os.path.samefile(a, b)
    except OSError:
        return False


def _plan(
    inputs: Sequence[str], output: str | None, suffix: str, accepted: frozenset[str], recursive: bool
) -> tuple[list[str], list[str], list[str]]:
    """Inputs expanded (files, their output paths, errors about the inputs); usage errors exit 2.

    Checked before any work: outputs to standard output (not a terminal), an
    output that would replace its own input, two inputs that would write the
    same file (both fail, named), and an output name of the wrong kind.
    """
    if inputs.count(STDIO) > 1:
        raise _fail("standard input can be read only once", 2)
    files, errors = batch.collect_inputs(inputs, accepted, recursive)
    several = len(files) > 1 or any(Path(i).is_dir() for i in inputs if i != STDIO)
    if several and output == STDIO:
        raise _fail("several outputs cannot all go to standard output", 2)
    if several and output is not None and Path(output).exists() and not Path(output).is_dir():
        raise _fail(f"{output} is not a folder (with several inputs, -o names a folder)", 2)
    roots = [i for i in inputs if i != STDIO and Path(i).is_dir()]
    targets = []
    for source in files:
        root = next((r for r in roots if Path(source).is_relative_to(r)), None)
        targets.append(batch.output_path(source, output, suffix, several, root))
    if STDIO in targets:
        _stdout()
    if not several and output not in (None, STDIO) and not Path(output).is_dir():
        _check_output_name(output, suffix)
    kept_files, kept_targets = [], []
    sources_of: dict[str, list[str]] = {}
    for source, target in zip(files, targets):
        sources_of.setdefault(target, []).append(source)
    for source, target in zip(files, targets):
        shown = "<stdin>" if source == STDIO else source
        if target != STDIO and len(sources_of[target]) > 1:
            others = [o for o in sources_of[target] if o != source]
            errors.append(f"{shown}: {target} would also be written from {others[0]}; rename one or use -o")
        elif target != STDIO and source != STDIO and _same_file(source, target):
            errors.append(f"{shown}: the output would replace the input itself")
        else:
            kept_files.append(source)
            kept_targets.append(target)
    return kept_files, kept_targets, errors


def _check_output_name(output: str, suffix: str) -> None:
    """Refuse an output file name whose suffix promises another format than the one written."""
    ending = Path(output).suffix.lower()
    if suffix == ".aec" and ending in batch.IMAGE_SUFFIXES:
        raise _fail(f"{output}: would hold .aec data under an image name; name it {Path(output).stem}.aec", 2)
    if suffix == ".png" and ending not in batch.OUTPUT_FORMATS and ending != ".aec":
        kinds = ", ".join(sorted(batch.OUTPUT_FORMATS))
        raise _fail(f"{output}: decompress writes lossless images ({kinds}); {ending or 'no suffix'} is not one", 2)


def _ratio(input_bytes: int, output_bytes: int) -> str:
    """How the output's size compares with the input's, in words that stay true either way.

    >>> _ratio(1000, 100), _ratio(100, 2200), _ratio(0, 10)
    ('10.0x smaller than input', '22.0x larger than input', 'input size unknown')
    """
    if input_bytes <= 0 or output_bytes <= 0:
        return "input size unknown"
    if output_bytes <= input_bytes:
        return f"{input_bytes / output_bytes:.1f}x smaller than input"
    return f"{output_bytes / input_bytes:.1f}x larger than input"


def command_name(info: typer.models.CommandInfo) -> str:
    """The name a registered command is called by."""
    assert info.callback is not None
    return info.name or info.callback.__name__.replace("_", "-")


def app_for(args: Sequence[str]) -> typer.Typer:
    """The app to run ``args`` with: when they start with a command's name, an app holding that command only.

    typer builds every command's options (their annotations evaluated, their types converted) before it
    runs one: 19 commands cost about 25 ms of every start (measured against `aec decompress`). The same
    command, options and callback come out of an app that holds the one named; help, completion and
    anything else get the whole app.
    """
    if not args or os.environ.get("_AEC_COMPLETE"):
        return app
    chosen = [info for info in app.registered_commands if command_name(info) == args[0]]
    if len(chosen) != 1:
        return app
    lean = copy.copy(app)
    lean.registered_commands = chosen
    return lean


def main() -> None:
    """Console-script entry point: a reader that went away (``aec info x | head -0``) ends the program quietly,
    as it does ``cat``; running out of memory is one error line, not a traceback."""
    try:
        app_for(sys.argv[1:])()
    except BrokenPipeError:
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        sys.exit(1)
    except MemoryError:
        typer.echo("error: out of memory", err=True)
        sys.exit(1)
    except CodecError as exc:  # one the command did not word itself (damaged weights met early): still one line
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
