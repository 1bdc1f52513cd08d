"""Bad input, kills and odd settings: one-line errors naming the file or key, nothing written, no
silent overwrite, provenance checked, crash-safe saves (issue 25)."""
from __future__ import annotations

import pytest

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
