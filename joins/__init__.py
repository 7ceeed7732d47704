"""Join strategies and graph kernels: triangle closing, economic-graph overlaps, personalized PageRank."""
