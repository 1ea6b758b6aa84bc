"""docs/plugins.md documents every hook with its exact signature, and the slot table matches the code."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from vrhub.pipeline import hookspecs
from vrhub.pipeline.plugins import BUILTIN_DEFAULTS
from vrhub.pipeline.types import SLOTS

DOCS = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"


def _hookspecs() -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(fn)
        for name, fn in vars(hookspecs).items()
        if inspect.isfunction(fn) and hasattr(fn, "vrhub_spec")
    }


def _documented_hooks() -> dict[str, str]:
    text = DOCS.read_text()
    section = text.split("## Hooks", 1)[1].split("\n## ", 1)[0]
    return {m.group(1): m.group(2) for m in re.finditer(r"^### (\w+)\(([^)]*)\)\s*$", section, re.M)}


def test_every_hookspec_is_documented_with_its_exact_signature() -> None:
    specs = _hookspecs()
    documented = _documented_hooks()
    assert set(specs) == {"register_stages", "avatar_built", "startup"}
    assert set(documented) == set(specs), f"docs list {sorted(documented)}, specs are {sorted(specs)}"
    for name, sig in specs.items():
        params = ", ".join(sig.parameters)
        assert documented[name] == params, f"{name}: docs say ({documented[name]}), spec is ({params})"


def test_slot_table_lists_every_slot_in_order() -> None:
    text = DOCS.read_text()
    rows = re.findall(r"^\| (\w+) \| `(\w+)\(", text, re.M)
    assert [slot for slot, _ in rows] == list(SLOTS)
    assert all(slot == fn for slot, fn in rows)
    for slot, name in BUILTIN_DEFAULTS.items():
        row = next(line for line in text.splitlines() if line.startswith(f"| {slot} |"))
        assert f"`{name}`" in row or "see `vrhub plugins`" in row
