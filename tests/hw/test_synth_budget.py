"""The synthesis report holds the whole top against the ZCU102 budget and names what does not fit."""

from __future__ import annotations

from edgemoe.synth.report import BUDGET, budget_lines
from edgemoe.synth.xcup import TARGETS


def _top(**over: int) -> dict[str, int]:
    base = {"LUT": 1000, "LUTRAM": 0, "FF": 2000, "CARRY": 0, "DSP": 10, "BRAM36": 4, "BRAM18": 2}
    return {**base, **over}


def test_the_top_is_a_target() -> None:
    assert any(t.top == "edgemoe_top" for t in TARGETS)


def test_a_top_that_fits() -> None:
    text = "\n".join(budget_lines(_top()))
    assert "Everything fits." in text and "does not fit" not in text
    assert "| BRAM36 | 5 | 912 |" in text  # two BRAM18 count as one BRAM36


def test_what_does_not_fit_is_named() -> None:
    text = "\n".join(budget_lines(_top(DSP=BUDGET["DSP"] + 1, LUT=BUDGET["LUT"] + 5)))
    assert "Does not fit: LUT, DSP." in text, text


def test_a_missing_or_failed_top_is_said() -> None:
    assert "not synthesized" in "\n".join(budget_lines(None))
    assert "synthesis failed: yosys ran out of memory" in "\n".join(
        budget_lines({"error": "yosys ran out of memory"})
    )
