"""The report of ``make bench``: ``docs/benchmarks.md`` and what every measurement writes into it.

Each measurement module (``sending``, ``delivery``, ``inbox``, ``files``,
``gateway``, ``password_mail``, ``latency``) describes its own numbers and
hands :func:`write_report` a :class:`Part`: its rows of the Results table, its
cross-check, its paragraph of the Method, its Rounds, its Notes line.  This
module owns what they share: targets and verdicts, Markdown tables, the CPU
accounting of a trial, cProfile and SQL tables, the machine and its versions,
and the frame of the page.
"""

from __future__ import annotations

import io
import operator
import os
import platform
import pstats
import re
import statistics
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bench.common import REPO, log

if TYPE_CHECKING:
    from bench.environment import Results

# ------------------------------------------------------------------ targets

_COMPARE = {">=": operator.ge, "<=": operator.le, "<": operator.lt}


@dataclass(frozen=True)
class Target:
    """What a number must reach, as the Results table writes it (``>= 0.30``, ``< 64 MB``).

    With no ``op`` the number is only reported, against its baseline.
    """

    op: str = ""
    value: float = 0.0
    unit: str = ""

    def __str__(self) -> str:
        if not self.op:
            return "report"
        return f"{self.op} {self.value:g}{self.unit}" if self.unit else f"{self.op} {self.value:.2f}"

    def met(self, measured: float) -> bool:
        return _COMPARE[self.op](measured, self.value)

    def verdict(self, measured: float) -> str:
        if not self.op:
            return "—"
        return "PASS" if self.met(measured) else "MISS"

    def cells(self, measured: float) -> tuple[str, str]:
        """The Target and Result cells of a Results row."""
        result = self.verdict(measured)
        return str(self), result if result == "—" else f"**{result}**"

    def log_line(self, key: str, measured: float, rounds: list[float], what: str = "ratio") -> str:
        """The line the bench prints for it at the end of the measurements."""
        return (f"{key}: {what} {measured:.3f} (target {self}) {self.verdict(measured)}; "
                f"rounds {[round(x, 3) for x in rounds]}")


def _nothing(res: Results) -> None:
    return None


@dataclass(frozen=True)
class Part:
    """One measurement's share of the report, written once it has run."""

    key: str  # its entry in ``res.summary``, there once it has run
    results: Callable[[Results], list[tuple[str, ...]]]  # rows of the Results table
    method: Callable[[Results], str]  # its paragraph of the Method
    rounds: Callable[[Results], str]  # its section of the Rounds, ending in a blank line
    cross_check: Callable[[Results], str | None] = _nothing  # a line under the Results table
    note: Callable[[Results], str | None] = _nothing  # a line of the Notes
    target: Target | None = None  # what ``res.summary[key]["ratio"]`` must reach
    verdicts: Callable[[Results], list[str]] = lambda res: []  # more lines to print at the end

    def ran(self, res: Results) -> bool:
        return self.key in res.summary


def log_verdicts(res: Results, parts: Iterable[Part]) -> None:
    """The verdicts, printed at the end of the measurements."""
    for part in parts:
        if not part.ran(res):
            continue
        if part.target is not None:
            s = res.summary[part.key]
            log(part.target.log_line(part.key, s["ratio"], s["ratios"]))
        for line in part.verdicts(res):
            log(line)


# ------------------------------------------------------------------ numbers


def med(values: Iterable[float]) -> float:
    return statistics.median(list(values))


@dataclass(frozen=True)
class CpuUse:
    """The CPU accounting of one measured window, by process group and for the machine."""

    ms_per_op: dict[str, float]  # CPU ms per operation (request, e-mail, message)
    cores: dict[str, float]  # cores kept busy over the window
    busy: float  # share of the machine's CPU time that was busy, every process included
    cores_busy: float
    other_cores: float  # cores busy with what the bench did not attribute: other tenants


