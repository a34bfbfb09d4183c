"""
Orchestration: the jobs (read, call one stage, write) and the runner (dates, run records,
progress).
"""
