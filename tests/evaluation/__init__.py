"""Tests of the evaluation: the metrics by hand, and `pml-gateway eval` end to end on a tiny data set."""