def cpu_use(cpu: dict[str, float], ops: int, window: float, machine0: tuple[float, float],
            machine1: tuple[float, float]) -> CpuUse:
    """From CpuSampler's seconds by group and ``machine_cpu()`` before and after the window."""
    ncpu = os.cpu_count() or 1
    busy = machine_busy(machine0, machine1)
    window = max(window, 1e-9)
    return CpuUse(
        ms_per_op=ms_per_op(cpu, ops),
        cores={k: v / window for k, v in cpu.items()},
        busy=busy, cores_busy=busy * ncpu,
        other_cores=max(0.0, busy * ncpu - sum(cpu.values()) / window),
    )


def ms_per_op(cpu: dict[str, float], ops: int) -> dict[str, float]:
    """CPU seconds by group over a window -> ms per operation done in it."""
    return {k: 1000 * v / max(ops, 1) for k, v in cpu.items()}


def machine_busy(machine0: tuple[float, float], machine1: tuple[float, float]) -> float:
    """Share of the machine's CPU time busy between two ``machine_cpu()`` readings."""
    return (machine1[0] - machine0[0]) / max(machine1[1] - machine0[1], 1e-9)


# ------------------------------------------------------------------- tables


def table(head: Sequence[str], align: str, rows: Iterable[Sequence[object]]) -> str:
    """A Markdown table; ``align`` has one letter a column, ``l`` (left) or ``r`` (right)."""
    head_row = "|" + "|".join(f" {c} " if c else " " for c in head) + "|"
    rule = "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"
    return "\n".join([head_row, rule, *("|" + "|".join(f" {c} " for c in row) + "|"
                                         for row in rows)])


def profile_table(prof, n: int = 18, by: str = "cumulative") -> str:
    """The ``n`` functions with most cumulative (or own) time, as a Markdown table.

    The bench's own functions (the loops that drive the product) are left out.
    """
    stats = pstats.Stats(prof, stream=io.StringIO())
    rows = []
    for (filename, line, func), (_cc, nc, tt, ct, _callers) in stats.stats.items():
        short = filename
        for marker in ("site-packages/", f"{REPO}/", "/lib/python3.11/"):
            if marker in filename:
                short = filename.split(marker, 1)[1]
                break
        rows.append((ct, tt, nc, f"{short}:{line}({func})"))
    rows.sort(key=(lambda r: r[0]) if by == "cumulative" else (lambda r: r[1]), reverse=True)
    skip = ("{built-in method builtins.exec}", "<string>", "cProfile")
    shown = [(ct, tt, nc, name) for ct, tt, nc, name in rows
             if not any(s in name for s in skip) and not name.startswith("bench/")][:n]
    return table(["cumulative s", "own s", "calls", "function"], "rrrl",
                 [(f"{ct:.3f}", f"{tt:.3f}", nc, f"`{name}`") for ct, tt, nc, name in shown])


SAVEPOINT = re.compile(r'"s\d+_x\d+"')


def statement_table(statements: dict[tuple[str, str], list], per: int,
                    scope_names: dict[str, str], unit: str = "op") -> str:
    """A Breakdown's SQL statements per ``unit``, slowest first, savepoint names folded."""
    merged: dict[tuple[str, str], list] = {}
    for (scope, sql), (count, secs) in statements.items():
        row = merged.setdefault((scope_names.get(scope, scope), SAVEPOINT.sub('"<sp>"', sql)),
                                [0, 0.0])
        row[0] += count
        row[1] += secs
    return table(["Where", f"per {unit}", f"ms per {unit}", "statement (start)"], "lrrl",
                 [(scope, f"{count / per:.1f}", f"{1000 * secs / per:.2f}", f"`{sql}`")
                  for (scope, sql), (count, secs) in sorted(merged.items(),
                                                            key=lambda kv: -kv[1][1])])


def own_seconds(prof, needle: str | None = None) -> float:
    """Own CPU time of the profiled functions whose name contains ``needle`` (all: None)."""
    stats = pstats.Stats(prof, stream=io.StringIO())
    return sum(tt for (_, _, func), (_, _, tt, _, _) in stats.stats.items()
               if needle is None or needle in func)


OTHER = "Everything else (Django's other parts, Python's standard library)"


