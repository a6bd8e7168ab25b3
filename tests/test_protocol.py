"""Evaluation protocol: hand-computed CMC/AP/INP, an independent per-query reference, the features
file and `drfm evaluate` end to end."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from drfm.cli import main
from drfm.errors import DrfmError
from drfm.evaluation.features_file import FeatureSet, load_features, save_features
from drfm.evaluation.protocol import (
    cosine_distance,
    draw_single_shot_gallery,
    evaluate_features,
    multi_shot_evaluate,
    rank_metrics,
    single_shot_evaluate,
)

RESULT_KEYS = {"rank1", "rank5", "rank10", "mAP", "mINP", "rank1_std", "rank5_std", "rank10_std", "mAP_std",
               "mINP_std", "trials", "seed", "protocol", "num_query", "num_gallery", "num_gallery_ids",
               "num_valid_query"}


def reference_metrics(dist, qpids, qcams, gpids, gcams, ignore_same_camera, max_rank=10):
    """Straightforward per-query loop: sort by (distance, index), drop junk, walk the ranking."""
    cmc = np.zeros(max_rank)
    aps, inps, valid = [], [], []
    for i in range(dist.shape[0]):
        order = sorted(range(dist.shape[1]), key=lambda j: (float(dist[i, j]), j))
        if ignore_same_camera:
            order = [j for j in order if not (gpids[j] == qpids[i] and gcams[j] == qcams[i])]
        hit_ranks = [pos + 1 for pos, j in enumerate(order) if qpids[i] >= 0 and gpids[j] == qpids[i]]
        valid.append(bool(hit_ranks))
        if not hit_ranks:
            continue
        aps.append(sum((k + 1) / r for k, r in enumerate(hit_ranks)) / len(hit_ranks))
        inps.append(len(hit_ranks) / hit_ranks[-1])
        if hit_ranks[0] <= max_rank:
            cmc[hit_ranks[0] - 1:] += 1
    return {"cmc": cmc / len(aps), "mAP": float(np.mean(aps)), "mINP": float(np.mean(inps)),
            "valid": np.array(valid)}


def tied_distances(rng, num_query, num_gallery, levels=5):
    """Random float32 distances with few distinct values, so that ties are frequent."""
    return (rng.integers(0, levels, (num_query, num_gallery)) / levels).astype(np.float32)


# ---------------------------------------------------------------- hand-computed metrics

def test_rank_metrics_hand_example():
    # Query 0 (pid 1) ranks gallery 0,1,2,3 -> pids 2,1,1,2: positives at ranks 2 and 3.
    # Query 1 (pid 2) ranks gallery 3,2,1,0 -> pids 2,1,1,2: positives at ranks 1 and 4.
    dist = np.array([[0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1]], dtype=np.float32)
    m = rank_metrics(dist, np.array([1, 2]), None, np.array([2, 1, 1, 2]), None, ignore_same_camera=False)
    np.testing.assert_allclose(m["ap"], [(1 / 2 + 2 / 3) / 2, (1 / 1 + 2 / 4) / 2])
    np.testing.assert_allclose(m["inp"], [2 / 3, 2 / 4])
    np.testing.assert_allclose(m["cmc"], [0.5] + [1.0] * 9)
    assert m["mAP"] == pytest.approx((7 / 12 + 3 / 4) / 2)
    assert m["mINP"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert m["num_valid"] == 2 and m["valid"].all()


def test_ties_are_broken_by_gallery_index():
    # All distances equal: the ranking is the gallery order, so the positives sit at ranks 2 and 3.
    dist = np.zeros((1, 3), dtype=np.float32)
    m = rank_metrics(dist, np.array([5]), None, np.array([7, 5, 5]), None, ignore_same_camera=False)
    assert m["ap"][0] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert m["inp"][0] == pytest.approx(2 / 3)
    assert m["cmc"][0] == 0.0 and m["cmc"][1] == 1.0


def test_query_without_positive_is_excluded_and_counted():
    dist = np.array([[0.1, 0.2, 0.0], [0.1, 0.2, 0.0], [0.3, 0.1, 0.0]], dtype=np.float32)
    # Query 1 has pid 9 (absent from the gallery); query 2 and gallery 2 have the unknown pid -1,
    # which matches nothing, not even itself (gallery 2 still takes rank 1 for query 0).
    m = rank_metrics(dist, np.array([1, 9, -1]), None, np.array([2, 1, -1]), None, ignore_same_camera=False)
    assert m["valid"].tolist() == [True, False, False] and m["num_valid"] == 1
    assert np.isnan(m["ap"][1]) and np.isnan(m["inp"][2])
    assert m["mAP"] == pytest.approx(1 / 3) and m["cmc"][1] == 0.0 and m["cmc"][2] == 1.0


def test_no_valid_query_raises():
    with pytest.raises(DrfmError, match="no query"):
        rank_metrics(np.zeros((1, 2), np.float32), np.array([3]), None, np.array([1, 2]), None, False)


def test_multi_shot_ignores_same_pid_same_camera_junk():
    # Query 0: pid 1, camera 0. Gallery 0 (pid 1, camera 0) is closest but junk; after it comes
    # gallery 1 (pid 2), then gallery 2 (pid 1, camera 1): the only positive is at rank 2.
    # Query 1: pid 3, camera 0; its only gallery image has camera 0: no positive, skipped.
    dist = np.array([[0.0, 0.1, 0.2, 0.3], [0.5, 0.4, 0.3, 0.0]], dtype=np.float32)
    qp, qc = np.array([1, 3]), np.array([0, 0])
    gp, gc = np.array([1, 2, 1, 3]), np.array([0, 1, 1, 0])
    m = rank_metrics(dist, qp, qc, gp, gc, ignore_same_camera=True)
    assert m["valid"].tolist() == [True, False]
    assert m["ap"][0] == pytest.approx(0.5) and m["inp"][0] == pytest.approx(0.5)
    assert m["cmc"][0] == 0.0 and m["cmc"][1] == 1.0
    result = multi_shot_evaluate(dist, qp, qc, gp, gc)
    assert result["rank1"] == 0.0 and result["rank5"] == 100.0 and result["mAP"] == pytest.approx(50.0)
    assert result["num_valid_query"] == 1 and result["num_query"] == 2 and result["trials"] == 1
    assert result["mAP_std"] == 0.0
    # The same matrix without junk filtering puts the same-camera image first.
    plain = rank_metrics(dist, qp, qc, gp, gc, ignore_same_camera=False)
    assert plain["valid"].tolist() == [True, True] and plain["cmc"][0] == 1.0


def test_multi_shot_never_counts_an_unknown_camera_as_the_same_camera():
    # 3DPeS and i-LIDS give no camera (camid -1): every same-pid gallery image is a positive.
    dist = np.array([[0.0, 0.1, 0.2]], dtype=np.float32)
    m = rank_metrics(dist, np.array([1]), np.array([-1]), np.array([1, 2, 1]), np.array([-1, -1, -1]),
                     ignore_same_camera=True)
    assert m["cmc"][0] == 1.0 and m["ap"][0] == pytest.approx((1 / 1 + 2 / 3) / 2)


def test_cosine_distance_hand_example():
    q = np.array([[1.0, 0.0], [0.0, 0.0]])
    g = np.array([[2.0, 0.0], [0.0, 3.0], [-1.0, 0.0], [1.0, 1.0]])
    d = cosine_distance(q, g)
    assert d.dtype == np.float32 and d.shape == (2, 4)
    np.testing.assert_allclose(d[0], [0.0, 1.0, 2.0, 1.0 - 2 ** -0.5], atol=1e-6)
    np.testing.assert_allclose(d[1], [1.0, 1.0, 1.0, 1.0], atol=1e-6)


# ---------------------------------------------------------------- against the reference

def test_rank_metrics_matches_reference_with_ties_and_cameras(monkeypatch):
    rng = np.random.default_rng(1)
    dist = tied_distances(rng, 30, 45)
    qp, qc = rng.integers(0, 8, 30), rng.integers(0, 3, 30)
    gp, gc = rng.integers(0, 10, 45), rng.integers(0, 3, 45)
    # Small blocks so that the pair loop crosses block boundaries.
    monkeypatch.setattr("drfm.evaluation.protocol.BLOCK_ELEMENTS", 100)
    for ignore in (False, True):
        ours = rank_metrics(dist, qp, qc, gp, gc, ignore_same_camera=ignore)
        ref = reference_metrics(dist, qp, qc, gp, gc, ignore_same_camera=ignore)
        np.testing.assert_array_equal(ours["valid"], ref["valid"])
        np.testing.assert_allclose(ours["cmc"], ref["cmc"], rtol=0, atol=1e-12)
        assert ours["mAP"] == pytest.approx(ref["mAP"], abs=1e-12)
        assert ours["mINP"] == pytest.approx(ref["mINP"], abs=1e-12)


def test_single_shot_one_image_per_person_equals_reference_exactly():
    rng = np.random.default_rng(2)
    gp = rng.permutation(25)
    qp = rng.integers(0, 30, 60)  # some query ids (25..29) have no gallery image
    dist = tied_distances(rng, 60, 25)
    ref = reference_metrics(dist, qp, None, gp, None, ignore_same_camera=False)
    result = single_shot_evaluate(dist, qp, gp, trials=10, seed=3)
    assert result["rank1"] == 100 * ref["cmc"][0]
    assert result["rank5"] == 100 * ref["cmc"][4]
    assert result["rank10"] == 100 * ref["cmc"][9]
    assert result["mAP"] == pytest.approx(100 * ref["mAP"], abs=1e-12)
    assert result["mINP"] == result["mAP"]  # one positive per query: AP = INP
    assert all(result[f"{k}_std"] == 0.0 for k in ("rank1", "rank5", "rank10", "mAP", "mINP"))
    assert result["trials"] == 10 and result["num_valid_query"] == int(ref["valid"].sum())
    assert RESULT_KEYS <= result.keys()


def test_draw_single_shot_gallery_keeps_one_image_per_identity_and_all_distractors():
    gp = np.array([4, 4, -1, 7, 4, 9, 9, -1])
    seen = set()
    rng = np.random.default_rng(0)
    for _ in range(50):
        keep = draw_single_shot_gallery(gp, rng)
        assert np.all(np.diff(keep) > 0)
        assert sorted(gp[keep].tolist()) == [-1, -1, 4, 7, 9]
        seen.add(tuple(keep.tolist()))
    assert len(seen) == 6  # 3 choices for pid 4 x 2 for pid 9, all reached


def test_single_shot_equals_reference_over_the_same_draws():
    rng = np.random.default_rng(4)
    gp = rng.integers(0, 12, 50)
    qp = rng.integers(0, 12, 40)
    dist = tied_distances(rng, 40, 50)
    draws = np.random.default_rng(5)
    refs = []
    for _ in range(7):
        keep = draw_single_shot_gallery(gp, draws)
        refs.append(reference_metrics(dist[:, keep], qp, None, gp[keep], None, ignore_same_camera=False))
    result = single_shot_evaluate(dist, qp, gp, trials=7, seed=5)
    rank1 = np.array([100 * r["cmc"][0] for r in refs])
    maps = np.array([100 * r["mAP"] for r in refs])
    assert result["rank1"] == pytest.approx(rank1.mean(), abs=1e-9)
    assert result["rank1_std"] == pytest.approx(rank1.std(), abs=1e-9)
    assert result["mAP"] == pytest.approx(maps.mean(), abs=1e-9)
    assert result["mAP_std"] == pytest.approx(maps.std(), abs=1e-9)
    assert result["rank1_std"] > 0.0


def test_single_shot_mean_converges_to_exact_expectation():
    # 3 identities with 2, 3 and 1 gallery images: 6 equally likely galleries, enumerated exactly.
    rng = np.random.default_rng(6)
    gp = np.array([0, 0, 1, 1, 1, 2])
    qp = np.array([0, 1, 2, 0, 1, 2, 1])
    dist = rng.random((7, 6)).astype(np.float32)
    groups = [np.flatnonzero(gp == pid) for pid in range(3)]
    exact = []
    for choice in itertools.product(*groups):
        keep = np.sort(np.array(choice))
        ref = reference_metrics(dist[:, keep], qp, None, gp[keep], None, ignore_same_camera=False)
        exact.append((100 * ref["cmc"][0], 100 * ref["mAP"]))
    exact = np.array(exact)
    trials = 400
    result = single_shot_evaluate(dist, qp, gp, trials=trials, seed=0)
    for column, key in enumerate(("rank1", "mAP")):
        stderr = exact[:, column].std() / np.sqrt(trials)
        assert stderr > 0
        assert abs(result[key] - exact[:, column].mean()) < 4 * stderr
        assert result[f"{key}_std"] == pytest.approx(exact[:, column].std(), rel=0.15)


def test_multi_shot_equals_reference():
    rng = np.random.default_rng(7)
    qp, qc = rng.integers(0, 10, 35), rng.integers(0, 4, 35)
    gp, gc = rng.integers(0, 10, 70), rng.integers(0, 4, 70)
    dist = tied_distances(rng, 35, 70, levels=9)
    ref = reference_metrics(dist, qp, qc, gp, gc, ignore_same_camera=True)
    result = multi_shot_evaluate(dist, qp, qc, gp, gc)
    assert result["rank1"] == pytest.approx(100 * ref["cmc"][0], abs=1e-12)
    assert result["rank5"] == pytest.approx(100 * ref["cmc"][4], abs=1e-12)
    assert result["mAP"] == pytest.approx(100 * ref["mAP"], abs=1e-12)
    assert result["mINP"] == pytest.approx(100 * ref["mINP"], abs=1e-12)
    assert result["num_valid_query"] == int(ref["valid"].sum())


def test_evaluate_features_uses_cosine_distance():
    # Query 0 points at gallery identity 1, query 1 at identity 0 (the gallery norms differ).
    fs = FeatureSet(np.array([[1.0, 0.1], [0.0, 1.0]]), np.array([1, 0]), np.array([0, 0]),
                    np.array([[0.0, 5.0], [3.0, 0.0]]), np.array([0, 1]), np.array([1, 1]))
    for protocol in ("single-shot", "multi-shot"):
        result = evaluate_features(fs, protocol=protocol)
        assert result["rank1"] == 100.0 and result["protocol"] == protocol
    with pytest.raises(DrfmError, match="protocol"):
        evaluate_features(fs, protocol="all-shot")
    with pytest.raises(DrfmError, match="trials"):
        evaluate_features(fs, trials=0)


# ---------------------------------------------------------------- drawn ranking = scored ranking

def drawn_lists(monkeypatch, features, protocol):
    """The ranked lists `visualize_features` draws for every query of `features` (pictures not written)."""
    import drfm.evaluation.visualize as visualize

    drawn = []
    monkeypatch.setattr(visualize, "write_pictures", lambda lists, *args: drawn.extend(lists))
    visualize.visualize_features(features, len(features.query_feats), "unused.html",
                                 top=len(features.gallery_feats), protocol=protocol)
    return drawn


def test_visualize_draws_the_protocols_ranking_on_ties(monkeypatch):
    # Query 0 ([1, 0], id 1, camera 0): gallery 0 ([1, 1e-5], another id) ties with 1, 2 and 5 at
    # distance 0 in float32 (in float64 it lies 5e-11 further), so the protocol puts it first by
    # index; gallery 2 (id 1, camera 0) is multi-shot junk. Query 1 ([0, 1], id 4, unknown camera
    # -1): gallery 4 (id 4, camera -1) is a positive, not junk, tied with gallery 3 at distance 0.
    gallery_paths = np.array([f"g{j}.png" for j in range(6)])
    features = FeatureSet(np.array([[1, 0], [0, 1]], np.float32), np.array([1, 4]), np.array([0, -1]),
                          np.array([[1, 1e-5], [1, 0], [2, 0], [0, 1], [0, 1], [1, 0]], np.float32),
                          np.array([2, 1, 1, 3, 4, 1]), np.array([1, 1, 0, 1, -1, 2]),
                          np.array(["q0.png", "q1.png"]), gallery_paths)
    expected = {"multi-shot": [[0, 1, 5, 3, 4], [3, 4, 0, 1, 2, 5]],
                "single-shot": [[0, 1, 2, 5, 3, 4], [3, 4, 0, 1, 2, 5]]}
    dist = cosine_distance(features.query_feats, features.gallery_feats)
    for protocol, orders in expected.items():
        drawn = drawn_lists(monkeypatch, features, protocol)
        assert [[int(m.stem[1:]) for m in ranked.matches] for ranked in drawn] == orders
        for i, ranked in enumerate(drawn):
            assert ranked.distances.dtype == np.float32
            np.testing.assert_array_equal(ranked.distances, dist[i, orders[i]])
        # The ranks of the drawn positives give exactly the AP and INP the protocol scores.
        scored = rank_metrics(dist, features.query_pids, features.query_camids, features.gallery_pids,
                              features.gallery_camids, ignore_same_camera=protocol == "multi-shot")
        for i, ranked in enumerate(drawn):
            hits = [rank for rank, path in enumerate(ranked.matches, 1)
                    if features.gallery_pids[int(path.stem[1:])] == features.query_pids[i]]
            ap = sum(k / rank for k, rank in enumerate(hits, 1)) / len(hits)
            assert ap == pytest.approx(scored["ap"][i], abs=1e-12)
            assert len(hits) / hits[-1] == pytest.approx(scored["inp"][i], abs=1e-12)


# ---------------------------------------------------------------- features file

def small_arrays(rng, num_query=6, num_gallery=8, dim=4):
    return dict(
        query_feats=rng.standard_normal((num_query, dim)).astype(np.float32),
        query_pids=np.arange(num_query) % 4,
        query_camids=np.zeros(num_query, dtype=np.int64),
        gallery_feats=rng.standard_normal((num_gallery, dim)).astype(np.float32),
        gallery_pids=np.arange(num_gallery) % 4,
        gallery_camids=np.ones(num_gallery, dtype=np.int64),
    )


def test_features_file_round_trip(tmp_path):
    arrays = small_arrays(np.random.default_rng(0))
    paths = np.array([f"q/{i}.png" for i in range(6)])
    path = save_features(tmp_path / "f.npz", **arrays, query_paths=paths, config=np.array("x"))
    loaded = load_features(path)
    for key, value in arrays.items():
        np.testing.assert_array_equal(getattr(loaded, key), value)
    np.testing.assert_array_equal(loaded.query_paths, paths)
    assert loaded.gallery_paths is None
    assert [p.name for p in tmp_path.iterdir()] == ["f.npz"]  # no temporary left behind


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.pop("gallery_camids"), "missing key"),
        (lambda a: a["query_feats"].__setitem__((1, 2), np.nan), "NaN or inf"),
        (lambda a: a["gallery_feats"].__setitem__((0, 0), np.inf), "NaN or inf"),
        (lambda a: a.__setitem__("query_feats", a["query_feats"][:, :, None]), "2-D"),
        (lambda a: a.__setitem__("gallery_pids", a["gallery_pids"][:5]), "5 entries"),
        (lambda a: a.__setitem__("query_camids", a["query_camids"][:, None]), "1-D"),
        (lambda a: a.__setitem__("gallery_feats", a["gallery_feats"][:, :3]), "dimensions"),
        (lambda a: a.__setitem__("query_pids", a["query_pids"].astype(float)), "integers"),
        (lambda a: a.update(gallery_feats=a["gallery_feats"][:0], gallery_pids=a["gallery_pids"][:0],
                            gallery_camids=a["gallery_camids"][:0]), "empty"),
    ],
)
def test_load_features_rejects_bad_files(tmp_path, change, message):
    arrays = small_arrays(np.random.default_rng(1))
    change(arrays)
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DrfmError, match=message) as info:
        load_features(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_save_features_refuses_bad_arrays_and_writes_nothing(tmp_path):
    arrays = small_arrays(np.random.default_rng(2))
    arrays["query_feats"][0, 0] = np.nan
    with pytest.raises(DrfmError, match="NaN"):
        save_features(tmp_path / "refused.npz", **arrays)
    assert list(tmp_path.iterdir()) == []


def test_load_features_rejects_missing_and_garbage_files(tmp_path):
    with pytest.raises(DrfmError, match="not found"):
        load_features(tmp_path / "absent.npz")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file")
    with pytest.raises(DrfmError, match="not a readable"):
        load_features(garbage)
    with pytest.raises(DrfmError, match=r"\.npz"):
        save_features(tmp_path / "f.npy", **small_arrays(np.random.default_rng(0)))


# ---------------------------------------------------------------- command line

def test_cli_evaluate_end_to_end(tmp_path, capsys):
    rng = np.random.default_rng(8)
    arrays = small_arrays(rng, num_query=12, num_gallery=16, dim=8)
    features = save_features(tmp_path / "feats.npz", **arrays)
    out = tmp_path / "out" / "result.json"
    code = main(["evaluate", "--features", str(features), "--trials", "5", "--seed", "3", "--json", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    assert RESULT_KEYS <= result.keys()
    expected = evaluate_features(load_features(features), "single-shot", trials=5, seed=3)
    assert result["rank1"] == pytest.approx(expected["rank1"]) and result["mAP"] == pytest.approx(expected["mAP"])
    assert result["trials"] == 5 and result["seed"] == 3 and result["num_query"] == 12
    assert result["num_gallery"] == 16 and result["num_gallery_ids"] == 4
    printed = capsys.readouterr().out
    assert "Rank-1" in printed and "mINP" in printed and "±" in printed

    code = main(["evaluate", "--features", str(features), "--protocol", "multi-shot", "--json", str(out)])
    assert code == 0
    assert json.loads(out.read_text())["protocol"] == "multi-shot"


def test_cli_evaluate_bad_files_exit_2_with_one_line(tmp_path, capsys):
    arrays = small_arrays(np.random.default_rng(9))
    missing = tmp_path / "missing_key.npz"
    np.savez(missing, **{k: v for k, v in arrays.items() if k != "query_pids"})
    arrays["gallery_feats"][3, 1] = np.nan
    nan = tmp_path / "nan.npz"
    np.savez(nan, **arrays)
    for path, problem in ((missing, "query_pids"), (nan, "NaN")):
        capsys.readouterr()
        assert main(["evaluate", "--features", str(path), "--json", str(tmp_path / "r.json")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("drfm: error:") and "\n" not in err
        assert str(path) in err and problem in err
    assert not (tmp_path / "r.json").exists()


def test_cli_evaluate_needs_exactly_one_source(tmp_path, capsys):
    assert main(["evaluate"]) == 2
    assert main(["evaluate", "--features", "a.npz", "--run", str(tmp_path)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and all(line.startswith("drfm: error: evaluate: ") for line in lines)


def test_cli_evaluate_run_delegates_to_engine(tmp_path, monkeypatch, capsys):
    import drfm.engine.inference as inference

    fs = load_features(save_features(tmp_path / "f.npz", **small_arrays(np.random.default_rng(10))))
    calls = []

    def fake_evaluate_run(run_dir, protocol, trials, seed, progress, features):
        assert features is None  # extracted by evaluate_run itself unless --visualize needs them
        calls.append((run_dir, protocol))
        return evaluate_features(fs, protocol, trials, seed)

    monkeypatch.setattr(inference, "evaluate_run", fake_evaluate_run)
    out = tmp_path / "run.json"
    assert main(["evaluate", "--run", str(tmp_path), "--protocol", "multi-shot", "--json", str(out)]) == 0
    assert calls == [(str(tmp_path), "multi-shot")]
    assert json.loads(out.read_text())["protocol"] == "multi-shot"

    monkeypatch.undo()
    capsys.readouterr()
    assert main(["evaluate", "--run", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err
