"""Action Chunking Transformer (Zhao et al. 2023): CVAE over action chunks, temporal ensembling."""
