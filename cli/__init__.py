"""The `mlbench` command line: parsing and rendering only (no ML code, no torch at import)."""
