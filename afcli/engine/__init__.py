"""Training machinery shared by every method: deterministic data order, optimiser and schedule,
atomic checkpoints with full resume state, and the distributed launch (torchrun / SLURM / --gpus).

Determinism: every random draw of a sample (point sampling, augmentation, masking, drop path) is
seeded by ``(seed, epoch, sample index)`` and the batch order by ``(seed, epoch)``, never by a
process-wide RNG stream. So a batch gives the same gradients whether it runs in one process or is
split over N ranks (batch size is global), and a run resumed from its last epoch replays exactly.
"""
