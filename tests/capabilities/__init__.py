"""Tests of the pure capability core: canonical DAGs, their parameters and hash, and capability names."""
