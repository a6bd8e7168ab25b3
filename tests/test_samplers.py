"""P x K batches (drfm.data.samplers): who is drawn, how often, and the ambiguous columns of L_ps."""

from __future__ import annotations

import numpy as np
import pytest

from drfm.data.samplers import pk_batches, with_ambiguous


def test_pk_batches_draw_p_distinct_clusters_of_k_members_and_never_unlabelled_samples():
    # clusters 0 (4 members), 1 (4), 2 (2: repeated cyclically), unlabelled samples 10 and 11
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, -1, -1])
    batches = pk_batches(labels, batch_size=6, instances=2, num_batches=50, rng=np.random.default_rng(0))
    assert batches.shape == (50, 6) and batches.dtype == np.int64
    assert not np.isin(batches, [10, 11]).any()
    for batch in batches:
        groups = batch.reshape(3, 2)
        clusters = labels[groups]
        assert (clusters[:, 0] == clusters[:, 1]).all()          # K members of one cluster
        assert sorted(clusters[:, 0].tolist()) == [0, 1, 2]      # P = 3 distinct clusters of 3
        assert all(len(set(pair.tolist())) == 2 for pair in groups)  # distinct when K <= size
    small = pk_batches(np.array([0, 0, 1]), batch_size=3, instances=3, num_batches=4,
                       rng=np.random.default_rng(1))
    for batch in small:  # one cluster per batch; a 1-member cluster repeats its member K times
        assert sorted(batch.tolist()) in ([0, 0, 1], [0, 1, 1], [2, 2, 2])


def test_pk_batches_are_a_function_of_the_generator_and_refuse_an_unlabelled_set():
    labels = np.repeat(np.arange(5), 3)
    first = pk_batches(labels, 8, 4, 6, np.random.default_rng(7))
    assert np.array_equal(first, pk_batches(labels, 8, 4, 6, np.random.default_rng(7)))
    assert not np.array_equal(first, pk_batches(labels, 8, 4, 6, np.random.default_rng(8)))
    with pytest.raises(ValueError, match="no labelled sample"):
        pk_batches(np.full(4, -1), 4, 2, 1, np.random.default_rng(0))


def test_with_ambiguous_appends_distinct_ambiguous_indices_to_every_batch():
    batches = np.arange(12).reshape(3, 4)
    ambiguous = np.array([20, 21, 22, 23, 24])
    out = with_ambiguous(batches, ambiguous, 3, np.random.default_rng(0))
    assert out.shape == (3, 7) and np.array_equal(out[:, :4], batches)
    assert np.isin(out[:, 4:], ambiguous).all()
    assert all(len(set(row.tolist())) == 3 for row in out[:, 4:])
    few = with_ambiguous(batches, np.array([30]), 2, np.random.default_rng(0))
    assert (few[:, 4:] == 30).all()  # fewer ambiguous images than the size: drawn with replacement
