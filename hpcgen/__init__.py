"""hpcgen: Monte Carlo baselines, data-parallel GANs and benchmarks for generative fast simulation.

See README.md for the two commands; ARCHITECTURE (shared/) for the layout.
"""

__version__ = "0.1.0"
