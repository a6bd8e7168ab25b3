"""The `drfm` command: a thin layer over the library, one module per subcommand in drfm.commands.

Every failure the user can fix ends in one line on stderr, `drfm: error: ...`, and exit status 2:
a DrfmError from the library, an OSError (permission, full disk, a path that is a folder or sits
under a file) naming its path, or a bad option (argparse).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import sys
from typing import NoReturn

from drfm import __version__
from drfm.errors import DrfmError, OptionError

# (subcommand, module in drfm.commands); each module defines HELP, add_arguments(parser), run(args).
SUBCOMMANDS = (
    ("demo", "demo"),
    ("prepare", "prepare"),
    ("train", "train"),
    ("extract", "extract"),
    ("evaluate", "evaluate"),
    ("bench", "bench"),
    ("datasets", "datasets"),
    ("search", "search"),
    ("export", "export"),
    ("labels", "labels"),
)

# Where a subcommand's function is stored in the parsed namespace. An option's dest is its name
# without the dashes (--run -> run), so no option of a subcommand can overwrite this slot.
COMMAND_SLOT = "_command"
FLAGS_OF_PARAMETERS = {"fmt": "--format", "index_file": "--index", "num_queries": "--visualize", "queries": "--query",
                       "run_dir": "--out"}
"""Library parameters whose command-line flag is not --<name with dashes>."""


def flag_of(parameter: str) -> str:
    """The command-line flag of a library parameter named in an OptionError."""
    return FLAGS_OF_PARAMETERS.get(parameter, "--" + parameter.replace("_", "-"))

# Plain words for the errno values a user meets; others use the system's strerror.
OS_REASONS = {
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.ENOTDIR: "a part of this path is a file, not a folder",
    errno.EISDIR: "is a folder, not a file",
    errno.EEXIST: "already exists (and is not a folder)",
    errno.ENOENT: "no such file or folder",
    errno.ENAMETOOLONG: "file name too long",
    errno.ELOOP: "too many levels of symbolic links",
}


class DrfmArgumentParser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are one line, `drfm: error: ...`, exit status 2."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("drfm").strip()
        where = f"{command}: " if command else ""
        self.exit(2, f"drfm: error: {where}{' '.join(message.split())} (see {self.prog} --help)\n")


def _int_at_least(text: str, minimum: int) -> int:
    """`text` as an integer >= `minimum`; argparse.ArgumentTypeError (one line) otherwise."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got '{text}'") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """An argparse type for seeds and the like: an integer >= 0, else a one-line usage error."""
    return _int_at_least(text, 0)


def positive_int(text: str) -> int:
    """An argparse type for counts and sizes: an integer >= 1, else a one-line usage error."""
    return _int_at_least(text, 1)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand and its one-line help."""
    parser = DrfmArgumentParser(
        prog="drfm",
        description="Unsupervised cross-resolution person re-identification (DRFM, ACM MM 2024).",
    )
    parser.add_argument("--version", action="version", version=f"drfm {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in SUBCOMMANDS:
        module = importlib.import_module(f"drfm.commands.{module_name}")
        sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(**{COMMAND_SLOT: module.run})
    return parser


def os_error_message(exc: OSError) -> str:
    """One line for an OSError: the path(s) it names, then the reason in plain words."""
    reason = OS_REASONS.get(exc.errno) or " ".join(str(exc.strerror or exc).split())
    if exc.filename is None:
        return reason
    where = str(exc.filename)
    if exc.filename2 is not None:
        where += f" -> {exc.filename2}"
    return f"{where}: {reason}"


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse, run, turn a DrfmError or an OSError into one line on stderr; returns the
    exit status (2 for a usage error or any of those; 0 after --help or --version)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)  # argparse exits with an int: 2 for a usage error, 0 for --help
    try:
        return int(getattr(args, COMMAND_SLOT)(args) or 0)
    except DrfmError as exc:
        message = exc.render(flag_of) if isinstance(exc, OptionError) else str(exc)
        print(f"drfm: error: {' '.join(message.split())}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"drfm: error: {os_error_message(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("drfm: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
