"""Learned and fitted priors (pose, motion). Imports torch and numpy only, never slahmr_opt."""
