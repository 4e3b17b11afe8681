"""Hyper-parameter search with Optuna on the training days only, each trial a nested MLflow run.

A declaration with ``tuning:`` (or ``playerpulse train MODEL --tune``) searches the booster
settings before the model is fit. The search must never see the test days, or the test metric
would measure the search rather than the model: ``tune`` is handed the training days alone
(``training.train.fit_and_measure`` splits the test days off first) and splits them again by
time, the last ``training.test_days`` of them validating every trial. Those are the days early
stopping watches in the final fit, so each trial trains on the rest with early stopping and is
judged by ``tuning.metric`` at the round early stopping chose; the final booster, refit on all
training days with the best trial's settings, stops at that same round.

Reproducible: Optuna's TPE sampler is seeded (``tuning.sampler_seed``, default
``training.seed``), trials run one at a time, and xgboost's ``hist`` method on the CPU is
deterministic, so the same rows and declaration give the same trials and the same best settings.
A ``timeout_minutes`` that ends the search early gives that up: the number of trials then depends
on the machine.

In MLflow each trial is a run nested in the training run (its settings, its metric, its rounds).
The training run records the search: ``tuning_best_<setting>`` for each searched setting,
``tuning_best_trial``, ``tuning_trials``, the metric and seed, the days each part covered, and
``tuning/trials.csv`` with ``tuning/trials.png`` (the metric of every trial and the best so far)
and, from five trials on, ``tuning/importance.csv`` (each setting's fANOVA importance).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from features.errors import ConfigError, TrainingFailed
from features.model_config import MAXIMIZED_METRICS, ModelConfig, ParamRange, TuningSpec, XGBoostParams
from training.dataset import LABEL
from training.train import _fits, _matrix, _xgb_params, split_by_time

if TYPE_CHECKING:
    import optuna
    from rich.console import Console

IMPORTANCE_MIN_TRIALS = 5
"""Fewer trials than this say nothing about which setting matters; the importance table is skipped."""


@dataclass(frozen=True)
class TuningResult:
    metric: str
    """What the trials were judged by on the validation days (``auc``, ``logloss``, ``rmse``, ``mae``)."""
    direction: str
    """``maximize`` or ``minimize``."""
    best_params: dict[str, int | float]
    best_value: float
    best_trial: int
    best_rounds: int
    """Boosting rounds of the best trial (early stopping's choice on the validation days)."""
    trials: pd.DataFrame
    """One row per finished trial: ``trial``, the metric, ``best_so_far``, ``rounds``, ``seconds``
    and each searched setting."""
    fit_days: str
    """``first..last`` snapshot day the trials were fit on."""
    validation_days: str
    """``first..last`` snapshot day the trials were judged on; before every test day."""
    config: ModelConfig
    """The declaration with the best settings in ``training.xgboost``: what the final fit uses."""

    @property
    def metrics(self) -> dict[str, float]:
        """The training run's metric for the search (compared by ``--reproduce`` like the rest)."""
        return {f"tuning_best_valid_{self.metric}": self.best_value}


def with_tuning(cfg: ModelConfig, *, tune: bool | None = None, trials: int | None = None) -> ModelConfig:
    """The declaration as the command line asks for it.

    ``tune=False`` drops a declared search; ``tune=True`` or ``trials`` adds one where none is
    declared (the default space), and ``trials`` replaces the declared number. Revalidated, so the
    result is a declaration that could have been written in the file.
    """
    if tune is False and trials is not None:
        raise ConfigError(f"--no-tune and --trials {trials} contradict each other: drop one")
    if tune is None and trials is None:
        return cfg
    raw = cfg.model_dump()
    if tune is False:
        raw["tuning"] = None
    else:
        tuning = raw.get("tuning") or TuningSpec().model_dump()
        raw["tuning"] = {**tuning, **({"trials": trials} if trials is not None else {})}
    return ModelConfig.model_validate(raw)


def search_split(train: pd.DataFrame, cfg: ModelConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The training days as the search uses them: all but the last ``training.test_days`` to fit
    each trial, those last days to judge it. The caller passes the training days only."""
    days = sorted(train["as_of_date"].unique())
    test_days = cfg.training.test_days
    if len(days) <= test_days:
        raise TrainingFailed(
            f"tuning '{cfg.name}' needs more training days than training.test_days ({test_days}), which validate "
            f"each trial, but there are {len(days)}: collect more days of events or drop tuning"
        )
    fit, valid = split_by_time(train, test_days)
    for part, rows in (("fit", fit), ("validation", valid)):
        if not _fits(rows[LABEL].to_numpy(), cfg):
            raise TrainingFailed(
                f"tuning '{cfg.name}': the search's {part} days {_period(rows)} hold a single label value, "
                "so no trial can be judged there; use more days of data or drop tuning"
            )
    return fit, valid


def _period(rows: pd.DataFrame) -> str:
    return f"{rows['as_of_date'].min()}..{rows['as_of_date'].max()}"


def _is_integer(name: str) -> bool:
    return XGBoostParams.model_fields[name].annotation is int


def _suggest(trial: optuna.Trial, name: str, rng: ParamRange) -> int | float:
    integer = _is_integer(name)
    if rng.choices is not None:
        return trial.suggest_categorical(name, [int(c) if integer else float(c) for c in rng.choices])
    assert rng.low is not None and rng.high is not None  # ParamRange refuses anything else
    if integer:
        return trial.suggest_int(name, int(rng.low), int(rng.high), log=rng.log)
    return trial.suggest_float(name, float(rng.low), float(rng.high), log=rng.log)


def _tuned_config(cfg: ModelConfig, best: dict[str, Any]) -> ModelConfig:
    raw = cfg.model_dump()
    raw["training"]["xgboost"] = {**raw["training"]["xgboost"], **best}
    return ModelConfig.model_validate(raw)


def tune(train: pd.DataFrame, cfg: ModelConfig, *, console: Console | None = None) -> TuningResult:
    """Search ``cfg.tuning.space`` on ``train`` (the training days, never the test days) inside
    the active MLflow run: one nested run per trial, the summary on the active run."""
    import mlflow
    import optuna
    import xgboost as xgb
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    spec = cfg.tuning
    if spec is None:
        raise ValueError(f"model '{cfg.name}' declares no tuning")
    parent = mlflow.active_run()
    if parent is None:
        raise RuntimeError("tune logs its trials as nested runs: call it inside the training run")
    fit, valid = search_split(train, cfg)
    names, t = cfg.input_names, cfg.training  # the features, then the context fields
    d_fit = xgb.DMatrix(_matrix(fit, names), label=fit[LABEL].to_numpy(), feature_names=names)
    d_valid = xgb.DMatrix(_matrix(valid, names), label=valid[LABEL].to_numpy(), feature_names=names)
    base = _xgb_params(cfg)
    metric = spec.metric_for(cfg.label)
    direction = "maximize" if metric in MAXIMIZED_METRICS else "minimize"
    seed = spec.seed_for(t)

    def objective(trial: optuna.Trial) -> float:
        chosen = {name: _suggest(trial, name, rng) for name, rng in spec.space.items()}
        tags = {"tuning.model": cfg.name, "tuning.trial": str(trial.number)}
        with mlflow.start_run(
            experiment_id=parent.info.experiment_id,  # else the default experiment, not the parent's
            run_name=f"{cfg.name}-trial-{trial.number:03d}",
            nested=True,
            tags=tags,
        ):
            history: dict[str, Any] = {}
            booster = xgb.train(
                {**base, **chosen},
                d_fit,
                t.num_boost_round,
                evals=[(d_valid, "valid")],
                early_stopping_rounds=t.early_stopping_rounds,
                evals_result=history,
                verbose_eval=False,
            )
            rounds = booster.best_iteration + 1 if t.early_stopping_rounds is not None else t.num_boost_round
            value = float(history["valid"][metric][rounds - 1])
            mlflow.log_params({**{f"xgb_{k}": v for k, v in chosen.items()}, "trial": trial.number})
            mlflow.log_metrics({f"valid_{metric}": value, "rounds": float(rounds)})
        trial.set_user_attr("rounds", rounds)
        return value

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(
            study_name=cfg.name, direction=direction, sampler=optuna.samplers.TPESampler(seed=seed)
        )
        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("best {task.fields[best]}"),
            TimeElapsedColumn(),
            console=console or Console(stderr=True),
            transient=True,
        )
        with progress:
            task = progress.add_task(f"tuning {cfg.name} ({metric})", total=spec.trials, best="-")

            def advance(study: optuna.Study, _: optuna.trial.FrozenTrial) -> None:
                progress.update(task, advance=1, best=f"{study.best_value:.4f}")

            study.optimize(
                objective,
                n_trials=spec.trials,
                timeout=spec.timeout_minutes * 60 if spec.timeout_minutes is not None else None,
                callbacks=[advance],
            )
    finally:
        optuna.logging.set_verbosity(verbosity)

    best = study.best_trial
    result = TuningResult(
        metric=metric,
        direction=direction,
        best_params=dict(best.params),
        best_value=float(best.value),  # type: ignore[arg-type]
        best_trial=best.number,
        best_rounds=int(best.user_attrs["rounds"]),
        trials=_trials_table(study, metric, list(spec.space)),
        fit_days=_period(fit),
        validation_days=_period(valid),
        config=_tuned_config(cfg, best.params),
    )
    _log_search(result, study, spec, seed)
    return result


def _trials_table(study: optuna.Study, metric: str, params: list[str]) -> pd.DataFrame:
    from optuna.trial import TrialState

    done = [tr for tr in study.trials if tr.state == TrialState.COMPLETE]
    table = pd.DataFrame(
        {
            "trial": [tr.number for tr in done],
            metric: [tr.value for tr in done],
            "rounds": [tr.user_attrs["rounds"] for tr in done],
            "seconds": [tr.duration.total_seconds() if tr.duration else float("nan") for tr in done],
            **{p: [tr.params[p] for tr in done] for p in params},
        }
    )
    running = table[metric].cummax() if study.direction.name == "MAXIMIZE" else table[metric].cummin()
    table.insert(2, "best_so_far", running)
    return table


def _trials_plot(table: pd.DataFrame, metric: str, title: str, path: Path) -> Path:
    """The metric of every trial as dots and the best so far as a step line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    try:
        ax.scatter(table["trial"], table[metric], color="tab:blue", s=18, label="trial")
        ax.step(table["trial"], table["best_so_far"], where="post", color="tab:orange", label="best so far")
        ax.set(xlabel="trial", ylabel=f"validation {metric}", title=title)
        ax.legend(loc="best")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path


def _importance(study: optuna.Study, seed: int) -> pd.DataFrame | None:
    """fANOVA importance of each searched setting, or ``None`` when there are too few trials (or
    too little variation) to say."""
    import optuna

    if len(study.trials) < IMPORTANCE_MIN_TRIALS:
        return None
    try:
        found = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=seed)
        )
    except (ValueError, RuntimeError):  # e.g. every trial drew the same values
        return None
    return pd.DataFrame({"setting": list(found), "importance": list(found.values())})


def _log_search(result: TuningResult, study: optuna.Study, spec: TuningSpec, seed: int) -> None:
    """The search's summary on the active (training) run."""
    import mlflow

    mlflow.log_params(
        {
            "tuning_metric": result.metric,
            "tuning_direction": result.direction,
            "tuning_trials": len(result.trials),
            "tuning_trials_requested": spec.trials,
            "tuning_best_trial": result.best_trial,
            "tuning_best_rounds": result.best_rounds,
            "tuning_sampler_seed": seed,
            "tuning_fit_days": result.fit_days,
            "tuning_validation_days": result.validation_days,
            **{f"tuning_best_{k}": v for k, v in result.best_params.items()},
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        result.trials.to_csv(folder / "trials.csv", index=False)
        _trials_plot(
            result.trials,
            result.metric,
            f"{study.study_name}: validation {result.metric} by trial",
            folder / "trials.png",
        )
        importance = _importance(study, seed)
        if importance is not None:
            importance.to_csv(folder / "importance.csv", index=False)
        mlflow.log_artifacts(str(folder), artifact_path="tuning")
