"""The report: the figures it collects, its charts and its HTML page."""
