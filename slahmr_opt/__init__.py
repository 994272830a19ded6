"""slahmr-opt: optimization-first global human mesh recovery on Theseus."""

__version__ = "0.1.0"
