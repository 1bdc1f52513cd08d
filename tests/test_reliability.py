"""Bad input, kills and odd settings: one-line errors naming the file or key, nothing written, no
silent overwrite, provenance checked, crash-safe saves (issue 25)."""
from __future__ import annotations

import pytest
import torch

from diffaif.config import ConfigError, build_config, read_yaml
from diffaif.model.train import WorldModelConfig


# ---- configuration ------------------------------------------------------------------------------
def test_unknown_nested_key_lists_the_real_valid_keys():
    with pytest.raises(ConfigError) as err:
        build_config(WorldModelConfig, [], ["model.widht=3"])
    assert "'model.widht'" in str(err.value)
    assert "['depth', 'dropout'," in str(err.value) and "'width'" in str(err.value)


def test_unknown_key_in_an_agent_config_names_the_agent_and_lists_its_keys():
    from diffaif.agents import agent_config

    with pytest.raises(ConfigError) as err:
        agent_config("aif", {"planner": {"policies": {"kinds": "cem"}}})
    message = str(err.value)
    assert message.startswith("agent.aif: unknown config key 'planner.policies.kinds'")
    assert "'horizon', 'kind'," in message


@pytest.mark.parametrize("text, problem", [
    ("env: [grid4x4\n", "is not valid YAML at line 2"),
    ("- env\n- agents\n", "must hold a mapping of keys at its top level, not a list"),
    ("just a string\n", "not a str"),
])
def test_bad_yaml_names_the_file(tmp_path, text, problem):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        read_yaml(path)
    assert str(path) in str(err.value) and problem in str(err.value)
    assert "\n" not in str(err.value)


