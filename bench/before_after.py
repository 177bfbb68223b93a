"""Before/after: each bench against an earlier revision and this tree, interleaved in one run.

A restructuring should leave every figure where it was. Figures from different runs do not
compare on this machine (its speed varies by the hour with what else runs: docs/scaling.md), so
this script measures both sides in the same run, each bench's runs interleaved, and says per
figure whether the change is within the noise the repeats themselves show.

How:

* BEFORE (``--before``, default ``DEFAULT_BEFORE``: the last commit before issue 14's
  restructuring) is checked out as a git worktree in ``.run/bench-before/`` (ignored; made
  once, moved to another revision when asked). AFTER is this work tree as it is, uncommitted
  changes included, or ``--after REV`` in ``.run/bench-after/``.
* The instrument is one: this tree's ``bench/*.py`` runs for both sides, so only the code
  measured differs. Each side imports its own code: the bench runs with its tree as the working
  directory and first on ``PYTHONPATH``, which every subprocess it starts inherits (the
  ingester, the API and its workers, the gateway); the shared venv's editable install comes
  after both on ``sys.path``. Checked before anything is measured: the ``__file__`` of
  wastebank, api, gateway, ingest and firmware_sim must lie in the side's tree.
* Each side has services of its own (Mosquitto, InfluxDB, PostgreSQL when a bench needs it):
  ``WASTEBANK_RUN_DIR`` is ``.run/bench-compare/<side>/``, where its ``services up`` picks free
  ports (wastebank/services.py, ``claim_ports``). So both sides start from the same fresh
  daemons, and the checkout's own services and data, which the test suite uses, are not touched.
  The caller's other ``WASTEBANK_*`` variables are dropped: both sides run on the defaults.
  Both sides' services are stopped at the end (``--keep-services`` leaves them).
* Runs are interleaved per bench in ABBA order (before, after, after, before, ...): load that
  drifts during the run falls on both sides alike, a linear drift exactly.
* Noise is the spread between repeats of one side: for each figure and side, (max - min) /
  median of its repeats; the noise of the figure is the larger of the two sides', and at least
  MIN_NOISE. A change is *within noise* when |after / before - 1| <= that noise; else it is
  *better* or *WORSE* by the figure's direction. Two repeats (the default) give a rough
  estimate; ``--repeats 3`` or more a steadier one. Figures marked *control* use no project code
  (raw clients, a bare server, the daemons); a control beyond noise means the machine changed
  under the run, not the code.

Output: per bench a table (median before, median after, ratio, noise, verdict) on stdout, the
same as Markdown for docs/scaling.md and every value in JSON, with each run's own output, under
``.run/bench-compare/results/<time>/``. Progress (and the benches' own) on stderr. Exit status
1 when a run failed or a figure is missing, else 0 (a WORSE verdict is a finding, not an error).

    .venv/bin/python bench/before_after.py [--before REV] [--after REV] [--quick]
        [--repeats 2] [--benches ingest,api,gateway,reports] [--args 'reports=--runs 9']
    make bench-compare BEFORE=<rev> [QUICK=1] [REPEATS=3] [BENCHES=ingest,api]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import signal
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parents[1]
DEFAULT_BEFORE = "ad8eca3"  # the last commit before issue 14's restructuring
DEFAULT_BENCHES = ("ingest", "api", "gateway", "reports")  # what issue 14 compares
PACKAGES = ("wastebank", "api", "gateway", "ingest", "firmware_sim")
WORK = REPO / ".run"
NUMBER = r"([0-9][0-9,]*(?:\.[0-9]+)?)"
# A steady figure (an RSS) repeats to the tenth of a MB, yet moves by a few tenths of a per cent
# when the code imports a module more or less: no change anyone would act on. A lazy import made
# eager shows as several per cent (SQLAlchemy alone is ~25 MB of the ingester's ~100).
MIN_NOISE = 0.01


def say(text: str) -> None:
    print(f"[before/after] {text}", file=sys.stderr, flush=True)


# ---- what each bench prints, and which figures matter ------------------------------------------


@dataclass(frozen=True)
class Figure:
    """One number in a bench's output: the first group of ``pattern`` (multiline), searched in
    the block that starts at the line matching ``section`` (up to the next blank line)."""

    label: str
    pattern: str
    unit: str
    higher_is_better: bool
    control: bool = False
    section: str | None = None

    def read(self, text: str) -> float | None:
        if self.section is not None:
            block = re.search(rf"^{self.section}.*?(?:\n\s*\n|\Z)", text, re.M | re.S)
            if block is None:
                return None
            text = block.group(0)
        found = re.search(self.pattern, text, re.M)
        return float(found.group(1).replace(",", "")) if found else None


@dataclass(frozen=True)
class Bench:
    name: str
    script: str  # under bench/
    figures: tuple[Figure, ...]
    needs_postgresql: Callable[[Sequence[str]], bool] = lambda _args: False


def lower(label: str, pattern: str, unit: str, control: bool = False, **kw: str) -> Figure:
    return Figure(label, pattern, unit, False, control, **kw)


def higher(label: str, pattern: str, unit: str, control: bool = False) -> Figure:
    return Figure(label, pattern, unit, True, control)


def _rate(label: str, what: str, control: bool = False) -> Figure:
    # bench/ingest.py Figure.line; an INCOMPLETE line does not match: a missing figure
    return higher(what, rf"^\s*{label}\s+[\d,]+ in\s+[\d.]+ s\s+{NUMBER} /s$", "/s", control)


def _api_row(label: str, column: int, what: str, control: bool = False) -> Figure:
    # bench/api.py _row: req/s, p50 ms, p99 ms, errors, CPU ms/req
    cells = [r"[\d,.]+"] * column + [NUMBER]
    pattern = rf"^\s*{label}\s+" + r"\s+".join(cells)
    return higher(what, pattern, "req/s", control) if column == 0 else lower(what, pattern, "ms")


def _mixed_p50(section: str, kind: str) -> Figure:
    # bench/api.py report_mixed: offered, answered, ok, 503, other, timeout, p50, p99, max
    pattern = rf"^\s*{kind}\s+" + r"[\d,.]+\s+" * 6 + NUMBER
    return lower(f"{section}: {kind} p50", pattern, "ms", section=f"{section}: open loop")


def _mixed_cpu(section: str) -> Figure:
    pattern = rf"^{section}: open loop.*API CPU {NUMBER} ms/request"
    return lower(f"{section}: API CPU per request", pattern, "ms")


def _median(label: str, what: str, control: bool = False) -> Figure:
    # bench/reports.py figures(): "median N ms, min ..."
    return lower(what, rf"{label}.*?median {NUMBER} ms", "ms", control)


def _option(args: Sequence[str], name: str) -> str | None:
    """The value of ``--name value`` or ``--name=value`` in ``args`` (the last one wins)."""
    value = None
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(name + "="):
            value = arg.split("=", 1)[1]
    return value


def _reports_backend(args: Sequence[str]) -> bool:
    # bench/reports.py: PostgreSQL unless --backend sqlite, or --quick (SQLite) without --backend
    default = "sqlite" if "--quick" in args else "postgresql"
    return (_option(args, "--backend") or default) == "postgresql"


PEAK, UNLOADED = r"peak \(\d+ conns\)", r"unloaded \(1 conn\)"
INGEST = (
    _rate(r"raw aiomqtt receive, QoS 1", "raw aiomqtt receive", True),
    _rate(r"raw paho-mqtt receive, QoS 1 \(threaded loop\)", "raw paho-mqtt receive", True),
    _rate(r"raw InfluxDB /write, [\d,]+-line batches", "raw InfluxDB /write", True),
    _rate(r"ingester telemetry end to end", "telemetry end to end"),
    _rate(r"ingester deposits end to end \(SQLite ledger\)", "deposits end to end"),
    lower("backlog drain", rf"^\s*backlog drain \(.*\)\s+[\d,]+ in\s+{NUMBER} s", "s"),
    _rate(r"2 telemetry ingesters, shared subscription", "2 ingesters sharing"),
    lower("ingester peak RSS", rf"^\s*ingester peak RSS\s+{NUMBER} MB", "MB"),
    lower("ingester idle RSS", rf"idle, just subscribed: {NUMBER} MB", "MB"),
    lower("telemetry ingester peak RSS", rf"ingester 1 \(shared\) peak RSS\s+{NUMBER}", "MB"),
    lower("ingester start to subscribed", rf"start to subscribed \(in backlog\)\s+{NUMBER}", "s"),
)
API = (
    _api_row(r"client ceiling \(\d+ conns\)", 0, "client ceiling", True),
    _api_row(r"bare uvicorn ASGI \(\d+ conns\)", 0, "bare uvicorn", True),
    _api_row(f"balance: {UNLOADED}", 1, "balance unloaded p50"),
    _api_row(f"balance: {PEAK}", 0, "balance peak"),
    _api_row(f"balance: {PEAK}", 4, "balance CPU per request"),
    _api_row(f"statement: {UNLOADED}", 1, "statement unloaded p50"),
    _api_row(f"statement: {PEAK}", 0, "statement peak"),
    _api_row(f"statement: {PEAK}", 4, "statement CPU per request"),
    lower("login p50 (argon2id)", rf"POST /api/token \(argon2id\)\s+{NUMBER}", "ms"),
    _mixed_cpu("reads"),
    _mixed_cpu("mixed"),
    _mixed_p50("mixed", "balance"),
    _mixed_p50("mixed", "deposit"),
    _mixed_p50("mixed", "withdrawal"),
    _mixed_cpu("storm"),
    lower("API RSS, all workers", rf"API processes RSS after the runs .*\s{NUMBER} MB", "MB"),
    lower("seeding", rf"seeding \(bulk, schema and demo city included\)\s+{NUMBER} s", "s"),
)
GATEWAY = (
    lower("bare pyserial RSS", rf"bare pyserial reader\s+{NUMBER}", "MB", True),
    lower("bare pyserial CPU", rf"bare pyserial reader\s+[\d.]+\s+{NUMBER}", "% core", True),
    lower("gateway RSS", rf"^\s*wastebank gateway\s+{NUMBER}", "MB"),
    lower("gateway CPU", rf"^\s*wastebank gateway\s+[\d.]+\s+{NUMBER}", "% core"),
    lower("+ attendant endpoint RSS", rf"local attendant endpoint\s+{NUMBER}", "MB"),
    lower("+ attendant endpoint CPU", rf"attendant endpoint\s+[\d.]+\s+{NUMBER}", "% core"),
    lower("+ attendant page in use RSS", rf"attendant page in use\s+{NUMBER}", "MB"),
    lower("+ attendant page in use CPU", rf"attendant page in use\s+[\d.]+\s+{NUMBER}", "% core"),
    higher("raw aiomqtt publish", rf"raw aiomqtt publish\s+{NUMBER} msg/s", "/s", True),
    higher("outbox drain", rf"gateway outbox drain\s+{NUMBER} msg/s", "/s"),
)
REPORTS = (
    lower("ledger data written", rf"^data: [\d,]+ deposits in \w+: {NUMBER} s", "s"),
    lower("daily summary rebuilt", rf"\(deposit_day\): [\d,]+ rows in {NUMBER} s", "s"),
    _median(r"baseline, from the daily summary", "report from deposit_day"),
    _median(r"from the monthly roll-up", "report from deposit_month"),
    lower("TPA-bound on read", rf"raw readings \(tps.pickups\): {NUMBER} ms", "ms"),
    _median(r"floor of any on-read path", "InfluxDB count()", True),
    _median(r"from the seeded journal", "TPA-bound, seeded journal"),
    lower("rebuild-pickups", rf"rebuild-pickups for the year: {NUMBER} s", "s"),
    _median(r"from the rebuilt journal", "TPA-bound, rebuilt journal"),
)
LEDGER = (
    higher("savepoint path, new", rf"per deposit\s+{NUMBER}\s+[\d,]+$", "/s"),
    higher("savepoint path, replayed", rf"per deposit\s+[\d,]+\s+{NUMBER}$", "/s"),
    higher("batch path, new", rf"multi-row INSERTs\)\s+{NUMBER}\s+[\d,]+$", "/s"),
    higher("batch path, replayed", rf"multi-row INSERTs\)\s+[\d,]+\s+{NUMBER}$", "/s"),
)
BENCHES = {
    b.name: b
    for b in (
        Bench("ingest", "ingest.py", INGEST),
        Bench("api", "api.py", API, lambda args: _option(args, "--ledger") == "postgresql"),
        Bench("gateway", "gateway_footprint.py", GATEWAY),
        Bench("reports", "reports.py", REPORTS, _reports_backend),
        Bench("ledger", "ledger.py", LEDGER),
    )
}


# ---- the two sides ----------------------------------------------------------------------------


def git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@dataclass(frozen=True)
class Side:
    name: str  # before / after
    tree: Path
    described: str  # what the tree holds, for the report

    @property
    def run_dir(self) -> Path:
        return WORK / "bench-compare" / self.name

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("WASTEBANK_")}
        env["PYTHONPATH"] = os.pathsep.join(
            [str(self.tree), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
        env["WASTEBANK_RUN_DIR"] = str(self.run_dir)
        return env


def worktree(name: str, rev: str) -> Side:
    """``rev`` checked out in ``.run/bench-<name>/`` (a detached worktree of this repository)."""
    sha = git("rev-parse", "--verify", f"{rev}^{{commit}}")
    where = WORK / f"bench-{name}"
    git("worktree", "prune")  # a worktree whose folder went (make clean) is forgotten
    if not where.exists():
        say(f"{name}: git worktree add {where.relative_to(REPO)} {sha[:10]}")
        where.parent.mkdir(parents=True, exist_ok=True)
        git("worktree", "add", "--detach", str(where), sha)
    elif git("rev-parse", "HEAD", cwd=where) != sha:
        say(f"{name}: {where.relative_to(REPO)} moves to {sha[:10]}")
        git("checkout", "--quiet", "--force", "--detach", sha, cwd=where)
    subject = git("log", "-1", "--format=%h %s", sha)
    return Side(name, where, textwrap.shorten(subject, 100))


def this_tree(name: str) -> Side:
    head = textwrap.shorten(git("log", "-1", "--format=%h %s"), 80)
    dirty = git("status", "--porcelain")
    return Side(name, REPO, f"this work tree: {head}" + (" + uncommitted changes" if dirty else ""))


CHECK_IMPORTS = (
    f"import {', '.join(PACKAGES)}\nfor m in ({', '.join(PACKAGES)}): print(m.__name__, m.__file__)"
)


def check_imports(side: Side) -> None:
    """Each package the benches run comes from the side's own tree, in a process started as the
    benches start theirs."""
    out = subprocess.run(
        [sys.executable, "-c", CHECK_IMPORTS],
        cwd=side.tree,
        env=side.env(),
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for line in out.splitlines():
        name, path = line.split(" ", 1)
        if not Path(path).resolve().is_relative_to(side.tree):
            raise SystemExit(f"{side.name}: {name} comes from {path}, not from {side.tree}")
    wastebank = dict(line.split(" ", 1) for line in out.splitlines())["wastebank"]
    say(f"{side.name}: wastebank.__file__ = {wastebank}")


def services(side: Side, action: str, postgresql: bool = False) -> None:
    """`wastebank services up|down` of the side's own code, in its own run directory."""
    cmd = [str(Path(sys.executable).parent / "wastebank"), "services", action]
    if action == "up" and postgresql:
        cmd += ["--with", "postgresql"]
    say(f"{side.name}: services {action}{' --with postgresql' if postgresql else ''}")
    done = subprocess.run(cmd, cwd=side.tree, env=side.env(), capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{side.name}: {shlex.join(cmd[1:])} failed:\n{done.stderr[-3000:]}")


def compile_tree(side: Side) -> None:
    """Byte-compile the side's packages now, so that neither side's first run pays for it."""
    paths = [str(side.tree / p) for p in PACKAGES if (side.tree / p).is_dir()]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *paths], check=False)


