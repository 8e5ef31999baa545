"""The 7-point preference scale of every judgment: the author's, each reviewer's, the arbiter's.

Negative prefers the candidate in slot A, positive the one in slot B, 0 is a tie.
"""

PREFERENCE_MIN = -3
PREFERENCE_MAX = 3
PREFERENCE_CHOICES = [
    (-3, "A much better"),
    (-2, "A better"),
    (-1, "A slightly better"),
    (0, "Tie"),
    (1, "B slightly better"),
    (2, "B better"),
    (3, "B much better"),
]
