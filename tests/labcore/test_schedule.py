"""labcore.schedule: the warm-up + cosine multiplier, step by step."""

from __future__ import annotations

import itertools

import pytest

from labcore.schedule import Schedule


def test_constant_is_one_everywhere() -> None:
    s = Schedule()
    assert s.constant and all(s.factor(k, 7) == 1.0 for k in range(1, 8))


def test_warmup_then_cosine_reaches_the_final_factor_at_the_last_step() -> None:
    s = Schedule("warmup_cosine", warmup_fraction=0.2, final_factor=0.1)
    total = 20
    f = [s.factor(k, total) for k in range(1, total + 1)]
    assert s.warmup_steps(total) == 4
    assert f[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])  # linear warm-up to the peak
    assert f[4] == pytest.approx(1.0)  # the first decay step is still the peak
    assert f[-1] == pytest.approx(0.1)  # the last step is final_factor x peak
    assert all(a >= b for a, b in itertools.pairwise(f[4:]))  # monotone decay
    # the decay runs over steps 5..20 (16 steps); symmetric points average to the midpoint
    assert f[4 + 7] + f[4 + 8] == pytest.approx(2 * 0.55)


def test_no_warmup_starts_at_the_peak() -> None:
    s = Schedule("warmup_cosine", warmup_fraction=0.0)
    assert s.factor(1, 10) == 1.0 and s.factor(10, 10) == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"name": "linear"}, "name"),
        ({"name": "warmup_cosine", "warmup_fraction": 1.0}, "warmup_fraction"),
        ({"name": "warmup_cosine", "final_factor": -0.1}, "final_factor"),
    ],
)
def test_invalid_schedules_name_the_field(kwargs: dict, word: str) -> None:
    with pytest.raises(ValueError, match=word):
        Schedule(**kwargs)


def test_a_step_outside_the_run_is_an_error() -> None:
    with pytest.raises(ValueError, match="outside"):
        Schedule("warmup_cosine").factor(11, 10)


def test_round_trip() -> None:
    s = Schedule("warmup_cosine", 0.1, 0.2)
    assert Schedule(**s.to_dict()) == s
