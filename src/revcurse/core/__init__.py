"""Shared by every study: config resolution, Parquet I/O, provenance, table schemas, devices, progress lines."""
