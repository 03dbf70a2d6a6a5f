"""Entry point of the `kernelprof` command.

Each subcommand lives in its own module under `kernelprof.cli` and exposes
`register(subparsers)`, which adds its parser and sets `handler` to a function taking the parsed
arguments and returning an exit code. Errors the user can act on are `KernelprofError`s: they
become one line on stderr and their exit status (kernelprof/errors.py); anything else is
kernelprof's own bug: one line with a hint to file it, exit 70, never a traceback.
"""
from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys

from kernelprof.errors import KernelprofError

# Order here is the order `kernelprof --help` lists them.
COMMAND_MODULES = [
    "kernelprof.cli.info",
    "kernelprof.cli.ceilings",
    "kernelprof.cli.counters",
    "kernelprof.cli.kernel",
    "kernelprof.cli.sweep",
    "kernelprof.cli.compare",
    "kernelprof.cli.calibrate",
    "kernelprof.cli.llm",
    "kernelprof.cli.run",
    "kernelprof.cli.workload",
    "kernelprof.cli.ladder",
    "kernelprof.cli.demo",
    "kernelprof.cli.plot",
    "kernelprof.cli.report",
    "kernelprof.cli.sensor",
]


def build_parser() -> argparse.ArgumentParser:
    from kernelprof import __version__

    parser = argparse.ArgumentParser(
        prog="kernelprof",
        description="Profile GPU kernels for time and energy.",
    )
    parser.add_argument("--version", action="version", version=f"kernelprof {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    # Every option shows its default; old names (--gpu, --save, --window, --input, --output) parse
    # into the new ones with their help suppressed, kept for one release.
    for p in sub.choices.values():
        p.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except KernelprofError as exc:
        print(f"kernelprof {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"kernelprof {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # an output the OS refused (disk full, read-only, no such directory)
        if exc.errno in _OUTPUT_ERRNOS:
            where = f" {exc.filename}" if exc.filename else ""
            print(f"kernelprof {args.command}: error: cannot write{where}: {exc.strerror}", file=sys.stderr)
            return 8
        return _internal(args.command, exc)
    except Exception as exc:  # noqa: BLE001 - anything else is kernelprof's own bug
        return _internal(args.command, exc)


_OUTPUT_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT, errno.ENOENT, errno.EPIPE}


def _internal(command: str, exc: BaseException) -> int:
    """One line naming the bug (the full traceback only with KERNELPROF_DEBUG=1), exit 70."""
    from kernelprof.errors import BUG_HINT

    if os.environ.get("KERNELPROF_DEBUG") == "1":
        import traceback

        traceback.print_exc()
    where = ""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is not None:
        where = f" at {os.path.basename(tb.tb_frame.f_code.co_filename)}:{tb.tb_lineno}"
    print(f"kernelprof {command}: internal error: {type(exc).__name__}: {exc}{where}; {BUG_HINT} "
          "(KERNELPROF_DEBUG=1 shows the traceback)", file=sys.stderr)
    return 70


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
