"""Paired ratios and their spread: how every part of `make bench` compares a row with its baseline."""

import statistics


def paired_ratios(mine: list[float], theirs: list[float]) -> list[float]:
    """Each round's rate over the baseline's rate in the same round."""
    return [a / b for a, b in zip(mine, theirs, strict=True)]


def quartiles(values: list[float]) -> list[float] | None:
    """The first and third quartiles: the middle half of `values` lies between them (within the
    values' range, never beyond it); None for a single round."""
    if len(values) < 2:
        return None
    first, _, third = statistics.quantiles(values, n=4, method="inclusive")
    return [first, third]


def with_spread(ratio: float, quartiles: list[float] | None) -> str:
    """A paired ratio with the middle half of its rounds' ratios, where the results have them."""
    return f"{ratio:.2f}x ({quartiles[0]:.2f}-{quartiles[1]:.2f})" if quartiles else f"{ratio:.2f}x"
