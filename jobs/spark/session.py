"""A SparkSession for Patron's jobs: local threads, a cluster URL or a Spark Connect URL."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Settings every Patron job needs, whatever the master:
# - UTC session time zone, so timestamps are not shifted by the machine's zone between Spark and pandas;
# - nanosecond Parquet timestamps (what pandas writes) read as int64 nanoseconds: Spark cannot read them
#   otherwise, and `source.py` turns them back into datetime64[ns] on each partition;
# - Arrow batches of at most 100k rows between the JVM and Python.
SESSION_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.legacy.parquet.nanosAsLong": "true",
    "spark.sql.execution.arrow.maxRecordsPerBatch": "100000",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}


def java_home() -> str | None:
    """JAVA_HOME, else the JDK behind the `java` on PATH (None when there is no java at all)."""
    if os.environ.get("JAVA_HOME"):
        return os.environ["JAVA_HOME"]
    java = shutil.which("java")
    return str(Path(java).resolve().parent.parent) if java else None


def is_connect_url(master: str) -> bool:
    """True for a Spark Connect URL (`sc://host:15002`)."""
    return master.startswith("sc://")


def spark_session(master: str, app_name: str = "patron", local_memory: str | None = None) -> SparkSession:
    """A SparkSession on `master` (`local[2]`, `spark://host:7077`, `yarn`, `sc://host:15002`) with Patron's settings."""
    from pyspark.sql import SparkSession

    if is_connect_url(master):
        builder = SparkSession.builder.remote(master)
    else:
        home = java_home()
        if home is None:
            raise RuntimeError("the Spark engine needs Java 17 or later: install a JDK or set JAVA_HOME")
        os.environ.setdefault("JAVA_HOME", home)
        builder = SparkSession.builder.master(master)
        if master.startswith("local"):
            # Local Python workers run this interpreter, so they import the same packages as the driver.
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            builder = builder.config("spark.ui.showConsoleProgress", "false")
            if local_memory:
                builder = builder.config("spark.driver.memory", local_memory)
    builder = builder.appName(app_name)
    for key, value in SESSION_CONF.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    if not is_connect_url(master):
        session.sparkContext.setLogLevel("ERROR")
    for key, value in SESSION_CONF.items():  # a session that already existed gets them too
        session.conf.set(key, value)
    return session
