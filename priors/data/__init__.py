"""Training data of the learned priors: body fits of the Bandai-Namco mocap and per-frame states
(``states``: derivation; ``build``: the command that writes them)."""
