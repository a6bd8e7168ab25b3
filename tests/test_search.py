"""drfm search: gallery index (reuse, refresh), identities from file names, ranking, pictures, CLI errors."""

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from drfm.cli import main
from drfm.errors import DrfmError
from drfm.evaluation.features_file import save_features
from drfm.evaluation.protocol import rank_gallery
from drfm.evaluation.visualize import (COLOURS, CORRECT, INCORRECT, UNKNOWN, RankedList, match_marks, render_html,
                                       render_png)
from drfm.search import build_index, file_identities, gallery_files, search


def copy_gallery(world: Path, dest: Path, count: int = 6) -> list[Path]:
    files = sorted((world / "images" / "gallery").rglob("*.png"))[:count]
    dest.mkdir(parents=True)
    for f in files:
        shutil.copy2(f, dest / f.name)
    return sorted(dest.iterdir())


def test_rank_gallery_orders_by_distance_ties_by_index_and_skips_excluded():
    distances = np.array([[0.5, 0.1, 0.5, 0.3], [0.2, 0.2, 0.9, 0.0]])
    assert [r.tolist() for r in rank_gallery(distances, 3)] == [[1, 3, 0], [3, 0, 1]]
    exclude = np.array([[False, True, False, False], [False, False, False, False]])
    assert [r.tolist() for r in rank_gallery(distances, 3, exclude)] == [[3, 0, 2], [3, 0, 1]]
    assert match_marks(7, np.array([7, 3, -1])).tolist() == [CORRECT, INCORRECT, UNKNOWN]
    assert match_marks(-1, np.array([7, -1])).tolist() == [UNKNOWN, UNKNOWN]


def test_identities_from_manifest_reader_names_or_a_leading_number(tiny, tmp_path):
    built = tmp_path / "built"
    for name in ("a/x.png", "b/y.png", "b/z.png"):
        (built / "images" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 16)).save(built / "images" / name)
    entries = [{"path": f"images/{n}", "pid": pid} for n, pid in (("a/x.png", 5), ("b/y.png", 5), ("b/z.png", 9))]
    (built / "manifest.json").write_text(json.dumps({"format": "drfm-mlr/1", "lr_cameras": [], "entries": entries}))
    listed = [built / "images" / n for n in ("a/x.png", "b/y.png", "b/z.png")]
    assert file_identities(listed).tolist() == [5, 5, 9]
    Image.new("RGB", (8, 16)).save(built / "images" / "b" / "w.png")  # not in the manifest
    assert file_identities([*listed, built / "images" / "b" / "w.png"]) is None
    world_files = sorted((tiny[0] / "images").rglob("*.png"))
    assert file_identities(world_files).tolist() == [int(p.name[:4]) for p in world_files]
    names = [Path(n) for n in ("0012_c1s1_000451_03.jpg", "-1_c2s1_000001_00.jpg", "0007_c3.png")]
    assert file_identities(names).tolist() == [12, -1, 7]
    assert file_identities([Path("cam_a/person_0042.png"), Path("cam_b/person_0201.png")]).tolist() == [42, 201]
    assert file_identities([Path("0003011.jpg"), Path("0050001.jpg")]).tolist() == [3, 50]
    assert file_identities([Path("0001_a.png"), Path("walker.png")]) is None


