"""Diffusion Policy (Chi et al. 2023): 1-D conv U-Net noise predictor, DDIM sampling."""
