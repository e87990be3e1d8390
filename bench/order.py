"""The order a round runs its targets in: every target first as often as any other, and after each
other target as often as after any other.

Rotating a list (`items[k:] + items[:k]`) moves who goes first but keeps who goes before whom: each
target would always follow the same neighbour, and whatever that neighbour leaves behind (a broker
still writing its messages to disk, a process collecting its garbage) would fall on the same target
in every round. A Williams design (a balanced Latin square) spreads that carry-over: over every
`cycle_length(n)` rounds, each target runs first once or twice, and follows each of the others
once or twice.
"""


def cycle_length(count: int) -> int:
    """Rounds after which the orders repeat: n for an even number of targets, 2n for an odd one."""
    return count if count % 2 == 0 else 2 * count


def round_order(items: list, round_number: int) -> list:
    """`items` in the order of round `round_number` (0, 1, 2, ...)."""
    count = len(items)
    # 0, 1, n-1, 2, n-2, ...: every difference between neighbours, mod n, occurs once
    first_row = [(j + 1) // 2 if j % 2 else (count - j // 2) % count for j in range(count)]
    row = round_number % cycle_length(count)
    order = [items[(index + row) % count] for index in first_row]
    # for an odd n one square leaves some pairs twice and others never: its mirror makes up for it
    return order[::-1] if row >= count else order
