"""The collector's core: from (headers, body) to stream records, dead letters and an answer.

Framework-free, so the ASGI app and the AWS Lambda handler share one code path: ``prepare``
does everything that needs no I/O (auth, limits, decoding, per-event validation, batching by
player) and the caller then makes the records durable its own way (group commit in the ASGI
app, a direct put in Lambda) before answering 202.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from features.config import CollectorConfig, Settings
from features.contract import Event, EventValidator, TimeBounds, now_ms
from features.deadletter import DeadLetter
from features.pseudonyms import GamePseudonyms
from features.streams import StreamRecord
from features.streams.codec import encode_events
from serving.auth import UNAUTHORIZED, GameKeys, bearer_digest
from serving.dead_letters import DeadLetterBudget
from serving.decoding import BodyError, check_value_count, decompress, item_bytes, parse_events
from serving.privacy import CollectorPrivacy, digest_only
from serving.rate_limit import RateLimiter, retry_after_seconds

_typed_array = msgspec.json.Decoder(list[Event])


class _Envelope(msgspec.Struct):
    events: list[Event]


_typed_envelope = msgspec.json.Decoder(_Envelope)
_NDJSON = ("application/x-ndjson", "application/ndjson", "application/jsonl")


def decode_typed(data: bytes, content_type: str | None) -> list[Event] | None:
    """Fast path: the whole batch decoded straight into ``Event`` structs (in C), or ``None``
    when any item is invalid or the shape is not JSON — the caller then checks item by item,
    which gives the same verdicts (and reasons) one event at a time."""
    if (content_type or "").split(";")[0].strip().lower() in _NDJSON:
        return None
    head = data.lstrip()[:1]
    try:
        if head == b"[":
            return _typed_array.decode(data)
        if head == b"{":
            return _typed_envelope.decode(data).events
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return None
    return None


_FIELD = re.compile(r"at `\$\.([A-Za-z_]+)")


def reason_kind(reason: str) -> str:
    """A bounded label for metrics from a free-text rejection reason."""
    if "unknown field" in reason:
        return "unknown_field"
    if "further in the" in reason:
        return "event_time_out_of_bounds"
    if "device clock" in reason:
        return "clock_skew"
    if " nest" in reason:
        return "nested_too_deep"
    if "game_id does not match" in reason:
        return "game_mismatch"
    if "must be a JSON object" in reason:
        return "not_an_object"
    m = _FIELD.search(reason)
    if m:
        return f"invalid_{m.group(1)}"
    if "missing required field" in reason:
        field_ = reason.rsplit("`", 2)
        return f"missing_{field_[-2]}" if len(field_) >= 3 else "missing_field"
    return "invalid"


@dataclass
class Prepared:
    """What one request amounts to, before anything is written."""

    status: int
    game: str | None = None
    records: list[StreamRecord] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    accepted: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    message: str | None = None
    decoded_bytes: int = 0
    events_in: int = 0
    bytes_out: int = 0
    retry_after: int | None = None
    """Seconds for the ``Retry-After`` of a 429 (the key's rate limit)."""
    received_at: int | None = None
    """When the request arrived (epoch ms): the start of the collector hop."""

    def body(self) -> dict[str, Any]:
        if self.status == 202:
            return {"accepted": self.accepted, "rejected": len(self.errors), "errors": self.errors}
        return {"error": self.message}


RETRY_AFTER_SECONDS = 1


def stream_unavailable(exc: Exception) -> Prepared:
    """The 503 when the stream cannot take a batch: nothing was acknowledged, retry shortly."""
    return Prepared(503, message=f"{exc}; retry in {RETRY_AFTER_SECONDS}s")


def response_headers(prepared: Prepared) -> dict[str, str] | None:
    if prepared.status == 429:
        return {"Retry-After": str(prepared.retry_after or RETRY_AFTER_SECONDS)}
    return {"Retry-After": str(RETRY_AFTER_SECONDS)} if prepared.status == 503 else None


def rate_limited(game: str, wait: float) -> Prepared:
    """The 429 when a key's bucket is short of tokens: nothing was taken or kept."""
    seconds = retry_after_seconds(wait)
    return Prepared(
        429, game, message=f"rate limit of this ingest key reached; retry in {seconds}s", retry_after=seconds
    )


def body_too_large(limit: int) -> Prepared:
    """The 413 for a body over ``limit`` bytes on the wire."""
    return Prepared(413, message=f"body is larger than {limit} bytes")


class Collector:
    def __init__(
        self,
        config: CollectorConfig,
        keys: GameKeys,
        pseudonyms: GamePseudonyms | None = None,
        privacy: CollectorPrivacy | None = None,
        limiter: RateLimiter | None = None,
    ):
        self.config = config
        self.keys = keys
        self.validator = EventValidator(
            TimeBounds.of(config.max_past_days, config.max_future_minutes, config.max_clock_skew_hours)
        )
        self.pseudonyms = pseudonyms or GamePseudonyms({})
        """Every game's pseudonymiser: the collector writes with it, serving reads with it."""
        self.privacy = privacy or CollectorPrivacy({})
        self.limiter = limiter

    @classmethod
    def from_settings(cls, settings: Settings, keys: GameKeys | None = None) -> Collector:
        """The collector of a deployment: its limits, its games' ingest keys, pseudonyms (secrets
        are resolved here, at start-up), data policies and rate limits."""
        pseudonyms = GamePseudonyms.of(settings.games)
        return cls(
            settings.collector,
            keys or GameKeys(settings.games),
            pseudonyms,
            CollectorPrivacy.of(settings.games, pseudonyms),
            RateLimiter(settings.games, settings.collector),
        )

    def prepare(self, headers: Mapping[str, str], body: bytes, inline_budget: int | None = None) -> Prepared | None:
        """Check, decode and validate one ``POST /v1/events``; ``headers`` keys are lower-case.

        With ``inline_budget`` the body is only decoded if it decompresses to at most that many
        bytes, and ``None`` says it is larger: the caller is on an event loop and runs the
        same call again without a budget in a thread (the wasted work is at most the budget).
        """
        received_at = now_ms()
        # A request id is only needed to tie dead letters together: made when the first one is.
        request_id = headers.get("x-request-id")
        game = self.keys.game_for(headers.get("authorization"), "ingest")
        if game is None:
            return Prepared(401, message=UNAUTHORIZED)
        rate_key = bearer_digest(headers.get("authorization")) if self.limiter is not None else None
        if rate_key is not None and self.limiter is not None:
            wait = self.limiter.empty_for(game, rate_key)
            if wait > 0:  # an empty bucket costs no decoding
                return rate_limited(game, wait)
        if len(body) > self.config.max_body_bytes:
            return body_too_large(self.config.max_body_bytes)
        try:
            limit = self.config.max_decompressed_bytes
            if inline_budget is not None and inline_budget < limit:
                if len(body) > inline_budget:
                    return None
                try:
                    data = decompress(body, headers.get("content-encoding"), inline_budget)
                except BodyError as exc:
                    if exc.status == 413:
                        return None
                    raise
            else:
                data = decompress(body, headers.get("content-encoding"), limit)
            check_value_count(data, self.config.max_json_values)
            typed = decode_typed(data, headers.get("content-type"))
            items: list[Any] = typed if typed is not None else parse_events(data, headers.get("content-type"))
        except BodyError as exc:
            letters = []
            if exc.status == 400:
                request_id = request_id or uuid.uuid4().hex
                letters.append(self.body_letter(game, exc.reason, body, received_at, request_id))
            return Prepared(exc.status, game, dead_letters=letters, message=exc.reason)
        return self.prepare_items(
            game,
            items,
            received_at,
            typed=typed is not None,
            request_id=request_id,
            decoded_bytes=len(data),
            rate_key=rate_key,
        )

    def body_letter(self, game: str, reason: str, body: bytes, received_at: int, request_id: str) -> DeadLetter:
        """The dead letter of a whole body that cannot be used: its start as sent, or only its
        size and digest for a game with pseudonymisation or a data policy (``serving.privacy``)."""
        raw = digest_only(body) if self.privacy.for_game(game) is not None else body
        return DeadLetterBudget.of(self.config).letter(
            received_at=received_at, reason=reason, raw=raw, game_id=game, request_id=request_id
        )

    def prepare_items(
        self,
        game: str,
        items: Sequence[Any],
        received_at: int,
        raw_items: Sequence[bytes] | None = None,
        *,
        typed: bool = False,
        rejected: Mapping[int, str] | None = None,
        request_id: str | None = None,
        decoded_bytes: int = 0,
        rate_key: bytes | None = None,
    ) -> Prepared:
        """Validate already-parsed items of an authenticated ``game`` and batch them by player.

        ``prepare`` ends here after decoding, and so does every vendor adapter
        (``serving.vendors``) after mapping its format: one place decides what is valid. A
        rejected item's dead letter keeps ``raw_items[index]`` when given (a vendor's event as
        that vendor sent it, not its mapped form), else the item's own bytes; ``rejected`` holds
        items the caller already refused (index → reason). ``typed`` says the items are
        ``Event`` structs decoded in one pass, which only need their times and ids checked.

        The game's rate limit takes one token per item from ``rate_key``'s bucket (the ingest
        key's digest; vendor adapters, which pass none, share one bucket per game), and its
        pseudonymisation and data policy (``serving.privacy``) rewrite every valid event and
        reduce every dead letter here, so no adapter can store what the game's policy forbids.
        """
        if len(items) > self.config.max_events_per_batch:
            return Prepared(
                413,
                game,
                message=f"{len(items)} events in one request; the limit is "
                f"{self.config.max_events_per_batch}: split the batch",
            )
        if self.limiter is not None:
            wait = self.limiter.take(game, rate_key if rate_key is not None else b"vendor", len(items))
            if wait > 0:
                return rate_limited(game, wait)
        privacy = self.privacy.for_game(game)
        out = Prepared(202, game, decoded_bytes=decoded_bytes, events_in=len(items), received_at=received_at)
        by_player: dict[str, list[Event]] = {}
        late_or_early = self._typed_rejections(items, received_at, rejected) if typed else {}
        check = self.validator.check
        budget: DeadLetterBudget | None = None
        for index, raw in enumerate(items):
            if rejected and index in rejected:
                event, reason = None, rejected[index]
            elif typed:
                reason = late_or_early.get(index)
                event: Event | None = None if reason else raw
            else:
                event, reason = check(raw, received_at)
            if event is not None and event.game_id != game:
                event, reason = None, f"game_id does not match the API key (key is for '{game}')"
            if event is None:
                request_id = request_id or uuid.uuid4().hex
                budget = budget or DeadLetterBudget.of(self.config)
                out.errors.append({"index": index, "reason": reason})
                kept = raw_items[index] if raw_items is not None else item_bytes(raw)
                if privacy is not None:
                    kept = privacy.rejected_item(raw, kept)
                out.dead_letters.append(
                    budget.letter(
                        received_at=received_at,
                        reason=reason or "invalid",
                        raw=kept,
                        game_id=game,
                        index=index,
                        request_id=request_id,
                    )
                )
                continue
            by_player.setdefault(event.player_id, []).append(event)
        out.accepted = sum(len(v) for v in by_player.values())
        stream_at = now_ms()
        for player, events in by_player.items():
            if privacy is not None:
                player = privacy.events(player, events)
            for data_out in _encode_within_limit(events, received_at, stream_at):
                out.bytes_out += len(data_out)
                out.records.append(StreamRecord(player, data_out))
        return out

    def _typed_rejections(
        self, items: Sequence[Any], received_at: int, rejected: Mapping[int, str] | None
    ) -> dict[int, str]:
        """``batch_rejections`` of typed items, skipping those the caller already refused (a
        vendor adapter's unmappable events, which are not ``Event`` s)."""
        if not rejected:
            return self.validator.batch_rejections(list(items), received_at)
        positions = [i for i in range(len(items)) if i not in rejected]
        found = self.validator.batch_rejections([items[i] for i in positions], received_at)
        return {positions[j]: reason for j, reason in found.items()}


MAX_RECORD_BYTES = 1_000_000
"""Below Kinesis' 1 MiB per record (data plus partition key): larger groups are split in order."""


def _encode_within_limit(events: list[Event], received_at: int, stream_at: int) -> list[bytes]:
    data = encode_events(events, received_at, stream_at)
    if len(data) <= MAX_RECORD_BYTES or len(events) == 1:
        return [data]
    half = len(events) // 2
    return _encode_within_limit(events[:half], received_at, stream_at) + _encode_within_limit(
        events[half:], received_at, stream_at
    )
