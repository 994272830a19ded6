"""slahmr-opt: optimization-first global human mesh recovery."""

__version__ = "0.2.0"
