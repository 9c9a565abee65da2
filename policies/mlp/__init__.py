"""Low-dim behaviour cloning with an MLP that predicts a short action chunk."""
