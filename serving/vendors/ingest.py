"""Vendor formats in front of the one collector core.

Each entry point authenticates the way its vendor's clients do, decodes the body within the
collector's limits (``serving.decoding``), reads every vendor event (``segment``, ``snowplow``,
``gameanalytics``), maps it by the game's declared rules (``mapping``), and hands the mapped
events to ``Collector.prepare_items`` as typed ``Event`` s: validation, dead letters, batching by player and the
answer's accounting are the same as for ``POST /v1/events``. A rejected vendor event is
dead-lettered as the vendor sent it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec

from features.config import Settings
from features.contract import Event, now_ms
from features.errors import ConfigError
from serving.auth import UNAUTHORIZED
from serving.collector import Collector, Prepared, body_too_large
from serving.decoding import BodyError, check_value_count, decompress
from serving.vendors import gameanalytics, segment, snowplow
from serving.vendors.mapping import Mapper, MappingFile, Vendor, load_mapping


class VendorIngest:
    """The vendor adapters of one deployment: each game's mappers and GameAnalytics keys."""

    def __init__(self, settings: Settings, collector: Collector):
        self.collector = collector
        self.config = settings.collector
        files: dict[str, MappingFile] = {}
        self._mappers: dict[tuple[str, Vendor], Mapper] = {}
        self._ga: dict[str, tuple[str, bytes]] = {}
        for game, cfg in settings.games.items():
            vendors = cfg.vendors
            if vendors is None:
                continue
            if vendors.mapping not in files:
                files[vendors.mapping] = load_mapping(vendors.mapping)
            for vendor in ("segment", "snowplow", "gameanalytics"):
                self._mappers[(game, vendor)] = Mapper(vendor, game, files[vendors.mapping])
            if vendors.gameanalytics_game_key is not None and vendors.gameanalytics_secret_env is not None:
                secret = os.environ.get(vendors.gameanalytics_secret_env)
                if not secret:
                    raise ConfigError(
                        f"games.{game}.vendors.gameanalytics_secret_env names ${vendors.gameanalytics_secret_env}, "
                        "which is not set: export the game's GameAnalytics secret key in it"
                    )
                other = self._ga.get(vendors.gameanalytics_game_key)
                if other is not None:
                    raise ConfigError(
                        f"games.{game} and games.{other[0]} have the same gameanalytics_game_key: give each its own"
                    )
                self._ga[vendors.gameanalytics_game_key] = (game, secret.encode())

    # --- the three formats -------------------------------------------------------------------

    def segment(self, headers: Mapping[str, str], body: bytes, single_type: str | None) -> Prepared:
        """``/v1/batch`` (``single_type`` None) or ``/v1/{single_type}``; Basic auth by write key."""
        received_at = now_ms()
        game = self.collector.keys.game_for(segment.bearer_from_basic(headers.get("authorization")), "ingest")
        if game is None or (game, "segment") not in self._mappers:
            return Prepared(401, message="missing or invalid write key: send the game's ingest key as the write key")
        data = self._decode(game, headers, body, received_at)
        if isinstance(data, Prepared):
            return data
        mapper = self._mappers[(game, "segment")]
        typed = segment.typed_events(mapper, data, single_type)
        if typed is not None:
            kept = _Later(len(typed), lambda: _AsSent(segment.parse(data, single_type)[0]))
            return self._prepare_typed(game, typed, kept, received_at, len(data))
        try:
            raws, sent_at = segment.parse(data, single_type)
        except BodyError as exc:
            return self._unusable(game, exc, body, received_at)
        events = segment.map_all(mapper, data, raws, single_type, sent_at)
        return self._prepare(game, events, _AsSent(raws), received_at, len(data))

    def snowplow_post(self, game: str, headers: Mapping[str, str], body: bytes) -> Prepared:
        received_at = now_ms()
        if (game, "snowplow") not in self._mappers:
            return Prepared(401, message=UNAUTHORIZED)
        data = self._decode(game, headers, body, received_at, authenticated=False)
        if isinstance(data, Prepared):
            return data
        mapper = self._mappers[(game, "snowplow")]
        typed_body = snowplow.typed_app_id(data)
        if typed_body is not None and self._snowplow_key_ok(game, {typed_body[1]}):
            typed = snowplow.typed_events(mapper, typed_body[0])
            if typed is not None:
                return self._prepare_typed(
                    game, typed, _Later(len(typed), lambda: _snowplow_kept(data)), received_at, len(data)
                )
        try:
            raws = snowplow.parse(data)
        except BodyError as exc:
            return Prepared(exc.status, message=exc.reason)  # not yet known to be the game: nothing kept
        pairs = snowplow.all_pairs(data, raws)
        if not self._snowplow_key_ok(game, snowplow.app_ids(pairs)):
            return Prepared(401, message="send the game's ingest key as the tracker's app id (aid)")
        events = [snowplow.map_event(mapper, p) if p is not None else "not a JSON object" for p in pairs]
        return self._prepare(game, events, _SnowplowKept(pairs, raws), received_at, len(data))

    def snowplow_get(self, game: str, query: Mapping[str, str]) -> Prepared:
        received_at = now_ms()
        if (game, "snowplow") not in self._mappers or not self._snowplow_key_ok(game, {query.get("aid", "")}):
            return Prepared(401, message="send the game's ingest key as the tracker's app id (aid)")
        raw = snowplow.kept_form(query)
        event = snowplow.map_event(self._mappers[(game, "snowplow")], query, raw)
        return self._prepare(game, [event], [raw], received_at, len(raw))

    def gameanalytics_game(self, game_key: str, headers: Mapping[str, str], body: bytes) -> str | None:
        """The game whose GameAnalytics key and secret signed this body, else ``None`` (a 401)."""
        found = self._ga.get(game_key)
        if found is None or not gameanalytics.signature_ok(found[1], body, headers.get("authorization")):
            return None
        return found[0]

    def gameanalytics_events(self, game_key: str, headers: Mapping[str, str], body: bytes) -> Prepared:
        received_at = now_ms()
        if len(body) > self.config.max_body_bytes:
            return body_too_large(self.config.max_body_bytes)
        game = self.gameanalytics_game(game_key, headers, body)
        if game is None:
            return Prepared(401, message="game key unknown or body signature (Authorization) does not verify")
        data = self._decode(game, headers, body, received_at)
        if isinstance(data, Prepared):
            return data
        mapper = self._mappers[(game, "gameanalytics")]
        typed = gameanalytics.typed_events(mapper, data)
        if typed is not None:
            kept = _Later(len(typed), lambda: _AsSent(gameanalytics.parse(data)))
            return self._prepare_typed(game, typed, kept, received_at, len(data))
        try:
            raws = gameanalytics.parse(data)
        except BodyError as exc:
            return self._unusable(game, exc, body, received_at)
        events = gameanalytics.map_all(mapper, data, raws)
        return self._prepare(game, events, _AsSent(raws), received_at, len(data))

    # --- shared steps --------------------------------------------------------------------------

    def _snowplow_key_ok(self, game: str, aids: set[str]) -> bool:
        if len(aids) != 1:
            return False
        return self.collector.keys.game_for(f"Bearer {next(iter(aids))}", "ingest") == game

    def _decode(
        self, game: str, headers: Mapping[str, str], body: bytes, received_at: int, authenticated: bool = True
    ) -> bytes | Prepared:
        if len(body) > self.config.max_body_bytes:
            return body_too_large(self.config.max_body_bytes)
        try:
            data = decompress(body, headers.get("content-encoding"), self.config.max_decompressed_bytes)
            check_value_count(data, self.config.max_json_values)
        except BodyError as exc:
            if not authenticated:  # nothing is kept for a caller not yet known to be the game
                return Prepared(exc.status, message=exc.reason)
            return self._unusable(game, exc, body, received_at)
        return data

    def _unusable(self, game: str, exc: BodyError, body: bytes, received_at: int) -> Prepared:
        letters = []
        if exc.status == 400:
            # as the native route does: the body as sent, or only its size and digest under a privacy setting
            letters.append(self.collector.body_letter(game, exc.reason, body, received_at, uuid.uuid4().hex))
        return Prepared(exc.status, game, dead_letters=letters, message=exc.reason)

    def _prepare_typed(
        self, game: str, events: list[Event], raw_items: Sequence[bytes], received_at: int, decoded_bytes: int
    ) -> Prepared:
        """A batch an adapter's typed path made ``Event`` s of, to the core as ``/v1/events``'
        typed batches go (only times and ids checked there)."""
        return self.collector.prepare_items(
            game, events, received_at, raw_items, typed=True, decoded_bytes=decoded_bytes
        )

    def _prepare(
        self,
        game: str,
        events: list[dict[str, Any] | str],
        raw_items: Sequence[bytes],
        received_at: int,
        decoded_bytes: int,
    ) -> Prepared:
        """Hand the mapped events (or why each could not be mapped) to the core as typed
        ``Event`` s, as ``POST /v1/events`` does: the mapped batch is converted in one pass (in
        C), so the core checks only times and ids. When any mapped event breaks the contract,
        the core checks them one by one instead, which gives each its own reason (the native
        path's fallback too)."""
        rejected: dict[int, str] = {i: e for i, e in enumerate(events) if e.__class__ is str}  # type: ignore[misc]
        valid = [e for e in events if e.__class__ is not str] if rejected else events
        try:
            typed: list[Event] | None = msgspec.convert(valid, list[Event], strict=False)
        except msgspec.ValidationError:
            typed = None
        items: list[Any] = [None if e.__class__ is str else e for e in events] if rejected else list(events)
        if typed is not None:
            if rejected:
                it = iter(typed)
                items = [None if item is None else next(it) for item in items]
            else:
                items = typed
        return self.collector.prepare_items(
            game,
            items,
            received_at,
            raw_items,
            typed=typed is not None,
            rejected=rejected,
            decoded_bytes=decoded_bytes,
        )


