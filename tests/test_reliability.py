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
    assert "['depth', 'draw', 'dropout'," in str(err.value) and "'width'" in str(err.value)


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


# ---- the command line: one-line errors, nothing written -----------------------------------------
TINY = ["model.width=8", "model.depth=1", "model.heads=2", "model.length=4", "train.steps=3", "train.batch_size=8",
        "train.warmup_steps=0", "train.num_train_timesteps=10", "train.log_interval=1"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Collected grid4x4 and grid8x8 data, a grid4x4 run, and bad files, under one folder."""
    from diffaif.cli import main
    from diffaif.data import load_episodes

    root = tmp_path_factory.mktemp("world")
    for env in ("grid4x4", "grid8x8"):
        assert main(["collect", "--env", env, "--episodes", "2", "--out", str(root / env)]) == 0
    assert main(["train", "--env", "grid4x4", "--data", str(root / "grid4x4"), "--out", str(root / "run4"),
                 *TINY]) == 0
    (root / "notes.npz").write_text("these are not episodes\n")
    (root / "a_file").write_text("x\n")
    (root / "list.yaml").write_text("- env\n- agents\n")
    (root / "syntax.yaml").write_text("env: [grid4x4\nagents: x\n")
    (root / "no_env").mkdir()
    (root / "no_env" / "run.json").write_text('{"data": "somewhere"}')
    raw = (root / "grid4x4" / "episodes.npz").read_bytes()
    for i in range(60, len(raw)):  # the first bit flip that breaks the file
        flipped = bytearray(raw)
        flipped[i] ^= 0xFF
        (root / "flipped.npz").write_bytes(bytes(flipped))
        try:
            load_episodes(root / "flipped.npz")
        except ValueError:
            break
    return root


def _tree(*roots) -> dict:
    return {p: (p.read_bytes() if p.is_file() else None) for root in roots for p in sorted(root.rglob("*"))}


def _fails_with_one_line(argv: list[str], capsys, *roots) -> str:
    """Run ``argv``: exit status 2, one line on stderr and not a byte written under ``roots``."""
    from diffaif.cli import main

    before = _tree(*roots)
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"diffaif {argv[0]}: error: ") and err.count("\n") == 1, err
    assert _tree(*roots) == before
    return err


CASES = [  # (argv with {w} = the world folder and {t} = a fresh folder, what the one line says)
    (["train", "--env", "grid8x8", "--data", "{w}/grid4x4", "--out", "{t}/run", *TINY],
     "--env grid8x8 with options {} does not match the data: {w}/grid4x4/meta.json records env grid4x4 "
     "with options {}"),
    (["train", "--env", "grid4x4", "--data", "{w}/grid4x4", "--out", "{w}/run4", *TINY],
     "--out {w}/run4 already holds a run: pass --overwrite to replace it, or --resume to continue training it"),
    (["train", "--env", "grid4x4", "--env-option", "max_steps=7", "--data", "{w}/grid4x4", "--out", "{t}/run", *TINY],
     "--env grid4x4 with options {'max_steps': 7} does not match the data"),
    (["train", "--env", "grid4x4", "--data", "{w}/flipped.npz", "--out", "{t}/run", *TINY],
     "episode file {w}/flipped.npz is not a readable .npz"),
    (["train", "--env", "grid4x4", "--data", "{w}/notes.npz", "--out", "{t}/run", *TINY],
     "episode file {w}/notes.npz is not a readable .npz (This file contains pickled"),
    (["train", "--env", "grid4x4", "--data", "{w}/grid4x4", "--out", "{t}/run", "--resume"],
     "--resume: there is no run at {t}/run to continue"),
    (["train", "--env", "grid4x4", "--data", "{w}/grid4x4", "--out", "{t}/run", "model.widht=3"],
     "unknown config key 'model.widht'; valid keys here: ['depth', 'draw', 'dropout', 'eta',"),
    (["collect", "--env", "grid4x4", "--steps", "0", "--out", "{t}/data"], "--steps must be >= 1, got 0"),
    (["collect", "--env", "grid4x4", "--episodes", "1", "--out", "{w}/grid8x8"],
     "--out {w}/grid8x8 already holds a run: pass --overwrite to replace it"),
    (["collect", "--env", "grid4x4", "--episodes", "1", "--env-option", "max_steps", "--out", "{t}/data"],
     "--env-option 'max_steps' is not KEY=VALUE"),
    (["eval-model", "--run", "{t}"], "no world model at {t}/model: {t}/model/world_model.json is missing"),
    (["eval-model", "--run", "{w}/run4", "--out", "{w}/a_file/eval.json"],
     "output {w}/a_file/eval.json cannot be created: {w}/a_file is a file"),
    (["eval-model", "--run", "{w}/nothing", "--out", "{w}"], "output {w} is a directory, not a file"),
    (["plan", "--run", "{w}/no_env", "--fidelity"], "{w}/no_env/run.json lacks the key 'env'"),
    (["plan", "--run", "{w}/run4", "--fidelity", "--out", "{w}/a_file/f.json"],
     "output {w}/a_file/f.json cannot be created: {w}/a_file is a file"),
    (["bench", "--threads", "0"], "threads must be >= 1 (or null: torch's default), got 0"),
    (["bench", "--pretrained", "{w}/nothing", "--out", "{w}/a_file/b.json"],
     "output {w}/a_file/b.json cannot be created: {w}/a_file is a file"),
    (["compare", "--episodes", "0", "--out", "{t}/cmp"], "CompareConfig.episodes must be >= 1, got 0"),
    (["compare", "--episodes", "-2", "--out", "{t}/cmp"], "CompareConfig.episodes must be >= 1, got -2"),
    (["compare", "--seeds", "0", "--out", "{t}/cmp"], "CompareConfig.seeds must be >= 1, got 0"),
    (["compare", "--agents", "", "--out", "{t}/cmp"], "--agents is empty"),
    (["compare", "--agents", "random", "--out", "{t}/cmp", "agent.foo.x=1"],
     "override 'agent.foo.x=1' names unknown agent 'foo'; valid choices: ["),
    (["compare", "--agents", "random", "--out", "{t}/cmp", "agent.aif.planner.foo=1"],
     "override 'agent.aif.planner.foo=1' configures agent 'aif', which is not among the agents compared ['random']"),
    (["compare", "--agents", "aif", "--out", "{t}/cmp", "agent.aif.planner.gama=3"],
     "agent.aif: unknown config key 'planner.gama'; valid keys here: ['common_random_numbers', 'context',"),
    (["compare", "--agents", "aif", "--out", "{t}/cmp", "warmup_steps=0"],
     "agent aif has no world model: give it warmup_steps >= 1 or agent.aif.pretrained"),
    (["compare", "--config", "{w}/syntax.yaml", "--out", "{t}/cmp"],
     "config file {w}/syntax.yaml is not valid YAML at line 2"),
    (["compare", "--config", "{w}/list.yaml", "--out", "{t}/cmp"],
     "config file {w}/list.yaml must hold a mapping of keys at its top level, not a list"),
    (["compare", "--config", "{w}", "--out", "{t}/cmp"], "config file {w} is a directory, not a YAML file"),
    (["compare", "--agents", "random", "--episodes", "1", "--out", "{w}/a_file"],
     "output {w}/a_file is a file, not a directory"),
    (["compare", "--agents", "random", "--episodes", "1", "--out", "{w}/a_file/cmp"],
     "output {w}/a_file/cmp cannot be created: {w}/a_file is a file"),
    (["demo", "--out", "{w}/run4"], "--out {w}/run4 already holds a run: pass --overwrite to replace it"),
]


@pytest.mark.parametrize("argv, message", CASES, ids=[" ".join(a[:3]) for a, _ in CASES])
def test_bad_input_is_one_line_naming_the_problem_and_writes_nothing(world, tmp_path, capsys, argv, message):
    fill = lambda text: text.replace("{w}", str(world)).replace("{t}", str(tmp_path))  # noqa: E731
    err = _fails_with_one_line([fill(a) for a in argv], capsys, world, tmp_path)
    assert fill(message) in err, err


def test_resume_refuses_other_data_or_another_env_before_writing(world, tmp_path, capsys):
    err = _fails_with_one_line(["train", "--env", "grid4x4", "--data", f"{world}/grid8x8", "--out", f"{world}/run4",
                                "--resume", *TINY], capsys, world)
    assert "does not match the data" in err                 # grid8x8 data, recorded in its meta.json
    other = tmp_path / "other"
    assert __import__("diffaif.cli").cli.main(["collect", "--env", "grid4x4", "--episodes", "3", "--seed", "5",
                                               "--out", str(other)]) == 0
    err = _fails_with_one_line(["train", "--env", "grid4x4", "--data", str(other), "--out", f"{world}/run4",
                                "--resume", *TINY], capsys, world)
    assert err.endswith(f"--resume with --data {other}, but run {world}/run4 was trained on other data: "
                        f"{world}/run4/episodes.npz (collected as {world}/grid4x4)\n")
    err = _fails_with_one_line(["train", "--env", "grid8x8", "--data", f"{world}/run4/episodes.npz",
                                "--out", f"{world}/run4", "--resume", *TINY], capsys, world)
    assert err.endswith(f"--resume with --env grid8x8 and options {{}}, but {world}/run4/run.json records env "
                        "grid4x4 with options {}\n")


def test_debug_shows_the_traceback(world, tmp_path):
    from diffaif.cli import main

    with pytest.raises(ValueError, match="does not match the data"):
        main(["--debug", "train", "--env", "grid8x8", "--data", f"{world}/grid4x4", "--out", str(tmp_path / "r")])


def test_an_unexpected_error_is_still_one_line_naming_its_type(monkeypatch, capsys, tmp_path):
    import zlib

    from diffaif import cli

    def broken(*args, **kwargs):
        raise zlib.error("Error -3 while decompressing data: invalid stored block lengths\nsecond line")

    monkeypatch.setattr("diffaif.data.collect_episodes", broken)
    assert cli.main(["collect", "--env", "grid4x4", "--episodes", "1", "--out", str(tmp_path / "d")]) == 2
    assert capsys.readouterr().err == ("diffaif collect: error: error: Error -3 while decompressing data: invalid "
                                       "stored block lengths (--debug shows the traceback)\n")


def test_overwrite_replaces_a_run_and_restarts_its_metrics(world, tmp_path):
    import shutil

    from diffaif.cli import main

    run = tmp_path / "run"
    shutil.copytree(world / "run4", run)
    assert main(["train", "--env", "grid4x4", "--data", f"{world}/grid4x4", "--out", str(run), "--overwrite",
                 *TINY[:-1], "train.log_interval=3"]) == 0
    assert _metric_steps(run) == [3]                        # not appended to the replaced run's [1, 2, 3]


def test_compare_gives_the_aif_agent_a_default_warm_up_budget():
    from diffaif.experiments.compare import AIF_WARMUP_STEPS, CompareConfig

    assert AIF_WARMUP_STEPS == 2000
    assert build_config(CompareConfig, [{"agents": ["aif", "random"]}]).warmup_steps == AIF_WARMUP_STEPS
    assert build_config(CompareConfig, [{"agents": ["random"]}]).warmup_steps == 0
    assert build_config(CompareConfig, [{"agents": ["aif"], "warmup_steps": 50}]).warmup_steps == 50


@pytest.mark.skipif(__import__("os").geteuid() == 0, reason="root may write anywhere")
def test_an_unwritable_out_is_refused_first(world, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    err = _fails_with_one_line(["collect", "--env", "grid4x4", "--episodes", "1", "--out", str(locked / "d")],
                               capsys, tmp_path)
    assert f"output {locked / 'd'} cannot be written: no write permission in {locked}" in err


# ---- collect --steps and --env-option (the command-line part of issue 24) ---------------------
def test_collect_steps_takes_whole_episodes_until_the_budget_and_records_it(tmp_path):
    import json

    from diffaif.cli import main
    from diffaif.data import load_episodes

    assert main(["collect", "--env", "grid4x4", "--steps", "150", "--out", str(tmp_path)]) == 0
    data = load_episodes(tmp_path / "episodes.npz")
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["interactions"] == data.n_interactions >= 150 and meta["episodes"] == data.n_episodes
    last_start = int(data.episode_starts[-1])
    assert data.n_interactions - (data.n_steps - last_start - 1) < 150   # one episode fewer would fall short
    assert (data.terminated | data.truncated).sum() == data.n_episodes  # every episode ran to its end


def test_env_options_go_from_collect_to_train_to_evaluation(tmp_path, monkeypatch, capsys):
    import json

    from diffaif import cli
    from diffaif.envs import make_env

    options = ["--env-option", "obs_mode=state", "--env-option", "obs_floor=true"]
    env = "MiniGrid-Empty-5x5-v0"
    assert cli.main(["collect", "--env", env, *options, "--steps", "30", "--out", str(tmp_path / "data")]) == 0
    assert json.loads((tmp_path / "data" / "meta.json").read_text())["env_options"] == {"obs_mode": "state",
                                                                                         "obs_floor": True}
    assert cli.main(["train", "--env", env, "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"),
                     *TINY]) == 2                                       # the data's options are not given
    assert "with options {} does not match the data" in capsys.readouterr().err
    assert cli.main(["train", "--env", env, *options, "--data", str(tmp_path / "data"), "--out",
                     str(tmp_path / "run"), *TINY]) == 0
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["env_options"] == {"obs_mode": "state", "obs_floor": True}
    made = []
    monkeypatch.setattr("diffaif.envs.make_env", lambda name, **kw: made.append((name, kw)) or make_env(name, **kw))
    monkeypatch.setattr("diffaif.model.evaluate.evaluate_categorical_world_model", lambda model, env, **kw: {"n_windows": 0})
    assert cli.main(["eval-model", "--run", str(tmp_path / "run"), "--episodes", "1"]) == 0
    assert made == [(env, {"obs_mode": "state", "obs_floor": True})]
