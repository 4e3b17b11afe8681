"""Every error PlayerPulse raises on purpose, in one place.

Each carries what went wrong and what to do about it, so the CLI can show it to a person
without a stack trace (see ``playerpulse.cli``).
"""

from __future__ import annotations


class PlayerPulseError(Exception):
    """Base of every deliberate PlayerPulse failure; its message is meant for a person."""


class ConfigError(PlayerPulseError):
    """The configuration is missing, unreadable, or names a key or value that is not allowed."""


class StreamUnavailable(PlayerPulseError):
    """The stream cannot take records right now; the caller should retry later (HTTP 503)."""


class OnlineStoreError(PlayerPulseError):
    """The online store could not be read or written."""


class OnlineStoreTimeout(OnlineStoreError):
    """A read took longer than the caller's budget (serving answers with fallback content)."""


class ModelNotFound(PlayerPulseError):
    """No model config or no registered champion exists under the requested name."""


class StageFailed(PlayerPulseError):
    """A stage of a multi-stage run (the demo) failed; the message names the stage."""

    def __init__(self, stage: str, cause: BaseException | str):
        self.stage = stage
        self.cause = cause
        super().__init__(f"stage '{stage}' failed: {cause}")


class TrainingFailed(PlayerPulseError):
    """A model cannot be trained or evaluated from the data at hand (too few days, one class)."""


class PromotionRefused(PlayerPulseError):
    """An alias move is not possible (no challenger to promote, no previous champion to roll back to)."""


class TableNotFound(PlayerPulseError):
    """A lake table a job reads does not exist yet; the message names the job that writes it."""


class DataQualityError(PlayerPulseError):
    """A table failed its data-quality suite; the message names the failed checks and the report."""
