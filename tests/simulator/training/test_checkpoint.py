"""EMA against its closed form; checkpoints round-trip and bad files get clear errors."""
from __future__ import annotations

import pytest
import torch

from semlink.errors import InputError
from semlink.training.checkpoint import EMA, load_checkpoint, save_checkpoint


def test_ema_follows_closed_form():
    lin = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        lin.weight.fill_(0.0)
    ema = EMA({"m": lin}, decay=0.9)
    shadow = 0.0
    for t, value in enumerate([1.0, 2.0, 3.0, 4.0, 5.0]):
        with torch.no_grad():
            lin.weight.fill_(value)
        ema.update()
        d = min(0.9, (1 + t) / (10 + t))
        shadow = d * shadow + (1 - d) * value
    assert float(ema.shadow["m.weight"]) == pytest.approx(shadow, rel=1e-6)
    ema.swap()
    assert float(lin.weight.detach()) == pytest.approx(shadow, rel=1e-6)
    ema.swap()
    assert float(lin.weight.detach()) == 5.0
    ema.copy_to()
    assert float(lin.weight.detach()) == pytest.approx(shadow, rel=1e-6)


def test_ema_skips_frozen_and_state_round_trip():
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    b.requires_grad_(False)
    ema = EMA({"a": a, "b": b}, decay=0.5)
    assert set(ema.shadow) == {"a.weight", "a.bias"}
    ema.update()
    other = EMA({"a": a, "b": b}, decay=0.5)
    other.load_state_dict(ema.state_dict())
    assert other.updates == 1 and all(torch.equal(other.shadow[k], ema.shadow[k]) for k in ema.shadow)
    with pytest.raises(InputError, match=r"EMA does not match"):
        EMA({"b": torch.nn.Linear(2, 2)}, decay=0.5).load_state_dict(ema.state_dict())


@pytest.mark.parametrize("decay", [1.0, -0.1])
def test_ema_bad_decay(decay):
    with pytest.raises(ValueError, match=r"`decay` must be in \[0, 1\)"):
        EMA({}, decay=decay)


def test_checkpoint_round_trip(tmp_path):
    state = {"step": 3, "x": torch.arange(4.0), "nested": {"a": [1, 2]}}
    path = save_checkpoint(tmp_path / "c.pt", state)
    back = load_checkpoint(path)
    assert back["step"] == 3 and torch.equal(back["x"], state["x"]) and back["nested"] == {"a": [1, 2]}
    assert not (tmp_path / "c.pt.tmp").exists()


def test_checkpoint_errors(tmp_path):
    with pytest.raises(InputError, match=r"no checkpoint to resume from"):
        load_checkpoint(tmp_path / "none.pt")
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(InputError, match=r"bad\.pt: unreadable checkpoint") as info:
        load_checkpoint(tmp_path / "bad.pt")
    assert "\n" not in str(info.value)  # torch's message spans lines: its first is kept
    (tmp_path / "pickled.pt").write_bytes(b"garbage")
    torch.save({"x": object()}, tmp_path / "pickled.pt")  # not weights-only loadable
    with pytest.raises(InputError, match=r"pickled\.pt: unreadable checkpoint "
                       r"\(UnpicklingError: Weights only load failed\.") as info:
        load_checkpoint(tmp_path / "pickled.pt")
    assert "\n" not in str(info.value)
