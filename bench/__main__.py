"""`python -m bench` (make bench): run every benchmark in its quick form, one after another."""

from __future__ import annotations

import importlib
import sys

BENCHES = ("bench.pipeline", "bench.relay", "bench.solver")


def main() -> int:
    failed = 0
    for name in BENCHES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            print(f"## {name}: not available ({exc})\n")
            continue
        print(f"## {name}\n", flush=True)
        argv = ["--quick"] if "--full" not in sys.argv else []
        failed |= int(module.main(argv) or 0)
        print()
    return failed


if __name__ == "__main__":
    raise SystemExit(main())
