"""Pseudonymous player ids: the one function the collector and both serving faces hash with.

Player ids are personal data. With ``games.GAME.pseudonymise`` set, the collector replaces each
event's ``player_id`` by ``pseudonym(secret, player_id)`` before anything is stored (stream,
dead letters, and so every lake table and online profile), and serving hashes the id the game
sends the same way before it reads; the game never changes, and (``game_id``, pseudonym) stays
the key of everything.

A pseudonym is ``p_`` followed by the first 40 hex digits (160 bits) of
HMAC-SHA256(secret, player_id as UTF-8): 42 characters of ``[a-z0-9_]``, so every pseudonym is
within the contract's ``PLAYER_ID_PATTERN`` and 64 characters whatever id it came from, and two
games (different secrets) never share a pseudonym for the same id. Without the secret nobody can
go from a pseudonym back to the id, or from an id to its pseudonym.

Secrets rotate with overlap, like keys: the list is newest first. The collector always writes
with the first; serving tries the first, then the older ones, so profiles written before the
rotation are still found; ``pipelines/rekey.py`` moves the lake from old pseudonyms to new ones.
Secrets come from configuration (``${VAR}`` placeholders, so never from the YAML file itself)
or from AWS Secrets Manager (``secret_arn``), read once at start-up.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from features.errors import ConfigError

if TYPE_CHECKING:
    from features.config import GameConfig

PREFIX = "p_"
HEX_CHARS = 40
"""160 bits of the HMAC: collisions need ~2^80 players; the id stays short in every key."""
MIN_SECRET_CHARS = 16


def _none_if_empty(v: Any) -> Any:
    return v or None


class PseudonymiseConfig(BaseModel):
    """``games.GAME.pseudonymise``: the game's secrets, newest first, or where to read them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    secrets: list[Annotated[str, Field(min_length=MIN_SECRET_CHARS)]] = Field(default_factory=list)
    """Secrets newest first, each at least 16 characters; write them as ``${VAR}`` so they
    come from the environment, never from the file."""
    secret_arn: str | None = Field(None, pattern=r"^arn:aws[a-z-]*:secretsmanager:")
    """An AWS Secrets Manager secret read at start-up instead: its SecretString is one secret,
    or a JSON array of secrets newest first (the rotation overlap)."""
    region: str = "us-east-1"
    endpoint_url: Annotated[str | None, BeforeValidator(_none_if_empty)] = None
    """Override of the Secrets Manager endpoint (a local server in tests)."""

    @model_validator(mode="after")
    def _one_source(self) -> PseudonymiseConfig:
        if bool(self.secrets) == (self.secret_arn is not None):
            raise ValueError("set exactly one of pseudonymise.secrets (from ${VARS}) or pseudonymise.secret_arn")
        if len(set(self.secrets)) != len(self.secrets):
            raise ValueError("pseudonymise.secrets holds the same secret twice")
        return self


def pseudonym(secret: bytes, player_id: str) -> str:
    """The stored id of ``player_id`` under ``secret`` (see the module docstring)."""
    return PREFIX + hmac.new(secret, player_id.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:HEX_CHARS]


class Pseudonymiser:
    """One game's secrets: ``current`` for writing, ``candidates`` for reading during a rotation."""

    def __init__(self, secrets: list[bytes]):
        if not secrets:
            raise ValueError("a pseudonymiser needs at least one secret")
        self._secrets = secrets

    def current(self, player_id: str) -> str:
        return pseudonym(self._secrets[0], player_id)

    def candidates(self, player_id: str) -> list[str]:
        """The ids ``player_id`` may be stored under, newest secret first."""
        return [pseudonym(s, player_id) for s in self._secrets]


def resolve_secrets(game: str, cfg: PseudonymiseConfig) -> list[bytes]:
    """The secrets of ``cfg``, newest first; Secrets Manager is asked here, once, at start-up."""
    if cfg.secret_arn is None:
        return [s.encode() for s in cfg.secrets]
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.client("secretsmanager", region_name=cfg.region, endpoint_url=cfg.endpoint_url)
    where = f"games.{game}.pseudonymise.secret_arn"
    try:
        text = client.get_secret_value(SecretId=cfg.secret_arn)["SecretString"]
    except (ClientError, BotoCoreError, KeyError) as exc:
        raise ConfigError(f"{where}: cannot read the secret ({exc}); check the ARN and the role's access") from None
    values: Any = text
    if text.lstrip().startswith("["):
        try:
            values = json.loads(text)
        except json.JSONDecodeError:
            raise ConfigError(f"{where}: the secret starts with '[' but is not a JSON array of strings") from None
    values = [values] if isinstance(values, str) else values
    if (
        not isinstance(values, list)
        or not values
        or not all(isinstance(v, str) and len(v) >= MIN_SECRET_CHARS for v in values)
    ):
        raise ConfigError(
            f"{where}: the secret must be one string, or a JSON array of strings newest first, "
            f"each at least {MIN_SECRET_CHARS} characters"
        )
    return [v.encode() for v in values]


class GamePseudonyms:
    """Every game's ``Pseudonymiser`` (``None`` for games that keep raw ids), built at start-up."""

    def __init__(self, by_game: Mapping[str, Pseudonymiser]):
        self._by_game = dict(by_game)

    @classmethod
    def of(cls, games: Mapping[str, GameConfig]) -> GamePseudonyms:
        return cls(
            {
                game: Pseudonymiser(resolve_secrets(game, cfg.pseudonymise))
                for game, cfg in games.items()
                if cfg.pseudonymise is not None
            }
        )

    def for_game(self, game: str) -> Pseudonymiser | None:
        return self._by_game.get(game)

    def stored_ids(self, game: str, player_id: str) -> list[str]:
        """Ids to look ``player_id`` up by in ``game``, in order (just the id without pseudonyms)."""
        p = self._by_game.get(game)
        return [player_id] if p is None else p.candidates(player_id)


def digest_for_log(value: str) -> str:
    """A 12-hex-digit SHA-256 prefix of ``value``: stable, correlatable, unreadable.

    How logs and the prediction sample (``gold.predictions.player_key``) name a player. It
    lives here, beside the pseudonyms, because erasure (``pipelines.forget``) must compute the
    same digest to find a player's rows: it is still personal data."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:12]
