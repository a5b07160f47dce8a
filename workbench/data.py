"""`python -m workbench.data study.toml --point P --replicate R [--out file.csv]`: one data set of a study as CSV.

The data set is the one every analysis of the study fitted (layout columns and the simulated
response), written with full precision, so that it can be refitted elsewhere (e.g. in lme4).
Exit status: 0 written, 2 a mistake in the study file or the command.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from workbench.errors import WorkbenchError


DESCRIPTION = "Write one replicate data set of a study as CSV."


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m workbench.data", description=DESCRIPTION)
    add_arguments(parser)
    return parser.parse_args(argv)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of the command (also `workbench data`)."""
    parser.add_argument("study", help="the study file (TOML)")
    parser.add_argument("--point", type=int, default=0, help="design point (default 0)")
    parser.add_argument("--replicate", type=int, default=0, help="replicate (default 0)")
    parser.add_argument("--out", help="the CSV file to write (default: standard output)")


def main(argv: list[str] | None = None) -> int:
    return execute(parse_args(argv))


def execute(args: argparse.Namespace) -> int:
    """Write the data set of parsed arguments."""
    from workbench.study.replicate import replicate_data

    try:
        frame = replicate_data(args.study, args.point, args.replicate)
        if args.out is None:
            frame.to_csv(sys.stdout, index=False, float_format="%.17g")
            return 0
        out = Path(args.out)
        if out.is_dir():
            raise WorkbenchError(f"--out: {out} is a folder; name the CSV file to write")
        temporary = out.with_name(out.name + ".tmp")
        try:
            frame.to_csv(temporary, index=False, float_format="%.17g")
            temporary.replace(out)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise WorkbenchError(f"--out: cannot write {out}: {exc.strerror or exc}") from None
    except WorkbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"data: {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
