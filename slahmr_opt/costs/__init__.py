"""Energy terms. Each module holds pure residual functions (testable without Theseus) and a
builder that turns observations into a ``Term``; ``term.py`` evaluates terms on stacked tensors
and ``slahmr_opt.stages.theseus_problem`` wraps the same functions as Theseus cost functions."""
