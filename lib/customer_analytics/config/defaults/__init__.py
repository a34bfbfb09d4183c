"""Defaults shipped with the package as data files (``segment_names.yaml``), read by ``config``."""
