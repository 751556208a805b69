"""Judging and using records: the registry's gate (physics), published references, collecting and comparing
records, FLOP counts and the roofline, throughput selection, fleet sizing and its scenarios."""
