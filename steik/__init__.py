"""steik: neural signed distance functions (StEik, NeurIPS 2023) as a reproducible pipeline.

The package holds all logic; the Snakemake workflow calls it through the `steik` command line.
"""

__version__ = "0.1.0"
