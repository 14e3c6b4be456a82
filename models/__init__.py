"""Probability-of-default models: training, calibration, master scale, validation, explanations.

Owns the LightGBM champion candidate and the WOE scorecard challenger, the validation statistics,
the MLflow scorer and the registry's promotion rules. Uses ``features``; never ``pipelines``.
"""
