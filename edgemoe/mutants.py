"""Mutation testing of the RTL units and HLS kernels: does a small change fail their tests?

Each mutant changes one token of one source (a comparison or arithmetic operator, a constant
±1, a shift amount ±1, an arithmetic shift made logical, a rounding mode swapped). It is applied
to a copy of ``hw/rtl`` and ``hls`` in ``build/mutants/<id>/``; the unit's own tests then run
against that copy (``EDGEMOE_SOURCE_TREE``, see :func:`edgemoe.files.source_tree`) at tiny sizes,
stopping at the first failure. A mutant is *killed* when a test fails, also when its run
exceeds the time bound (counted as killed, marked "timed out"), and *survives* when every test
passes. ``build/mutants/report.md`` lists the counts per unit and every survivor; a survivor
the tests cannot see because it computes the same function is listed in
``edgemoe/mutants_equivalent.toml`` with the reason, and the report shows that reason.

The operators are textual (tokens with the spacing the sources are formatted with), so renamed
signals or parameters do not change what they find. Declarations, elaboration checks
(``$fatal``, ``static_assert``), pragmas and comments are never mutated: there a change either
cannot build or does not touch what the unit computes. Which mutants run is a seeded sample::

    python -m edgemoe.mutants --seed 1 --limit 130          # the campaign (make mutants)
    python -m edgemoe.mutants --only fxp_requant --list     # one unit's selected mutants
    python -m edgemoe.mutants --only fxp_requant --survivors  # its survivors again, after new tests

An RTL unit's run starts with its Verilator lint; HLS kernels build their C-simulation library
without the top. A crash of the test process or a design that refuses its parameters (``$fatal``
at elaboration, a ``static_assert``) also kills a mutant; a mutant that cannot build at all is
listed apart.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from edgemoe.csim_build import KERNELS_ONLY_ENV
from edgemoe.files import SOURCE_TREE_ENV, write_if_changed
from edgemoe.paths import BUILD, REPO
from edgemoe.rtl_sources import rtl_modules

OUT_DIR = BUILD / "mutants"
EQUIVALENT_FILE = Path(__file__).resolve().parent / "mutants_equivalent.toml"
COPIED = ("hw/rtl", "hls")  # the trees a mutant is applied to (a copy of each)


@dataclass(frozen=True)
class Unit:
    """A unit under mutation: the sources mutated and the tests that must see every change.

    ``tests`` are pytest arguments (node ids, ``-k``) chosen as the smallest runs that still
    cover the unit's paths: one simulator build or one C-simulation library per case.
    """

    name: str
    sources: tuple[str, ...]
    tests: tuple[str, ...]


_NL = "sim/nonlinear_unit/test_nonlinear_unit.py::test_nonlinear_unit"


def _linted(unit: Unit) -> Unit:
    """``unit`` with ``verilator --lint-only -Wall`` of its modules first: a mutant that indexes
    past a vector or truncates a value simulates without a sign but fails the lint."""
    if not unit.sources[0].startswith("hw/rtl/"):
        return unit
    modules = [Path(s).stem for s in unit.sources if Path(s).stem in rtl_modules()]
    # a package is linted inside a module that uses it
    lint = [f"tests/hw/test_rtl_lint.py::test_lint_clean[{m}-tiny]" for m in modules or ["nonlinear_unit"]]
    return Unit(unit.name, unit.sources, (*lint, *unit.tests))


UNITS = {
    u.name: _linted(u)
    for u in (
        Unit("fxp_requant", ("hw/rtl/fxp_requant.sv",), ("sim/fxp_requant/test_fxp_requant.py",)),
        Unit("const_div", ("hw/rtl/const_div.sv",), ("sim/const_div/test_const_div.py::test_const_div",)),
        Unit(
            "exp_lane",
            ("hw/rtl/exp_lane.sv",),
            (
                f"{_NL}[exp-1]",
                "sim/nonlinear_unit/test_nonlinear_unit.py::test_exp_at_the_ends_of_its_formats",
            ),
        ),
        Unit("recip_lane", ("hw/rtl/recip_lane.sv",), (f"{_NL}[recip-1]",)),
        Unit("rsqrt_lane", ("hw/rtl/rsqrt_lane.sv",), (f"{_NL}[rsqrt-1]",)),
        Unit(
            "fxp_func_pkg",
            ("hw/rtl/fxp_func_pkg.sv",),
            (f"{_NL}[exp-1]", f"{_NL}[recip-1]", f"{_NL}[rsqrt-1]"),
        ),
        Unit(
            "nonlinear_unit",
            ("hw/rtl/nonlinear_unit.sv", "hw/rtl/stream_stage.sv"),
            # the parameter defaults of every function, and of an output that wraps
            (
                f"{_NL}[exp-4]",
                f"{_NL}[recip-4]",
                f"{_NL}[rsqrt-4]",
                "sim/nonlinear_unit/test_nonlinear_unit.py::test_reciprocal_that_wraps",
            ),
        ),
        Unit(
            "gelu_unit",
            ("hw/rtl/gelu_lane.sv", "hw/rtl/gelu_unit.sv"),
            (
                "sim/gelu_unit/test_gelu_unit.py::test_gelu_unit[3]",
                "sim/gelu_unit/test_gelu_unit.py::test_gelu_unit_table_read_without_interpolation",
            ),
        ),
        Unit(
            "softmax_state",
            ("hw/rtl/softmax_state.sv",),
            ("sim/softmax_state/test_softmax_state.py::test_softmax_state[2]",),
        ),
        Unit(
            "layernorm_unit",
            ("hw/rtl/layernorm_unit.sv",),
            (
                "sim/layernorm_unit/test_layernorm_unit.py::test_layernorm_unit[8-0]",
                "sim/layernorm_unit/test_layernorm_unit.py::test_layernorm_unit[8-4]",
            ),
        ),
        Unit(
            "linear_unit",
            ("hw/rtl/linear_unit.sv",),
            ("sim/linear_unit/test_linear_unit.py::test_linear_unit[in8_out8]",),
        ),
        Unit(
            "moe_router",
            ("hw/rtl/moe_router.sv", "hw/rtl/topk_insert.sv"),
            ("sim/moe_router/test_moe_router.py::test_moe_router[e4k2]",),
        ),
        Unit(
            "attention_unit",
            ("hw/rtl/attention_unit.sv",),
            (  # two blocks per row, and four (a block counter that is more than one bit)
                "sim/attention_unit/test_attention_unit.py::test_attention_unit[2-8]",
                "sim/attention_unit/test_attention_unit.py::test_attention_unit[2-4]",
            ),
        ),
        *(
            Unit(f"hls_{k}", (f"hls/include/{k}.h",), (f"tests/hls/test_hls_{k}.py", "-k", "tiny"))
            for k in ("linear", "nonlinear", "layernorm", "attention", "moe", "patch_embed")
        ),
    )
}


@dataclass(frozen=True)
class Mutant:
    """One change: ``before`` at ``line``:``col`` (1-based) of ``path`` becomes ``after``."""

    unit: str
    path: str
    line: int
    col: int
    operator: str
    before: str
    after: str
    context: str  # the source line, stripped: identifies the mutant across line shifts

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"

    @property
    def key(self) -> str:
        return f"{self.where}:{self.before}->{self.after}"

    def apply(self, text: str) -> str:
        lines = text.split("\n")
        row = lines[self.line - 1]
        start = self.col - 1
        assert row[start : start + len(self.before)] == self.before, f"{self.where}: source moved"
        lines[self.line - 1] = row[:start] + self.after + row[start + len(self.before) :]
        return "\n".join(lines)


# ---- finding mutation points -----------------------------------------------------------------

_COMPARISONS = {"<=": "<", "<": "<=", ">=": ">", ">": ">=", "==": "!=", "!=": "=="}
_ARITHMETIC = {"+": "-", "-": "+"}
# Lines that declare or check rather than compute: a change there cannot build or is not seen.
# Integer localparams and constexpr ints are widths and counts: a wider one changes nothing.
_SKIP_SV = re.compile(
    r"^\s*(input|output|inout|parameter|logic|wire|typedef|import|module|package|localparam\s+int)\b"
    r"|\$fatal|\$error|\bassert\b|:\s*gen_bad"
)
_SKIP_CPP = re.compile(
    r"^\s*(#|typedef\b|template\b|struct\b|using\b|(static\s+)?constexpr\s+int\b)|static_assert"
)
# A bounded operand: identifier (with member access / scope), number, or a parenthesised group.
_OPERAND = r"(?:\((?:[^()]|\([^()]*\))*\)|[A-Za-z_][\w:.]*(?:\[[^\]]*\])?|\d+)"


def _blank_comments(text: str, sv: bool) -> str:
    """``text`` with comments and string literals replaced by spaces (positions kept)."""

    def blank(m: re.Match[str]) -> str:
        return re.sub(r"[^\n]", " ", m.group(0))

    text = re.sub(r'"(?:\\.|[^"\\\n])*"', blank, text)
    text = re.sub(r"/\*.*?\*/", blank, text, flags=re.S)
    return re.sub(r"//[^\n]*", blank, text)


def _depth(prefix: str, open_: str, close: str) -> int:
    return prefix.count(open_) - prefix.count(close)


def _in_width(line: str, start: int, end: int, sv: bool) -> bool:
    """Whether [start, end) lies in a width: an SV bit range or ``N'(…)`` size, a C++ template argument."""
    if sv:
        if _depth(line[:start], "[", "]") > 0:
            return True
        # a width given to an instance: .InBits(...), .OutBits(...)
        for m in reversed(list(re.finditer(r"\.(\w+)\(", line[:start]))):
            if _depth(line[m.end() : start], "(", ")") >= 0:
                if re.search(r"(Bits|Width)$", m.group(1)):
                    return True
                break
        # (A + 1)'(x): the size of a cast
        rest = line[end:]
        paren = 0
        for i, ch in enumerate(rest):
            if ch == "(":
                paren += 1
            elif ch == ")":
                if paren == 0:
                    return rest[i + 1 : i + 2] == "'"
                paren -= 1
            elif ch in ";,":
                return False
        return bool(re.match(r"\s*\w*'\(", rest)) if paren == 0 else False
    # C++: an open template bracket ("name<" without a space) not closed before start
    opens = [m.end() for m in re.finditer(r"\w<(?![<=])", line[:start])]
    for pos in reversed(opens):
        depth = 1
        for ch in line[pos:start]:
            depth += {"<": 0, ">": -1}.get(ch, 0)
        if depth > 0 and ">" in line[end:]:
            return True
    return False


