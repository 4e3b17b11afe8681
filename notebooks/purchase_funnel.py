# Databricks notebook source
# MAGIC %md
# MAGIC # The purchase funnel: store view → offer shown → purchase
# MAGIC
# MAGIC Per player-day from `silver.player_events`: of the player-days with a `store_view`, how many also
# MAGIC saw an `offer_shown`, and of those how many made a `purchase` that day. Revenue is the sum of
# MAGIC `price_usd` on purchases (typed from the event's properties by silver).

# COMMAND ----------

from playerpulse.notebook_support import spark_session

spark = spark_session()

# COMMAND ----------

import matplotlib.pyplot as plt
from pyspark.sql import functions as F

STEPS = ["store_view", "offer_shown", "purchase"]
PLAYER_DAY = ["game_id", "player_id", "event_date"]
events = spark.table("silver.player_events").where(F.col("event_type").isin(STEPS))
flags = events.groupBy(*PLAYER_DAY).agg(
    *[F.max(F.when(F.col("event_type") == step, 1).otherwise(0)).alias(step) for step in STEPS]
)
# A step counts only after the ones before it, on the same player-day.
reached = flags.select(
    *PLAYER_DAY,
    F.col("store_view").alias("store_view"),
    (F.col("store_view") * F.col("offer_shown")).alias("offer_shown"),
    (F.col("store_view") * F.col("offer_shown") * F.col("purchase")).alias("purchase"),
)
totals = reached.agg(*[F.sum(step).alias(step) for step in STEPS]).first()
funnel = [{"step": step, "player_days": int(totals[step] or 0)} for step in STEPS]
for before, after in zip(funnel, funnel[1:]):
    after["conversion"] = after["player_days"] / before["player_days"] if before["player_days"] else 0.0
funnel

# COMMAND ----------

fig, ax = plt.subplots(figsize=(7, 3.5))
ax.barh([s["step"] for s in funnel][::-1], [s["player_days"] for s in funnel][::-1], color="#4c72b0")
for i, step in enumerate(funnel[::-1]):
    label = f"{step['player_days']}" + (f"  ({step['conversion']:.0%} of the step before)" if "conversion" in step else "")
    ax.text(step["player_days"], i, " " + label, va="center")
ax.set_title("Purchase funnel (player-days)")
ax.set_xlabel("player-days reaching the step")
plt.show()

# COMMAND ----------

# MAGIC %md
# MAGIC ## Conversion and revenue per day

# COMMAND ----------

daily = (
    reached.groupBy("event_date")
    .agg(F.sum("store_view").alias("store_views"), F.sum("purchase").alias("purchases"))
    .join(
        spark.table("silver.player_events")
        .where(F.col("event_type") == "purchase")
        .groupBy("event_date")
        .agg(F.sum("price_usd").alias("revenue_usd")),
        "event_date",
        "left",
    )
    .fillna({"revenue_usd": 0.0})
    .withColumn("conversion", F.col("purchases") / F.col("store_views"))
    .orderBy("event_date")
    .toPandas()
)

fig, left = plt.subplots(figsize=(9, 3.5))
left.plot(daily["event_date"], daily["conversion"], marker="o", label="store view → purchase")
left.set_ylabel("conversion")
left.set_title("Daily conversion and revenue")
right = left.twinx()
right.bar(daily["event_date"], daily["revenue_usd"], alpha=0.3, color="#dd8452", label="revenue (USD)")
right.set_ylabel("revenue (USD)")
fig.autofmt_xdate()
plt.show()
