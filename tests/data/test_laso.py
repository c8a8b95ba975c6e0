"""LASO in its own format: pickles of arrays, the question table, the seen/unseen filters."""

import os
import pickle

import numpy as np
import pytest
from formats import write_laso

from afcli.data.laso import read_laso
from afcli.errors import InputError


def test_reads_the_official_format_and_filters_seen_unseen(tmp_path):
    annotations, objects = write_laso(tmp_path / "LASO_dataset")
    samples = read_laso(tmp_path / "LASO_dataset", "test")
    assert len(samples) == 4
    assert np.array_equal(samples[0].mask, annotations[0]["mask"]) and np.array_equal(samples[1].points, objects["id1"])
    assert samples[0].questions[0] == "How do I hold the mug? (0)" and len(samples[0].questions) == 15
    assert [s.subset() for s in samples] == ["seen", "unseen", None, None]  # scissors+move and pull are in neither


def test_refuses_pickles_that_would_run_code(tmp_path):
    write_laso(tmp_path)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo owned",))

    with open(tmp_path / "anno_test.pkl", "wb") as handle:
        pickle.dump([Evil()], handle)
    with pytest.raises(InputError, match="refusing to load"):
        read_laso(tmp_path, "test")


def test_broken_inputs_name_the_file(tmp_path):
    annotations, objects = write_laso(tmp_path)
    del objects["id2"]
    with open(tmp_path / "objects_test.pkl", "wb") as handle:
        pickle.dump(objects, handle)
    with pytest.raises(InputError, match="shape id2 missing from objects_test.pkl"):
        read_laso(tmp_path, "test")
    with pytest.raises(InputError, match="unknown LASO split"):
        read_laso(tmp_path, "dev")
    with pytest.raises(InputError, match="no such file"):
        read_laso(tmp_path, "train")
