"""--device auto|cpu|cuda|mps: resolved once, checked before any work, one sentence when unusable."""

import json
from pathlib import Path

import pytest
import torch
from synthetic import index_clip

from arlib import cli, devices
from arlib.backbones import DEFAULT_BACKBONE, load_backbone
from arlib.errors import ArlibError
from arlib.shipped import shipped_checkpoint


@pytest.fixture(autouse=True)
def _forget_device_choice(monkeypatch):
    monkeypatch.delenv("ARLIB_DEVICE", raising=False)
    yield
    devices.set_device(None)


def test_auto_prefers_cuda_then_mps_then_cpu():
    expected = "cuda" if torch.cuda.is_available() else ("mps" if devices._mps_available() else "cpu")
    assert devices.resolve_device("auto").type == expected
    assert devices.resolve_device(None).type == expected
    assert devices.resolve_device("cpu") == torch.device("cpu")


def test_environment_and_explicit_choice(monkeypatch):
    monkeypatch.setenv("ARLIB_DEVICE", "cpu")
    assert devices.current_device().type == "cpu"
    assert devices.set_device("cpu").type == "cpu" and devices.current_device().type == "cpu"
    devices.set_device(None)  # clears the explicit choice; the environment decides again
    assert devices.current_device().type == "cpu"


@pytest.mark.parametrize("name,needle", [("gpu", "Unknown device 'gpu'"), ("cuda:7", "cuda"), ("mps", "mps")])
def test_unusable_devices_say_so_in_one_sentence(name, needle):
    if name.startswith("cuda") and torch.cuda.device_count() > 7 or name == "mps" and devices._mps_available():
        pytest.skip(f"{name} exists here")
    with pytest.raises(ArlibError, match=needle) as caught:
        devices.set_device(name)
    assert "\n" not in str(caught.value) and str(caught.value).endswith(".")


def test_cpu_backbone_keeps_cache_numbers_on_the_cpu():
    bb = load_backbone(DEFAULT_BACKBONE, device="cpu", bf16=True)  # bf16 is a GPU option: ignored on the CPU
    assert bb.device.type == "cpu" and not bb.bf16


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_predict_runs_with_device(tmp_path, capsys, monkeypatch, device):
    monkeypatch.setenv("ARLIB_CACHE_DIR", str(tmp_path / "cache"))
    clip = index_clip(tmp_path / "clip.mp4", frames=16, size=96)
    code = cli.main(["predict", str(clip), "--checkpoint", str(shipped_checkpoint("demo")), "--json",
                     "--device", device])
    out = capsys.readouterr().out
    assert code == 0, out
    assert json.loads(out.splitlines()[-1])["top_k"]


def test_bad_device_stops_the_cli_before_any_work(tmp_path, capsys):
    code = cli.main(["predict", str(tmp_path / "absent.mp4"), "--device", "tpu"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: Unknown device 'tpu'") and err.count("\n") == 1
    assert not Path(tmp_path / "absent.mp4").exists()


def test_checkpoints_carry_a_cuda_rng_state(tmp_path):
    from arlib.checkpoints import Checkpoint, load_checkpoint, save_checkpoint

    state = torch.arange(2 * 16, dtype=torch.uint8).view(2, 16)  # two devices' generator states
    path = save_checkpoint(Checkpoint({"classes": ["a"]}, {"w": torch.zeros(2)}, None, torch.get_rng_state(), state),
                           tmp_path / "last.safetensors")
    back = load_checkpoint(path)
    assert torch.equal(back.cuda_rng_state, state) and torch.equal(back.rng_state, torch.get_rng_state())
    devices.restore_cuda_rng_state(back.cuda_rng_state)  # a no-op without (that many) GPUs, never an error


def test_decode_worker_processes_fill_the_cache_like_the_inline_path(tmp_path, monkeypatch):
    """ARLIB_DECODE_WORKERS=2 (as on a GPU): clips decode in worker processes, features equal in-line decoding,
    a broken file fails alone with its sentence, and no worker outlives ensure(), even when it is interrupted."""
    import sys
    import types

    import numpy as np
    import psutil

    from arlib.features import FeatureCache

    monkeypatch.setenv("ARLIB_DECODE_WORKERS", "2")
    assert devices.decode_workers() == 2
    # The parent's main script is not for workers to run (Streamlit installs its page as __main__): one that
    # would fail in a worker must not stop the processes.
    script = tmp_path / "page.py"
    script.write_text("raise SystemExit('a decode worker ran the main script')\n")
    main = types.ModuleType("__main__")
    main.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", main)
    clips = [str(index_clip(tmp_path / f"c{i}.mp4", frames=10 + i, size=64)) for i in range(3)]
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)  # an MP4 header, then garbage
    clips.insert(1, str(broken))
    def workers_alive() -> int:  # multiprocessing's resource tracker stays for the process's life: not a worker
        return sum("resource_tracker" not in " ".join(c.cmdline()) for c in psutil.Process().children(recursive=True))

    workers_seen = []
    cache = FeatureCache(root=tmp_path / "cache", cache_frames=6)
    done, failed = cache.ensure(clips, ["center"], progress=False,
                                on_progress=lambda *_: workers_seen.append(workers_alive()))
    assert list(done) == [c for c in clips if c != str(broken)] and list(failed) == [str(broken)]
    assert "broken.mp4" in failed[str(broken)] and "\n" not in failed[str(broken)]
    assert max(workers_seen) == 2 and workers_alive() == 0  # decoded in processes, all gone now
    inline = FeatureCache(root=tmp_path / "inline", cache_frames=6)
    for clip, views in done.items():  # each entry is its own clip's, with the in-line path's numbers
        ref = inline.compute(clip, ["center"])["center"]
        assert views["center"].num_frames == 10 + int(clip[-5])
        np.testing.assert_array_equal(views["center"].features, ref.features)
        np.testing.assert_array_equal(views["center"].frame_indices, ref.frame_indices)

    def interrupt(*_):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        FeatureCache(root=tmp_path / "again", cache_frames=6).ensure(clips, ["center"], progress=False,
                                                                    on_progress=interrupt)
    assert workers_alive() == 0


def test_cli_uses_every_core_unless_omp_num_threads_says_otherwise():
    """An explicit OMP_NUM_THREADS (several jobs sharing the cores) is kept; without it, one thread per core."""
    import os
    import subprocess
    import sys

    code = "from arlib.cli import _set_threads; _set_threads(); import torch; print(torch.get_num_threads())"
    base = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    run = lambda env: int(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,  # noqa: E731
                                         check=True, cwd=Path(__file__).resolve().parents[1]).stdout)
    assert run({**base, "OMP_NUM_THREADS": "1"}) == 1
    assert run(base) == max(1, os.cpu_count() or 1)
