"""The stages: DataFrames in, DataFrames out, with no hidden action."""
