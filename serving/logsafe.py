"""What a log line may say about a caller's input: never the raw value.

A player id in a log line is personal data, and an unvalidated one can forge log lines (a
``\\n`` in it starts a new "entry"). Logs carry a short digest instead: enough to
correlate lines about one player, nothing to read or inject.
"""

from __future__ import annotations

from features.pseudonyms import digest_for_log

__all__ = ["digest_for_log"]
