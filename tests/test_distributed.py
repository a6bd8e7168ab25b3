"""Data-parallel training with torch.distributed (gloo, 2 CPU processes) keeps every process in step."""

import hashlib
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from drfm.config import load_config
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

    from drfm.engine.trainer import Trainer

    trainer = Trainer.create(config, run_dir, progress=False)
    trainer.fit()
    memory_state = {f"{space}.{k}": v for space, m in trainer.memories.items() for k, v in m.state_dict().items()
                    if isinstance(v, torch.Tensor)}
    Path(out_dir, f"rank{rank}.txt").write_text(
        f"{_digest(trainer.model.state_dict())} {_digest(memory_state)} {trainer.pseudo.labels.tolist()}")
    dist.destroy_process_group()


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not built")
def test_two_processes_train_in_lockstep(tmp_path: Path):
    generate_demo_world(tmp_path / "world", num_people=24, num_cameras=3, images_per_camera=3, seed=5)
    config = load_config("drfm-demo", ["train.epochs=2", "train.iters_per_epoch=2", "model.pretrained=false",
                                       "input.height=64", "input.width=32", "labels.k1=8", "labels.eps=0.9",
                                       "loss.ps_start_epoch=1", "train.device=cpu"])
    config["data"].update(dataset="mlr", root=str(tmp_path / "world"), cache_dir=str(tmp_path / "cache"))
    mp.spawn(_worker, args=(2, _free_port(), config, str(tmp_path / "run"), str(tmp_path)), nprocs=2, join=True)
    rank0, rank1 = (tmp_path / "rank0.txt").read_text(), (tmp_path / "rank1.txt").read_text()
    assert rank0 == rank1, "weights, memories and pseudo-labels must agree across processes"
    log = read_log(tmp_path / "run")
    assert [r["epoch"] for r in log] == [0, 1]
    assert all(torch.isfinite(torch.tensor(r["losses"]["total"])) for r in log if "losses" in r)
