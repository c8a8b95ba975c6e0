"""Evaluation: benchmark metrics computed as each official code does, and representation probes."""
