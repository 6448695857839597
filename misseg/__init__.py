"""misseg: unsupervised semantic segmentation by mutual-information maximization."""

__version__ = "0.1.0"
