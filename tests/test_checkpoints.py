import os
import pickle
import struct
import subprocess
import sys

import pytest
import torch

from arlib.checkpoints import Checkpoint, load_checkpoint, save_checkpoint, to_bytes
from arlib.errors import CheckpointError
from arlib.model import ModelConfig, build_model


def _checkpoint():
    torch.manual_seed(0)
    cfg = ModelConfig(feature_dim=8, num_classes=3, latent_dim=8, hidden_dim=8, head_dim=8)
    model = build_model(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(4, 5, 8))[0].sum().backward()
    opt.step()
    meta = {"model": cfg.to_dict(), "classes": ["a", "b", "c"], "seq_len": 5, "backbone": "efficientnet_lite0",
            "epoch": 3, "metrics": {"val_top1": 0.5}}
    return Checkpoint(meta, model.state_dict(), opt.state_dict(), torch.get_rng_state()), model, opt


def test_round_trip_keeps_weights_optimizer_rng_and_metadata(tmp_path):
    ckpt, model, opt = _checkpoint()
    path = save_checkpoint(ckpt, tmp_path / "last.safetensors")
    back = load_checkpoint(path)
    assert back.classes == ["a", "b", "c"] and back.meta["epoch"] == 3 and back.meta["seq_len"] == 5
    for k, v in model.state_dict().items():
        assert torch.equal(v, back.model_state[k])
    opt2 = torch.optim.Adam(build_model(ModelConfig.from_dict(back.meta["model"])).parameters(), lr=1e-3)
    opt2.load_state_dict(back.optimizer_state)
    saved, loaded = opt.state_dict()["state"], opt2.state_dict()["state"]
    assert saved.keys() == loaded.keys()
    for k in saved:
        assert torch.equal(saved[k]["exp_avg"], loaded[k]["exp_avg"])
        assert torch.equal(saved[k]["exp_avg_sq"], loaded[k]["exp_avg_sq"])
    assert torch.equal(back.rng_state, ckpt.rng_state)


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_a_pickle_checkpoint_is_refused_and_runs_no_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps(_Payload()))
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(evil)
    zipped = tmp_path / "evil.pt"
    torch.save({"x": _Payload()}, zipped)
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(zipped)
    assert not (tmp_path / "PWNED").exists()


def test_truncated_corrupt_foreign_and_missing_files_get_clear_errors(tmp_path):
    ckpt, _, _ = _checkpoint()
    good = save_checkpoint(ckpt, tmp_path / "good.safetensors").read_bytes()
    cases = {
        "empty": b"",
        "truncated": good[: len(good) // 2],
        "header": struct.pack("<Q", 10) + b"not json!!" + b"\0" * 20,
    }
    for name, data in cases.items():
        p = tmp_path / f"{name}.safetensors"
        p.write_bytes(data)
        with pytest.raises(CheckpointError):
            load_checkpoint(p)
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, tmp_path / "foreign.safetensors")
    with pytest.raises(CheckpointError, match="not an arlib checkpoint"):
        load_checkpoint(tmp_path / "foreign.safetensors")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.safetensors")


def test_write_is_atomic_a_killed_writer_leaves_the_old_file(tmp_path):
    ckpt, _, _ = _checkpoint()
    path = save_checkpoint(ckpt, tmp_path / "last.safetensors")
    before = path.read_bytes()
    # A writer killed mid-write (before its rename) must not touch the existing file.
    code = (
        "import os, sys, torch; sys.path.insert(0, %r)\n"
        "import arlib.fileio as f\n"
        "real = os.replace\n"
        "def die(*a): os.kill(os.getpid(), 9)\n"
        "os.replace = die\n"
        "f.atomic_write_bytes(%r, b'x' * 10_000_000)\n"
    ) % (os.getcwd(), str(path))
    proc = subprocess.run([sys.executable, "-c", code])
    assert proc.returncode == -9
    assert path.read_bytes() == before
    assert load_checkpoint(path).meta["epoch"] == 3


def test_a_header_length_starting_with_0x80_or_PK_is_still_a_checkpoint(tmp_path):
    """The header length is 8 little-endian bytes: 0x2680 starts with 0x80 and 0x4b50 with 'PK'."""
    ckpt, _, _ = _checkpoint()
    ckpt.meta["pad"] = ""
    base = struct.unpack("<Q", to_bytes(ckpt)[:8])[0]
    for target in (0x2680, 0x4B50):
        for pad in range(max(0, target - base - 16), target - base + 16):
            ckpt.meta["pad"] = "x" * pad
            data = to_bytes(ckpt)
            if struct.unpack("<Q", data[:8])[0] == target:
                break
        else:
            pytest.fail(f"could not make a header of length {target:#x}")
        path = tmp_path / f"h{target:x}.safetensors"
        path.write_bytes(data)
        assert load_checkpoint(path).meta["pad"] == ckpt.meta["pad"]
