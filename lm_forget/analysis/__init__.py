"""Forgetting analysis: metrics, predictors (variance, confidence, difficulty), statistics, the
cross-task matrix, linear probes, figures and the report.

Entry points live in :mod:`lm_forget.analysis.api`; this package imports nothing heavy.
"""
