"""`steik <command>`: the command line every workflow rule calls.

Each module in this package (name not starting with `_`) is one command: it defines `HELP` (one
line), `add_arguments(parser)` and `run(args) -> int`. The command's name is the module name with
`_` replaced by `-`. A `SteikError` ends the command with its message and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from steik import __version__
from steik.allocator import keep_freed_memory
from steik.errors import SteikError


def _command_modules() -> dict[str, str]:
    """Command name -> module path, discovered from this package's modules."""
    return {
        info.name.replace("_", "-"): f"{__name__}.{info.name}"
        for info in pkgutil.iter_modules(__path__)
        if not info.name.startswith("_")
    }


_FILE_SYSTEM_HINTS = {
    2: "check the path",
    13: "check its permissions",
    1: "check its permissions",
    30: "the file system is read-only; choose another output folder",
    28: "no space left on the device; free some space and rerun",
    122: "the disk quota is exceeded; free some space and rerun",
}
"""errno -> what a user can do about it (ENOENT, EACCES, EPERM, EROFS, ENOSPC, EDQUOT)."""


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one sub-parser per command module."""
    parser = argparse.ArgumentParser(prog="steik", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"steik {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_path in sorted(_command_modules().items()):
        module = importlib.import_module(module_path)
        doc = (module.__doc__ or "").strip()
        command = sub.add_parser(
            name,
            help=module.HELP,
            description=doc,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse `argv`, run the command, turn a `SteikError` (or a file-system error: no space,
    no permission, a missing folder) into one line on stderr."""
    args = build_parser().parse_args(argv)
    keep_freed_memory()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.captureWarnings(True)
    try:
        return int(args._run(args) or 0)
    except SteikError as error:
        print(f"steik {args.command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        reason = error.strerror or str(error)
        hint = _FILE_SYSTEM_HINTS.get(error.errno, "check the path")
        print(f"steik {args.command}: error: {where}{reason}; {hint}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"steik {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