class _AsSent(Sequence[bytes]):
    """Each vendor event's bytes as sent, made only for the events a dead letter keeps."""

    def __init__(self, raws: list[msgspec.Raw]):
        self._raws = raws

    def __len__(self) -> int:
        return len(self._raws)

    def __getitem__(self, index: int) -> bytes:  # type: ignore[override]
        return bytes(self._raws[index])


class _SnowplowKept(Sequence[bytes]):
    """What a Snowplow dead letter keeps: the event as sent less its app id (the game's ingest
    key), or its bytes when it is not an object; made only for rejected events."""

    def __init__(self, pairs: list[dict[str, Any] | None], raws: list[msgspec.Raw]):
        self._pairs = pairs
        self._raws = raws

    def __len__(self) -> int:
        return len(self._raws)

    def __getitem__(self, index: int) -> bytes:  # type: ignore[override]
        p = self._pairs[index]
        return snowplow.kept_form(p) if p is not None else bytes(self._raws[index])


def _snowplow_kept(data: bytes) -> _SnowplowKept:
    raws = snowplow.parse(data)
    return _SnowplowKept(snowplow.all_pairs(data, raws), raws)


class _Later(Sequence[bytes]):
    """Each vendor event's dead-letter bytes, worked out only when the first is asked for (a
    typed batch usually has no rejected event, and then its body is parsed only once)."""

    def __init__(self, size: int, make: Callable[[], Sequence[bytes]]):
        self._size = size
        self._make = make
        self._items: Sequence[bytes] | None = None

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, index: int) -> bytes:  # type: ignore[override]
        if self._items is None:
            self._items = self._make()
        return self._items[index]