# ---- running ----------------------------------------------------------------------------------


@dataclass
class Sample:
    side: str
    repeat: int
    seconds: float
    exit_code: int
    load_before: float
    output: Path
    values: dict[str, float | None] = field(default_factory=dict)


def _relay(stream: IO[bytes], log: IO[bytes], tag: str) -> None:
    for raw in stream:
        log.write(raw)
        text = raw.decode(errors="replace").rstrip()
        if text:
            print(f"  {tag} | {text}", file=sys.stderr, flush=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT first: a bench stops the processes it started in its own ``finally`` (some in
    sessions of their own, which a signal to its group would not reach); then SIGKILL."""
    for sig, wait_s in ((signal.SIGINT, 60.0), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(wait_s)
            return


def run_bench(
    bench: Bench, side: Side, repeat: int, args: Sequence[str], out_dir: Path, timeout_s: float
) -> Sample:
    """One run of ``bench`` for ``side``: this tree's script, the side's code and services."""
    out = out_dir / f"{bench.name}-{side.name}-{repeat}.out"
    cmd = [sys.executable, str(REPO / "bench" / bench.script), *args]
    load, t0 = os.getloadavg()[0], time.monotonic()
    with out.open("wb") as stdout, out.with_suffix(".err").open("wb") as stderr:
        proc = subprocess.Popen(
            cmd,
            cwd=side.tree,
            env=side.env(),
            stdout=stdout,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own group: a timeout stops the ingesters, API, ...
        )
        assert proc.stderr is not None
        relay = threading.Thread(
            target=_relay, args=(proc.stderr, stderr, f"{bench.name} {side.name} #{repeat}")
        )
        relay.start()
        try:
            code = proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            say(f"{bench.name} {side.name} #{repeat}: still running after {timeout_s:.0f} s")
            stop(proc)
            code = proc.returncode
        except KeyboardInterrupt:
            stop(proc)
            raise
        finally:
            relay.join()
    text = out.read_text(errors="replace")
    sample = Sample(side.name, repeat, time.monotonic() - t0, code, load, out)
    sample.values = {f.label: f.read(text) for f in bench.figures}
    return sample


def command(bench: Bench, args: Sequence[str]) -> str:
    return shlex.join([f"bench/{bench.script}", *args])


def bench_args(bench: Bench, quick: bool, extra: dict[str, list[str]]) -> list[str]:
    return (["--quick"] if quick else []) + extra.get(bench.name, [])


def interleaved(
    sides: tuple[Side, Side], repeats: int, run: Callable[[Side, int], Sample]
) -> list[Sample]:
    """ABBA: before, after, after, before, ...; a drift of the machine's speed during the
    run then falls on both sides alike (a linear one exactly, with an even number of repeats)."""
    samples = []
    for repeat in range(1, repeats + 1):
        for side in sides if repeat % 2 else sides[::-1]:
            samples.append(run(side, repeat))
    return samples


# ---- comparing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    figure: Figure
    before: list[float]
    after: list[float]

    @staticmethod
    def spread(values: list[float]) -> float | None:
        """(max - min) / median of one side's repeats: what the same code varies by."""
        if len(values) < 2 or not statistics.median(values):
            return None
        return (max(values) - min(values)) / abs(statistics.median(values))

    @property
    def ratio(self) -> float | None:
        if not self.before or not self.after or not statistics.median(self.before):
            return None
        return statistics.median(self.after) / statistics.median(self.before)

    @property
    def noise(self) -> float | None:
        spreads = [s for s in (self.spread(self.before), self.spread(self.after)) if s is not None]
        return max(MIN_NOISE, *spreads) if spreads else None

    @property
    def verdict(self) -> str:
        if not self.before or not self.after:
            return "MISSING " + " and ".join(
                side for side, v in (("before", self.before), ("after", self.after)) if not v
            )
        ratio, noise = self.ratio, self.noise
        if ratio is None or noise is None:
            return "? (one repeat: no noise estimate)"
        if abs(ratio - 1) <= noise:
            return "within noise"
        return "better" if (ratio > 1) == self.figure.higher_is_better else "WORSE"


def rows(bench: Bench, samples: list[Sample]) -> list[Row]:
    def values(side: str, label: str) -> list[float]:
        found = (s.values.get(label) for s in samples if s.side == side)
        return [v for v in found if v is not None]

    out = []
    for f in bench.figures:
        before, after = values("before", f.label), values("after", f.label)
        if before or after:  # neither: not measured in this mode (a quick run, a skipped part)
            out.append(Row(f, before, after))
    return out


def number(x: float | None) -> str:
    if x is None:
        return "-"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.1f}" if abs(x) >= 10 else f"{x:.2f}"


