"""Initial estimates for the solver."""
