"""I/O: the Hadoop file system, Delta tables, sources, the model store, CSV exports."""