def cells(r: Row) -> list[str]:
    f = r.figure
    name = f"{f.label}{' (control)' if f.control else ''}"
    better = "higher" if f.higher_is_better else "lower"
    return [
        name,
        f"{f.unit}, {better} is better",
        number(statistics.median(r.before) if r.before else None),
        number(statistics.median(r.after) if r.after else None),
        "-" if r.ratio is None else f"{r.ratio:.3f}",
        "-" if r.noise is None else f"±{100 * r.noise:.1f} %",
        r.verdict,
    ]


HEADER = ["figure", "unit", "before", "after", "after/before", "noise", "verdict"]


def text_table(table: list[Row]) -> str:
    lines = [HEADER, *(cells(r) for r in table)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]
    right = {2, 3, 4, 5}
    return "\n".join(
        "  "
        + "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in lines
    )


def markdown_table(table: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(cells(r)) + " |" for r in table]
    return "\n".join(lines)


# ---- the run ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--before", default=DEFAULT_BEFORE, help=f"revision (default {DEFAULT_BEFORE})")
    ap.add_argument("--after", help="a revision instead of this work tree as it is")
    ap.add_argument("--quick", action="store_true", help="each bench's --quick (its short mode)")
    ap.add_argument("--repeats", type=int, default=2, help="runs per side and bench (default 2)")
    ap.add_argument(
        "--benches",
        default=",".join(DEFAULT_BENCHES),
        help=f"comma-separated, of {', '.join(BENCHES)} (default: {','.join(DEFAULT_BENCHES)})",
    )
    ap.add_argument(
        "--args",
        action="append",
        default=[],
        metavar="BENCH=ARGS",
        help="more options for one bench, e.g. 'reports=--backend sqlite' (repeatable)",
    )
    ap.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds one bench run may take at most"
    )
    ap.add_argument(
        "--keep-services", action="store_true", help="leave both sides' services running"
    )
    args = ap.parse_args(argv)
    args.benches = [b.strip() for b in args.benches.split(",") if b.strip()]
    unknown = sorted(set(args.benches) - set(BENCHES))
    if unknown:
        ap.error(f"unknown benches {unknown}: one of {', '.join(BENCHES)}")
    if args.repeats < 1:
        ap.error("--repeats must be at least 1")
    extra: dict[str, list[str]] = {}
    for item in args.args:
        name, sep, rest = item.partition("=")
        if not sep or name not in BENCHES:
            ap.error(f"--args {item!r}: BENCH=ARGS, BENCH one of {', '.join(BENCHES)}")
        extra.setdefault(name, []).extend(shlex.split(rest))
    args.extra = extra
    return args


