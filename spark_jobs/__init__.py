"""Spark entrypoints of mutuals (one module per spark-submit job) plus the shared session and lake code."""
