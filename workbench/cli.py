"""`workbench run|report|data ...` (also `python -m workbench`): the commands of the package under one name.

Each subcommand is the module of the same name (`python -m workbench.run` and so on), with the
same arguments and exit statuses.
"""

from __future__ import annotations

import argparse
import sys

from workbench import __version__, data, report, run

_COMMANDS = {"run": run, "report": report, "data": data}


def parser() -> argparse.ArgumentParser:
    """The argument parser of `workbench`, with a subparser per command."""
    top = argparse.ArgumentParser(
        prog="workbench", description="Simulate and fit linear mixed models; run and report Monte Carlo studies."
    )
    top.add_argument("--version", action="version", version=f"workbench {__version__}")
    commands = top.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in _COMMANDS.items():
        module.add_arguments(commands.add_parser(name, help=module.DESCRIPTION, description=module.DESCRIPTION))
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return _COMMANDS[args.command].execute(args)


if __name__ == "__main__":
    sys.exit(main())