@dataclass
class Outcome:
    bench: Bench
    args: list[str]
    samples: list[Sample]
    table: list[Row]

    @property
    def failed(self) -> list[Sample]:
        """Runs without a figure another run of the bench printed (a crash, a part that did not
        finish); an exit status alone is no failure (bench/reports.py's is its goal's)."""
        measured = {r.figure.label for r in self.table}
        return [s for s in self.samples if any(s.values.get(k) is None for k in measured)]


def compare(args: argparse.Namespace, sides: tuple[Side, Side], out_dir: Path) -> list[Outcome]:
    outcomes = []
    total = len(args.benches) * 2 * args.repeats
    done = 0
    for name in args.benches:
        bench = BENCHES[name]
        bargs = bench_args(bench, args.quick, args.extra)

        def one(side: Side, repeat: int, bench: Bench = bench, bargs: list[str] = bargs) -> Sample:
            nonlocal done
            done += 1
            say(f"run {done}/{total}: {bench.name} {side.name} #{repeat}: {command(bench, bargs)}")
            sample = run_bench(bench, side, repeat, bargs, out_dir, args.timeout)
            missing = [k for k, v in sample.values.items() if v is None]
            say(
                f"run {done}/{total}: {bench.name} {side.name} #{repeat}: {sample.seconds:.0f} s, "
                f"exit {sample.exit_code}" + (f", not in its output: {missing}" if missing else "")
            )
            return sample

        samples = interleaved(sides, args.repeats, one)
        outcomes.append(Outcome(bench, bargs, samples, rows(bench, samples)))
    return outcomes


