"""Progress of long operations, counted in versions.

The library calls ``progress(done, total)`` as it goes; a front end renders it
(the command line draws a bar on a terminal, and nothing otherwise). ``total``
is an estimate taken when the operation starts; ``done`` never passes it.
"""

from __future__ import annotations

from collections.abc import Callable

#: ``progress(done, total)``: versions handled so far, and how many there are.
Progress = Callable[[int, int], None]


class Tally:
    """Counts handled versions toward ``total`` and reports each step to ``progress``."""

    def __init__(self, progress: Progress | None, total: int) -> None:
        self.progress = progress
        self.total = max(0, total)
        self.done = 0

    def add(self, count: int = 1) -> None:
        self.done += count
        self.total = max(self.total, self.done)  # the store grew while we counted
        if self.progress is not None and count:
            self.progress(self.done, self.total)

    def finish(self) -> None:
        """Report the end (once), whatever the estimate was."""
        self.total = self.done = max(self.done, self.total)
        if self.progress is not None:
            self.progress(self.done, self.total)
