# Databricks notebook source
# MAGIC %md
# MAGIC # Quarantine and dead letters
# MAGIC
# MAGIC What the platform refused, and why. `bronze.dead_letter` holds what the collector rejected
# MAGIC (kept raw, with its reason); `silver.quarantine` holds events that reached the lake but broke a
# MAGIC silver expectation (`quarantine_reason` names it, e.g. `expect_column_values_to_be_between(…)`).
# MAGIC A sudden rise in either is a client release or an upstream change to look at.

# COMMAND ----------

from playerpulse.notebook_support import spark_session

spark = spark_session()

# COMMAND ----------

import matplotlib.pyplot as plt
from pyspark.sql import functions as F

quarantine = spark.table("silver.quarantine")
# The expectation's name, without its arguments, groups reasons that differ only in the value.
expectation = F.regexp_extract("quarantine_reason", r"^([A-Za-z_]+)", 1)
by_expectation = (
    quarantine.groupBy(expectation.alias("expectation"), "event_type")
    .agg(F.count("*").alias("events"))
    .orderBy(F.desc("events"))
    .toPandas()
)
silver_events = spark.table("silver.player_events").count()
quarantined = int(by_expectation["events"].sum()) if len(by_expectation) else 0
share = quarantined / (quarantined + silver_events) if quarantined + silver_events else 0.0
print(f"quarantined: {quarantined} events ({share:.2%} of what reached silver)")
by_expectation

# COMMAND ----------

fig, ax = plt.subplots(figsize=(9, 0.4 * max(len(by_expectation), 1) + 1.5))
labels = [f"{r.expectation} ({r.event_type})" for r in by_expectation.itertuples()]
ax.barh(labels[::-1], by_expectation["events"].tolist()[::-1], color="#c44e52")
ax.set_title("Quarantined events by expectation")
ax.set_xlabel("events")
plt.show()

# COMMAND ----------

# MAGIC %md
# MAGIC ## Dead letters: what the collector rejected

# COMMAND ----------

dead = spark.table("bronze.dead_letter")
reasons = (
    dead.groupBy(F.substring("reason", 1, 80).alias("reason"))
    .agg(F.count("*").alias("letters"))
    .orderBy(F.desc("letters"))
    .limit(15)
    .toPandas()
)
per_day = (
    dead.groupBy(F.to_date("received_at").alias("day"), "game_id")
    .agg(F.count("*").alias("letters"))
    .orderBy("day")
    .toPandas()
)
reasons

# COMMAND ----------

fig, (top, days) = plt.subplots(1, 2, figsize=(13, 4))
top.barh(reasons["reason"].tolist()[::-1], reasons["letters"].tolist()[::-1], color="#8172b3")
top.set_title("Dead letters by reason (top 15)")
top.set_xlabel("letters")
for game, rows in per_day.groupby("game_id"):
    days.plot(rows["day"], rows["letters"], marker="o", label=str(game))
days.set_title("Dead letters per day")
days.set_ylabel("letters")
if len(per_day):
    days.legend(title="game")
fig.autofmt_xdate()
fig.tight_layout()
plt.show()

# COMMAND ----------

# A few raw letters as sent, to see what the client did.
dead.orderBy(F.desc("received_at")).select("received_at", "game_id", "reason", F.substring("raw", 1, 200).alias("raw")).limit(5).toPandas()