def report(
    args: argparse.Namespace,
    sides: tuple[Side, Side],
    outcomes: list[Outcome],
    out_dir: Path,
    seconds: float,
) -> int:
    head = [
        f"Before/after, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
        f"{'quick' if args.quick else 'full'} mode, {args.repeats} run(s) per side and bench "
        f"(interleaved before/after/after/before...), {seconds / 60:.1f} min in all",
        *(f"{s.name}: {s.described}" for s in sides),
        "noise: (max - min) / median of one side's repeats, the larger side's, at least "
        f"{MIN_NOISE:.0%}; within noise when |after/before - 1| <= noise",
    ]
    text, md = ["", *head], [f"{line}  " for line in head]
    status = 0
    for o in outcomes:
        loads = ", ".join(f"{s.load_before:.1f}" for s in o.samples)
        title = f"{o.bench.name} ({command(o.bench, o.args)}; load at each run's start {loads})"
        text += ["", title, text_table(o.table)]
        md += ["", f"**{title}**", "", markdown_table(o.table)]
        for s in o.failed:
            status = 1
            line = f"  FAILED: {s.side} #{s.repeat}, exit {s.exit_code}: see {s.output}"
            text.append(line)
            md.append(line)
        if any(r.verdict.startswith("MISSING") for r in o.table):
            status = 1
    verdicts = [r.verdict for o in outcomes for r in o.table]
    worse = [
        f"{o.bench.name}: {r.figure.label}"
        for o in outcomes
        for r in o.table
        if r.verdict == "WORSE"
    ]
    drift = [
        f"{o.bench.name}: {r.figure.label}"
        for o in outcomes
        for r in o.table
        if r.figure.control and r.verdict in ("WORSE", "better")
    ]
    summary = [
        "",
        f"{verdicts.count('within noise')} of {len(verdicts)} figures within noise, "
        f"{verdicts.count('better')} better, {len(worse)} WORSE" + (f": {worse}" if worse else ""),
    ]
    if drift:
        summary.append(
            f"controls beyond noise (the machine, not the code): {drift}; more --repeats, or a "
            "quieter machine, before reading the rest"
        )
    text += summary
    md += summary
    print("\n".join(text))
    (out_dir / "compare.md").write_text("\n".join(md) + "\n")
    (out_dir / "results.json").write_text(
        json.dumps(
            {
                "sides": {s.name: {"tree": str(s.tree), "described": s.described} for s in sides},
                "mode": "quick" if args.quick else "full",
                "benches": {
                    o.bench.name: {
                        "args": o.args,
                        "runs": [
                            {
                                "side": s.side,
                                "repeat": s.repeat,
                                "seconds": round(s.seconds, 1),
                                "exit": s.exit_code,
                                "load": s.load_before,
                                "values": s.values,
                            }
                            for s in o.samples
                        ],
                    }
                    for o in outcomes
                },
            },
            indent=1,
        )
    )
    say(f"tables and every run's output: {out_dir.relative_to(REPO)}/ (compare.md, results.json)")
    return status


