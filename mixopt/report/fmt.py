"""One way to write each kind of number on the report page: token counts, token shares, losses, epochs.

A reader compares numbers across sections, so a loss is always four decimals, a share always a percentage with
one decimal, and a token count always short (``41k``, ``2M``, ``1B``) rather than Python's ``4.1e+04``.
"""

from __future__ import annotations

import math


def tokens(n: float | None) -> str:
    """``40960`` -> ``41k``, ``2e6`` -> ``2M``, ``1.048576e6`` -> ``1.05M``, ``1e9`` -> ``1B``; three significant digits."""
    if n is None or not math.isfinite(float(n)):
        return "n/a"
    n = float(n)
    for div, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.3g}{unit}"
    return f"{n:.3g}"


def share(w: float) -> str:
    """A token share as a percentage: ``0.1429`` -> ``14.3%``."""
    return f"{100 * w:.1f}%"


def loss(v: float | None) -> str:
    """A loss or other metric value: four decimals."""
    return "n/a" if v is None or not math.isfinite(float(v)) else f"{float(v):.4f}"


def diff(v: float) -> str:
    """A signed difference of losses: ``+0.0123``."""
    return f"{float(v):+.4f}"


def pm(value: float, std: float | None) -> str:
    """``3.3279 ± 0.0350`` (the ± part only when a std is known)."""
    return loss(value) + ("" if std is None else f" ± {float(std):.4f}")


def epochs(e: float) -> str:
    """Passes over a domain's unique tokens: ``0.04``, ``2.50``."""
    return f"{e:.2f}"


def mixture(weights: dict[str, float]) -> str:
    """``code 14.3%, math 20.0%`` in the order given."""
    return ", ".join(f"{d} {share(w)}" for d, w in weights.items())
