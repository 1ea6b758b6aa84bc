"""`python -m bench` (make bench): run every benchmark in its quick form, one after another."""

from __future__ import annotations

import importlib
import inspect
import sys

BENCHES = (
    "bench.pipeline",
    "bench.hair_stages",
    "bench.rig_export",
    "bench.face_robustness",
    "bench.relay",
    "bench.solver",
)


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
        takes_argv = bool(inspect.signature(module.main).parameters)
        failed |= int((module.main(argv) if takes_argv else module.main()) or 0)
        print()
    return failed


if __name__ == "__main__":
    raise SystemExit(main())
