"""Configuration: the schema (every default, once), the loader, the source kinds."""
