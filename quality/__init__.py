"""Great Expectations suites and quality gates run inside the Spark jobs."""
