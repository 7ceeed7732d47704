"""Avro output, the versioned key-value store (RocksDB and Redis backends) and push targets."""
