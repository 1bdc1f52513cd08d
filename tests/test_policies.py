import itertools

import pytest
import torch

from diffaif.config import ConfigError, build_config
from diffaif.planning.policies import (
    PolicyConfig,
    cem_policies,
    enumerate_policies,
    propose_policies,
    random_policies,
)


def test_enumeration_is_complete_and_lexicographic():
    policies = enumerate_policies(4, 3)
    assert policies.shape == (64, 3) and policies.dtype == torch.long
    assert policies.tolist() == [list(p) for p in itertools.product(range(4), repeat=3)]
    assert enumerate_policies(3, 1).tolist() == [[0], [1], [2]]
    with pytest.raises(ValueError, match="max_policies"):
        enumerate_policies(4, 12)
    with pytest.raises(ValueError, match="horizon must be >= 1, got 0"):
        enumerate_policies(4, 0)


def test_random_policies_shape_range_and_seed():
    first = random_policies(50, 5, 4, torch.Generator().manual_seed(0))
    again = random_policies(50, 5, 4, torch.Generator().manual_seed(0))
    assert first.shape == (50, 5) and first.dtype == torch.long
    assert first.min() >= 0 and first.max() <= 3
    assert torch.equal(first, again)


def separable_score(costs):
    """G(π) = Σ_τ costs[τ, π_τ]; the minimiser is the per-step argmin."""
    return lambda policies: costs.gather(1, policies.T).sum(0)


def test_cem_finds_minimiser_of_separable_score():
    costs = torch.rand(5, 4, generator=torch.Generator().manual_seed(1))  # 4^5 = 1024 sequences
    calls = []

    def score(policies):
        calls.append(policies.shape[0])
        return separable_score(costs)(policies)

    proposal = cem_policies(score, n_actions=4, horizon=5, n_candidates=64, n_elite=8, iterations=6,
                            generator=torch.Generator().manual_seed(2), smoothing=0.3)
    assert torch.equal(proposal.policies[0], costs.argmin(1))
    torch.testing.assert_close(proposal.scores[0], costs.min(1).values.sum())
    torch.testing.assert_close(proposal.scores, separable_score(costs)(proposal.policies))
    assert torch.all(proposal.scores[1:] >= proposal.scores[:-1])
    assert torch.unique(proposal.policies, dim=0).shape[0] == proposal.policies.shape[0]
    # each distinct sequence is scored once per iteration
    assert len(calls) == 6 and all(c <= 64 for c in calls) and calls[-1] < 64


def test_cem_validates_its_settings():
    score = separable_score(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="n_elite=10 must not exceed n_candidates=8"):
        cem_policies(score, 3, 2, n_candidates=8, n_elite=10)
    with pytest.raises(ValueError, match="smoothing"):
        cem_policies(score, 3, 2, smoothing=1.0)
    with pytest.raises(ValueError, match=r"score_fn must return shape"):
        cem_policies(lambda p: torch.zeros(1), 3, 2)


def test_propose_policies_by_config():
    config = build_config(PolicyConfig, [{"kind": "random", "horizon": 4}], ["n_candidates=10"])
    proposal = propose_policies(config, n_actions=4, generator=torch.Generator().manual_seed(0))
    assert proposal.policies.shape == (10, 4) and proposal.scores is None
    assert propose_policies(PolicyConfig(kind="enumerate", horizon=2), 4).policies.shape == (16, 2)

    costs = torch.rand(3, 4, generator=torch.Generator().manual_seed(3))
    cem = build_config(PolicyConfig, [], ["kind=cem", "horizon=3", "cem.iterations=5", "cem.n_elite=6"])
    proposal = propose_policies(cem, 4, torch.Generator().manual_seed(4), score_fn=separable_score(costs))
    assert torch.equal(proposal.policies[0], costs.argmin(1))

    with pytest.raises(ValueError, match="needs a score_fn"):
        propose_policies(cem, 4)
    with pytest.raises(ValueError, match="needs a sample_fn"):
        propose_policies(PolicyConfig(kind="model"), 4)
    with pytest.raises(ValueError, match=r"unknown policy kind 'mcts'; valid kinds: \['cem', 'enumerate', 'model', 'random'\]"):
        propose_policies(PolicyConfig(kind="mcts"), 4)
    fixed = torch.tensor([[1, 2], [0, 3], [1, 2]])
    model = propose_policies(PolicyConfig(kind="model", horizon=2, n_candidates=3), 4, sample_fn=lambda n: fixed[:n])
    assert model.policies.tolist() == [[0, 3], [1, 2]]   # duplicates scored once
    with pytest.raises(ConfigError, match="cem.elite"):
        build_config(PolicyConfig, [], ["cem.elite=3"])
    with pytest.raises(ValueError, match="horizon must be >= 1"):
        PolicyConfig(horizon=0)
