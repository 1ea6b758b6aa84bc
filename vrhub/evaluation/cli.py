"""``vrhub eval PHOTOS... --out DIR``: build every avatar, measure likeness, robustness and speed.

Also runnable as ``python -m vrhub.evaluation.cli``. Writes DIR/report.md and
DIR/contact_sheet.png and prints the tables.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def cmd_eval(args: argparse.Namespace) -> int:
    from vrhub.evaluation.report import (
        evaluate,
        nme_table,
        rank_matrix_table,
        report_markdown,
        robustness_summary,
        timing_table,
        write_report,
    )
    from vrhub.pipeline.plugins import SelectionError, default_registry, parse_selection

    try:
        stages = default_registry().select(parse_selection(args.stages))
    except SelectionError as exc:
        print(f"vrhub eval: {exc}", file=sys.stderr)
        return 2
    paths = [Path(p) for p in args.photos]
    pairs = []
    for pair in args.same_speaker:
        a, _, b = pair.partition(",")
        pairs.append((Path(a), Path(b)))
    extra = [*map(Path, args.video), *(p for ab in pairs for p in ab)]
    missing = [str(p) for p in [*paths, *extra] if not p.is_file()]
    if missing:
        print(f"vrhub eval: not a file: {', '.join(missing)}", file=sys.stderr)
        return 2
    quiet = args.quiet

    def log(line: str) -> None:
        if not quiet:
            print(line, file=sys.stderr, flush=True)

    ev = evaluate(
        paths,
        stages,
        videos=[Path(v) for v in args.video],
        robustness=not args.no_robustness,
        same_speaker=pairs,
        log=log,
    )
    if not ev.photos:
        print("vrhub eval: no avatar could be built from the given files", file=sys.stderr)
        for name, reason in ev.skipped:
            print(f"  {name}: {reason}", file=sys.stderr)
        return 1
    md, sheet = write_report(ev, Path(args.out))
    print(nme_table(ev))
    print(f"\nidentified: {ev.ident.rate * 100:.0f} % ({int((ev.ident.rank == 1).sum())}/{len(ev.photos)})")
    if not quiet:
        print()
        print(rank_matrix_table(ev))
    if ev.robustness:
        print()
        print(robustness_summary(ev))
    print()
    print(timing_table(ev))
    for name, reason in ev.skipped:
        print(f"skipped {name}: {reason}")
    print(f"\nwrote {md} and {sheet}")
    _ = report_markdown  # the report is the file; the tables above are its parts
    return 0


def add_eval(sub: Any) -> None:
    p = sub.add_parser("eval", help="build avatars from photos and report likeness, robustness and speed")
    p.add_argument("photos", nargs="+", help="photo files (files that are not photos are listed as skipped)")
    p.add_argument("--out", required=True, help="folder for report.md and contact_sheet.png")
    p.add_argument(
        "--video",
        action="append",
        default=[],
        metavar="FILE",
        help="a talking-head video: heads from later frames are compared with the first (repeatable)",
    )
    p.add_argument(
        "--same-speaker",
        action="append",
        default=[],
        metavar="A,B",
        help="two videos of the same person: heads from B against the first frame of A (repeatable)",
    )
    p.add_argument("--no-robustness", action="store_true", help="skip the relit-variant and video builds")
    p.add_argument("--stages", default="", help="implementation per slot, e.g. hair_model=none")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines, no rank matrix on stdout")
    p.set_defaults(func=cmd_eval)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vrhub")
    sub = parser.add_subparsers(dest="command", required=True)
    add_eval(sub)
    args = parser.parse_args(["eval", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
