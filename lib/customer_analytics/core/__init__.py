"""Shared names and small helpers: column and table names, errors. Imports no other layer."""
