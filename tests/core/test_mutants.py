"""The mutation campaign's own parts: which changes it makes, how it samples them, how it reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgemoe import mutants
from edgemoe.mutants import Mutant, Unit


def _mutants_of(tmp_path: Path, name: str, text: str) -> list[Mutant]:
    (tmp_path / name).write_text(text)
    return mutants.candidates(Unit("u", (name,), ()), root=tmp_path)


def test_sv_operators_and_what_is_left_alone(tmp_path: Path) -> None:
    text = """module m #(parameter int unsigned Bits = 8) (input wire logic [Bits-1:0] a_i);
  localparam int Width = Bits + 2;  // widths are never mutated
  localparam logic signed [Width-1:0] Max = (Width'(1) <<< (Bits - 1)) - Width'(1);
  if (Bits < 2) begin : gen_bad_bits
    $fatal(1, "%m: Bits < 2");
  end
  assign fits = (scaled <= Max) && (scaled >= 0);  // a <= b in a comment
  always_ff @(posedge clk_i) begin
    if (rst_i) count_q <= '0;
    else count_q <= count_q + 1'b1;
  end
  fxp_requant #(.InBits(Width + 1), .RoundHalfUp(RoundHalfUp)) u_cast (.in_i(x));
endmodule
"""
    found = _mutants_of(tmp_path, "m.sv", text)
    changes = {(m.line, m.before, m.after) for m in found}
    assert (7, "<=", "<") in changes, "the comparison of the known hole"
    assert (7, ">=", ">") in changes
    assert (3, "1", "2") in changes and (3, "-", "+") in changes, "a value localparam"
    assert (3, "(Bits - 1)", "((Bits - 1) + 1)") in changes, "a shift amount"
    assert (10, "+", "-") in changes and (10, "1'b1", "1'b0") in changes
    assert (12, "RoundHalfUp", "!RoundHalfUp") in changes, "a rounding flag passed to an instance"
    lines = {m.line for m in found}
    assert not lines & {1, 2, 4, 5}, "ports, integer localparams and elaboration checks stay"
    assert not any(m.line == 9 and m.before == "<=" for m in found), "a nonblocking assignment stays"
    assert not any(m.line == 12 and m.before in ("+", "1") for m in found), "an instance's width stays"
    assert all(m.col + len(m.before) <= len(text.split("\n")[m.line - 1]) for m in found)


def test_cpp_operators_skip_templates_and_asserts(tmp_path: Path) -> None:
    text = """template <int W>
inline wide_t shift_round(wide_t v, int s, bool half_up) {
    static_assert(W > 0, "W > 0");
    const ap_int<W + 3> y = (v + (wide_t(1) << (s - 1))) >> s;  // v < 0
    if (half_up) return y;
    typedef ap_fixed<16, 2, AP_RND, AP_SAT> t;
    const ap_ufixed<8, 1, AP_RND, AP_SAT> c = 0;
    return n < 4 ? y : -y;
}
"""
    found = _mutants_of(tmp_path, "k.h", text)
    changes = {(m.line, m.before, m.after) for m in found}
    assert (4, "+", "-") in changes and (4, "(s - 1)", "((s - 1) + 1)") in changes
    assert (4, "s", "(s + 1)") in changes, "the right shift's amount"
    assert (5, "half_up", "!half_up") in changes
    assert (7, "AP_RND", "AP_TRN") in changes
    assert (8, "<", "<=") in changes and (8, "4", "5") in changes
    assert not {m.line for m in found} & {1, 2, 3, 6}, "templates, signatures, asserts, typedefs stay"
    assert not any(m.line == 4 and m.before == "3" for m in found), "a template argument stays"


def test_apply_changes_one_token(tmp_path: Path) -> None:
    text = "x\n  assign fits = (scaled <= OutMax) && (scaled >= OutMin);\ny\n"
    m = next(m for m in _mutants_of(tmp_path, "f.sv", text) if m.before == "<=")
    assert m.apply(text) == text.replace("<= OutMax", "< OutMax")
    assert m.context == "assign fits = (scaled <= OutMax) && (scaled >= OutMin);"
    with pytest.raises(AssertionError, match="source moved"):
        m.apply("\n" + text)


def test_selection_is_seeded_and_per_unit() -> None:
    first = mutants.select(130, 1)
    assert first == mutants.select(130, 1), "the same seed selects the same mutants"
    assert first != mutants.select(130, 2)
    assert len(first) >= 100 and len({m.key for m in first}) == len(first)
    assert {m.unit for m in first} == set(mutants.UNITS), "every unit is sampled"
    assert any(m.path.startswith("hls/") for m in first) and any(m.path.startswith("hw/rtl/") for m in first)


def test_report_counts_and_rate() -> None:
    sel = [Mutant("a", "hw/rtl/a.sv", n, 1, "constant", "1", "2", f"line {n}") for n in range(1, 5)]
    results = {
        "baselines": {"a": {"status": "passed", "seconds": 3.0, "detail": ""}},
        "mutants": {
            sel[0].key: {"status": "killed", "seconds": 1.0, "detail": ""},
            sel[1].key: {"status": "timed out", "seconds": 9.0, "detail": ""},
            sel[2].key: {"status": "survived", "seconds": 1.0, "detail": ""},
        },
    }
    text = mutants.report(sel, results, seed=1, limit=4)
    assert "| a | 3 | 1 | 1 | 1 | 0 | 0 | 1 |" in text, text
    assert "Killed 2 of 3 non-equivalent mutants: 66.7 %" in text
    assert "`hw/rtl/a.sv:3:1` constant `1` → `2`" in text and "not killed" in text


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert mutants.main(["--only", "no_such_unit", "--list"]) == 2
    assert "unknown unit(s) no_such_unit" in capsys.readouterr().err
    assert mutants.main(["--limit", "0", "--list"]) == 2


def test_every_equivalent_mutant_names_a_line_of_the_sources() -> None:
    """An entry whose line is gone (edited or renamed) would silently stop matching: it must fail here."""
    entries = mutants.equivalents()
    assert entries, "the file of equivalent mutants is empty or missing"
    for e in entries:
        lines = [line.strip() for line in (mutants.REPO / e["path"]).read_text().split("\n")]
        assert e["context"] in lines, f"{e['path']}: no line '{e['context']}'"
        assert e["before"] in e["context"] and e["reason"].strip(), e
