"""Evaluation: whole-set confusion matrix, cluster-to-class matching, PA and mIoU (no torch at import here, so
the config checks can name the matchings without loading the metric code)."""

MATCHINGS = ("hungarian", "majority")  # one-to-one (the protocol of the results) | many-to-one (over-clustering)
