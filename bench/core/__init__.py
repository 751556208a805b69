"""The vocabulary every room shares: user errors, safe files and text, strict JSON, the metric definitions,
statistics, the hardware catalogue and the model specs."""
