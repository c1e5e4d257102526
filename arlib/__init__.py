"""arlib: action recognition with a frozen per-frame CNN, a BiLSTM and temporal attention."""

import os

# On 2 cores shared with the app or another job, OpenMP's default spin-waiting makes every parallel
# region wait for a descheduled thread: the backbone ran at 75 ms/frame instead of 19 (measured).
# Passive waiting must be chosen before torch loads its OpenMP runtime; an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