def test_index_is_reused_and_refreshed_only_for_changed_files(tiny, model, tmp_path):
    files = copy_gallery(tiny[0], tmp_path / "gallery")
    index_file = tmp_path / "index.npz"
    first = build_index(model, tmp_path / "gallery", index_file, progress=False)
    assert (first.embedded, first.reused, len(first.paths)) == (6, 0, 6)
    np.testing.assert_allclose(first.features, model.embed(files).numpy(), atol=1e-5)
    assert not first.low.any()  # 128-pixel-high gallery images are high-resolution
    again = build_index(model, tmp_path / "gallery", index_file, progress=False)
    assert (again.embedded, again.reused) == (0, 6)
    np.testing.assert_array_equal(again.features, first.features)
    Image.open(files[0]).transpose(Image.FLIP_LEFT_RIGHT).save(files[0])  # changed content
    os.utime(files[0], ns=(1, 1))
    files[1].unlink()
    shutil.copy2(files[2], tmp_path / "gallery" / "extra.png")
    refreshed = build_index(model, tmp_path / "gallery", index_file, progress=False)
    assert (refreshed.embedded, refreshed.reused, len(refreshed.paths)) == (2, 4, 6)
    np.testing.assert_allclose(refreshed.features, model.embed(refreshed.paths).numpy(), atol=1e-5)
    as_low = build_index(model, tmp_path / "gallery", index_file, resolution="low", progress=False)
    assert (as_low.embedded, as_low.reused) == (6, 0) and as_low.low.all()
    for damaged in (b"PK\x03\x04 cut short", b"not an index"):
        index_file.write_bytes(damaged)
        rebuilt = build_index(model, tmp_path / "gallery", index_file, resolution="low", progress=False)
        assert rebuilt.embedded == 6
        np.testing.assert_array_equal(rebuilt.features, as_low.features)


def test_search_ranks_by_cosine_distance_of_the_embedded_features(tiny, model, tmp_path):
    world = tiny[0]
    queries = sorted((world / "images" / "query").rglob("*.png"))[:2]
    gallery = world / "images" / "gallery"
    result = search(model, queries, gallery, tmp_path / "index.npz", progress=False)
    q = model.embed(queries).numpy()
    g = model.embed(result.index.paths).numpy()
    np.testing.assert_allclose(result.distances, 1 - q @ g.T, atol=1e-5)
    assert result.query_low.tolist() == [True, True]  # 43 or 32 pixels high: below the threshold of 64
    lists = result.ranked(top=4)
    for i, ranked in enumerate(lists):
        order = np.argsort(result.distances[i], kind="stable")[:4]
        assert ranked.matches == [result.index.paths[j] for j in order]
        expected = [CORRECT if result.gallery_pids[j] == result.query_pids[i] else INCORRECT for j in order]
        assert ranked.marks.tolist() == expected
        assert "low resolution" in ranked.note and f"id {result.query_pids[i]}" in ranked.note


def test_pictures_png_frames_and_self_contained_html(tiny, tmp_path):
    gallery = sorted((tiny[0] / "images" / "gallery").rglob("*.png"))[:3]
    query = sorted((tiny[0] / "images" / "query").rglob("*.png"))[0]
    ranked = RankedList(query=query, matches=gallery, distances=np.array([0.1, 0.2, 0.3]),
                        marks=np.array([CORRECT, INCORRECT, UNKNOWN]), note="<id 0>")
    png = Image.open(render_png([ranked, ranked], tmp_path / "r.png"))
    # layout: pad 8, header 18, framed cells 70x134, then a 16-pixel caption and 8 of padding per row
    assert png.height == 8 + 2 * (18 + 134 + 16 + 8)
    y = 8 + 18 + 1
    assert png.getpixel((8 + 1, y)) == COLOURS["query"]
    for rank, mark in enumerate((CORRECT, INCORRECT, UNKNOWN), 1):
        assert png.getpixel((8 + 20 + rank * 78 + 1, y)) == COLOURS[mark]
    page = render_html([ranked], tmp_path / "r.html", title="T & co").read_text()
    assert page.count('src="data:image/png;base64,') == 4
    assert not re.search(r'src="(?!data:)', page) and "http" not in page
    assert "T &amp; co" in page and "&lt;id 0&gt;" in page
    assert re.findall(r'<figure class="(\w+)"', page) == ["query", "correct", "incorrect", "unknown"]


