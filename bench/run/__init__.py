"""The measuring job: run options, building the pipeline, the worker process and its supervisor, stage timing,
serving options, several devices, sweeps."""
