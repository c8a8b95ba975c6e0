"""Models: one file per family (config + nn.Module + save/load)."""
