"""What each colour of the report and the fleet plot means: one meaning per colour, the same on every figure.

The kinds of evidence own their colours everywhere (the table's badges, every bar of the report's figures); no other
meaning may take one of them, so a blue bar is a measured figure wherever it is. Fill says what colour cannot: on
the cost panel solid is owned and hatched is rented, whatever the evidence. Hues from Okabe and Ito's
colour-blind-safe set where they go round.
"""

from __future__ import annotations

EVIDENCE = {  # the kinds of figure, in the order a legend lists them
    "measured": "#0072B2",  # full runs, every step timed
    "step-sampled": "#56B4E9",  # measured steps, the rest extrapolated: a paler blue of the same kind
    "published": "#E69F00",  # a source's own measurement
    "estimate": "#CC79A7",  # a source's analytic figure, not measured
    "toy": "#999999",  # a toy spec or a CPU run: proves the harness, says nothing about video
}
STAGES = {"text_encode": "#B8E186", "denoise": "#009E73", "vae_decode": "#5E3C99", "other": "#DDDDDD"}
TIMELINE = {"power": "#5E3C99", "clock": "#009E73", "throttle": "#444444", "timed": "#000000"}
BOUND = "#000000"  # the roofline's diamond
LOW_HIGH = ("#009E73", "#5E3C99")  # the fleet tornado: one assumption at its low value, at its high value
OWN_CLASS, SCALED_CLASS = "#332288", "#B7AEDB"  # the fleet per class: the throughput's own class, scaled by FLOP/s
OWNED_HATCH, RENTED_HATCH = "", "////"


def evidence(row) -> str:
    """The kind of evidence a comparison row is (a key of EVIDENCE)."""
    if row.toy:
        return "toy"
    return "step-sampled" if row.measure == "step-sampled" else row.kind
