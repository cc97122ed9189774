"""Exact division by a constant as a multiply and a shift: the constants of ``hw/rtl/const_div.sv``.

The RTL divides ``n`` by a constant ``den`` with the rounding of
:func:`edgemoe.golden.fixed.layernorm.div_const` (``floor(n / den)``, or ``floor((2n + den) / (2 den))``
for round half up) without a divider. This module chooses the same constants the RTL chooses at
elaboration, mirrors its datapath step by step, and states the condition that makes it exact, so
tests can prove the choice for a whole input range and compare against Python's integer division.

Steps (for ``n`` in a proven range ``[n_min, n_max]``):

1. ``a = 2n + den`` (half up) or ``n``; the divisor ``2 den`` or ``den`` is ``odd · 2**t``;
   ``v = a >> t`` (arithmetic: ``floor(a / (odd 2**t)) = floor(floor(a / 2**t) / odd)``);
2. fold the sign: ``u = ~v`` if ``v < 0`` (``floor(v / odd) = ~floor(~v / odd)``), ``0 <= u <= U``;
3. ``q = (u · M) >> s`` with ``M = ceil(2**s / odd)`` and the smallest ``s`` such that
   ``e · U < 2**s``, ``e = M · odd − 2**s`` (Granlund–Montgomery); unfold: ``~q`` if ``v < 0``.

Why 3 is exact: ``u·M / 2**s = u/odd + u·e / (odd · 2**s)``; with ``u = k·odd + r`` (``0 <= r < odd``)
the fraction is ``(r + u·e / 2**s) / odd < (odd − 1 + 1) / odd = 1``, so the floor is ``k``.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgemoe.config import Config, Rounding


@dataclass(frozen=True)
class MagicDivisor:
    """The constants of one ``const_div`` instance.

    Args:
        den: the divisor.
        round_half_up: round to nearest (ties up) instead of floor.
        n_min, n_max: the proven range of the numerator.
        t: trailing zero bits of the (doubled, if half up) divisor, shifted out first.
        odd: the odd part of the divisor, divided by the multiply.
        u_max: bound of the folded operand ``u``.
        s, m: shift and multiplier, ``m = ceil(2**s / odd)``.
    """

    den: int
    round_half_up: bool
    n_min: int
    n_max: int
    t: int
    odd: int
    u_max: int
    s: int
    m: int

    @property
    def error(self) -> int:
        """``e = m·odd − 2**s`` (0 <= e < odd)."""
        return self.m * self.odd - (1 << self.s)

    @property
    def exact(self) -> bool:
        """The Granlund–Montgomery condition ``e · u_max < 2**s``: exact for every n in range."""
        return self.error * self.u_max < (1 << self.s)

    @property
    def u_bits(self) -> int:
        return max(self.u_max.bit_length(), 1)

    @property
    def m_bits(self) -> int:
        return max(self.m.bit_length(), 1)


def magic_divisor(den: int, round_half_up: bool, n_min: int, n_max: int) -> MagicDivisor:
    """The constants ``const_div`` elaborates for ``den`` over ``n`` in ``[n_min, n_max]``."""
    if den <= 0 or n_min > n_max:
        raise ValueError(f"magic_divisor: need den > 0 and n_min <= n_max, got {den}, [{n_min}, {n_max}]")
    den_w = 2 * den if round_half_up else den
    t = (den_w & -den_w).bit_length() - 1
    odd = den_w >> t
    a_min, a_max = (2 * n_min + den, 2 * n_max + den) if round_half_up else (n_min, n_max)
    v_min, v_max = a_min >> t, a_max >> t
    u_max = max(v_max if v_max > 0 else 0, -1 - v_min if v_min < 0 else 0)
    s = 0
    while True:
        m = -(-(1 << s) // odd)
        if (m * odd - (1 << s)) * u_max < (1 << s):
            return MagicDivisor(den, round_half_up, n_min, n_max, t, odd, u_max, s, m)
        s += 1


def divide(n: int, md: MagicDivisor) -> int:
    """``n / md.den`` rounded, by the RTL's steps (fold, multiply, shift, unfold)."""
    if not md.n_min <= n <= md.n_max:
        raise ValueError(f"divide: {n} is outside the proven range [{md.n_min}, {md.n_max}]")
    a = 2 * n + md.den if md.round_half_up else n
    v = a >> md.t
    neg = v < 0
    u = ~v if neg else v
    q = (u * md.m) >> md.s
    return ~q if neg else q


def reference(n: int, den: int, round_half_up: bool) -> int:
    """The rounding rule of ``golden.fixed.layernorm.div_const``, in Python integers."""
    return (2 * n + den) // (2 * den) if round_half_up else n // den


def layernorm_divisors(cfg: Config) -> dict[str, MagicDivisor]:
    """The two divisions of ``layernorm_unit`` (``mean`` = S1 / D, ``ex2`` = S2 / D), bounds as the RTL
    derives them: ``S1`` in ``D · [act.min, act.max]``, ``S2`` in ``[0, D · (2**ln_square.bits − 1)]``,
    scaled to the cast's fraction bits (a left shift of the sum, or a larger divisor)."""
    f, d = cfg.formats, cfg.model.dim
    act, sq = f.act.fmt, f.ln_square.fmt
    out = {}
    for name, (lo, hi, frac), cast in (
        ("mean", (d * act.min_raw, d * act.max_raw, act.frac_bits), f.ln_mean),
        ("ex2", (0, d * ((1 << sq.bits) - 1), sq.frac_bits), f.ln_var),
    ):
        shift = cast.fmt.frac_bits - frac
        den = d << max(-shift, 0)
        lo, hi = lo << max(shift, 0), hi << max(shift, 0)
        out[name] = magic_divisor(den, cast.rounding is Rounding.ROUND_HALF_UP, lo, hi)
    return out
