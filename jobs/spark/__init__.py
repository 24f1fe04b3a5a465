"""The Spark engine: `patron score`, `patron features` and `patron train` with `--engine spark`.

session.py (a configured SparkSession) · source.py (reading a log, source row numbers, customer keys)
· partition.py (what runs on each partition: Patron's one path on pandas) · tiers.py (exact tier
boundaries over all partitions) · jobs.py (the scoring and features jobs) · sample.py (customers
sampled by hash for training).
"""
