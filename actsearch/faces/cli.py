"""The command line: parse arguments, call one function per subcommand, map errors to exit codes.

Exit codes: 0 success, 2 a user mistake (one line on stderr, no traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from actsearch import __version__
from actsearch.errors import EXIT_INTERRUPTED, ActsearchError, ActsearchWarning

__all__ = ["main"]

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # One line, like every other user mistake (argparse prints the usage block too).
        raise ActsearchError(f"{message} (see '{self.prog} --help')")


def _number(kind: type, text: str, expected: str) -> int | float:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None


def _positive_int(text: str) -> int:
    value = _number(int, text, "a positive integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = _number(float, text, "a positive number")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def cmd_search(args: argparse.Namespace, console: Console) -> int:
    """Search per-layer activation layouts for a space (default: the shipped mnist1d_mlp)."""
    from actsearch.api import search
    from actsearch.faces.report import failure_line, print_analysis

    result = search(
        args.space, trials=args.trials, timeout=args.timeout, study=args.study,
        storage=args.storage, device=args.device, seed=args.seed,
        workers=args.workers, population=args.population, finalists=args.finalists,
        seeds=args.seeds, claim_seeds=args.claim_seeds, latency=args.latency,
        progress="plain" if args.plain else True, runs_dir=args.runs_dir,
        threads=args.threads, dtype=args.dtype, report=True, console=console)
    print_analysis(result.analysis, console)
    html, _ = result.report_files
    console.print(f"report: {html} (and report.md beside it)", highlight=False)
    failures = failure_line(result.study.get_trials(deepcopy=False))
    if failures:
        console.print(failures, highlight=False)
    if result.stop_reason is not None:
        console.print(f"stopped early: {result.stop_reason}", highlight=False)
    if result.interrupted:
        console.print("interrupted: the running trial is marked failed, finished trials are "
                      "kept; run the same command again to resume", highlight=False)
        return EXIT_INTERRUPTED
    return 0 if result.stop_reason is None else 1  # a run of failed trials stopped it


def cmd_spaces(args: argparse.Namespace, console: Console) -> int:
    """List the shipped search spaces, validate space files (--check), or print their JSON
    Schema (--schema)."""
    from actsearch import list_shipped_spaces
    from actsearch.api import check_space, space_schema

    if args.schema:
        import json

        print(json.dumps(space_schema(), indent=2))
        return 0
    if args.check:
        bad = 0
        for name in args.check:
            try:
                line = check_space(name)
            except ActsearchError as e:  # one line per bad file; the others still checked
                print(f"actsearch: error: {e.for_cli()}", file=sys.stderr)
                bad += 1
            else:
                console.print(line, highlight=False)
        return EXIT_USAGE if bad else 0
    shipped = list_shipped_spaces()
    width = max(len(space.name) for space in shipped)
    for space in shipped:
        console.print(f"[bold]{space.name:<{width}}[/bold] {space.description}", highlight=False)
    return 0


def cmd_sites(args: argparse.Namespace, console: Console) -> int:
    """List a model's activation sites: a space's model, or a factory's (module:function or
    path/to/file.py:function, with --input-shape)."""
    import json

    from rich.table import Table

    from actsearch.api import site_groups, sites

    kwargs = None
    if args.kwargs is not None:
        try:
            kwargs = json.loads(args.kwargs)
        except json.JSONDecodeError as e:
            raise ActsearchError(f"--kwargs: expected a JSON object, got {args.kwargs!r} "
                                 f"({e.msg})") from None
        if not isinstance(kwargs, dict):
            raise ActsearchError(f"--kwargs: expected a JSON object, got {args.kwargs!r}")
    groups = {}
    for text in args.group or ():
        name, sep, patterns = text.partition("=")
        if not sep or not name or not patterns:
            raise ActsearchError(f"--group: expected NAME=PATTERN[,PATTERN...], got {text!r}")
        groups[name] = patterns.split(",")
    report = sites(args.target, input_shape=args.input_shape, kwargs=kwargs,
                   split_shared=not args.tied)
    try:
        group_of = site_groups(args.target, report, groups)
    except ActsearchError as e:  # the library's groups.NAME is the flag's --group NAME
        if not groups:
            raise
        raise ActsearchError(f"--group {str(e).removeprefix('groups.')}") from None

    table = Table(title=f"{len(report)} activation sites of {args.target}", title_justify="left",
                  caption="output shape: with an example batch of 2", caption_justify="left")
    for column in ("site", "kind", "calls", "output shape", "activation", "group"):
        table.add_column(column, justify="right" if column == "calls" else "left")
    for site in report:
        shape = "x".join(map(str, site.shape)) if site.shape else "-"
        table.add_row(site.name, site.kind, str(site.calls), shape, site.current,
                      group_of[site.name])
    console.print(table)
    for line in report.unsearchable:
        console.print(f"not searchable: {line}", highlight=False)
    if report.trace_error and not report.unsearchable:
        console.print(f"torch.fx cannot trace the model ({report.trace_error}): module sites "
                      f"only", highlight=False)
    return 0


def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(n) for n in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 1,8,8, got {text!r}") from None
    if not shape or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected positive sizes like 1,8,8, got {text!r}")
    return shape


def cmd_export(args: argparse.Namespace, console: Console) -> int:
    """Export the best layouts of a study as config files (with weights or as ONNX on request)."""
    from actsearch.api import export

    paths = export(args.run_or_study, top=args.top, out=args.out, fmt=args.format,
                   weights=args.weights, storage=args.storage, runs_dir=args.runs_dir,
                   device=args.device, threads=args.threads)
    for path in paths:
        onnx = path.with_suffix(".onnx")
        extra = f" and {onnx}" if args.format == "onnx" and onnx.is_file() else ""
        console.print(f"wrote {path}{extra}", highlight=False)
    return 0


def cmd_train(args: argparse.Namespace, console: Console) -> int:
    """Retrain an exported config from scratch and report its test accuracy."""
    from actsearch.api import train

    config, run = train(args.config, seed=args.seed, device=args.device, threads=args.threads,
                        trust_code=args.trust_code)
    exported = config.metrics.get("test_acc")
    metric = config.recipe.objective[0]  # accuracy, or the recipe's own metric
    console.print(
        f"{args.config}: {config.layout}, seed {run.seed}, {run.epochs} epochs "
        f"({run.status}) in {run.train_seconds:.1f}s: test {metric} {run.test_acc:.4f}, "
        f"validation {run.val_acc:.4f}"
        f"{f' (exported: test {exported:.4f})' if isinstance(exported, float) else ''}",
        highlight=False,
    )
    return 0


def cmd_worker(args: argparse.Namespace, console: Console) -> int:
    """Run trials of an existing study: start one per machine or GPU on the same storage."""
    from actsearch.api import worker

    return worker(args.storage, args.study, trials=args.trials, timeout=args.timeout,
                  device=args.device, threads=args.threads, dtype=args.dtype,
                  workers=args.workers, worker_index=args.worker_index,
                  heartbeat_interval=args.heartbeat_interval, grace_period=args.grace_period,
                  storage_timeout=args.storage_timeout,
                  storage_patience=args.storage_patience, quiet=args.quiet or None)


def cmd_report(args: argparse.Namespace, console: Console) -> int:
    """Print a study's analysis and write report.html and report.md beside it."""
    from actsearch.api import analyze, report
    from actsearch.faces.report import print_analysis

    analysis = analyze(args.run_or_study, storage=args.storage, runs_dir=args.runs_dir)
    print_analysis(analysis, console)
    html, md = report(args.run_or_study, out=args.out, storage=args.storage,
                      runs_dir=args.runs_dir, analysis=analysis)
    console.print(f"wrote {html} and {md}", highlight=False)
    return 0


