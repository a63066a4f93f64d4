"""How a run reports to whoever started it: progress, cancel, and log lines.

The engine calls these; the algorithms pass an implementation on top of QGIS's feedback
(algorithms/base.py: FeedbackProgress), the tests and the Python API the default below.
"""
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .model import ProgressLike


class Progress:
    """Callbacks of a run; the default does nothing and never cancels."""

    def set(self, fraction: float) -> None:
        """The fraction of the run done, 0 to 1."""

    def cancelled(self) -> bool:
        """True once the user asked to stop: the engine then raises CancelledError."""
        return False

    def info(self, message: str) -> None:
        """One line for the log."""


class Part(Progress):
    """A part of a run: its fractions 0 to 1 are `start` to `start + span` of `whole`."""

    def __init__(self, whole: "ProgressLike", start: float, span: float) -> None:
        self.whole, self.start, self.span = whole, start, span

    def set(self, fraction: float) -> None:
        self.whole.set(self.start + self.span * min(1.0, max(0.0, fraction)))

    def cancelled(self) -> bool:
        return self.whole.cancelled()

    def info(self, message: str) -> None:
        self.whole.info(message)
