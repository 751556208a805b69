"""t2vbench: measure video minutes per GPU-hour of open text-to-video diffusion models."""

__version__ = "0.1.0"
