"""The demo: what `make demo` runs, and the read-back of served values it prints."""
