"""Packages and where they live; everything else is in setup.cfg.

``priors/`` installs as ``slahmr_priors`` (``priors`` is taken on PyPI) and ``configs/`` as
``slahmr_opt.configs``, so that a wheel carries the shipped configs and ablation grids.
"""

from setuptools import find_packages, setup

PRIORS = [f"slahmr_priors{name[len('priors'):]}" for name in find_packages(include=["priors*"])]

setup(
    packages=[*find_packages(include=["slahmr_opt", "slahmr_opt.*"]), *PRIORS, "slahmr_opt.configs"],
    package_dir={"slahmr_priors": "priors", "slahmr_opt.configs": "configs"},
)