def cmd_dashboard(args: argparse.Namespace, console: Console) -> int:
    """Serve a study in optuna-dashboard, with actsearch's graphs and a summary note."""
    from actsearch.api import dashboard

    dashboard(args.run_or_study, storage=args.storage, runs_dir=args.runs_dir, host=args.host,
              port=args.port, refresh=args.refresh)
    return 0


def _add_run_arguments(p: argparse.ArgumentParser) -> None:
    """RUN_OR_STUDY, --storage and --runs-dir: how export, report and dashboard find a study."""
    p.add_argument("run_or_study", metavar="RUN_OR_STUDY", help="a run folder (runs/<study>), "
                   "its .db file, or a study name (with --storage: the name in that storage)")
    p.add_argument("--storage", help="Optuna storage URL (default: the run folder's)")
    p.add_argument("--runs-dir", default="runs", help="where run folders are (default: runs)")


def _add_dtype_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dtype", choices=("float32", "float64"),
                   help="training precision (default: float32; in float64 populations follow "
                   "one-at-a-time training exactly)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="actsearch", description="Search per-layer activation layouts "
                     "(ReLU, ELU with its alpha, SELU) with Optuna.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("search", help=cmd_search.__doc__, description=cmd_search.__doc__)
    p.add_argument("space", nargs="?", help="a space file or a shipped space name "
                   "(default: mnist1d_mlp)")
    p.add_argument("--trials", type=int, help="finished trials the study should hold "
                   "(default: the space's budget)")
    p.add_argument("--timeout", type=float, help="stop starting trials after S seconds")
    p.add_argument("--study", help="study name (default: the space's name)")
    p.add_argument("--storage", help="Optuna storage URL (default: sqlite:///runs/STUDY/study.db)")
    p.add_argument("--device", help="cpu, cuda, cuda:N or auto (default: auto)")
    p.add_argument("--seed", type=int, help="sampler and training seed (default: the "
                   "space's)")
    p.add_argument("--threads", type=int, help="CPU threads (default: 1, fastest for "
                   "small models)")
    p.add_argument("--runs-dir", help="where run folders go (default: runs)")
    p.add_argument("--plain", action="store_true", help="plain log lines instead of a live view")
    p.add_argument("--workers", type=int, help="worker processes on this "
                   "host, one per GPU when there are several (default: 1)")
    p.add_argument("--finalists", type=int, metavar="K", help="retrain the best K "
                   "layouts and the best uniform one with fresh seeds after the search "
                   "(default: 5; 0: skip)")
    p.add_argument("--seeds", type=int, metavar="S", help="fresh seeds "
                   "per finalist (default: 3)")
    p.add_argument("--claim-seeds", type=int, metavar="S", help="fresh seeds per "
                   "arm of the claims' designed comparisons, the same in every arm (default: 3; "
                   "0: skip)")
    p.add_argument("--latency", choices=("compiled", "eager", "off"), help="after the "
                   "finalists and claims, time their layouts and each activation's uniform "
                   "layout against uniform ReLU, eager and under torch.compile (compiled, the "
                   "default: seconds per model), eager only, or not at all")
    p.add_argument("--population", metavar="K|auto", help="candidates trained at once as one "
                   "batched computation (default: the space's; auto: measured per model and "
                   "device, 1 unless a population pays 3x)")
    _add_dtype_argument(p)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("worker", help=cmd_worker.__doc__, description=cmd_worker.__doc__)
    p.add_argument("--storage", required=True, help="the study's storage URL (postgresql://, "
                   "mysql://, sqlite:///, journal:///)")
    p.add_argument("--study", required=True, help="the study's name")
    p.add_argument("--trials", type=int, help="finished trials the study should hold "
                   "(default: the space's budget)")
    p.add_argument("--timeout", type=float, help="stop starting trials after S seconds")
    p.add_argument("--device", help="cpu, cuda, cuda:N or auto (default: auto)")
    p.add_argument("--threads", type=int, help="CPU threads (default: 1)")
    p.add_argument("--workers", type=int, help="worker processes to start "
                   "on this host (default: 1, this process)")
    p.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)
    p.add_argument("--heartbeat-interval", type=int, help="seconds between "
                   "heartbeats on database storages (default: 10)")
    p.add_argument("--grace-period", type=int, help="seconds without a "
                   "heartbeat before a trial is retried (default: 30)")
    p.add_argument("--storage-timeout", type=float, metavar="S",
                   help="database servers: seconds after which a call on a dead link fails "
                   "and is retried, instead of hanging (default: 10)")
    p.add_argument("--storage-patience", type=float, metavar="S",
                   help="database servers: seconds to keep retrying an unreachable server "
                   "before the worker gives up (default: 600)")
    p.add_argument("--quiet", action="store_true", help="no line per finished trial")
    _add_dtype_argument(p)
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("spaces", help=cmd_spaces.__doc__, description=cmd_spaces.__doc__)
    p.add_argument("--check", metavar="FILE", nargs="+", help="validate these space files: "
                   "one line each, exit 2 if any is bad")
    p.add_argument("--schema", action="store_true", help="print the JSON Schema of space files "
                   "(for editors; shipped as actsearch/schema/space.schema.json)")
    p.set_defaults(func=cmd_spaces)

    p = sub.add_parser("sites", help=cmd_sites.__doc__, description=cmd_sites.__doc__)
    p.add_argument("target", metavar="SPACE_OR_FACTORY", help="a space file or shipped space "
                   "name, or a factory: module:function (imported from the working directory) "
                   "or path/to/file.py:function")
    p.add_argument("--input-shape", type=_shape, metavar="N,N,...", help="one sample's shape "
                   "for a factory's model, e.g. 1,8,8 (a space knows its own)")
    p.add_argument("--kwargs", metavar="JSON", help="keyword arguments for the factory, as a "
                   "JSON object")
    p.add_argument("--tied", action="store_true", help="a module called several times is one "
                   "site (default: one site per call)")
    p.add_argument("--group", action="append", metavar="NAME=PATTERN[,PATTERN]", help="tie the "
                   "sites matching these globs into one group (repeatable)")
    p.set_defaults(func=cmd_sites)

    p = sub.add_parser("export", help=cmd_export.__doc__, description=cmd_export.__doc__)
    _add_run_arguments(p)
    p.add_argument("--top", type=_positive_int, default=1, help="how many of the best complete "
                   "trials (default: 1)")
    p.add_argument("--out", type=Path, help="output folder (default: RUN/exports)")
    p.add_argument("--format", choices=("yaml", "json", "onnx"), default="yaml",
                   help="config format; onnx also writes NAME.onnx (needs actsearch[onnx])")
    p.add_argument("--weights", action="store_true", help="retrain with the trial's seed and "
                   "save the weights beside each config (NAME.pt)")
    p.add_argument("--device", help="where to retrain: cpu, cuda, cuda:N or auto (default: "
                   "auto; use the device the study ran on)")
    p.add_argument("--threads", type=_positive_int, help="CPU threads (default: 1)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("train", help=cmd_train.__doc__, description=cmd_train.__doc__)
    p.add_argument("config", metavar="CONFIG", help="an exported config (.yaml or .json)")
    p.add_argument("--seed", type=int, help="training seed (default: the trial's, which "
                   "reproduces it on the same device)")
    p.add_argument("--device", help="cpu, cuda, cuda:N or auto (default: auto)")
    p.add_argument("--threads", type=_positive_int, help="CPU threads (default: 1)")
    p.add_argument("--trust-code", action="store_true", help="run the factory a config names "
                   "(its model's or data's code); without it such a config is refused")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("report", help=cmd_report.__doc__, description=cmd_report.__doc__)
    _add_run_arguments(p)
    p.add_argument("--out", help="folder for report.html and report.md (default: the run "
                   "folder)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("dashboard", help=cmd_dashboard.__doc__, description=cmd_dashboard.__doc__)
    _add_run_arguments(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: "
                   "127.0.0.1; any other is reachable from the network)")
    p.add_argument("--port", type=int, default=8080, help="port (default: 8080; 0: any free one)")
    p.add_argument("--refresh", type=_positive_float, metavar="S", help="redraw the graphs "
                   "every S seconds, for a study that is still running")
    p.set_defaults(func=cmd_dashboard)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    console = Console(soft_wrap=True)
    if not console.is_terminal:  # logs and pipes: wide enough that tables do not wrap
        console = Console(soft_wrap=True, width=max(console.width, 132))
    try:
        args = build_parser().parse_args(argv)
        with warnings.catch_warnings():
            # Optuna flags TPE's multivariate/group options as experimental on every trial.
            warnings.filterwarnings("ignore", message=".*experimental.*")
            warnings.showwarning = _warning_line
            return args.func(args, console)
    except ActsearchError as e:
        print(f"actsearch: error: {e.for_cli()}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("actsearch: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _warning_line(message: Warning | str, category: type[Warning], *args: object,
                  **kwargs: object) -> None:
    # A setting that is surely a mistake reads like an error, on one line, without source.
    if issubclass(category, ActsearchWarning):
        print(f"actsearch: warning: {message}", file=sys.stderr)
    else:
        _show_warning(message, category, *args, **kwargs)  # type: ignore[arg-type]


_show_warning = warnings.showwarning


def console_main() -> None:
    try:
        sys.exit(main())
    except BrokenPipeError:
        # The reader went away (`actsearch spaces --schema | head`): as other Unix tools do,
        # stop quietly; point stdout at nothing so the interpreter's final flush cannot fail.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
