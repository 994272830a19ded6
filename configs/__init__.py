"""The shipped configs (``slahmr_opt.configs`` once installed): ``default.yaml`` (the schema's
defaults), schedules (``stages_1_2``, ``slahmr_lbfgs``, ``regressor_only``) and ablation grids
(``ablations/``)."""
