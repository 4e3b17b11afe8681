# Databricks notebook source
# MAGIC %md
# MAGIC # Player activity and retention cohorts
# MAGIC
# MAGIC Daily active players and how many of each weekly cohort (players by the week of their first
# MAGIC event) come back N days later, from `silver.player_events` (deduplicated, skew-corrected events;
# MAGIC a player is the pair `game_id`, `player_id`). Runs unchanged on Databricks (where `spark` exists
# MAGIC and the tables are in the metastore) and locally (`PLAYERPULSE_WORKDIR` names the lake's work folder).

# COMMAND ----------

from playerpulse.notebook_support import spark_session

spark = spark_session()

# COMMAND ----------

import matplotlib.pyplot as plt
from pyspark.sql import functions as F

PLAYER = ["game_id", "player_id"]
events = spark.table("silver.player_events")
active_days = events.select(*PLAYER, "event_date").distinct()

daily_active = (
    active_days.groupBy("event_date").agg(F.count("*").alias("active_players")).orderBy("event_date").toPandas()
)
daily_active

# COMMAND ----------

fig, ax = plt.subplots(figsize=(9, 3.5))
ax.plot(daily_active["event_date"], daily_active["active_players"], marker="o")
ax.set_title("Daily active players")
ax.set_xlabel("event date (UTC)")
ax.set_ylabel("players")
fig.autofmt_xdate()
plt.show()

# COMMAND ----------

# MAGIC %md
# MAGIC ## Retention by weekly cohort
# MAGIC
# MAGIC Day N retention: the share of a cohort's players active exactly N days after their first day.

# COMMAND ----------

MAX_DAY = 28
first_day = active_days.groupBy(*PLAYER).agg(F.min("event_date").alias("first_date"))
with_cohort = first_day.withColumn("cohort_week", F.date_trunc("week", "first_date").cast("date"))
cohort_sizes = with_cohort.groupBy("cohort_week").agg(F.count("*").alias("players"))
retention = (
    active_days.join(with_cohort, PLAYER)
    .withColumn("day_n", F.datediff("event_date", "first_date"))
    .where(F.col("day_n") <= MAX_DAY)
    .groupBy("cohort_week", "day_n")
    .agg(F.count("*").alias("retained"))
    .join(cohort_sizes, "cohort_week")
    .withColumn("retention", F.col("retained") / F.col("players"))
    .orderBy("cohort_week", "day_n")
    .toPandas()
)
matrix = retention.pivot(index="cohort_week", columns="day_n", values="retention").fillna(0.0)
matrix

# COMMAND ----------

fig, ax = plt.subplots(figsize=(10, 0.6 * len(matrix.index) + 2))
image = ax.imshow(matrix.to_numpy(), aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0)
ax.set_title("Retention by weekly cohort")
ax.set_xlabel("days since first activity")
ax.set_xticks(range(len(matrix.columns)), [str(c) for c in matrix.columns])
ax.set_yticks(range(len(matrix.index)), [str(i) for i in matrix.index])
ax.set_ylabel("cohort (week of first activity)")
fig.colorbar(image, ax=ax, label="share of cohort active")
plt.show()

# COMMAND ----------

overall = retention.groupby("day_n")[["retained", "players"]].sum()
for day in (1, 7):
    if day in overall.index:
        print(f"day {day} retention: {overall.loc[day, 'retained'] / overall.loc[day, 'players']:.1%}")