def _is_sv_assignment(prefix: str) -> bool:
    """Whether a ``<=`` after ``prefix`` is a nonblocking assignment rather than a comparison."""
    prefix = re.sub(r"^\s*(end\s+)?(else\s+)?(if\s*\((?:[^()]|\([^()]*\))*\)\s*)?(begin\s+)?", "", prefix)
    return re.fullmatch(r"[\w.\[\]:'+\-\s]*", prefix) is not None


def candidates(unit: Unit, root: Path = REPO) -> list[Mutant]:
    """Every mutant of ``unit``'s sources, in source order."""
    found: list[Mutant] = []
    for rel in unit.sources:
        raw = (root / rel).read_text()
        sv = rel.endswith(".sv")
        code = _blank_comments(raw, sv).split("\n")
        for n, (line, source) in enumerate(zip(code, raw.split("\n"), strict=True), start=1):
            if (_SKIP_SV if sv else _SKIP_CPP).search(line) or not line.strip():
                continue
            ctx = source.strip()
            for op, col, before, after in _line_mutants(line, sv):
                found.append(Mutant(unit.name, rel, n, col + 1, op, before, after, ctx))
    return list({m.key: m for m in found}.values())  # two operators may make the same change


def _line_mutants(line: str, sv: bool) -> Iterator[tuple[str, int, str, str]]:
    # comparisons: spaced operators (template brackets and shifts are never spaced that way)
    for m in re.finditer(r"(?<=\s)(<=|>=|==|!=|<|>)(?=\s)", line):
        tok = m.group(1)
        if sv and tok == "<=" and _is_sv_assignment(line[: m.start()]):
            continue
        if not _in_width(line, m.start(), m.end(), sv):
            yield "comparison", m.start(), tok, _COMPARISONS[tok]
    # binary + and - between operands
    for m in re.finditer(r"(?<=[\w)\]'] )([+-])(?= [\w(])", line):
        if not _in_width(line, m.start(), m.end(), sv):
            yield "arithmetic", m.start(), m.group(1), _ARITHMETIC[m.group(1)]
    # shift amounts ±1, and arithmetic right shifts made logical (SV)
    for m in re.finditer(rf"(<<<|>>>|<<|>>) ({_OPERAND})", line):
        if _in_width(line, m.start(), m.end(), sv):
            continue
        start, amount = m.start(2), m.group(2)
        for d in ("+", "-"):
            yield "shift", start, amount, f"({amount} {d} 1)"
        if sv and m.group(1) == ">>>":
            yield "shift", m.start(1), ">>>", ">>"
    # decimal constants ±1 (not sizes of SV literals, not parts of names)
    for m in re.finditer(r"(?<![\w'.])(\d+)(?![\w'.])", line):
        if _in_width(line, m.start(), m.end(), sv):
            continue
        v = int(m.group(1))
        for w in (v + 1, v - 1):
            if w >= 0:
                yield "constant", m.start(), m.group(1), str(w)
    # single-bit literals flipped (SV flags such as 1'b1)
    if sv:
        for m in re.finditer(r"1'b([01])", line):
            yield "constant", m.start(), m.group(0), f"1'b{1 - int(m.group(1))}"
    # rounding: half-up flags negated, ap_fixed quantisation modes swapped
    for m in re.finditer(r"(?<![\w.])(\w*[Hh]alf_?[Uu]p\w*(?:<[^<>]*>::value)?)(?!\w|\s*[=(])", line):
        if not re.search(r"\b(bool|bit|int)\s+$", line[: m.start()]):
            yield "rounding", m.start(), m.group(1), f"!{m.group(1)}"
    for m in re.finditer(r"\bAP_(RND|TRN)\b", line):
        yield "rounding", m.start(), m.group(0), "AP_TRN" if m.group(1) == "RND" else "AP_RND"


