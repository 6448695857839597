"""Diagnostics of a trained segmenter (issue 14): linear probe, cluster probe, dense CRF. Pure torch/numpy,
nothing from data/, Lightning or Hydra; the evaluation glue lives in misseg/diagnostics/evaluation.py."""
