"""The README's Python quickstart, run verbatim (its budgets are small enough for the test suite)."""
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def quickstart_code() -> str:
    """The README's first ```python block."""
    match = re.search(r"```python\n(.*?)```", README.read_text(), re.S)
    assert match, "README.md has no ```python block"
    return match.group(1)


def test_the_readme_quickstart_runs_verbatim(tmp_path, monkeypatch):
    code = quickstart_code()
    assert len(code.strip().splitlines()) <= 10
    monkeypatch.chdir(tmp_path)  # it writes runs/agent
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)
    agent = namespace["agent"]
    assert agent.data.n_interactions == 300 and agent.trainings == 1
    assert (tmp_path / "runs/agent/agent.json").is_file()
    assert namespace["action"].item() in range(agent.action_space.n)