def select(limit: int, seed: int, root: Path = REPO) -> list[Mutant]:
    """A seeded sample of about ``limit`` mutants over every unit, shared by the square root of
    their candidate counts (a large unit gets more, a small one is not starved).

    Each unit draws from its own generator (seed and unit name), so the sample of a unit does
    not depend on which units a run selects: ``--only`` reruns exactly the same mutants.
    """
    pools = {name: candidates(u, root) for name, u in UNITS.items()}
    weight = {name: math.sqrt(len(p)) for name, p in pools.items()}
    total = sum(weight.values())
    chosen: list[Mutant] = []
    for name, pool in pools.items():
        quota = min(len(pool), max(2, math.floor(limit * weight[name] / max(total, 1))))
        rng = random.Random(f"{seed}:{name}")
        chosen += sorted(rng.sample(pool, quota), key=lambda m: (m.path, m.line, m.col, m.after))
    return chosen


# ---- running ---------------------------------------------------------------------------------


_BUILD_FAILED = re.compile(r"C-simulation build for config .* failed|%Error[: -]|error: ", re.M)
# a build stopped by the design's own checks (an SV $fatal at elaboration, a C++ static_assert) on
# parameters the unmodified design accepts: the mutant is seen, not a mutant that cannot build
_DESIGN_REFUSED = re.compile(r"%Error-USERFATAL[^\n]*|static assertion failed[^\n]*")
# a simulation stopped by the design's own assertions (stream rules, bookkeeping): the mutant is seen
_ASSERTION_FIRED = re.compile(r"%Error: [^\n]*Assertion failed[^\n]*")


