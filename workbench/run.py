"""`python -m workbench.run study.toml`: run a Monte Carlo study, resumably, and summarise it.

Exit status: 0 done (or already complete), 2 a mistake in the study file or the command (or
no dask scheduler at the address given), 3 a run on a dask cluster stopped part-way (the
scheduler was lost; rerun the same command to resume), 130 interrupted (rerun to resume).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from workbench.errors import ClusterError, StudyError, WorkbenchError


DESCRIPTION = "Run a Monte Carlo study of mixed-model estimators from a study file."


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m workbench.run", description=DESCRIPTION)
    add_arguments(parser)
    return parser.parse_args(argv)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of the command (also `workbench run`)."""
    parser.add_argument("study", help="the study file (TOML)")
    parser.add_argument("--out", help="output directory (default: results/<study name>/)")
    parser.add_argument(
        "--workers",
        type=int,
        help="threads on this machine (default: the study's, or all cores); with --scheduler, "
        "threads per unit on a dask worker (default: the worker's)",
    )
    parser.add_argument("--scheduler", help="run on the dask cluster of this scheduler, e.g. tcp://host:8786")
    parser.add_argument("--fresh", action="store_true", help="discard earlier results in the output directory")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.add_argument("--no-report", action="store_true", help="skip the figures and tables in <out>/report/")
    parser.add_argument("--wide", action="store_true", help="print every measure (a table wider than 100 columns)")


def main(argv: list[str] | None = None) -> int:
    return execute(parse_args(argv))


def execute(args: argparse.Namespace) -> int:
    """Run the study of parsed arguments; the summary table goes to standard output, all else to standard error."""
    # imported here, so that --help answers at once
    from workbench.study.execute import run_study
    from workbench.study.lock import output_lock
    from workbench.study.spec import load_study

    try:
        study = load_study(args.study)
        if args.workers is not None and args.workers < 1:
            raise StudyError(f"--workers: must be a positive integer, got {args.workers}")
        scheduler = args.scheduler or study.execution.scheduler
        if scheduler is not None:
            _check_scheduler(scheduler, "--scheduler" if args.scheduler else "execution.scheduler")
        out = Path(args.out) if args.out else Path("results") / study.name
        with output_lock(out):
            summary = run_study(
                study, out, workers=args.workers, fresh=args.fresh, quiet=args.quiet, scheduler=scheduler
            )
            _finish(summary, out, args)
    except (WorkbenchError, ClusterError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_status", 2)
    except KeyboardInterrupt:
        print("\ninterrupted: finished chunks are kept; rerun the same command to resume", file=sys.stderr)
        return 130
    except OSError as exc:  # a full disk, a read-only or vanished output directory
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"error: cannot write the results{where}: {exc.strerror or exc}; rerun to resume", file=sys.stderr)
        return 2
    return 0


def _finish(summary, out: Path, args: argparse.Namespace) -> None:
    """Print the summary table and where everything is; write the report unless told not to."""
    from workbench.results.summarise import format_table

    print(format_table(summary, wide=args.wide), flush=True)
    print(f"results: {out / 'replicates.zarr'}\nsummary: {out / 'summary.nc'}", file=sys.stderr)
    if not args.no_report:
        from workbench.results.report import write_report

        print(f"report: {write_report(out)}", file=sys.stderr)


def _check_scheduler(address: str, option: str) -> None:
    """A scheduler address must look like one, and dask.distributed must be installed."""
    if not (address.startswith("tcp://") and len(address) > 6):
        raise StudyError(f'{option}: must be an address like "tcp://host:8786", got {address!r}')
    from workbench.study.cluster import require_distributed

    require_distributed(option)


if __name__ == "__main__":
    sys.exit(main())
