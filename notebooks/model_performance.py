# Databricks notebook source
# MAGIC %md
# MAGIC # Model performance over time: `store_offer`
# MAGIC
# MAGIC Every `playerpulse train store_offer` is an MLflow run (`store_offer-train`) with its holdout
# MAGIC metrics (`test_auc`, `test_logloss`, `base_rate`); every `playerpulse validate` is a run
# MAGIC `store_offer-validate-vN` with `passed` and the gate's thresholds. This plots them by run time,
# MAGIC so a model that slowly gets worse shows before a validation fails.

# COMMAND ----------

MODEL = "store_offer"

# COMMAND ----------

import matplotlib.pyplot as plt
import mlflow

from playerpulse.notebook_support import mlflow_experiment

experiment = mlflow_experiment()
runs = mlflow.search_runs(
    experiment_names=[experiment], filter_string=f"tags.model = '{MODEL}'", order_by=["attributes.start_time ASC"]
)
names = runs["tags.mlflow.runName"] if len(runs) else []
training = runs[names == f"{MODEL}-train"] if len(runs) else runs
validation = runs[names.str.startswith(f"{MODEL}-validate-")] if len(runs) else runs
print(f"{len(training)} training runs, {len(validation)} validation runs of {MODEL} in {experiment}")
training[["start_time", "metrics.test_auc", "metrics.test_logloss", "metrics.base_rate"]]

# COMMAND ----------

fig, (auc, loss) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
auc.plot(training["start_time"], training["metrics.test_auc"], marker="o", label="holdout AUC")
if "params.threshold_min_auc" in validation and len(validation):
    floor = validation["params.threshold_min_auc"].astype(float)
    auc.step(validation["start_time"], floor, where="post", linestyle="--", color="grey", label="gate: min_auc")
if len(validation) and {"metrics.passed", "metrics.candidate_auc"} <= set(validation.columns):
    failed = validation[validation["metrics.passed"] < 1.0]
    auc.scatter(failed["start_time"], failed["metrics.candidate_auc"], color="red", zorder=3, label="failed validation")
auc.set_title(f"{MODEL}: holdout AUC per training run")
auc.set_ylabel("AUC")
auc.legend()
loss.plot(training["start_time"], training["metrics.test_logloss"], marker="o", color="#dd8452")
loss.set_title("holdout log loss")
loss.set_ylabel("log loss")
fig.autofmt_xdate()
plt.show()

# COMMAND ----------

# MAGIC %md
# MAGIC The base rate (share of positive labels in the holdout) moves the AUC a model can reach: read a
# MAGIC drop in AUC next to it.

# COMMAND ----------

fig, ax = plt.subplots(figsize=(9, 3))
ax.plot(training["start_time"], training["metrics.base_rate"], marker="o", color="#55a868")
ax.set_title(f"{MODEL}: holdout base rate per training run")
ax.set_ylabel("share of positive labels")
fig.autofmt_xdate()
plt.show()
