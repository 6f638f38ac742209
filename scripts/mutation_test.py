"""Mutation testing of the core modules with mutmut (by hand, not in CI: hours for all of them
on two CPU cores). The modules and the tests that guard them are in pyproject.toml [tool.mutmut].

    pip install -e ".[test,mutation]"
    python scripts/mutation_test.py                       # mutmut run, then the score per module
    python scripts/mutation_test.py emavfi.interpolator   # (re)run one module's mutants only
    python scripts/mutation_test.py --report              # the score of the last run only

Prints, per module, how many mutants the tests killed, how many survived or ran no test, and
the score (killed / all); then every survivor that docs/testing.md does not explain, every entry
there whose "`old` -> `new`" is not its mutant's change (numbers shift when code is edited), and
entries of mutants that no longer survive. Exits 1 if any module scores under 90%, or a survivor
is unexplained or explained as another change. ``mutmut show NAME`` prints a mutant's
diff, ``mutmut browse`` lets you walk through them; results are kept in ``mutants/``, so a second
run only retests mutants not yet checked or whose function changed: after writing tests from
survivors, rerun those survivors by name (``mutmut run NAME ...``).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXPLAINED = ROOT / "docs" / "testing.md"
FLOOR = 0.90
KILLED = {"killed", "timeout", "segfault", "caught by type check"}


def mutmut(*args: str) -> str:
    done = subprocess.run(["mutmut", *args], check=False, cwd=ROOT, capture_output=True, text=True)
    if done.returncode not in (0, 1):  # mutmut run exits 1 when mutants survive
        sys.exit(f"mutmut {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def results() -> dict[str, str]:
    """Mutant name (``emavfi.metrics.x_psnr__mutmut_3``) -> status, for the last run."""
    pattern = re.compile(r"^\s*(emavfi\.\S+__mutmut_\d+): (.+)$")
    return {
        match[1]: match[2].strip()
        for line in mutmut("results", "--all", "true").splitlines()
        if (match := pattern.match(line))
    }


def report(statuses: dict[str, str]) -> int:
    counts: dict[str, Counter] = defaultdict(Counter)
    for name, status in statuses.items():
        module = name.split("__mutmut")[0].rsplit(".", 1)[0]  # the function part has no dot
        counts[module]["killed" if status in KILLED else status] += 1
    failed = False
    print(
        f"{'module':32} {'mutants':>8} {'killed':>7} {'survived':>9} {'no tests':>9} {'score':>6}"
    )
    for module in sorted(counts):
        c = counts[module]
        total = sum(c.values()) - c["skipped"]
        score = c["killed"] / total if total else 1.0
        failed |= score < FLOOR
        print(
            f"{module:32} {total:8d} {c['killed']:7d} {c['survived']:9d} {c['no tests']:9d}"
            f" {score:6.1%}"
        )
    text = EXPLAINED.read_text(encoding="utf-8") if EXPLAINED.is_file() else ""
    # an entry is "- `name`: `old` -> `new`: reason"; "not killed yet" marks a known gap
    entries = {
        match[1]: match[2]
        for match in re.finditer(r"^- `([^`]+)`: (.*)$", text, re.MULTILINE)
        if "not killed yet" not in match[2]
    }
    # survivor's full name -> its entry's name (docs/testing.md leaves out "emavfi.")
    survivors = {
        name: name.split("emavfi.", 1)[1]
        for name, status in sorted(statuses.items())
        if status not in KILLED | {"skipped"}
    }
    unexplained = [name for name, key in survivors.items() if key not in entries]
    if unexplained:
        print(f"\n{len(unexplained)} survivor(s) not explained in {EXPLAINED.relative_to(ROOT)}:")
        for name in unexplained:
            print(f"  {name}: {statuses[name]}")
    # Mutant numbers follow the code: after an edit, an entry may describe another mutant.
    misnamed = [
        name
        for name, key in survivors.items()
        if key in entries and not describes(entries[key], name)
    ]
    if misnamed:
        print(f"\n{len(misnamed)} entry(ies) whose `old` -> `new` is not the mutant's change:")
        for name in misnamed:
            print(f"  {name}  (mutmut show {name})")
    stale = sorted(set(entries) - set(survivors.values()))
    if stale:
        print(f"\n{len(stale)} entry(ies) for mutants that no longer survive (remove them):")
        for name in stale:
            print(f"  {name}: {statuses.get('emavfi.' + name, 'no such mutant')}")
    return 1 if failed or unexplained or misnamed else 0


def describes(entry: str, name: str) -> bool:
    """Whether an entry's "`old` -> `new`" is the change ``mutmut show`` prints (whitespace
    ignored; "..." elides). Entries in other words are taken as they are."""
    match = re.match(r"`([^`]*)` -> `([^`]*)`:", entry)
    if not match:
        return True
    shown = mutmut("show", name).splitlines()
    removed = "".join(line[1:] for line in shown if line[:1] == "-" and line[:3] != "---")
    added = "".join(line[1:] for line in shown if line[:1] == "+" and line[:3] != "+++")
    for described, actual in ((match[1], removed), (match[2], added)):
        fragments = re.sub(r"\s+", "", described).split("...")
        if not all(part in re.sub(r"\s+", "", actual) for part in fragments):
            return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", action="store_true", help="only report the last run")
    parser.add_argument(
        "modules", nargs="*", help="rerun only these modules' mutants, e.g. emavfi.metrics"
    )
    args = parser.parse_args()
    if not args.report:
        for module in args.modules or [None]:
            names = [f"{module}.*"] if module else []  # a name pattern reruns every match
            subprocess.run(["mutmut", "run", *names], cwd=ROOT, check=False)
    return report(results())


if __name__ == "__main__":
    sys.exit(main())
