"""Data-parallel training with torch.distributed (gloo, 2 CPU processes) keeps every process in step."""

import hashlib
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from drfm.config import load_config
from drfm.labels.color import calibrated_histograms, load_thumbnails
from drfm.data.demo_world import generate_demo_world
from drfm.engine.checkpoint import read_log


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _digest(tensors: dict) -> str:
    digest = hashlib.sha256()
    for key in sorted(tensors):
        digest.update(key.encode())
        digest.update(tensors[key].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _worker(rank: int, world: int, port: int, config: dict, run_dir: str, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    import torch.distributed as dist

    from drfm.engine.runs import start_run

    trainer = start_run(config, run_dir, progress=False)
    assert isinstance(trainer.network, torch.nn.parallel.DistributedDataParallel)
    trainer.fit()
    memory_state = trainer.objective.state()
    Path(out_dir, f"rank{rank}.txt").write_text(
        f"{_digest(trainer.model.state_dict())} {_digest(memory_state)} {trainer.pseudo.labels.tolist()}")
    torch.save({"color": trainer.color, "sources": trainer.views.source, "origin": trainer.views.origin},
               Path(out_dir, f"color{rank}.pt"))
    dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not built")
def test_two_processes_train_in_lockstep(tmp_path: Path):
    generate_demo_world(tmp_path / "world", num_people=24, num_cameras=3, images_per_camera=3, seed=5)
    config = load_config("drfm-demo", ["train.epochs=2", "train.iters_per_epoch=2", "model.pretrained=false",
                                       "input.height=64", "input.width=32", "labels.k1=8", "labels.eps=0.9",
                                       "loss.ps_start_epoch=1", "train.device=cpu", "labels.color_weight=1",
                                       "labels.color_calibration=resolution_saturation",
                                       "labels.standardize_by=resolution",
                                       # drfm-cpu's labelling and loss: dual clustering, the k1 scan, L_sc;
                                       # the calibration with both transfers (RGB, then saturation)
                                       "labels.mode=dual", "labels.k1_candidates=[4, 8, 12, 16]", "loss.kind=sc"])
    config["data"].update(dataset="mlr", root=str(tmp_path / "world"), cache_dir=str(tmp_path / "cache"))
    mp.spawn(_worker, args=(2, _free_port(), config, str(tmp_path / "run"), str(tmp_path)), nprocs=2, join=True)
    rank0, rank1 = (tmp_path / "rank0.txt").read_text(), (tmp_path / "rank1.txt").read_text()
    assert rank0 == rank1, "weights, memories and pseudo-labels must agree across processes"
    # Each process read half of the images; both hold every colour histogram, in image order, each
    # calibrated with the pixel counts of all images (summed over the two shards), RGB and saturation.
    for rank in (0, 1):
        held = torch.load(tmp_path / f"color{rank}.pt", weights_only=False)
        expected = calibrated_histograms(load_thumbnails(held["sources"]), held["origin"], "resolution_saturation")
        assert torch.equal(held["color"], expected)
    log = read_log(tmp_path / "run")
    assert [r["epoch"] for r in log] == [0, 1]
    assert all(r["k1"] in (8, 12) for r in log)  # an interior candidate, the same in both processes
    assert all(torch.isfinite(torch.tensor(r["losses"]["total"])) for r in log if "losses" in r)


def _spaces_loss(features: dict) -> torch.Tensor:
    """A loss every output space (and so every parameter) takes part in, with fixed weights."""
    weights = torch.linspace(-1.0, 1.0, features["hr"].shape[1])
    return sum(((value * weights).sum(dim=1) ** 2).mean() for value in features.values())


def _images(half: int) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.randn(8, 3, 64, 32, generator=torch.Generator().manual_seed(1))[half * 4:(half + 1) * 4]
    return images, images.flip(-1) * 0.5


def _gradient_worker(rank: int, world: int, port: int, config: dict, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    import torch.distributed as dist

    from drfm.engine import distributed
    from drfm.models.dual_model import DualResolutionModel

    device = distributed.init_from_environment()
    torch.manual_seed(0)
    model = DualResolutionModel.from_config(config)
    network = distributed.data_parallel(model, device)
    assert isinstance(network, torch.nn.parallel.DistributedDataParallel)
    torch.manual_seed(10 + rank)  # the same dropout draws as the one-process half
    _spaces_loss(network(*_images(rank))).backward()
    torch.save({name: p.grad for name, p in model.named_parameters() if p.requires_grad},
               Path(out_dir, f"grad{rank}.pt"))
    dist.destroy_process_group()


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not built")
def test_data_parallel_gradient_is_the_mean_of_the_processes_gradients(tmp_path: Path):
    """Two processes, each with half a batch, through DistributedDataParallel(model.forward) end
    with the mean of the two halves' gradients computed by one process (every parameter included:
    E_h, E_l, CRFF and Pred all take part in forward)."""
    config = load_config("drfm-demo", ["model.pretrained=false", "train.device=cpu"])
    mp.spawn(_gradient_worker, args=(2, _free_port(), config, str(tmp_path)), nprocs=2, join=True)
    from drfm.models.dual_model import DualResolutionModel

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the workers: an untrained net's gradients depend on the thread count
    try:
        torch.manual_seed(0)
        model = DualResolutionModel.from_config(config)
        expected: dict[str, torch.Tensor] = {}
        for half in (0, 1):
            model.zero_grad(set_to_none=True)
            torch.manual_seed(10 + half)
            _spaces_loss(model(*_images(half))).backward()
            for name, param in model.named_parameters():
                if param.requires_grad:  # all but the BNNeck's frozen bias
                    expected[name] = expected.get(name, 0) + param.grad / 2
    finally:
        torch.set_num_threads(threads)
    for rank in (0, 1):
        grads = torch.load(tmp_path / f"grad{rank}.pt")
        assert set(grads) == set(expected)
        for name, grad in grads.items():
            assert grad is not None, f"{name} got no gradient through forward"
            torch.testing.assert_close(grad, expected[name], rtol=1e-4, atol=1e-6)


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not built")
def test_torchrun_cli_trains_with_two_processes_and_reports_once(tmp_path: Path):
    """The README's `torchrun --nproc_per_node N -m drfm train ... --eval`, with 2 CPU processes."""
    import subprocess
    import sys

    generate_demo_world(tmp_path / "world", num_people=16, seed=1)
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "drfm",
         "train", "--config", "drfm-demo", "--dataset", "mlr", "--root", str(tmp_path / "world"),
         "--out", str(tmp_path / "run"), "--eval", "--quiet", "train.epochs=1", "train.iters_per_epoch=2",
         "model.pretrained=false", "input.height=64", "input.width=32", "labels.k1=8", "labels.k2=4",
         "labels.eps=0.9", "train.batch_size=16", f"data.cache_dir={tmp_path / 'cache'}"],
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("run finished:") == 1 and done.stdout.count("mAP") == 1, done.stdout
    assert [r["epoch"] for r in read_log(tmp_path / "run")] == [0]
    assert '"world_size": 2' in (tmp_path / "run" / "environment.json").read_text()