def test_drfm_search_command_prints_and_writes_html_and_png(tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    world, run_dir = tiny
    queries = sorted((world / "images" / "query").rglob("*.png"))[:2]
    out = tmp_path / "res" / "results.html"
    argv = ["search", "--model", str(run_dir), "--query", *map(str, queries), "--gallery",
            str(world / "images" / "gallery"), "--top", "3", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "16 images (16 embedded, 0 from the index" in printed
    assert len(re.findall(r"^\s+[123]  \d\.\d{4}  ", printed, re.M)) == 6
    assert out.read_text().count("data:image/png;base64,") == 2 * (1 + 3)
    assert Image.open(out.with_suffix(".png")).size[1] > 2 * 134
    assert len(list((tmp_path / "cache" / "drfm" / "search").glob("*.npz"))) == 1
    assert main(argv) == 0 and "(0 embedded, 16 from the index" in capsys.readouterr().out


def test_drfm_search_bad_input_is_one_line_and_exit_2(tiny, tmp_path, capsys):
    world, run_dir = tiny
    query = sorted((world / "images" / "query").rglob("*.png"))[0]
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.jpg").write_text("text")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    gallery = str(world / "images" / "gallery")
    not_image = str(tmp_path / "notes.jpg")
    cases = [
        (["--model", str(run_dir), "--query", not_image, "--gallery", gallery], "not a readable image"),
        (["--model", str(run_dir), "--query", str(query), "--gallery", str(tmp_path / "empty")], "holds no image"),
        (["--model", str(run_dir), "--query", str(query), "--gallery", gallery, "--out", "r.txt"], "must be an .html"),
        (["--model", str(tmp_path / "bad.pt"), "--query", str(query), "--gallery", gallery], "unreadable checkpoint"),
        (["--model", str(run_dir), "--query", str(query), "--gallery", gallery, "--top", "0"], "--top"),
    ]
    for args, words in cases:
        assert main(["search", *args, "--index", str(tmp_path / "i.npz"), "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("drfm: error: ") and words in err and "\n" not in err
    with pytest.raises(DrfmError, match="does not exist"):
        gallery_files(tmp_path / "nowhere")


def test_evaluate_visualize_draws_n_queries_of_a_features_file(tiny, tmp_path, capsys):
    world = tiny[0]
    query = sorted((world / "images" / "query").rglob("*.png"))[:4]
    gallery = sorted((world / "images" / "gallery").rglob("*.png"))[:5]
    rng = np.random.default_rng(0)
    features = tmp_path / "f.npz"
    save_features(features, query_feats=rng.normal(size=(4, 8)), query_pids=np.arange(4),
                  query_camids=np.full(4, 2), gallery_feats=rng.normal(size=(5, 8)), gallery_pids=np.arange(5),
                  gallery_camids=np.zeros(5, np.int64), query_paths=np.array(list(map(str, query))),
                  gallery_paths=np.array(list(map(str, gallery))))
    out = tmp_path / "vis"
    assert main(["evaluate", "--features", str(features), "--trials", "2", "--visualize", "3",
                 "--visualize-out", str(out)]) == 0
    page = (out / "ranked.html").read_text()
    assert page.count("<section>") == 3 and page.count("data:image/png;base64,") == 3 * (1 + 5)
    assert (out / "ranked.png").is_file() and "ranked.png" in capsys.readouterr().out


def test_evaluate_run_visualize_extracts_the_run_once(tiny, tmp_path, monkeypatch, capsys):
    import drfm.engine.inference as inference

    run_dir = tmp_path / "run"
    shutil.copytree(tiny[1], run_dir)
    extractions = []
    real = inference.run_feature_arrays

    def counting(*args, **kwargs):
        extractions.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(inference, "run_feature_arrays", counting)
    assert main(["evaluate", "--run", str(run_dir), "--trials", "2", "--visualize", "2"]) == 0
    assert len(extractions) == 1
    page = (run_dir / "visualize" / "ranked.html").read_text()
    assert page.count("<section>") == 2
    assert json.loads((run_dir / "eval.json").read_text())["trials"] == 2
