"""A non-editable install carries the presets: ``pip install --target`` then load every preset from there."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Run by the installed copy, from a folder without the source tree, so nothing is read from the checkout.
LOAD_EVERY_PRESET = """
import sys, diffaif
from pathlib import Path
from diffaif.config import ConfigError, build_config, preset_names, preset_path, read_yaml
from diffaif.experiments.compare import CompareConfig
from diffaif.model.train import WorldModelConfig
assert Path(diffaif.__file__).resolve().is_relative_to(Path(sys.argv[1]).resolve()), diffaif.__file__
for name in preset_names("model"):
    build_config(WorldModelConfig, [preset_path("model", name)])
experiments = preset_names("experiments")
for name in experiments:
    layer = read_yaml(preset_path("experiments", name))
    build_config(CompareConfig, [layer.get("compare", layer) if "tasks" in layer else layer])
try:
    preset_path("model", "huge")
except ConfigError as err:
    assert "tiny" in str(err), err
else:
    raise AssertionError("a missing preset must be an error")
print(len(preset_names("model")), len(experiments))
"""


@pytest.mark.install
def test_a_non_editable_install_loads_every_preset(tmp_path):
    source = tmp_path / "src"  # a copy: building in the checkout would leave build/ behind
    shutil.copytree(ROOT / "diffaif", source / "diffaif", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(source)], check=True, capture_output=True)
    shutil.rmtree(source)
    result = subprocess.run([sys.executable, "-c", LOAD_EVERY_PRESET, str(site)], cwd=tmp_path,
                            env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    n_models, n_experiments = map(int, result.stdout.split())
    assert n_models == len(list((ROOT / "diffaif/configs/model").glob("*.yaml"))) >= 1
    assert n_experiments == len(list((ROOT / "diffaif/configs/experiments").glob("*.yaml"))) >= 1
