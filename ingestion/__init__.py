"""Ingestion: landing files to validated rows, keeping each row's file and line."""
