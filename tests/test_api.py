"""drfm.load / ReIDModel.embed: the evaluation's test-time features from paths, PIL images or tensors."""

import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

import drfm
from drfm.api import ReIDModel, as_pil_images
from drfm.data.image_io import load_image
from drfm.data.registry import read_dataset
from drfm.data.downsampling import downsample
from drfm.data import transforms
from drfm.engine import inference
from drfm.errors import DrfmError
from drfm.models.dual_model import DualResolutionModel


def test_embed_gives_the_evaluation_features_lr_by_sr_hr_by_downsampling(tiny, model):
    world, run_dir = tiny
    splits = read_dataset("mlr", world)
    records = splits.query[:3] + splits.gallery[:3]  # LR camera 2 queries, HR gallery
    with torch.no_grad():
        expected = inference.test_features(model.config, model.network.model, records, splits, progress=False)
    feats = model.embed([r.path for r in records])
    assert feats.shape == (6, model.feature_dim) and feats.dtype == torch.float32
    np.testing.assert_allclose(feats.numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(feats.norm(dim=1).numpy(), 1.0, atol=1e-5)
    assert model.low_resolution(as_pil_images([r.path for r in records])).tolist() == [True] * 3 + [False] * 3


def test_views_follow_the_spec_sr_for_low_and_downsampling_for_high(model):
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 20, 3), dtype=np.uint8))
    transform = transforms.test_transform(64, 32)
    hr, lr = model.views([image, image], np.array([True, False]))
    sr = image.resize((80, 160), Image.BICUBIC)  # the bicubic SR backend, x4
    torch.testing.assert_close(hr[0], transform(sr), rtol=0, atol=0)
    torch.testing.assert_close(lr[0], transform(image), rtol=0, atol=0)
    torch.testing.assert_close(hr[1], transform(image), rtol=0, atol=0)
    torch.testing.assert_close(lr[1], transform(downsample(image, 4)), rtol=0, atol=0)


def test_paths_pil_images_and_tensors_give_the_same_features_in_any_batching(tiny, model):
    paths = sorted((tiny[0] / "images" / "gallery").rglob("*.png"))[:3]
    images = [load_image(p) for p in paths]
    by_path = model.embed(paths, resolution="high")
    by_pil = model.embed(images, resolution="high", batch_size=1)
    float_tensors = [torch.from_numpy(np.array(im)).permute(2, 0, 1).float() / 255 for im in images]
    by_float = model.embed(float_tensors, resolution="high", batch_size=2)
    by_batch = model.embed(torch.stack([(t * 255).round().to(torch.uint8) for t in float_tensors]), resolution="high")
    for other in (by_pil, by_float, by_batch):
        torch.testing.assert_close(other, by_path, rtol=0, atol=1e-5)
    assert model.embed(paths[0]).shape == (1, model.feature_dim)
    assert model.embed([]).shape == (0, model.feature_dim)


def test_auto_resolution_uses_the_threshold_stored_with_the_run(tiny, model):
    images = [Image.new("RGB", (20, h)) for h in (43, 63, 64, 128)]
    assert model.lr_height_threshold == 64
    assert model.low_resolution(images).tolist() == [True, True, False, False]
    assert model.low_resolution(images, "low").tolist() == [True] * 4
    assert model.low_resolution(images, "high").tolist() == [False] * 4
    stricter = drfm.load(tiny[1], device="cpu")
    stricter.config["data"]["lr_height_threshold"] = 50
    assert stricter.low_resolution(images).tolist() == [True, False, False, False]
    lr_path = sorted((tiny[0] / "images" / "query").rglob("*.png"))[0]
    torch.testing.assert_close(model.embed(lr_path), model.embed(lr_path, "low"), rtol=0, atol=0)
    assert (model.embed(lr_path, "high") - model.embed(lr_path, "low")).abs().max() > 1e-3


def test_a_checkpoint_file_alone_loads_the_same_model(tiny, model):
    alone = drfm.load(tiny[1] / "checkpoint.pt", device="cpu")
    path = sorted((tiny[0] / "images" / "query").rglob("*.png"))[0]
    torch.testing.assert_close(alone.embed(path), model.embed(path), rtol=0, atol=0)
    assert alone.fingerprint == model.fingerprint


def test_single_encoder_baseline_embeds_the_raw_image_with_e_h(tiny, model):
    config = {**model.config, "method": "cluster_contrast", "model": {**model.config["model"], "fusion": "none"}}
    torch.manual_seed(0)
    net = DualResolutionModel("resnet18", pretrained=False, fusion="none", single_encoder=True, predictor=False)
    cc = ReIDModel(config, net, tiny[1] / "checkpoint.pt")
    image = Image.fromarray(np.random.default_rng(1).integers(0, 256, (32, 16, 3), dtype=np.uint8))
    with torch.no_grad():
        expected = net.eval().encode_hr(transforms.test_transform(64, 32)(image)[None])
    for resolution in ("low", "high"):
        torch.testing.assert_close(cc.embed(image, resolution), expected, rtol=0, atol=1e-6)