def _copy_tree(dest: Path, origin: Path = REPO) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    for rel in COPIED:
        shutil.copytree(origin / rel, dest / rel)


def run_tests(unit: Unit, tree: Path, timeout: float) -> tuple[str, float, str]:
    """Run ``unit``'s tests on the sources in ``tree``.

    Returns: "passed", "failed", "build failed", "timed out" or "error"; the seconds taken; why.
    """
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-m", "", *unit.tests]
    env = {**os.environ, SOURCE_TREE_ENV: str(tree), KERNELS_ONLY_ENV: "1"}  # kernel tests need no top
    start = time.monotonic()
    log = tree / "pytest.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            rc = None
        finally:  # on a timeout, and when the campaign itself is stopped
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    seconds = time.monotonic() - start
    text = log.read_text(errors="replace")
    if rc is None:
        return "timed out", seconds, f"no result after {timeout:.0f} s"
    if rc == 0:
        return "passed", seconds, ""
    if rc < 0:  # a test process stopped by a signal: e.g. a kernel's array index out of bounds
        return "failed", seconds, f"the test process was stopped by signal {-rc}"
    if rc != 1:
        return "error", seconds, f"pytest exit {rc}: " + " ".join(text.split("\n")[-3:])
    failed = [ln for ln in text.split("\n") if re.match(r"(FAILED|ERROR) \S+::", ln)]
    lint = [ln for ln in failed if "test_rtl_lint.py" in ln]
    if lint and not re.search(r"%Error(-\w+)?: (?!Exiting due to)", text):  # it builds; the lint warns
        return "failed", seconds, lint[0][:200]
    if refused := _DESIGN_REFUSED.search(text) or _ASSERTION_FIRED.search(text):
        return "failed", seconds, refused.group(0)[:200]
    if _BUILD_FAILED.search(text) and not re.search(r"AssertionError|Error: \S+ \[", text):
        return "build failed", seconds, (failed or [""])[0][:200]
    why = re.search(r"(AssertionError|CSimError|RtlBuildError)[^\n]*", text)
    return "failed", seconds, (why.group(0) if why else (failed or [""])[0])[:200]


