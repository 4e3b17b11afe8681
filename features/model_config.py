"""Model declarations: ``conf/models/NAME.yaml``, written by data scientists, read by training and serving.

One file declares everything about a model that is a decision rather than code: the features it
uses, the label it learns, how it is trained and split, the quality gate a new version must pass,
how a predicted probability becomes content for the game, and what to return when no prediction
can be made. Training and serving read the same file, so the two can never disagree on the
feature list or the response mapping. A typo is a ``ConfigError`` naming the file and the key,
never a silently ignored setting. No Spark here: the serving package imports this module.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator

from features.config import Settings, _describe
from features.definitions import FEATURE_SETS, FeatureSet
from features.errors import ConfigError, ModelNotFound
from features.model_context import ContextEncoding, ContextField, context_problem, known_event_type
from features.model_context import Strict as _Strict
from features.properties import PROPERTY_TYPES

MODEL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
"""Model names double as file names and MLflow registry names, and arrive in URL paths."""


LabelKind = Literal["occurrence", "absence", "regression"]
NUMERIC_PROPERTIES = tuple(n for n, t in PROPERTY_TYPES.items() if t == "double")
"""Silver's typed numeric property columns: what a regression label may sum."""


class LabelSpec(_Strict):
    """What the model predicts about the window ``(as_of, as_of + horizon]`` after a snapshot.

    ``kind`` says how the label event becomes a target, and so the objective and metrics:

    - ``occurrence``: 1 when the player produces ``event_type`` in the window (``purchase``
      within 24 h), a binary classifier;
    - ``absence``: 1 when the player produces *no* ``event_type`` in the window (churn: no
      ``session_start`` within 7 days), a binary classifier;
    - ``regression``: the sum of ``value`` over the player's ``event_type`` events in the window
      (spend: ``price_usd`` of purchases over 7 days, 0 without any), a regressor.
    """

    kind: LabelKind = "occurrence"
    event_type: str
    """An event type of the contract (``purchase``); its occurrence after the snapshot is the label."""
    horizon_hours: float = Field(gt=0, le=24 * 90)
    """The label window is ``(as_of, as_of + horizon]``: strictly after the snapshot, up to and
    including its end, so nothing the features saw can leak into the label."""
    value: str | None = None
    """``regression`` only: the numeric property column summed over the window (``price_usd``)."""
    ground_truth: str | None = None
    """The column of the simulator's ground-truth parquet holding the true probability of this
    label (``p_purchase``, ``p_churn_7d``): with it, training logs the AUC ceiling."""

    @field_validator("event_type")
    @classmethod
    def _known_event_type(cls, v: str) -> str:
        return known_event_type(v)

    @field_validator("value")
    @classmethod
    def _value_fits_kind(cls, v: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("kind", "occurrence")
        if kind != "regression":
            if v is not None:
                raise ValueError(f"only a regression label sums a value; a {kind} label takes none")
            return v
        if v not in NUMERIC_PROPERTIES:
            raise ValueError(f"'{v}' is not a numeric property column (known: {', '.join(NUMERIC_PROPERTIES)})")
        return v

    @model_validator(mode="after")
    def _regression_names_its_value(self) -> LabelSpec:
        if self.kind == "regression" and self.value is None:
            raise ValueError(
                f"a regression label needs 'value', the property summed over the window "
                f"(one of {', '.join(NUMERIC_PROPERTIES)})"
            )
        if self.kind == "regression" and self.ground_truth is not None:
            raise ValueError("ground_truth names a true probability, which only a classification label has")
        return self

    @property
    def horizon_ms(self) -> int:
        return round(self.horizon_hours * 3_600_000)

    @property
    def is_classification(self) -> bool:
        return self.kind != "regression"

    @property
    def objective(self) -> str:
        """The xgboost objective the kind implies."""
        return "binary:logistic" if self.is_classification else "reg:squarederror"


class XGBoostParams(_Strict):
    """The booster settings a data scientist may tune; anything else is a typo, not a wish."""

    max_depth: int = Field(4, ge=1, le=16)
    eta: float = Field(0.1, gt=0, le=1)
    subsample: float = Field(1.0, gt=0, le=1)
    colsample_bytree: float = Field(1.0, gt=0, le=1)
    min_child_weight: float = Field(1.0, ge=0)
    reg_lambda: float = Field(1.0, ge=0)
    reg_alpha: float = Field(0.0, ge=0)
    max_bin: int = Field(256, ge=2, le=4096)
    nthread: int = Field(2, ge=1, le=256)
    """Threads for training; the embedded profile runs on 2 cores."""
    scale_pos_weight: float = Field(1.0, gt=0)


class TrainingSpec(_Strict):
    test_days: int = Field(ge=1)
    """The last ``test_days`` snapshot days are the test set: the split is by time, as in production."""
    xgboost: XGBoostParams = XGBoostParams()
    num_boost_round: int = Field(200, ge=1, le=10_000)
    early_stopping_rounds: int | None = Field(20, ge=1)
    """Stop when the last ``test_days`` days *before* the test period stop improving
    (never the test set itself); ``null`` trains all ``num_boost_round`` rounds."""
    min_history_days: int = Field(0, ge=0)
    """A snapshot is used only when at least this many days of data lie behind it, so the
    first days (whose 7- and 30-day windows are still filling up) do not teach the model."""
    seed: int = 42
    snapshot_every_days: int = Field(1, ge=1, le=28)
    """Snapshot cadence: one snapshot per player every this many days, counted from the first
    day of data (1: daily, 7: weekly). Daily snapshots of a 7-day label share most of their
    window with their neighbours; a sparser cadence trades rows for independence."""


TUNABLE_PARAMS = tuple(n for n in XGBoostParams.model_fields if n != "nthread")
"""Booster settings a search may vary: every ``XGBoostParams`` key but ``nthread``, which changes
how fast a trial runs, not what it learns."""
CLASSIFIER_METRICS = ("auc", "logloss")
REGRESSOR_METRICS = ("rmse", "mae")
MAXIMIZED_METRICS = ("auc",)
"""Every other tuning metric is a loss, minimised."""


class ParamRange(_Strict):
    """Where one booster setting is searched: ``{low, high}`` (both included; ``log: true``
    samples on a log scale, for rates and penalties that matter by order of magnitude), or
    ``{choices: [...]}``. Integer settings (``max_depth``, ``max_bin``) take integer bounds."""

    low: int | float | None = None
    high: int | float | None = None
    log: bool = False
    choices: list[int | float] | None = None

    @model_validator(mode="after")
    def _one_shape(self) -> ParamRange:
        if self.choices is not None:
            if self.low is not None or self.high is not None or self.log:
                raise ValueError("takes either 'choices' or 'low'/'high' (with 'log'), not both")
            if not self.choices:
                raise ValueError("'choices' must list at least one value")
            if len(set(self.choices)) != len(self.choices):
                raise ValueError(f"'choices' lists a value more than once: {self.choices}")
            return self
        if self.low is None or self.high is None:
            raise ValueError("needs both 'low' and 'high' (or 'choices')")
        if self.low > self.high:
            raise ValueError(f"low {self.low} is above high {self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"a log scale needs low > 0, got {self.low}")
        return self

    @property
    def values(self) -> list[int | float]:
        """The values the declaration names: the choices, or the two bounds."""
        return list(self.choices) if self.choices is not None else [self.low, self.high]  # type: ignore[list-item]


DEFAULT_SPACE: dict[str, ParamRange] = {
    "eta": ParamRange(low=0.02, high=0.3, log=True),
    "max_depth": ParamRange(low=2, high=8),
    "min_child_weight": ParamRange(low=1, high=20, log=True),
    "subsample": ParamRange(low=0.6, high=1.0),
    "colsample_bytree": ParamRange(low=0.6, high=1.0),
    "reg_lambda": ParamRange(low=0.1, high=10, log=True),
}
"""What ``tuning: {}`` or ``playerpulse train MODEL --tune`` searches when no ``space`` is declared."""


class TuningSpec(_Strict):
    """A hyper-parameter search (the declaration's ``tuning:``) before the model is trained.

    The search sees the training days only: their last ``training.test_days`` days validate each
    trial (with early stopping, as the final fit does), so the test days still measure once.
    """

    trials: int = Field(20, ge=1, le=1000)
    timeout_minutes: float | None = Field(None, gt=0)
    """Stop starting trials after this long (the running one finishes); then the number of trials,
    and so the best parameters, depend on the machine's speed."""
    metric: Literal["auc", "logloss", "rmse", "mae"] | None = None
    """What a trial is judged by on the validation days; default ``auc`` for classifiers (what the
    quality gate reads), ``rmse`` for regressions."""
    sampler_seed: int | None = None
    """Seed of Optuna's TPE sampler; default ``training.seed``, so a rerun on the same rows
    proposes the same trials."""
    space: dict[str, ParamRange] = Field(default_factory=lambda: dict(DEFAULT_SPACE))
    """Booster setting → range; each trial takes the declared ``training.xgboost`` and overrides these."""

    @field_validator("space")
    @classmethod
    def _tunable_and_valid(cls, space: dict[str, ParamRange]) -> dict[str, ParamRange]:
        if not space:
            raise ValueError("must name at least one booster setting to search, or be omitted for the default space")
        for name, rng in space.items():
            if name not in TUNABLE_PARAMS:
                tunable = ", ".join(TUNABLE_PARAMS)
                raise ValueError(f"'{name}' is not a booster setting a search may vary (tunable: {tunable})")
            integer = XGBoostParams.model_fields[name].annotation is int
            for value in rng.values:
                if integer and float(value) != int(value):
                    raise ValueError(f"'{name}' is an integer setting, so its range takes integers, got {value}")
                try:
                    XGBoostParams.model_validate({name: int(value) if integer else float(value)})
                except ValidationError as exc:
                    why = exc.errors()[0]["msg"]
                    raise ValueError(f"'{name}': {value} is outside what training.xgboost accepts ({why})") from None
        return space

    def metric_for(self, label: LabelSpec) -> str:
        return self.metric or ("auc" if label.is_classification else "rmse")

    def seed_for(self, training: TrainingSpec) -> int:
        return training.seed if self.sampler_seed is None else self.sampler_seed


class QualityGate(_Strict):
    """What ``playerpulse validate`` requires of a version before it may become ``challenger``
    (and so, without ``--force``, ``champion``). Each key is also the name of the check that
    reports it, so a refusal names the line of this file that refused."""

    min_auc: float = Field(ge=0, le=1)
    """A version below this AUC on its holdout rows fails validation."""
    max_auc_drop_vs_champion: float = Field(ge=0, le=1)
    """A version may score at most this much below the champion re-scored on the *same* holdout
    rows (the champion's own logged AUC was measured on an older period and is not comparable)."""
    max_calibration_error: float = Field(0.05, gt=0, le=1)
    """Bound on the expected calibration error on the holdout rows: the row-weighted mean gap
    between predicted probability and observed rate over ``calibration_bins`` equal-width bins.
    Tiers map a score to content by absolute thresholds, so a model that ranks well but whose
    probabilities drifted would still show players the wrong content."""
    calibration_bins: int = Field(10, ge=2, le=100)


class Bounds(_Strict):
    """A closed interval ``[low, high]``."""

    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> Bounds:
        if self.low > self.high:
            raise ValueError(f"low {self.low} is above high {self.high}")
        return self


class TrainingSetExpectations(_Strict):
    """What Great Expectations checks on the training set before any training; a failure stops
    the run naming the expectation. The key columns and ``label`` are always required non-null."""

    label_share: Bounds | None = None
    """Classification: the share of rows labelled 1 must lie in ``[low, high]``; a share outside
    means the label, the events or the snapshot window changed, not that the players did."""
    label_range: Bounds | None = None
    """Regression: every label value must lie in ``[low, high]``."""
    not_null: list[str] = []
    """Features of the model that must never be null (many legitimately are: a recency of
    something that never happened)."""
    ranges: dict[str, Bounds] = {}
    """Feature → bounds its non-null values must lie in."""


class Tier(_Strict):
    min_score: float = Field(ge=0, le=1)
    content: dict[str, Any]


class ResponseSpec(_Strict):
    tiers: list[Tier] = Field(min_length=1)
    """Ordered from the highest ``min_score`` down; the first tier the score reaches wins. The
    last tier starts at 0 so that every probability maps to some content."""

    @field_validator("tiers")
    @classmethod
    def _ordered_and_total(cls, tiers: list[Tier]) -> list[Tier]:
        scores = [t.min_score for t in tiers]
        if any(a <= b for a, b in pairwise(scores)):
            raise ValueError(f"tiers must be ordered by min_score from high to low without repeats, got {scores}")
        if scores[-1] != 0:
            raise ValueError("the last tier must have min_score 0 so that every score maps to content")
        return tiers

    def content_for(self, score: float) -> dict[str, Any]:
        for tier in self.tiers:
            if score >= tier.min_score:
                return dict(tier.content)
        return dict(self.tiers[-1].content)


class FallbackSpec(_Strict):
    content: dict[str, Any]
    """Returned when there is no profile, no champion, or any error: the game always gets content."""


class ChallengerSpec(_Strict):
    """How the ``challenger`` alias takes part in serving, so a new version meets real traffic
    before it is promoted."""

    mode: Literal["off", "split", "shadow"] = "off"
    """``split``: a share of players get the challenger's answer; ``shadow``: the challenger also
    scores every request and is logged, but never answers; ``off``: champion only."""
    share: float = Field(0.0, ge=0, le=1)
    """With ``split``, the share of players served by the challenger. Sticky: a player's side
    comes from a hash of (game, player), so the same player always sees the same model."""


class ServingSpec(_Strict):
    challenger: ChallengerSpec = ChallengerSpec()


class ModelConfig(_Strict):
    name: str
    description: str = ""
    feature_set: str
    """Full name of a ``FeatureSet`` (``player_activity_v1``) that is served online: every
    declared model is served, and serving computes features only from online sets."""
    features: list[str] | None = None
    """Subset of the feature set's outputs, in model input order; omitted means all of them."""
    label: LabelSpec
    training: TrainingSpec
    quality_gate: QualityGate
    response: ResponseSpec
    fallback: FallbackSpec
    serving: ServingSpec = ServingSpec()
    expectations: TrainingSetExpectations = TrainingSetExpectations()
    tuning: TuningSpec | None = None
    """A hyper-parameter search before training (``training/tuning.py``); none: train as declared."""
    context: list[ContextField] = []
    """Request-time fields the game sends with a predict call (``features.model_context``): model
    inputs after the features, in this order."""

    @field_validator("name")
    @classmethod
    def _valid_name(cls, v: str) -> str:
        if not MODEL_NAME.match(v):
            raise ValueError("must be lower-case letters, digits and '_', starting with a letter (max 64)")
        return v

    @field_validator("feature_set")
    @classmethod
    def _known_feature_set(cls, v: str, info: ValidationInfo) -> str:
        if v not in FEATURE_SETS:
            raise ValueError(f"unknown feature set '{v}' (known: {', '.join(sorted(FEATURE_SETS))})")
        try:
            served_feature_set(info.data.get("name", "?"), v)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return v

    @field_validator("features")
    @classmethod
    def _features_of_the_set(cls, v: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if v is None:
            return v
        if not v:
            raise ValueError("must name at least one feature, or be omitted to use the whole feature set")
        if len(v) != len(set(v)):
            raise ValueError("lists a feature more than once")
        fs_name = info.data.get("feature_set")
        if fs_name is None:  # the feature set itself was invalid and is reported on its own
            return v
        known = FEATURE_SETS[fs_name].feature_names
        unknown = [f for f in v if f not in known]
        if unknown:
            raise ValueError(f"{unknown} are not features of {fs_name} (known: {', '.join(known)})")
        return v

    @model_validator(mode="after")
    def _expectations_fit_the_model(self) -> ModelConfig:
        e, names = self.expectations, set(self.feature_names)
        unknown = sorted({*e.not_null, *e.ranges} - names)
        if unknown:
            raise ValueError(f"expectations name {unknown}, which are not features of model '{self.name}'")
        if self.label.is_classification and e.label_range is not None:
            raise ValueError("expectations.label_range bounds a regression label; a classifier takes label_share")
        if not self.label.is_classification and e.label_share is not None:
            raise ValueError("expectations.label_share bounds a classification label; a regressor takes label_range")
        return self

    @field_validator("tuning")
    @classmethod
    def _tuning_metric_fits_the_label(cls, v: TuningSpec | None, info: ValidationInfo) -> TuningSpec | None:
        label = info.data.get("label")
        if v is None or v.metric is None or label is None:
            return v
        allowed = CLASSIFIER_METRICS if label.is_classification else REGRESSOR_METRICS
        if v.metric not in allowed:
            raise ValueError(
                f"metric '{v.metric}' does not judge a {label.kind} label (use one of {', '.join(allowed)})"
            )
        return v

    @field_validator("context")
    @classmethod
    def _context_beside_the_features(cls, v: list[ContextField], info: ValidationInfo) -> list[ContextField]:
        fs_name = info.data.get("feature_set")
        if fs_name is None:  # the feature set itself was invalid and is reported on its own
            return v
        problem = context_problem(v, FEATURE_SETS[fs_name].feature_names, fs_name)
        if problem:
            raise ValueError(problem)
        return v

    @property
    def context_names(self) -> list[str]:
        return [f.name for f in self.context]

    @property
    def input_names(self) -> list[str]:
        """The model's inputs in order: its features, then its context fields."""
        return [*self.feature_names, *self.context_names]

    @property
    def context_encodings(self) -> tuple[ContextEncoding, ...]:
        return tuple(f.encoding for f in self.context)

    @property
    def fs(self) -> FeatureSet:
        return FEATURE_SETS[self.feature_set]

    @property
    def feature_names(self) -> list[str]:
        return list(self.features) if self.features is not None else self.fs.feature_names


def served_feature_set(model: str, set_name: str, sets: Mapping[str, FeatureSet] | None = None) -> FeatureSet:
    """The feature set ``model`` is served from, of ``sets`` (default: every set this code
    defines); ``ConfigError`` naming the model and the set when it is unknown or not online.

    A set that is not online has no buckets in any profile (the streaming job folds only online
    sets), so its features would be computed from nothing: zero counts, missing values, silently.
    """
    sets = FEATURE_SETS if sets is None else sets
    fs = sets.get(set_name)
    if fs is None:
        raise ConfigError(f"model '{model}' uses feature set '{set_name}', which this code does not define")
    if not fs.online:
        raise ConfigError(
            f"model '{model}' uses feature set {set_name}, which is not served online (online=False in "
            f"features/definitions.py): the streaming job never folds its inputs, so serving cannot compute "
            f"its features; mark the set online, or declare the model on an online set"
        )
    return fs


def model_config_path(settings: Settings, name: str) -> Path:
    return Path(settings.models_dir) / f"{name}.yaml"


def _known_names(settings: Settings) -> list[str]:
    return sorted(p.stem for p in Path(settings.models_dir).glob("*.yaml"))


def parse_model_config(source: Path) -> ModelConfig:
    """Validate one declaration file; the file's stem must equal its ``name``."""
    try:
        raw = yaml.safe_load(source.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{source} must hold a mapping (name, feature_set, label, …) at the top level")
    try:
        cfg = ModelConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None
    if cfg.name != source.stem:
        raise ConfigError(
            f"invalid configuration in {source}:\n  - 'name': is '{cfg.name}' but the file is "
            f"{source.name}; rename one so they match"
        )
    return cfg


def load_model_config(settings: Settings, name: str) -> ModelConfig:
    """The declaration of model ``name``; ``ModelNotFound`` if there is none.

    The name is checked against ``MODEL_NAME`` before it touches the file system, because it
    comes straight from a URL path in serving.
    """
    if not MODEL_NAME.match(name):
        raise ModelNotFound(f"'{name}' is not a valid model name (lower-case letters, digits and '_')")
    source = model_config_path(settings, name)
    if not source.is_file():
        raise ModelNotFound(
            f"no model '{name}': {source} does not exist (declared models: {_known_names(settings)}); "
            f"add conf/models/{name}.yaml"
        )
    return parse_model_config(source)


def list_model_configs(settings: Settings) -> list[ModelConfig]:
    """Every declared model, by name; one bad file fails the whole listing so it gets fixed."""
    folder = Path(settings.models_dir)
    if not folder.is_dir():
        raise ConfigError(f"models_dir {folder} does not exist: create it or fix models_dir in the configuration")
    return [parse_model_config(p) for p in sorted(folder.glob("*.yaml"))]
