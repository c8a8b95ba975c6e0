"""CAST (cmat-cast-3d-affordance.md §3.3): prompt-driven 3D affordance segmentation fine-tuned on a
(CMAT) backbone — ``afcli finetune cast``, scored by ``afcli eval <benchmark>``, exported by
``afcli export``."""
