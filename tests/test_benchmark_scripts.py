"""The README's benchmark scripts, each run through its real entry point (`python benchmarks/X.py`).

`towncentre_subset.py` runs on a fake TownCentre folder (PID_FRAME.jpg files written with PIL).
`mlr_table.py` trains tiny runs (random weights, 64x32 input, one short epoch) on a 12-person
generated world; `make_dev_figures.py` and `make_figures.py` then draw their figures from those
runs (make_figures.py finds its demo runs already there, so it trains nothing). The curves of a
figure are recognised by matplotlib's default colour cycle in the PNG.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from PIL import Image

from drfm.cli import main
from drfm.data.demo_world import generate_demo_world

REPO = Path(__file__).parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TAB_COLOURS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40))  # matplotlib C0..C3
TINY = ["train.device=cpu", "model.pretrained=false", "input.height=64", "input.width=32", "train.epochs=1",
        "train.iters_per_epoch=2", "labels.k1=8", "labels.k2=4", "labels.eps=0.9", "preprocess.sr_backend=bicubic"]
RUN = f"drfm=drfm-demo:{':'.join(TINY)}"  # LABEL=CONFIG:key=value:...
UNTRAINED_RUN = f"untrained=drfm-demo:{':'.join(TINY)}:train.epochs=0"
METRICS = ("rank1", "rank5", "rank10", "mAP")


def script(name: str, *args, expect_ok: bool = True) -> subprocess.CompletedProcess:
    """`python benchmarks/NAME.py ARGS` from the repository root."""
    done = subprocess.run([sys.executable, f"benchmarks/{name}.py", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if expect_ok:
        assert done.returncode == 0, f"{name}.py failed:\n{done.stdout}\n{done.stderr}"
    return done


def colours_drawn(png: Path, min_pixels: int = 20, blend: float = 1.0) -> list[int]:
    """Indices of matplotlib's C0..C3 found in the PNG (each at least `min_pixels` pixels; `blend`:
    the colour's alpha over white)."""
    pixels = np.asarray(Image.open(png).convert("RGB")).astype(int)
    found = []
    for index, colour in enumerate(TAB_COLOURS):
        target = blend * np.array(colour) + (1 - blend) * 255
        if (np.abs(pixels - target).max(-1) <= 6).sum() >= min_pixels:
            found.append(index)
    return found


def assert_png(path: Path) -> tuple[int, int]:
    """`path` is a non-trivial PNG; returns its (width, height)."""
    assert path.is_file(), f"{path} not written"
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.width > 200 and image.height > 200
        return image.size


# --------------------------------------------------------------------------- towncentre_subset.py

def write_towncentre(root: Path, frames_per_pid: dict[int, list[int]]) -> Path:
    """A flat TownCentre folder in its release layout: PID_FRAME.jpg, plus PETA's Label.txt."""
    root.mkdir(parents=True)
    for pid, frames in frames_per_pid.items():
        for frame in frames:
            buffer = io.BytesIO()
            Image.new("RGB", (32, 64), ((pid * 37) % 256, (frame * 11) % 256, 90)).save(buffer, "JPEG")
            (root / f"{pid}_{frame}.jpg").write_bytes(buffer.getvalue())
    (root / "Label.txt").write_text("0 1 0 1\n")
    (root / "notes.jpg.txt").write_text("not an image\n")
    return root


