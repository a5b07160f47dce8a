"""`python -m workbench.report DIR`: figures and tables of a study's results, in DIR/report/."""

from __future__ import annotations

import argparse
import sys

from workbench.errors import WorkbenchError


DESCRIPTION = "Write figures and tables of a study's results into DIR/report/."


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m workbench.report", description=DESCRIPTION)
    add_arguments(parser)
    return parser.parse_args(argv)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of the command (also `workbench report`)."""
    parser.add_argument("directory", metavar="DIR", help="the output directory of python -m workbench.run")
    parser.add_argument(
        "--param", help="parameter of the zip plot and the distributions (default: the first variance component)"
    )
    parser.add_argument(
        "--validate", action="store_true", help="compare with the exact one-way theory (an error if it does not apply)"
    )
    parser.add_argument("--no-svg", action="store_true", help="write PNG figures only")


def main(argv: list[str] | None = None) -> int:
    return execute(parse_args(argv))


def execute(args: argparse.Namespace) -> int:
    """Write the report of parsed arguments; the path of report.md goes to standard error."""
    from workbench.results.report import write_report

    try:
        path = write_report(args.directory, args.param, validate=True if args.validate else None, svg=not args.no_svg)
    except WorkbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"report: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
