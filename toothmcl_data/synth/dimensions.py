"""Tooth dimensions of the synthetic anatomy (data, not code): mean sizes of permanent and primary teeth by jaw
and position from the midline, root counts, crown inclinations, and the arch slots of each dentition stage.

Sizes in mm: mesiodistal WIDTH, buccolingual DEPTH, crown HEIGHT, ROOT length; ``D_*``: primary (deciduous) teeth,
positions 1..5.
"""

from __future__ import annotations

# Mean tooth sizes (mm) by jaw and position 1..8: mesiodistal width, buccolingual depth, crown height, root length.
WIDTH = {
    "upper": (8.6, 6.6, 7.6, 7.0, 6.6, 10.2, 9.2, 8.6),
    "lower": (5.3, 5.8, 6.8, 7.0, 7.1, 11.0, 10.4, 10.0),
}
DEPTH = {
    "upper": (7.0, 6.2, 8.0, 9.0, 9.0, 11.0, 10.8, 10.2),
    "lower": (5.9, 6.2, 7.6, 7.6, 8.0, 10.3, 10.0, 9.6),
}
HEIGHT = {
    "upper": (10.2, 8.8, 10.0, 8.2, 7.6, 7.2, 7.0, 6.6),
    "lower": (8.8, 9.2, 10.4, 8.4, 7.8, 7.6, 7.2, 7.0),
}
ROOT = {
    "upper": (13.0, 13.0, 17.0, 14.0, 14.0, 12.5, 12.0, 11.0),
    "lower": (12.5, 14.0, 16.0, 14.0, 14.5, 14.0, 13.0, 11.0),
}
# Number of roots by jaw and position.
ROOTS = {"upper": (1, 1, 1, 2, 1, 3, 3, 3), "lower": (1, 1, 1, 1, 1, 2, 2, 2)}
# Crown inclination (degrees, buccal positive) by position.
LEAN = (12.0, 10.0, 6.0, 3.0, 2.0, -2.0, -3.0, -4.0)
# Primary (deciduous) teeth by jaw and position 1..5, same columns; and their inclination.
D_WIDTH = {"upper": (6.5, 5.2, 6.8, 7.1, 8.8), "lower": (4.1, 4.6, 5.6, 7.7, 9.7)}
D_DEPTH = {"upper": (5.0, 4.6, 6.8, 8.6, 9.8), "lower": (3.8, 4.0, 5.2, 7.1, 8.8)}
D_HEIGHT = {"upper": (6.0, 5.6, 6.5, 5.1, 5.6), "lower": (5.0, 5.2, 6.0, 5.8, 5.5)}
D_ROOT = {"upper": (10.0, 11.0, 13.0, 10.0, 11.0), "lower": (9.0, 10.0, 11.5, 10.0, 11.0)}
D_ROOTS = {"upper": (1, 1, 1, 3, 3), "lower": (1, 1, 1, 2, 2)}
D_LEAN = (8.0, 6.0, 4.0, 0.0, -1.0)
# Arch slots from the midline: (position, primary?) per dentition stage.
SLOTS: dict[str, tuple[tuple[int, bool], ...]] = {
    "permanent": tuple((p, False) for p in range(1, 9)),
    "mixed": ((1, False), (2, False), (3, True), (4, True), (5, True), (6, False)),
    "primary": tuple((p, True) for p in range(1, 6)),
}
