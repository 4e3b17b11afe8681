"""A champion as files: the format a Lambda package ships and a model function loads at init.

``model/`` holds ``model.ubj`` (xgboost's native binary model: no MLflow, no pickle, scored
through xgboost's C API, ``serving.native_booster``) and
``metadata.json`` (model name, registry version, feature set, input names in order, and the
context fields' encodings). Writing and reading live together so the format is defined once;
``check_features`` is the start-up check that a model's inputs are what its declaration and
feature set say, so an unknown feature never becomes a silent NaN in production, and
``check_context`` that requests are read the way the model was trained to read them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import msgspec

from features.definitions import FEATURE_SETS, FeatureSet
from features.errors import ConfigError
from features.model_config import ModelConfig, served_feature_set
from features.model_context import ContextEncoding
from serving.models import ChampionModel
from serving.native_booster import NativeBooster, XGBoostError

MODEL_FILE = "model.ubj"
METADATA_FILE = "metadata.json"


class ModelMetadata(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    model: str
    version: int
    feature_set: str
    feature_names: list[str]
    """Every input in order: the features, then the context fields."""
    context: list[ContextEncoding] = msgspec.field(default_factory=list)
    """The context fields' encodings (omitted when none, so such a model packages as before)."""


def save_champion(champion: ChampionModel, folder: Path) -> Path:
    """Write ``champion`` into ``folder`` (created) as the two files a model function loads."""
    folder.mkdir(parents=True, exist_ok=True)
    champion.booster.save_model(str(folder / MODEL_FILE))
    meta = ModelMetadata(
        champion.name, champion.version, champion.feature_set, list(champion.feature_names), list(champion.context)
    )
    (folder / METADATA_FILE).write_bytes(msgspec.json.encode(meta))
    return folder


def load_champion(folder: Path) -> ChampionModel:
    """The champion saved in ``folder``; ``ConfigError`` naming the file when a piece is missing,
    unreadable, or when the model file and the metadata disagree on the features."""
    model_file, meta_file = folder / MODEL_FILE, folder / METADATA_FILE
    for f in (model_file, meta_file):
        if not f.is_file():
            raise ConfigError(f"{f} is missing: package the model again (`playerpulse models package NAME`)")
    try:
        meta = msgspec.json.decode(meta_file.read_bytes(), type=ModelMetadata)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ConfigError(f"{meta_file} is not valid model metadata: {exc}") from None
    try:
        booster = NativeBooster.load(model_file)
    except XGBoostError as exc:
        raise ConfigError(f"{model_file} is not a model xgboost can load: {exc}") from None
    names = tuple(meta.feature_names)
    if booster.num_features != len(names) or (booster.feature_names and booster.feature_names != names):
        raise ConfigError(
            f"{model_file} takes {booster.num_features} features {list(booster.feature_names)} but "
            f"{meta_file} lists {list(names)}: package the model again"
        )
    try:
        return ChampionModel(meta.model, meta.version, booster, names, meta.feature_set, tuple(meta.context))
    except ValueError as exc:
        raise ConfigError(f"{meta_file}: {exc}; package the model again") from None


def check_features(champion: ChampionModel, cfg: ModelConfig, sets: Mapping[str, FeatureSet] | None = None) -> None:
    """Refuse a champion whose inputs its declaration does not produce, naming the features.

    The model's features must all be computed by its feature set, which must be served online
    (``served_feature_set``: the streaming job fills only online sets' buckets), and must be the
    features the model YAML declares, in its order: anything else would be served as missing
    values. ``sets``: the feature sets by name (default: every set this code defines).
    """
    sets = FEATURE_SETS if sets is None else sets
    if champion.feature_set not in sets:
        raise ConfigError(
            f"model '{champion.name}' v{champion.version} was trained on feature set "
            f"'{champion.feature_set}', which this code does not define: deploy the code it was trained with"
        )
    fs = served_feature_set(champion.name, champion.feature_set, sets)
    unknown = [n for n in champion.profile_features if n not in set(fs.feature_names)]
    if unknown:
        raise ConfigError(
            f"model '{champion.name}' v{champion.version} needs features its feature set "
            f"{fs.full_name} does not compute: {', '.join(unknown)}"
        )
    declared = cfg.feature_names if champion.feature_set == cfg.feature_set else None
    if declared is not None and list(declared) != list(champion.profile_features):
        missing = [n for n in declared if n not in champion.profile_features]
        extra = [n for n in champion.profile_features if n not in declared]
        detail = json.dumps({"declared_not_in_model": missing, "in_model_not_declared": extra})
        raise ConfigError(
            f"model '{champion.name}' v{champion.version} does not match conf/models/{cfg.name}.yaml "
            f"(features or their order differ: {detail}); retrain it or fix the declaration"
        )
    check_context(champion, cfg)


def check_context(champion: ChampionModel, cfg: ModelConfig) -> None:
    """Refuse a version trained with other context fields than the declaration's, naming them.

    Serving reads a request's context as the declaration says (``serving.context``): a version
    trained with a field the declaration lacks would get no value for it, one trained without a
    declared field would get a value where it expects another input, and one trained with other
    values, a default or bounds would get the wrong numbers, all silently. So the fields, their
    order and their encodings must be equal; where a field was read from in training may differ.
    """
    declared = cfg.context_encodings
    if champion.context == declared:
        return
    trained = {e.name: e for e in champion.context}
    names = [e.name for e in declared]
    if list(trained) != names:
        detail = {
            "declared_not_in_model": [n for n in names if n not in trained],
            "in_model_not_declared": [n for n in trained if n not in names],
        }
        what = f"context fields or their order differ: {json.dumps(detail)}"
    else:
        shown = msgspec.json.encode
        changed = [
            f"{e.name} (trained {shown(trained[e.name]).decode()}, declared {shown(e).decode()})"
            for e in declared
            if trained[e.name] != e
        ]
        what = "the encoding of " + "; ".join(changed) + " differs"
    raise ConfigError(
        f"model '{champion.name}' v{champion.version} does not read the context conf/models/{cfg.name}.yaml "
        f"declares ({what}); retrain it or fix the declaration"
    )
