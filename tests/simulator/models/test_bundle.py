"""Model bundles: round trip of weights and info, what stage B predicts, clear errors."""
import pytest
import torch

from semlink.errors import InputError
from semlink.models.bundle import bundle_prediction, load_bundle, read_bundle_info, save_bundle


def _part(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))


def test_round_trip_weights_and_prediction(tmp_path):
    path = save_bundle(tmp_path / "model.safetensors", {"stage_b": _part(0), "stage_a": _part(1)},
                       preset="small", info={"architecture": {"prediction": "v_prediction"}})
    info = read_bundle_info(path)
    assert info["preset"] == "small" and info["parts"] == ["stage_a", "stage_b"]
    assert bundle_prediction(info) == "v_prediction"
    fresh = _part(5)
    load_bundle(path, {"stage_b": fresh}, preset="small")
    for a, b in zip(_part(0).state_dict().values(), fresh.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_prediction_defaults_to_epsilon_and_rejects_unknown(tmp_path):
    old = save_bundle(tmp_path / "old.safetensors", {"stage_a": _part(0)}, preset="small")
    assert bundle_prediction(read_bundle_info(old)) == "epsilon"
    bad = save_bundle(tmp_path / "bad.safetensors", {"stage_a": _part(0)}, preset="small",
                      info={"architecture": {"prediction": "x0"}})
    with pytest.raises(InputError, match=r"architecture.prediction 'x0' is not one of"):
        bundle_prediction(read_bundle_info(bad))


def test_wrong_preset_and_wrong_shapes_name_the_file(tmp_path):
    path = save_bundle(tmp_path / "model.safetensors", {"stage_a": _part(0)}, preset="small")
    with pytest.raises(InputError, match=r"model.safetensors: holds weights of preset 'small'"):
        load_bundle(path, {"stage_a": _part(0)}, preset="stable-cascade")
    wider = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8))
    with pytest.raises(InputError, match=r"stage_a.0.weight has shape \(4, 3, 3, 3\)"):
        load_bundle(path, {"stage_a": wider})


def test_weights_with_nan_are_refused_naming_file_part_and_tensor(tmp_path):
    broken = _part(0)
    with torch.no_grad():
        broken[1].running_var[2] = float("nan")  # a diverged training's statistics
    path = save_bundle(tmp_path / "model.safetensors", {"stage_a": broken}, preset="small")
    fresh = _part(5)
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    with pytest.raises(InputError, match=r"model\.safetensors: stage_a: 1\.running_var holds NaN "
                       r"or infinite values"):
        load_bundle(path, {"stage_a": fresh}, preset="small")
    for key, value in fresh.state_dict().items():  # the model is left as it was
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)


def test_extra_keys_of_a_part_are_refused(tmp_path):
    """Loading is strict both ways: a bundle part holding keys the model lacks (another
    architecture with extra layers) is refused, naming them, not silently half-loaded."""
    bigger = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
                                 torch.nn.Conv2d(4, 4, 1))
    path = save_bundle(tmp_path / "model.safetensors", {"stage_b": bigger}, preset="small")
    fresh = _part(5)
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    with pytest.raises(InputError, match=r"model\.safetensors: stage_b keys do not match the "
                       r"model: missing \[\], unexpected \['2\.bias', '2\.weight'\]"):
        load_bundle(path, {"stage_b": fresh})
    for key, value in fresh.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)


def test_unreadable_info_reads_as_empty(tmp_path):
    """A bundle whose ``info`` metadata is not JSON (written by hand or by another tool) still
    loads: its info is empty, so what stage B predicts falls back to the documented default."""
    from safetensors.torch import save_file

    path = tmp_path / "model.safetensors"
    save_file({f"stage_a.{k}": v.contiguous() for k, v in _part(0).state_dict().items()},
              str(path), metadata={"preset": "small", "info": "{not json"})
    info = read_bundle_info(path)
    assert info == {"preset": "small", "info": {}, "parts": ["stage_a"]}
    assert bundle_prediction(info) == "epsilon"