@contextlib.contextmanager
def running_services(sides: tuple[Side, Side], postgresql: bool, keep: bool) -> Iterator[None]:
    try:
        for side in sides:
            services(side, "up", postgresql)
        yield
    finally:
        if not keep:
            for side in sides:
                with contextlib.suppress(SystemExit):
                    services(side, "down")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.monotonic()
    before = worktree("before", args.before)
    after = worktree("after", args.after) if args.after else this_tree("after")
    sides = (before, after)
    for side in sides:
        say(f"{side.name}: {side.described}")
        check_imports(side)
        compile_tree(side)
    postgresql = any(
        BENCHES[b].needs_postgresql(bench_args(BENCHES[b], args.quick, args.extra))
        for b in args.benches
    )
    out_dir = WORK / "bench-compare" / "results" / datetime.now(UTC).strftime("%Y%m%d-%H%M%SZ")
    out_dir.mkdir(parents=True)
    with running_services(sides, postgresql, args.keep_services):
        outcomes = compare(args, sides, out_dir)
    return report(args, sides, outcomes, out_dir, time.monotonic() - t0)


if __name__ == "__main__":
    # A SIGTERM (kill, a CI timeout) stops it like Ctrl-C: the processes it started (gateways,
    # ingesters, each bench's own) are stopped by its handlers instead of left running, where
    # a stale gateway reopens whatever pty now has its link's number.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    sys.exit(main())
