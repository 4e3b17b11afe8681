"""Configuration of what the platform watches about itself: the prediction log and the alerts.

Kept beside ``features.config`` (which includes these models in ``Settings``) so that the
thresholds a scheduler pages on read as one page of data: ``alerts`` in ``conf/<env>.yaml``,
validated at start-up like every other key, so a misspelt hop or a rate above 1 stops the
process instead of silently never alerting.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

HopName = Literal["device", "collector", "stream", "profile_write", "serve"]
"""A hop of ``features.latency.HOPS`` (a test checks the two lists agree)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PredictionLogConfig(_Strict):
    """A sample of predictions, written by the serving process as JSON-lines files under
    ``{lake reports}/predictions/`` and landed in ``gold.predictions`` by the monitoring job."""

    sample_rate: float = Field(0.1, ge=0.0, le=1.0)
    """Share of predictions logged (0 turns the log off, 1 logs every prediction)."""
    max_queued: int = Field(10_000, ge=1, le=1_000_000)
    """Records held in memory before a write; past it, records are dropped and counted
    (``playerpulse_prediction_log_dropped``): the log never slows or grows a serving process."""
    max_file_records: int = Field(5_000, ge=1, le=1_000_000)
    """Records per file: a file is written once it holds this many, or at ``flush_seconds``."""
    flush_seconds: float = Field(30.0, gt=0, le=3600)
    """Longest a sampled record waits in memory before its file is written."""


class AlertsConfig(_Strict):
    """Thresholds that ``playerpulse report latency|model --check`` compares the reports' own
    figures with; each breach is one line and a non-zero exit, for a scheduler to page on."""

    hop_p95_ms: dict[HopName, float] = Field(
        default_factory=lambda: {"collector": 250.0, "stream": 5_000.0, "profile_write": 1_000.0}
    )
    """Highest acceptable p95 latency (ms) per hop; hops not named are not checked."""
    max_iterator_age_ms: float = Field(60_000.0, gt=0)
    """Stream backlog: the longest any micro-batch may run behind the stream (ms)."""
    max_fallback_rate: float = Field(0.05, ge=0.0, le=1.0)
    """Highest acceptable share of predictions answered with fallback content."""
    max_psi: float = Field(0.25, gt=0)
    """Population stability index of a serving feature against its training set above which
    the feature has drifted (0.1 is a usual "watch", 0.25 a usual "act")."""
    max_live_auc_drop: float | None = Field(0.05, ge=0.0, le=1.0)
    """How far the champion's live AUC (its predictions labelled once their label window ended)
    may fall below the test AUC of the run that trained it; ``null`` turns the check off."""
    min_samples: int = Field(20, ge=1)
    """Fewer samples than this in a report window are reported but never alerted on."""
    min_psi_samples: int = Field(500, ge=1)
    """Answered predictions needed before drift is alerted on. Sampling alone gives a PSI of
    about (bins - 1) / n for n served values from the very population trained on (11 bins: ~0.5
    at 20 samples, ~0.02 at 500), so with fewer a PSI past ``max_psi`` is shown, not alerted."""