def _area(where: str, areas) -> str:
    for label, needles in areas:
        if any(needle in where for needle in needles):
            return label
    return OTHER


def own_by_area(prof, areas: Sequence[tuple[str, tuple[str, ...]]]) -> list[tuple[str, float]]:
    """Own CPU time (cProfile) grouped by where the code lives: (label, needles in its path).

    A built-in's time (``len``, ``str.join``, a C method) goes to the code that
    called it, in proportion to the time cProfile recorded per caller.  The list
    ends with everything else, then the total.
    """
    stats = pstats.Stats(prof, stream=io.StringIO())
    totals: dict[str, float] = {label: 0.0 for label, _ in areas}
    totals[OTHER] = 0.0
    for (filename, _line, func), (_cc, _nc, tt, _ct, callers) in stats.stats.items():
        if filename == "~" and callers:
            caller_tt = {caller: v[2] for caller, v in callers.items()}
            spread = sum(caller_tt.values())
            for (cfile, _cline, cfunc), ctt in caller_tt.items():
                share = tt * (ctt / spread if spread else 1 / len(caller_tt))
                totals[_area(f"{cfile}:{cfunc}", areas)] += share
        else:
            totals[_area(f"{filename}:{func}", areas)] += tt
    out = sorted(((k, v) for k, v in totals.items() if k != OTHER), key=lambda kv: -kv[1])
    out.append((OTHER, totals[OTHER]))
    out.append(("Total", sum(totals.values())))
    return out


# ------------------------------------------------------------------ machine


def _run_text(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=20,
                              cwd=REPO).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine_info() -> dict:
    """The machine, the versions and the commit measured (PostgreSQL's is added once connected)."""
    import django
    import gunicorn

    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown")
    meminfo = Path("/proc/meminfo").read_text()
    mem_kb = int(re.search(r"MemTotal:\s+(\d+)", meminfo).group(1))
    commit = _run_text(["git", "rev-parse", "--short", "HEAD"]) or "unknown"
    dirty = bool(_run_text(["git", "status", "--porcelain", "--untracked-files=no"]))
    return {
        "nproc": _run_text(["nproc"]) or str(os.cpu_count()),
        "cpu": model,
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "python": platform.python_version(),
        "django": django.get_version(),
        "gunicorn": gunicorn.__version__,
        "kernel": platform.release(),
        "commit": commit + (" (with uncommitted changes)" if dirty else ""),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "loadavg_start": Path("/proc/loadavg").read_text().split()[:3],
    }


def loadavg() -> list[str]:
    return Path("/proc/loadavg").read_text().split()[:3]


def _machine_section(res: Results) -> list[str]:
    m = res.machine
    rows = [(label, m.get(key, "?")) for label, key in (
        ("Date", "date"), ("Git commit", "commit"), ("Cores (`nproc`)", "nproc"), ("CPU", "cpu"),
        ("Memory", "memory"), ("Kernel", "kernel"), ("Python", "python"), ("Django", "django"),
        ("gunicorn", "gunicorn"), ("PostgreSQL", "postgres"))]
    rows.append(("Load average at start / end", f"{' '.join(m.get('loadavg_start', []))} / "
                 f"{' '.join(m.get('loadavg_end', []))}"))
    rows.append(("Whole bench wall time", f"{res.finished - res.started:.0f} s"))
    lines = ["## Machine and versions", "", table(["", ""], "ll", rows), ""]
    if res.send_rounds:
        others = [r[k]["other_cores"] for r in res.send_rounds for k in ("send", "trivial")]
        lines.append(
            f"The machine is small and shared: during the HTTP trials {min(others):.2f} to "
            f"{max(others):.2f} of the {m.get('nproc')} cores were busy with work not attributed "
            "to the bench's processes (other tenants, kernel threads; column 'Unattributed CPU' "
            "below), and the load average shows more.  Absolute numbers therefore move between "
            "runs; the "
            "ratios, each against a baseline measured seconds apart, are what the targets are "
            "about, and the CPU-cost figures (CPU time per request, by process) are the least "
            "sensitive to that noise.  The load generator, PostgreSQL, the SMTP sink and the "
            "servers all share the same cores.")
    lines.append("")
    return lines


