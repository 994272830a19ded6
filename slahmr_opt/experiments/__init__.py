"""Running the solver over benchmarks and ablation grids, and scoring result files against the
ground truth; tables of the results."""
