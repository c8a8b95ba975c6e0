"""Dense functional correspondence metrics against values worked out by hand from the released
scripts' definitions."""

import numpy as np
import pytest

from afcli.metrics.dfc import argmax_in_mask, cycle_scores, discovery_entry, mean_of_entries, transfer_entry


def test_argmax_stays_inside_the_mask():
    heat = np.zeros((2, 4, 5))
    heat[0, 0, 0] = 9.0  # outside the mask: ignored
    heat[0, 2, 3] = 1.0
    heat[1, 3, 4] = 0.5
    mask = np.zeros((4, 5))
    mask[2:, 3:] = 1
    assert argmax_in_mask(heat, mask).tolist() == [[3, 2], [4, 3]]  # (x, y)


def test_transfer_uses_less_or_equal_and_averages_entries():
    truth = np.array([[0, 0], [0, 0], [0, 0]])
    predicted = np.array([[10, 0], [15, 0], [23, 0]])  # distances 10, 15, 23: on the radii
    entry = transfer_entry(predicted, truth)
    assert (
        entry["pck@23"] == 1.0 and entry["pck@15"] == pytest.approx(2 / 3) and entry["pck@10"] == pytest.approx(1 / 3)
    )
    assert entry["dist"] == pytest.approx(16 / 223)
    other = transfer_entry(np.array([[100, 0]]), np.array([[0, 0]]))
    assert mean_of_entries([entry, other])["pck@23"] == 0.5  # the mean of entries, not of points


def test_cycle_scores_normalise_both_terms():
    scores = cycle_scores(np.array([1.0, 3.0, 2.0]), np.array([0.0, 10.0, 5.0]))
    assert scores.tolist() == pytest.approx([0.0, 0.0, 0.25])


def test_discovery_f1_and_ap_by_hand():
    truth1 = np.array([[0, 0], [50, 50]])
    truth2 = np.array([[0, 0], [50, 50]])
    # 200 predictions: the best-scored is GT pair 0, the second GT pair 1, the rest far away
    points1 = np.full((200, 2), 200.0)
    points2 = np.full((200, 2), 200.0)
    points1[0], points2[0] = [1, 1], [2, 0]
    points1[1], points2[1] = [50, 52], [49, 50]
    scores = np.linspace(1, 0, 200)
    result = discovery_entry(points1, points2, scores, truth1, truth2, radius=5)
    # cutoff 0.01: top 2, precision 1, recall 1 → F1 1; AP: the first step reaches recall 1 at precision 1
    assert result["f1"] == 1.0 and result["ap"] == 1.0
    swapped = discovery_entry(points1, points2, scores[::-1], truth1, truth2, radius=5)
    # now they rank last: recall reaches 1 only at top 200, precision 2 / 200
    assert swapped["ap"] == pytest.approx(0.01) and swapped["f1"] == pytest.approx(2 * 0.01 / 1.01)


def test_ties_and_an_empty_mask_follow_argmax():
    heat = np.ones((1, 3, 3))  # a tie everywhere: the first pixel in raster order inside the mask
    mask = np.zeros((3, 3))
    mask[1:, 1:] = 1
    assert argmax_in_mask(heat, mask).tolist() == [[1, 1]]
    # an empty mask scores every pixel -100: the first pixel of the image, (0, 0)
    assert argmax_in_mask(np.random.default_rng(0).random((1, 3, 3)), np.zeros((3, 3))).tolist() == [[0, 0]]


def test_both_directions_are_entries_of_their_own():
    forward = transfer_entry(np.array([[0, 0], [30, 0]]), np.array([[0, 0], [0, 0]]))  # 1 of 2 within 23
    backward = transfer_entry(np.array([[5, 0]]), np.array([[0, 0]]))  # 1 of 1
    assert mean_of_entries([forward, backward])["pck@23"] == 0.75  # (0.5 + 1) / 2, not 2 of 3 points
