"""Image behaviour cloning: ResNet-style encoder per camera plus proprioception, MLP head."""
