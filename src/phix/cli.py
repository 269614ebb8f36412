"""The ``phix`` command: serve, synth, load, reindex, gateway ...

Each domain adds its sub-commands through a ``register(subparsers)`` function in its own
``cli.py`` module; this file only wires them, so importing it has no side effects.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Modules that provide ``register(subparsers: argparse._SubParsersAction) -> None``.
_COMMAND_MODULES = (
    "phix.server_cli",
    "phix.synth.cli",
    "phix.search.cli",
    "phix.mpi.cli",
    "phix.dicom.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="phix", description="Putian health information exchange")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a domain not built yet
            if exc.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