# ------------------------------------------------------------------- report


def write_report(res: Results, path: Path, parts: Sequence[Part]) -> None:
    """Write the page: Results, Machine and versions, Method, Rounds, Profiles, Notes."""
    cfg = res.config
    parts = [part for part in parts if part.ran(res)]
    lines: list[str] = []
    add = lines.append
    add("# Benchmarks")
    add("")
    add("Written by `make bench` (`bench/run.py`) from the run described below; do not edit by "
        "hand, run it again.  Each Hushpost number is measured against a baseline measured in "
        "the same run on the same machine, the trials of a measurement and its baseline "
        "alternating; ratios are the median of the per-round ratios.")
    add("")
    add("## Results")
    add("")
    add(table(["What", "Hushpost", "Baseline", "Ratio", "Target", "Result"], "lrrrrl",
              [row for part in parts for row in part.results(res)]))
    add("")
    # One paragraph each.
    lines += [f"{text}\n" for part in parts if (text := part.cross_check(res))]
    lines += _machine_section(res)
    add("## Method")
    add("")
    add(f"* **Database and settings.** A fresh PostgreSQL database `{cfg.database}` on "
        "127.0.0.1:5432, migrated, dropped at the end.  Production settings: "
        "`HUSHPOST_MODE=production`, random secret and master keys, "
        "`HUSHPOST_EMAIL_URL=smtp://127.0.0.1:<sink>`, `HUSHPOST_SECURE_COOKIES=false` (plain "
        "HTTP on loopback), `HUSHPOST_BASE_URL=http://127.0.0.1:<port>`.  All traffic stays on "
        "127.0.0.1.")
    lines += [text for part in parts if (text := part.method(res))]
    add("* **CPU accounting.** Over each measured window the bench samples utime+stime from "
        "`/proc` every 0.1 s for the gunicorn master and workers, PostgreSQL's processes (its "
        f"background processes and the backends connected to `{cfg.database}`, not those of "
        "other databases), the load clients, the worker processes and the sink, and the "
        "machine's busy time from `/proc/stat`.")
    if {"notify", "inbox"} & res.summary.keys():
        add("* **Experiments** (reported beside the targets, never in their ratios): in (b), the "
            "same worker with PostgreSQL's `synchronous_commit=off` for its session (through "
            "`PGOPTIONS`, no product change); in (c), after the measured rounds, a candidate "
            "index created in the bench's throwaway database and dropped again before the "
            "profiles.")
    if res.profiles:
        add("* **Profiles.** After the measurements each path runs again in-process against the "
            "same database (Django's test client for the pages, `db_worker`'s `Worker` for "
            "delivery): once with timers around chosen functions and every SQL statement, "
            "COMMIT and connection health check counted and timed (unprofiled), once under "
            "cProfile.")
    add("")
    add("## Rounds")
    add("")
    lines += [text for part in parts if (text := part.rounds(res))]
    if res.profiles:
        add("## Profiles: what bounds each number")
        add("")
    for text in res.profiles.values():
        add(text)
        add("")
    notes = [*res.notes, *(note for part in parts if (note := part.note(res)))]
    if res.quick:
        notes.append("Run with --quick: shorter trials and a smaller large inbox; not a full run.")
    if notes:
        add("## Notes")
        add("")
        lines += [f"* {note}" for note in notes]
        add("")
    add("## Running it")
    add("")
    add("```sh")
    took = "" if res.quick else f" (this one: {(res.finished - res.started) / 60:.0f} minutes)"
    add(f"make bench                                    # the full run{took}")
    add(".venv/bin/python bench/run.py --quick         # shorter trials, smaller inbox; not for the record")
    add(".venv/bin/python bench/run.py --no-profile    # measurements only")
    add(".venv/bin/python bench/run.py --only h        # one part (or several: --only a,c)")
    add("```")
    add("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