def test_a_directory_or_missing_file_as_config_names_it(tmp_path):
    with pytest.raises(ConfigError, match="is a directory"):
        read_yaml(tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        read_yaml(tmp_path / "nope.yaml")
    assert read_yaml(_write(tmp_path / "empty.yaml", "")) == {}


def _write(path, text):
    path.write_text(text)
    return path


# ---- crash-safe saves ---------------------------------------------------------------------------
class Kill(BaseException):
    """What the injected fault raises: like a kill, nothing catches it."""


class DiskRecorder:
    """Wraps the calls that change what is on disk (``os.replace``, ``os.unlink``, ``os.rmdir``): before
    each one it copies ``root`` (the state a kill right then would leave), and ``raise_at`` makes call
    number ``raise_at`` raise ``Kill`` instead of running."""

    CALLS = ("replace", "unlink", "rmdir")

    def __init__(self, monkeypatch, root, snapshots, raise_at: int | None = None):
        import os
        import shutil

        self.root, self.snapshots, self.raise_at, self.count = root, snapshots, raise_at, 0
        self.copytree = shutil.copytree
        for name in self.CALLS:
            monkeypatch.setattr(os, name, self._wrap(getattr(os, name)))

    def _wrap(self, call):
        def wrapped(*args, **kwargs):
            if self.snapshots is not None:
                self.copytree(self.root, self.snapshots / f"{len(list(self.snapshots.iterdir())):03d}")
            index, self.count = self.count, self.count + 1
            if index == self.raise_at:
                raise Kill(f"injected fault at disk call {index}")
            return call(*args, **kwargs)
        return wrapped


def _tiny_model(seed: int):
    from diffaif.data import grid_encoding
    from diffaif.envs import make_env
    from diffaif.model.world_model import ModelConfig, NoiseSchedule, WorldModel, build_score_net

    torch.manual_seed(seed)
    encoding, config = grid_encoding(make_env("grid4x4")), ModelConfig(length=4, width=8, depth=1, heads=2)
    net = build_score_net(encoding, config)
    torch.nn.init.normal_(net.output.weight)  # distinct, non-zero weights per seed
    return WorldModel(net, encoding, config, NoiseSchedule(num_train_timesteps=10))


def _weights(model):
    return torch.cat([p.detach().flatten() for p in model.net.parameters()])


def _which(model, candidates) -> int:
    """The index of the candidate whose weights ``model`` has (so it loaded complete)."""
    matches = [i for i, c in enumerate(candidates) if torch.equal(_weights(model), _weights(c))]
    assert len(matches) == 1
    return matches[0]


def test_a_kill_at_every_point_of_world_model_save_leaves_a_complete_model(tmp_path, monkeypatch):
    from diffaif.model import WorldModel

    old, new = _tiny_model(0), _tiny_model(1)
    root, snapshots = tmp_path / "run", tmp_path / "snapshots"
    snapshots.mkdir()
    old.save(root / "model")
    with monkeypatch.context() as patch:
        recorder = DiskRecorder(patch, root, snapshots)
        new.save(root / "model")
    assert recorder.count >= 6                      # renames and removals: every state between them checked
    seen = [_which(WorldModel.load(snap / "model"), [old, new]) for snap in sorted(snapshots.iterdir())]
    assert seen[0] == 0 and seen[-1] == 1 and seen == sorted(seen)   # old until the swap, new after it
    for index in range(recorder.count):             # now really stop there, then load, then save again
        folder = tmp_path / f"raise{index}"
        old.save(folder / "model")
        with monkeypatch.context() as patch, pytest.raises(Kill):
            DiskRecorder(patch, folder, None, raise_at=index)
            new.save(folder / "model")
        assert _which(WorldModel.load(folder / "model"), [old, new]) in (0, 1)
        new.save(folder / "model")                  # the next save recovers and cleans every temporary
        assert sorted(p.name for p in folder.iterdir()) == ["model"]
        assert _which(WorldModel.load(folder / "model"), [old, new]) == 1


def test_saved_files_get_the_umask_modes(tmp_path):
    import os
    import stat

    from diffaif.data.episodes import EpisodeData, save_episodes

    old_mask = os.umask(0o022)
    try:
        _tiny_model(0).save(tmp_path / "model")
        save_episodes(EpisodeData.empty(), tmp_path / "episodes.npz")
    finally:
        os.umask(old_mask)
    mode = lambda path: stat.S_IMODE(path.stat().st_mode)  # noqa: E731
    assert mode(tmp_path / "model") == mode(tmp_path / "model" / "score_net") == 0o755
    assert mode(tmp_path / "model" / "world_model.json") == mode(tmp_path / "episodes.npz") == 0o644


def test_load_never_reaches_for_the_network_and_names_what_is_missing(tmp_path, monkeypatch):
    import shutil

    from diffaif.model import WorldModel

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    _tiny_model(0).save(tmp_path / "model")
    shutil.rmtree(tmp_path / "model" / "score_net")
    with pytest.raises(FileNotFoundError) as err:
        WorldModel.load(tmp_path / "model")
    assert str(err.value) == (f"score net folder {tmp_path / 'model' / 'score_net'} lacks config.json, "
                              "diffusion_pytorch_model.safetensors")
    with pytest.raises(FileNotFoundError, match=f"no world model at {tmp_path / 'nothing'}"):
        WorldModel.load(tmp_path / "nothing")


# ---- episode files ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def episodes_file(tmp_path_factory):
    from diffaif.data import collect_episodes, save_episodes
    from diffaif.envs import make_env

    path = tmp_path_factory.mktemp("episodes") / "episodes.npz"
    save_episodes(collect_episodes(make_env("grid4x4"), 3, seed=0), path)
    return path


def _flip_every_byte_in(path, out, start: int, stop: int):
    """Copies of ``path`` with one byte of ``start..stop`` inverted each."""
    raw = path.read_bytes()
    for i in range(start, min(stop, len(raw))):
        corrupt = bytearray(raw)
        corrupt[i] ^= 0xFF
        target = out / f"flip{i}.npz"
        target.write_bytes(bytes(corrupt))
        yield target


def test_a_bit_flipped_or_text_npz_is_a_value_error_naming_the_file(episodes_file, tmp_path):
    from diffaif.data import load_episodes

    text = tmp_path / "notes.npz"
    text.write_text("these are not episodes\n")
    bad = [text, *_flip_every_byte_in(episodes_file, tmp_path, 0, 400)]
    for path in bad:  # every corruption either loads (a flip in padding) or is a ValueError naming the file
        try:
            load_episodes(path)
        except ValueError as err:
            assert str(path) in str(err) and "\n" not in str(err), str(err)
    with pytest.raises(ValueError, match=f"episode file {text} is not a readable .npz"):
        load_episodes(text)


# ---- training: checkpoints, resume, wandb -------------------------------------------------------
def _tiny_training():
    from diffaif.model import ModelConfig, TrainConfig

    return (ModelConfig(length=4, width=8, depth=1, heads=2),
            TrainConfig(steps=4, batch_size=8, warmup_steps=0, log_interval=1, checkpoint_interval=2,
                        num_train_timesteps=10))


@pytest.fixture(scope="module")
def grid_data():
    from diffaif.data import collect_episodes, grid_encoding
    from diffaif.envs import make_env

    env = make_env("grid4x4")
    return collect_episodes(env, 3, seed=0), grid_encoding(env)


def _metric_steps(run):
    import json

    return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_a_kill_at_every_disk_write_of_training_leaves_a_loadable_model_and_checkpoint(grid_data, tmp_path,
                                                                                       monkeypatch):
    from diffaif.model import WorldModel, load_checkpoint, train_world_model

    data, encoding = grid_data
    model_config, train_config = _tiny_training()
    whole = train_world_model(data, encoding, model_config, train_config, tmp_path / "whole", progress=False)
    snapshots = tmp_path / "snapshots"
    snapshots.mkdir()
    with monkeypatch.context() as patch:
        DiskRecorder(patch, tmp_path / "run", snapshots)
        train_world_model(data, encoding, model_config, train_config, tmp_path / "run", progress=False)
    loadable, resume_from = [], None
    for snap in sorted(snapshots.iterdir()):
        try:
            WorldModel.load(snap / "model")
            loadable.append(True)
        except FileNotFoundError:      # only before the first model was saved
            loadable.append(False)
        if (snap / "checkpoint.pt").is_file():
            if load_checkpoint(snap / "checkpoint.pt")["step"] == 2:
                resume_from = snap     # the last moment before the step-4 checkpoint replaced it
    assert len(loadable) >= 15 and loadable == sorted(loadable) and loadable[-1]
    assert _metric_steps(resume_from) == [1, 2, 3, 4]     # logged past the checkpoint before the "kill"
    resumed = train_world_model(data, encoding, model_config, train_config, resume_from, resume=True, progress=False)
    assert torch.equal(_weights(resumed), _weights(whole))  # the kill cost nothing
    assert _metric_steps(resume_from) == [1, 2, 3, 4]      # no step logged twice


def test_resume_with_another_encoding_is_refused_before_anything_is_written(grid_data, tmp_path):
    from diffaif.data import grid_encoding
    from diffaif.envs import make_env
    from diffaif.model import train_world_model

    data, encoding = grid_data
    model_config, train_config = _tiny_training()
    train_world_model(data, encoding, model_config, train_config, tmp_path / "run", progress=False)
    before = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
    with pytest.raises(ValueError, match="encoding.json is not the encoding of this env"):
        train_world_model(data, grid_encoding(make_env("grid8x8")), model_config, train_config, tmp_path / "run",
                          resume=True, progress=False)
    assert {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()} == before


def test_explicit_wandb_mode_wins_over_the_environment_and_a_failure_is_one_line(grid_data, tmp_path, monkeypatch):
    import dataclasses

    import wandb

    from diffaif.model import train_world_model

    data, encoding = grid_data
    model_config, train_config = _tiny_training()
    modes = []

    def fake_init(*args, **kwargs):
        modes.append(kwargs.get("mode"))
        raise wandb.errors.CommError("Network error (ConnectionError), entering retry loop.\nmore detail")

    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setattr(wandb, "init", fake_init)
    with pytest.raises(RuntimeError) as err:
        train_world_model(data, encoding, model_config, dataclasses.replace(train_config, wandb_mode="offline"),
                          tmp_path / "run", progress=False)
    assert modes == ["offline"]
    assert str(err.value) == ("wandb could not start in train.wandb_mode=offline: Network error (ConnectionError), "
                              "entering retry loop. (train.wandb_mode=disabled trains without it)")