def test_bad_input_is_one_line_drfm_error(tiny, model, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    cases = [
        (lambda: model.embed(text), "not a readable image"),
        (lambda: model.embed(tmp_path / "missing.png"), "does not exist"),
        (lambda: model.embed([3]), "expected a path, a PIL image or a tensor"),
        (lambda: model.embed(torch.zeros(1, 64, 32)), "(3, H, W)"),
        (lambda: model.embed(Image.new("RGB", (8, 8)), resolution="medium"), "resolution 'medium'"),
        (lambda: drfm.load(tmp_path / "nothing"), "no such run folder"),
    ]
    for call, words in cases:
        with pytest.raises(DrfmError) as info:
            call()
        assert words in str(info.value) and "\n" not in str(info.value)


def test_checkpoint_of_another_version_or_config_is_refused(tiny, tmp_path):
    old = tmp_path / "old.pt"
    torch.save({"format_version": 0, "model": {}}, old)
    with pytest.raises(DrfmError, match="format version"):
        drfm.load(old)
    other = tmp_path / "other"
    other.mkdir()
    (other / "checkpoint.pt").write_bytes((tiny[1] / "checkpoint.pt").read_bytes())
    config = yaml.safe_load((tiny[1] / "config.yaml").read_text())
    config["model"]["backbone"] = "efficientnet_lite0"
    (other / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(DrfmError, match="does not fit its configuration") as info:
        drfm.load(other)
    assert "\n" not in str(info.value)
    state = torch.load(tiny[1] / "checkpoint.pt", weights_only=False)
    state["config"]["model"]["backbone"] = "no-such-net"
    torch.save(state, tmp_path / "unknown.pt")
    with pytest.raises(DrfmError, match=r"unknown.pt: model.backbone: expected one of .*got 'no-such-net'"):
        drfm.load(tmp_path / "unknown.pt")
    del state["config"]["model"]  # missing keys take base.yaml's values, as in a run's config.yaml
    torch.save(state, tmp_path / "keyless.pt")
    with pytest.raises(DrfmError, match="keyless.pt: checkpoint does not fit its configuration"):
        drfm.load(tmp_path / "keyless.pt")


def test_import_drfm_stays_light_and_load_is_the_api_function():
    code = "import sys, drfm; print('torch' in sys.modules); from drfm.api import load; print(drfm.load is load)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]
    with pytest.raises(AttributeError):
        drfm.no_such_name


def test_evaluation_features_are_the_same_with_or_without_the_sr_cache(tiny, tmp_path):
    world, run_dir = tiny
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    config["data"]["cache_dir"] = str(tmp_path / "sr-cache")
    copy = tmp_path / "run"
    copy.mkdir()
    (copy / "config.yaml").write_text(yaml.safe_dump(config))
    (copy / "checkpoint.pt").symlink_to(run_dir / "checkpoint.pt")
    first = inference.run_feature_arrays(copy, progress=False)  # SR made, then kept in the cache
    cached = sorted((tmp_path / "sr-cache").rglob("*.png"))
    model = drfm.load(copy, device="cpu")
    splits = read_dataset("mlr", world)
    assert splits.low_resolution_mask(splits.query).all() and len(cached) == len(splits.query)
    again = inference.run_feature_arrays(copy, progress=False)  # SR read back from the cache
    in_memory = inference.test_features(model.config, model.network.model, splits.query, splits, progress=False)
    by_api = model.embed([r.path for r in splits.query], resolution="low").numpy()
    for other in (again["query_feats"], in_memory, by_api):
        np.testing.assert_allclose(other, first["query_feats"], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(again["gallery_feats"], first["gallery_feats"])


def test_one_height_rule_for_folder_data_and_the_api_auto_mode(tmp_path, model):
    from drfm.data.image_io import is_low_resolution

    threshold = model.lr_height_threshold
    assert is_low_resolution(threshold - 1, threshold) and not is_low_resolution(threshold, threshold)
    folder = tmp_path / "crops"
    folder.mkdir()
    for height in (threshold - 1, threshold, threshold + 1):
        Image.new("RGB", (16, height)).save(folder / f"h{height}.png")
    splits = read_dataset("folder", folder, lr_height_threshold=threshold)
    files = sorted(folder.iterdir())
    by_reader = splits.low_resolution_mask([r for f in files for r in splits.train if r.path == f])
    by_api = model.low_resolution(as_pil_images(files))
    assert by_reader.tolist() == by_api.tolist() == [is_low_resolution(int(f.stem[1:]), threshold) for f in files]
