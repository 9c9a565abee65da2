"""protege.policies: behaviour-cloning policies, their normalisation, the trainer and checkpoints.

``base`` (Policy, POLICIES, Normalizer), ``<name>/`` (config + model per policy: mlp, cnn, act,
diffusion), ``trainer`` (``train``), ``checkpoint`` (``save_checkpoint``, ``load_policy``,
``RunMeta``), ``bench``. Importing this package imports no torch.
"""

POLICY_NAMES = ("mlp", "cnn", "act", "diffusion")  # one folder each: policies/<name>/{config,model}.py
