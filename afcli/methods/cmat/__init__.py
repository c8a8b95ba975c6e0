"""CMAT (cmat-cast-3d-affordance.md §3.2): Point-MAE pre-trained with reconstruction, affinity to
lifted 2D features and KoLeo diversity — ``afcli pretrain cmat``."""