def test_towncentre_subset_takes_lowest_ids_with_enough_frames_and_evenly_spaced_frames(tmp_path: Path):
    # frame numbers deliberately not in sorted order when compared as strings (9 < 10 < 100 ...)
    tracks = {
        3: [9 * i + 5 for i in range(11)],      # 11 frames: eligible (>= 2 * 4)
        1: [100 + 9 * i for i in range(7)],     # 7 frames: too few
        7: [2 ** i for i in range(8)],          # exactly 8 frames: eligible
        12: [50 + 3 * i for i in range(20)],    # 20 frames: eligible
        30: list(range(1000, 1009)),            # 9 frames: eligible
        41: list(range(10)),                    # eligible, but beyond --people 4
    }
    source = write_towncentre(tmp_path / "TownCentre", tracks)
    out = tmp_path / "subset"
    done = script("towncentre_subset", "--root", source, "--out", out, "--people", 4, "--frames", 4)
    assert done.stdout.strip() == f"4 people x 4 frames linked into {out}"

    links = sorted(out.iterdir())
    assert len(links) == 16
    assert all(link.is_symlink() and link.resolve().parent == source.resolve() for link in links)
    chosen: dict[int, list[int]] = {}
    for link in links:
        assert link.resolve().name == link.name
        pid, frame = map(int, link.stem.split("_"))
        chosen.setdefault(pid, []).append(frame)
    assert sorted(chosen) == [3, 7, 12, 30]  # lowest ids with >= 8 frames; 1 has too few, 41 is the 5th
    for pid, frames in chosen.items():
        ordered = sorted(tracks[pid])
        expected = [ordered[k * len(ordered) // 4] for k in range(4)]  # floor(k * n / frames), frames = 4
        assert sorted(frames) == expected, pid

    # The documented use: `drfm prepare mlr --dataset towncentre` on the subset gives, of each of the
    # half of the people that train, half of the frames HR and half LR.
    mlr = tmp_path / "mlr"
    assert main(["prepare", "mlr", "--dataset", "towncentre", "--root", str(out), "--out", str(mlr),
                 "--seed", "0"]) == 0
    manifest = json.loads((mlr / "manifest.json").read_text())
    train = [e for e in manifest["entries"] if e["split"] == "train"]
    train_pids = sorted({e["pid"] for e in train})
    assert len(train_pids) == 2
    for pid in train_pids:
        resolutions = sorted(e["resolution"] for e in train if e["pid"] == pid)
        assert resolutions == ["HR", "HR", "LR", "LR"], pid


def test_towncentre_subset_defaults_are_50_people_x_20_frames_and_need_40_frames(tmp_path: Path):
    tracks = {pid: list(range(40)) for pid in range(2, 55)}  # 53 people with 40 frames
    tracks[0] = list(range(39))  # one frame short of 2 x 20: left out although its id is lowest
    source = write_towncentre(tmp_path / "TownCentre", tracks)
    out = tmp_path / "towncentre-25"
    done = script("towncentre_subset", "--root", source, "--out", out)
    assert done.stdout.strip() == f"50 people x 20 frames linked into {out}"
    names = [p.name for p in out.iterdir()]
    pids = sorted({int(name.split("_")[0]) for name in names})
    assert len(names) == 1000 and pids == list(range(2, 52))
    assert sorted(int(n.split("_")[1][:-4]) for n in names if n.startswith("2_")) == list(range(0, 40, 2))


def test_towncentre_subset_refuses_an_existing_output_folder(tmp_path: Path):
    source = write_towncentre(tmp_path / "TownCentre", {1: list(range(4))})
    out = tmp_path / "subset"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    done = script("towncentre_subset", "--root", source, "--out", out, "--frames", 2, expect_ok=False)
    assert done.returncode != 0 and "exists" in done.stderr.lower()
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


# --------------------------------------------------------------------------- mlr_table.py

def snapshot(run: Path) -> dict[str, int]:
    """mtime (ns) of every file in a run folder."""
    return {p.name: p.stat().st_mtime_ns for p in run.iterdir()}


@pytest.fixture(scope="module")
def mlr(tmp_path_factory) -> SimpleNamespace:
    """mlr_table.py run twice on one work folder, with what the first run left recorded.

    First: run `drfm` (drfm-demo with the TINY overrides), seeds 0 and 1, two jobs at once. Then
    drfm-s1's eval.json is removed (a trained run whose evaluation did not finish) and the same
    command runs again: drfm-s0 must be skipped, drfm-s1 resumed, which only evaluates it. Third:
    another run (`untrained`, seed 0) on the same work folder, whose records must join the others.
    """
    base = tmp_path_factory.mktemp("mlr_table")
    world, work = base / "world", base / "work"
    generate_demo_world(world, num_people=12, num_cameras=3, images_per_camera=2, seed=3)
    args = ["--root", world, "--work", work, "--seeds", "0,1", "--jobs", 2, "--runs", RUN]
    first = script("mlr_table", *args)
    runs = work / "runs"
    state = SimpleNamespace(
        world=world, work=work, runs=runs, first_stdout=first.stdout,
        first_results=json.loads((work / "results.json").read_text()), first_table=(work / "table.md").read_text(),
        evals={seed: json.loads((runs / f"drfm-s{seed}" / "eval.json").read_text()) for seed in (0, 1)},
        minutes={seed: json.loads((runs / f"drfm-s{seed}" / "minutes.json").read_text())["minutes"] for seed in (0, 1)},
        before={seed: snapshot(runs / f"drfm-s{seed}") for seed in (0, 1)},
        s1_checkpoint=(runs / "drfm-s1" / "checkpoint.pt").read_bytes(),
        s1_log=(runs / "drfm-s1" / "log.jsonl").read_text())
    (runs / "drfm-s1" / "eval.json").unlink()
    second = script("mlr_table", *args)
    state.second_stdout = second.stdout
    state.second_results = json.loads((work / "results.json").read_text())
    state.second_table = (work / "table.md").read_text()
    third = script("mlr_table", "--root", world, "--work", work, "--seeds", 0, "--runs", f"{UNTRAINED_RUN}")
    state.third_stdout = third.stdout
    state.third_results = json.loads((work / "results.json").read_text())
    state.third_table = (work / "table.md").read_text()
    return state


def table_rows(markdown: str) -> list[list[str]]:
    lines = markdown.strip().splitlines()
    assert lines[0] == "| run | seeds | Rank-1 | Rank-5 | Rank-10 | mAP | final label F | minutes per run |"
    assert lines[1] == "|---|---|---|---|---|---|---|---|"
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


@pytest.mark.slow
def test_mlr_table_trains_evaluates_and_writes_results_and_table(mlr):
    results = mlr.first_results
    assert set(results) == {"root", "records", "environment"} and results["root"] == str(mlr.world)
    assert "torch" in json.dumps(results["environment"])
    records = results["records"]
    assert [(r["label"], r["config"], r["seed"], r["overrides"]) for r in records] == \
        [("drfm", "drfm-demo", seed, TINY) for seed in (0, 1)]
    assert sorted(p.name for p in mlr.runs.iterdir()) == ["drfm-s0", "drfm-s1", "untrained-s0"]  # untrained: third
    for record in records:
        seed, run = record["seed"], mlr.runs / f"drfm-s{record['seed']}"
        assert {"config.yaml", "checkpoint.pt", "log.jsonl", "eval.json", "minutes.json"} <= set(mlr.before[seed])
        for metric in METRICS + ("rank1_std",):
            assert record[metric] == mlr.evals[seed][metric]
        assert 0 <= record["rank1"] <= record["rank5"] <= record["rank10"] <= 100 and 0 < record["mAP"] <= 100
        assert record["minutes"] == mlr.minutes[seed] > 0
        assert [line["epoch"] for line in record["log"]] == [0]  # train.epochs=1 reached the trainer
        assert 0 <= record["log"][0]["label_quality"]["f1"] <= 1
        config = yaml.safe_load((run / "config.yaml").read_text())
        assert config["seed"] == seed and config["train"]["epochs"] == 1 and config["input"]["height"] == 64
        assert config["model"]["pretrained"] is False and config["model"]["fusion"] == "crff"  # drfm-demo
        assert config["data"]["cache_dir"] == str(mlr.work / "cache") and config["data"]["root"] == str(mlr.world)
    assert records[0]["log"][0]["losses"] != records[1]["log"][0]["losses"]  # the two seeds trained differently

    rows = table_rows(mlr.first_table)
    assert len(rows) == 1 and rows[0][:2] == ["drfm", "0,1"]
    assert rows[0][2:6] == [f"{np.mean([r[m] for r in records]):.1f} ± {np.std([r[m] for r in records]):.1f}"
                            for m in METRICS]
    f1 = [r["log"][-1]["label_quality"]["f1"] for r in records]
    assert rows[0][6] == f"{np.mean(f1):.2f} ± {np.std(f1):.2f}"
    assert rows[0][7] == ", ".join(f"{r['minutes']:.1f}" for r in records)
    assert mlr.first_stdout.splitlines() == [
        f"drfm seed {r['seed']}: Rank-1 {r['rank1']:.1f} mAP {r['mAP']:.1f} ({r['minutes']:.1f} min)" for r in records]


@pytest.mark.slow
def test_mlr_table_second_run_skips_the_finished_run_and_only_evaluates_the_trained_one(mlr):
    # finished run (eval.json present): not touched at all
    assert snapshot(mlr.runs / "drfm-s0") == mlr.before[0]
    # trained but not evaluated: resumed with nothing left to train, so it is only evaluated (the
    # resume rewrites log.jsonl from the checkpoint, with the same content)
    s1, after = mlr.runs / "drfm-s1", snapshot(mlr.runs / "drfm-s1")
    assert set(after) == set(mlr.before[1])
    assert {name for name in after if after[name] != mlr.before[1][name]} <= {"eval.json", "minutes.json", "log.jsonl"}
    assert after["eval.json"] > mlr.before[1]["eval.json"]
    assert (s1 / "checkpoint.pt").read_bytes() == mlr.s1_checkpoint
    assert (s1 / "log.jsonl").read_text() == mlr.s1_log and len(mlr.s1_log.splitlines()) == 1
    evaluation = json.loads((s1 / "eval.json").read_text())
    for metric in METRICS:
        assert evaluation[metric] == pytest.approx(mlr.evals[1][metric], abs=1e-6)  # the same weights

    first, second = mlr.first_results["records"], mlr.second_results["records"]
    assert second[0] == first[0]  # the skipped run's record is read back as it was
    assert [(r["label"], r["seed"], r["log"]) for r in second] == [(r["label"], r["seed"], r["log"]) for r in first]
    for metric in METRICS:
        assert second[1][metric] == pytest.approx(first[1][metric], abs=1e-6)
    assert second[1]["minutes"] > first[1]["minutes"] == mlr.minutes[1]  # the evaluation's minutes add up
    rows = table_rows(mlr.second_table)
    assert [row[:2] for row in rows] == [["drfm", "0,1"]]
    assert rows[0][2:6] == table_rows(mlr.first_table)[0][2:6]
    assert len(mlr.second_stdout.splitlines()) == 2


@pytest.mark.slow
def test_mlr_table_keeps_the_records_of_earlier_invocations(mlr):
    third = mlr.third_results["records"]
    assert third[:2] == mlr.second_results["records"]  # drfm seeds 0 and 1, read back as they were
    assert [(r["label"], r["seed"], r["overrides"][-1]) for r in third[2:]] == [("untrained", 0, "train.epochs=0")]
    assert third[2]["log"] == [] and mlr.third_stdout.splitlines() == [
        f"untrained seed 0: Rank-1 {third[2]['rank1']:.1f} mAP {third[2]['mAP']:.1f} ({third[2]['minutes']:.1f} min)"]
    rows = table_rows(mlr.third_table)
    assert [row[:2] for row in rows] == [["drfm", "0,1"], ["untrained", "0"]]
    assert rows[0] == table_rows(mlr.second_table)[0] and rows[1][6] == "-"


def test_mlr_table_refuses_a_work_folder_of_another_dataset(tmp_path: Path):
    (tmp_path / "results.json").write_text(json.dumps({"root": "mlr-ilids", "records": [], "environment": {}}))
    done = script("mlr_table", "--root", "mlr-3dpes", "--work", tmp_path, "--runs", RUN, expect_ok=False)
    assert done.returncode != 0 and not (tmp_path / "runs").exists()
    assert done.stderr.strip() == (f"{tmp_path / 'results.json'}: written for dataset 'mlr-ilids', not 'mlr-3dpes'; "
                                   "use another --work")


# --------------------------------------------------------------------------- make_dev_figures.py

@pytest.mark.slow
def test_make_dev_figures_draws_one_curve_per_run_family(mlr, tmp_path: Path):
    # a second work folder holding all four families the script draws (links to the trained runs)
    all_four = tmp_path / "all4" / "runs"
    all_four.mkdir(parents=True)
    for name, target in (("drfm-s0", "drfm-s0"), ("drfm-cpg-s0", "drfm-s1"), ("cc-s0", "drfm-s1"),
                         ("drfm-paper-clustering-s0", "drfm-s0")):
        (all_four / name).symlink_to(mlr.runs / target)
    out = tmp_path / "docs"
    done = script("make_dev_figures", "--work", f"{mlr.work}:MLR-Tiny", f"{tmp_path / 'all4'}:MLR-All4",
                  f"{mlr.work}:MLR-Then:{tmp_path / 'all4'}", "--out", out)
    tiny, four, then = out / "fig6_tiny.png", out / "fig6_all4.png", out / "fig6_then.png"
    assert done.stdout.splitlines() == [str(tiny), str(four), str(then)]
    assert sorted(p.name for p in out.iterdir()) == ["fig6_all4.png", "fig6_then.png", "fig6_tiny.png"]
    for figure in (tiny, four, then):
        assert_png(figure)
    assert colours_drawn(tiny) == [0]  # one curve: drfm-s0 and drfm-s1 (mean and band); no cc-s*
    assert colours_drawn(four) == [0, 1, 2, 3]  # DRFM, DRFM with CPG, CC, DRFM paper clustering
    assert colours_drawn(then) == [0, 1, 2]  # DRFM, and the previous folder's DRFM and CC
    chosen = script("make_dev_figures", "--work", f"{tmp_path / 'all4'}:MLR-All4:{mlr.work}", "--out", out,
                    "--suffix", "_chosen", "--curves", "CC=cc", "Paper clustering=drfm-paper-clustering",
                    "--previous-curves", "DRFM then=drfm", "Absent=cc")
    assert chosen.stdout.splitlines() == [str(out / "fig6_all4_chosen.png")]
    assert colours_drawn(out / "fig6_all4_chosen.png") == [0, 1, 2]  # the two chosen families, DRFM then
    # a family from another work folder, named per dataset: {name} is "all4" here
    elsewhere = tmp_path / "measured-apart" / "all4" / "runs"
    elsewhere.mkdir(parents=True)
    (elsewhere / "drfm-new-s0").symlink_to(mlr.runs / "drfm-s0")
    apart = script("make_dev_figures", "--work", f"{tmp_path / 'all4'}:MLR-All4", "--out", out, "--suffix", "_apart",
                   "--curves", f"DRFM new=drfm-new@{tmp_path / 'measured-apart' / '{name}'}", "CC=cc", "Absent=drfm-new")
    assert apart.stdout.splitlines() == [str(out / "fig6_all4_apart.png")]
    assert colours_drawn(out / "fig6_all4_apart.png") == [0, 1]  # drfm-new from the other folder, CC from all4


# --------------------------------------------------------------------------- make_figures.py

@pytest.mark.slow
def test_make_figures_draws_fig6_from_viper_runs_and_fig7_from_existing_demo_runs(mlr, tmp_path: Path):
    viper_runs = tmp_path / "viper" / "runs"
    viper_runs.mkdir(parents=True)
    for name, target in (("cc-cpu-s0", "drfm-s0"), ("a2-cpu-s0", "drfm-s1"), ("a4-cpu-s0", "drfm-s0"),
                         ("drfm-cpu-s0", "drfm-s0"), ("drfm-cpu-s1", "drfm-s1")):
        (viper_runs / name).symlink_to(mlr.runs / target)
    # the demo work folder as make_figures.py leaves it: the world and both runs already trained
    # (tiny runs stand in for a5-demo and drfm-demo: the script only extracts their test features)
    demo = tmp_path / "demo"
    (demo / "runs").mkdir(parents=True)
    (demo / "world").symlink_to(mlr.world)
    (demo / "runs" / "a5-demo").symlink_to(mlr.runs / "drfm-s1")
    (demo / "runs" / "drfm-demo").symlink_to(mlr.runs / "drfm-s0")
    untouched = {p: p.stat().st_mtime_ns for p in [mlr.world / "manifest.json", *(mlr.runs / "drfm-s0").iterdir(),
                                                    *(mlr.runs / "drfm-s1").iterdir()]}
    out = tmp_path / "docs"
    done = script("make_figures", "--viper-work", tmp_path / "viper", "--demo-work", demo, "--out", out)

    fig6, fig7 = out / "fig6_label_fscore.png", out / "fig7_pair_distances.png"
    assert done.stdout.splitlines() == [str(fig6), str(fig7)]
    assert sorted(p.name for p in out.iterdir()) == ["fig6_label_fscore.png", "fig7_pair_distances.png"]
    assert_png(fig6)
    assert colours_drawn(fig6) == [0, 1, 2, 3]  # CC, A2, A4, DRFM
    width, height = assert_png(fig7)
    assert width > 2 * height  # two panels side by side: A5 and CRFF
    assert colours_drawn(fig7, blend=0.55) == [0, 1]  # same- and cross-resolution histograms
    # the demo runs were found, not trained (and the world not regenerated)
    assert sorted(p.name for p in demo.iterdir()) == ["runs", "world"]
    assert sorted(p.name for p in (demo / "runs").iterdir()) == ["a5-demo", "drfm-demo"]
    assert {p: p.stat().st_mtime_ns for p in untouched} == untouched


# --------------------------------------------------------------------------- color_grid.py

def test_color_grid_reports_one_row_per_weight_and_histogram_variant(tmp_path: Path):
    world = tmp_path / "world"
    generate_demo_world(world, num_people=12, num_cameras=3, images_per_camera=2, seed=3)
    out = tmp_path / "grid.json"
    done = script("color_grid", "--root", world, "--cache", tmp_path / "cache", "--out", out, "--config",
                  "drfm-demo", "--weights", "0,1", "--stripes", "2,6", "--bins", "8x4x4", *TINY)
    result = json.loads(out.read_text())
    rows = result["rows"]
    assert [(r["color_weight"], r["bands"], r["bins"]) for r in rows] == \
        [(0.0, None, None), (1.0, 2, [8, 4, 4]), (1.0, 6, [8, 4, 4])]
    assert all(0 <= r["f1"] <= 1 and r["clusters"] >= 0 for r in rows)
    assert len(done.stdout.strip().splitlines()) == 3 and "torch" in json.dumps(result["environment"])
    assert result["config"]["input"]["height"] == 64  # the overrides reached the configuration


# --------------------------------------------------------------------------- color_baseline.py

def test_color_baseline_writes_a_features_file_that_drfm_evaluate_scores(tmp_path: Path, capsys):
    world = tmp_path / "world"
    generate_demo_world(world, num_people=12, num_cameras=3, images_per_camera=2, seed=3)
    features = tmp_path / "color.npz"
    done = script("color_baseline", "--dataset", "mlr", "--root", world, "--out", features)
    assert done.stdout.startswith(f"wrote {features}") and "768 values each" in done.stdout
    with np.load(features) as arrays:
        query, gallery = arrays["query_feats"], arrays["gallery_feats"]
        paths = arrays["query_paths"]
    assert np.allclose(np.linalg.norm(query, axis=1), 1, atol=1e-5) and gallery.shape[1] == 768
    assert len(paths) == len(query) and all(Path(p).is_file() and str(world) in p for p in paths)
    out = tmp_path / "eval.json"
    assert main(["evaluate", "--features", str(features), "--json", str(out)]) == 0
    assert 0 <= json.loads(out.read_text())["rank1"] <= 100


# --------------------------------------------------------------------------- camera_shift.py

def test_camera_shift_recolours_the_lr_images_only_and_keeps_the_manifest(tmp_path: Path):
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from camera_shift import camera_response
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    world, out = tmp_path / "world", tmp_path / "shifted"
    generate_demo_world(world, num_people=4, num_cameras=3, images_per_camera=1, seed=3)
    done = script("camera_shift", "--root", world, "--out", out)
    manifest = json.loads((world / "manifest.json").read_text())
    assert (out / "manifest.json").read_text() == (world / "manifest.json").read_text()
    lr = [entry["path"] for entry in manifest["entries"] if entry["resolution"] == "LR"]
    hr = [entry["path"] for entry in manifest["entries"] if entry["resolution"] == "HR"]
    assert len(lr) == 4 and f"{len(lr)} LR images" in done.stdout
    for path in hr:
        assert (out / path).read_bytes() == (world / path).read_bytes()
    for path in lr:
        with Image.open(world / path) as original, Image.open(out / path) as shifted:
            assert np.array_equal(np.asarray(shifted), np.asarray(camera_response(original)))
            # the camera's warm cast: red up, blue down, against the same picture's own pixels
            before, after = np.asarray(original, dtype=float), np.asarray(shifted, dtype=float)
            assert after[..., 2].mean() < before[..., 2].mean()
    # pure pixel values by hand: gain 1.15 / 1.0 / 0.8, gamma 1.3
    pixel = np.asarray(camera_response(Image.new("RGB", (1, 1), (128, 128, 255))))[0, 0]
    assert pixel.tolist() == [round(255 * 1.15 * (128 / 255) ** 1.3), round(255 * (128 / 255) ** 1.3), 204]
    # --desaturate mixes every channel with the pixel's mean first: (1 - 0.5) * 255 + 0.5 * 170 = 212.5
    grey = np.asarray(camera_response(Image.new("RGB", (1, 1), (0, 255, 255)), gains=(1, 1, 1), gamma=1.0,
                                      desaturate=0.5))[0, 0]
    assert grey.tolist() == [85, 212, 212]
    washed = script("camera_shift", "--root", world, "--out", tmp_path / "washed", "--desaturate", "0.5")
    for path in lr:
        with Image.open(world / path) as original, Image.open(tmp_path / "washed" / path) as shifted:
            assert np.array_equal(np.asarray(shifted), np.asarray(camera_response(original, desaturate=0.5)))
    assert "desaturate 0.5" in washed.stdout
    bad = script("camera_shift", "--root", world, "--out", tmp_path / "y", "--desaturate", "2", expect_ok=False)
    assert bad.returncode != 0 and "--desaturate" in bad.stderr and not (tmp_path / "y").exists()
    again = script("camera_shift", "--root", world, "--out", out, expect_ok=False)
    assert again.returncode != 0 and "exists" in again.stderr
    missing = script("camera_shift", "--root", tmp_path / "nothing", "--out", tmp_path / "x", expect_ok=False)
    assert missing.returncode != 0 and "manifest.json" in missing.stderr and not (tmp_path / "x").exists()
