"""Entry point of the `kernelprof` command.

Each subcommand lives in its own module under `kernelprof.cli` and exposes
`register(subparsers)`, which adds its parser and sets `handler` to a function taking the parsed
arguments and returning an exit code. Errors the user can act on are `KernelprofError`s: they
become one line on stderr and a non-zero exit, never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
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
    "kernelprof.cli.workload",
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
