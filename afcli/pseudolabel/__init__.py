"""Functional-part pseudo-labels (dense functional correspondence §4.1): detector boxes voted onto
the visible points of each object, then per-view part masks (``afcli pseudolabel``)."""