def campaign(
    mutants: Sequence[Mutant],
    sources: Path,
    results: dict,
    save: Callable[[str, str, dict], None],
    timeout_factor: float,
    min_timeout: float,
) -> None:
    """Run the baseline of every unit involved, then each mutant in turn, recording into ``results``.

    ``results["baselines"][unit]`` and ``results["mutants"][mutant.key]`` hold the status, the
    seconds taken and why; ``save(part, key, record)`` stores each run at once, so a stopped
    campaign keeps what it ran. A baseline that passed on the same sources and tests (equal
    :func:`tree_digest`) is not run again.
    Every copy is made from ``sources``, the snapshot the mutants were selected from, so the
    checkout may change while a campaign runs (its tests are read from the checkout).
    """
    bounds: dict[str, float] = {}
    digest = tree_digest(sources)
    for name in dict.fromkeys(m.unit for m in mutants):
        known = results["baselines"].get(name, {})
        if known.get("status") == "passed" and known.get("digest") == digest:
            bounds[name] = max(min_timeout, timeout_factor * known["seconds"])
            print(
                f"baseline {name}: passed in {known['seconds']:.0f} s on these sources and tests", flush=True
            )
            continue
        tree = OUT_DIR / f"baseline-{name}"
        _copy_tree(tree, sources)
        status, seconds, detail = run_tests(UNITS[name], tree, timeout=3600)
        record = {"status": status, "seconds": round(seconds, 1), "detail": detail, "digest": digest}
        save("baselines", name, record)
        print(f"baseline {name}: {status} in {seconds:.0f} s {detail}", flush=True)
        if status == "passed":
            bounds[name] = max(min_timeout, timeout_factor * seconds)
            shutil.rmtree(tree)
    for i, m in enumerate(mutants, start=1):
        if m.unit not in bounds:
            continue  # a unit whose tests fail unmutated cannot judge its mutants
        tree = OUT_DIR / f"m{i:03d}-{m.unit}"
        _copy_tree(tree, sources)
        path = tree / m.path
        path.write_text(m.apply(path.read_text()))
        status, seconds, detail = run_tests(UNITS[m.unit], tree, bounds[m.unit])
        # "error" (pytest itself could not run) gives no verdict: listed with the mutants not built
        status = {"passed": "survived", "failed": "killed"}.get(status, status)
        status = "not built" if status in ("build failed", "error") else status
        save("mutants", m.key, {"status": status, "seconds": round(seconds, 1), "detail": detail})
        print(f"[{i}/{len(mutants)}] {status:9} {seconds:4.0f}s {m.key} ({m.operator})", flush=True)
        if status != "survived":
            shutil.rmtree(tree)  # survivors keep their mutated copy and log for a look


def tree_digest(sources: Path) -> str:
    """A hash of what a baseline depends on: the snapshot's sources and the checkout's Python
    (benches, tests, golden model, tools)."""
    h = hashlib.sha256()
    files = [p for rel in COPIED for p in sorted((sources / rel).rglob("*")) if p.is_file()]
    files += [
        p for d in ("sim", "tests", "golden", "edgemoe", "host") for p in sorted((REPO / d).rglob("*.py"))
    ]
    files = [p for p in files if p != Path(__file__).resolve()]  # the campaign itself is no test input
    for p in files:
        h.update(str(p.relative_to(sources if p.is_relative_to(sources) else REPO)).encode() + b"\0")
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


class ResultStore:
    """The results of one selection in a JSON file, shared by campaigns running side by side
    (``--only`` on disjoint units): every record is merged into the file under a lock."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict:
        if not self.path.is_file():
            return {"baselines": {}, "mutants": {}}
        return json.loads(self.path.read_text())

    def save(self, part: str, key: str, record: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = self.load()
            data[part][key] = record
            write_if_changed(self.path, json.dumps(data, indent=1, sort_keys=True))


def equivalents() -> list[dict[str, str]]:
    """The survivors argued equivalent: path, context (the stripped source line), before, after, reason."""
    if not EQUIVALENT_FILE.is_file():
        return []
    return tomllib.loads(EQUIVALENT_FILE.read_text()).get("mutant", [])


def _equivalent_reason(m: Mutant, known: list[dict[str, str]]) -> str | None:
    for e in known:
        if (e["path"], e["context"], e["before"], e["after"]) == (m.path, m.context, m.before, m.after):
            return e["reason"]
    return None


def report(selection: Sequence[Mutant], results: dict, seed: int, limit: int) -> str:
    """The Markdown report of the whole selection: counts per unit, the kill rate, every survivor."""
    known = equivalents()
    rows, survivors = [], []
    kinds = ("killed", "timed out", "survived", "not built", "not run")
    totals = dict.fromkeys(("mutants", "equivalent", *kinds), 0)
    for name in dict.fromkeys(m.unit for m in selection):
        mine = [
            (m, results["mutants"].get(m.key, {"status": "not run"})) for m in selection if m.unit == name
        ]
        c = {k: sum(r["status"] == k for _, r in mine) for k in kinds}
        eq = sum(r["status"] == "survived" and _equivalent_reason(m, known) is not None for m, r in mine)
        ran = len(mine) - c["not built"] - c["not run"]
        cells = (ran, c["killed"], c["timed out"], c["survived"] - eq, eq, c["not built"], c["not run"])
        rows.append(f"| {name} | " + " | ".join(map(str, cells)) + " |")
        for k, v in (("mutants", ran), ("equivalent", eq), *c.items()):
            totals[k] += v
        survivors += [m for m, r in mine if r["status"] == "survived"]
    killed = totals["killed"] + totals["timed out"]
    live = totals["mutants"] - totals["equivalent"]
    rate = f"{100 * killed / live:.1f} %" if live else "n/a"
    raw_rate = f"{100 * killed / totals['mutants']:.1f} %" if totals["mutants"] else "n/a"
    baselines = results["baselines"]
    command = f"python -m edgemoe.mutants --seed {seed} --limit {limit}"
    lines = [
        "# Mutation campaign",
        "",
        f"Command: `{command}`  ",
        f"Seed: {seed}. A mutant is killed when one of its unit's tests fails or its run exceeds the bound "
        "(timed out, counted as killed); mutants that do not build are listed apart and not counted.",
        "",
        f"**Killed {killed} of {live} non-equivalent mutants: {rate}** ({killed} of {totals['mutants']} "
        f"counting the {totals['equivalent']} equivalent ones as survivors: {raw_rate}).",
        "",
        "| unit | mutants run | killed | timed out | survived | equivalent | not built | not run |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        f"| **all** | {totals['mutants']} | {totals['killed']} | {totals['timed out']} | "
        f"{totals['survived'] - totals['equivalent']} | {totals['equivalent']} | {totals['not built']} | "
        f"{totals['not run']} |",
        "",
        "## Baselines (unmutated sources, same tests)",
        "",
        *(
            f"- {name}: {b['status']}, {b['seconds']:.0f} s {b['detail']}".rstrip()
            for name, b in baselines.items()
        ),
        "",
        "## Survivors",
        "",
    ]
    if not survivors:
        lines.append("None.")
    for m in survivors:
        reason = _equivalent_reason(m, known)
        verdict = f"equivalent: {reason}" if reason else "**not killed** (no test sees it)"
        lines.append(f"- `{m.where}` {m.operator} `{m.before}` → `{m.after}` in `{m.context}` — {verdict}")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edgemoe.mutants", description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=1, help="seed of the mutant sample (default 1)")
    ap.add_argument("--limit", type=int, default=130, help="mutants to select, about (default 130)")
    ap.add_argument(
        "--only", nargs="+", metavar="UNIT", help=f"units to mutate (default all: {', '.join(UNITS)})"
    )
    ap.add_argument("--list", action="store_true", help="print the selected mutants and stop")
    ap.add_argument(
        "--resume",
        action="store_true",
        help="skip the mutants the last runs killed (the tests only grew since)",
    )
    ap.add_argument(
        "--survivors",
        action="store_true",
        help="run only the mutants that survived the last run (after new tests)",
    )
    ap.add_argument("--timeout-factor", type=float, default=4.0, help="time bound per mutant, x baseline (4)")
    ap.add_argument("--min-timeout", type=float, default=120.0, help="lowest time bound per mutant, s (120)")
    args = ap.parse_args(argv)
    unknown = sorted(set(args.only or ()) - set(UNITS))
    if unknown:
        print(f"error: unknown unit(s) {', '.join(unknown)}; known: {', '.join(UNITS)}", file=sys.stderr)
        return 2
    if args.limit < 1:
        print(f"error: --limit must be at least 1, got {args.limit}", file=sys.stderr)
        return 2
    sources = OUT_DIR / f"sources-{os.getpid()}"  # the snapshot the mutants are selected and copied from
    if not args.list:
        _copy_tree(sources)
    selection = select(args.limit, args.seed, REPO if args.list else sources)
    mutants = [m for m in selection if m.unit in (args.only or UNITS)]
    print(
        f"mutation campaign: seed {args.seed}, {len(mutants)} of the {len(selection)} mutants selected "
        f"(--limit {args.limit}) over {len({m.unit for m in mutants})} units",
        flush=True,
    )
    if args.list:
        for m in mutants:
            print(f"{m.unit:15} {m.where:34} {m.operator:10} {m.before} -> {m.after}   | {m.context}")
        return 0
    # results of earlier runs of the same selection are kept: --only reruns update their units
    store = ResultStore(OUT_DIR / f"results-seed{args.seed}-limit{args.limit}.json")
    if args.resume:
        last = store.load()["mutants"]
        mutants = [m for m in mutants if last.get(m.key, {}).get("status") not in ("killed", "timed out")]
        print(f"{len(mutants)} of them are not killed yet: running those", flush=True)
    if args.survivors:
        last = store.load()["mutants"]
        mutants = [m for m in mutants if last.get(m.key, {}).get("status") == "survived"]
        print(f"{len(mutants)} of them survived the last run: running those", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the running test's process group too
    try:
        campaign(mutants, sources, store.load(), store.save, args.timeout_factor, args.min_timeout)
    finally:
        shutil.rmtree(sources, ignore_errors=True)
    path = write_if_changed(OUT_DIR / "report.md", report(selection, store.load(), args.seed, args.limit))
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
