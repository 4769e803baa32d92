"""`semlink train` of a DeepJSCC autoencoder: the loss is the MSE through the channel at SNRs
drawn per image from the phase's range, it learns, resumes exactly, validates over AWGN, and
writes a bundle the link loads."""
from __future__ import annotations

import csv

import pytest
import torch

from semlink.images import SAMPLE_DIR
from semlink.models.bundle import load_bundle, read_bundle_info
from semlink.models.deepjscc import DEEPJSCC_PRESET, DeepJSCC
from semlink.training.config import parse_train_config
from semlink.training.loop import _deepjscc_loss, train
from semlink.training.models import build_training_models
from tests.threads import torch_threads

CONFIG = f"""\
name: tiny-deepjscc
seed: 5
checkpoint_every: 4
log_every: 1
data: {{source: {SAMPLE_DIR}, size: 64, count: 4}}
model: {{deepjscc: {{channels: 4, features: [8, 16], stages: 2, extra_layers: 0}}}}
phases:
  - {{train: [deepjscc], steps: 24, batch_size: 4, lr: 3.0e-3, ema_decay: 0.5,
     conditioning: {{channel: {{type: awgn}}, snr_min_db: 10, snr_max_db: 20}}}}
validation: {{size: 64, count: 2, snr_db: [5, 20], every: 100}}
"""


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("jscc")
    with torch_threads(2):
        bundle = train(parse_train_config(CONFIG), output=out)
    return out, bundle


def test_it_learns_and_writes_a_deepjscc_bundle(trained):
    out, bundle = trained
    losses = [float(r["loss"]) for r in _rows(out / "log.csv")]
    assert len(losses) == 24
    assert sum(losses[-4:]) < 0.7 * sum(losses[:4])  # the reconstruction error falls
    info = read_bundle_info(bundle)
    assert info["preset"] == DEEPJSCC_PRESET and info["parts"] == ["deepjscc"]
    assert info["info"]["architecture"] == {"deepjscc": {"channels": 4, "features": [8, 16],
                                                         "stages": 2, "extra_layers": 0}}
    models = build_training_models(parse_train_config(CONFIG).model, device="cpu")
    load_bundle(bundle, models.parts(), preset=DEEPJSCC_PRESET)  # strict: every key and shape
    val = _rows(out / "validation.csv")
    assert [(r["step"], r["snr_db"]) for r in val] == [("24", "5.0"), ("24", "20.0")]
    # Trained at 10..20 dB: 20 dB is not worse than 5 dB.
    assert float(val[1]["psnr_db"]) >= float(val[0]["psnr_db"]) - 0.05


def test_resume_continues_the_same_loss_curve(tmp_path, trained):
    full, _ = trained
    cfg = parse_train_config(CONFIG)
    with torch_threads(2):  # as the uninterrupted run: a sum's order depends on the threads
        train(cfg, output=tmp_path, stop_after=9)
        torch.manual_seed(123)
        bundle = train(cfg, output=tmp_path, resume=True)
    assert _rows(full / "log.csv") != [] and \
        [(r["step"], r["loss"]) for r in _rows(full / "log.csv")] == \
        [(r["step"], r["loss"]) for r in _rows(tmp_path / "log.csv")]
    from safetensors.torch import load_file
    x, y = load_file(full / "model.safetensors"), load_file(bundle)
    assert all(torch.equal(x[k], y[k]) for k in x)


def test_loss_is_the_mse_through_the_channel_at_snrs_drawn_in_the_range():
    """A channel that records its SNRs and returns the symbols unchanged: the loss equals the
    noise-free autoencoder's MSE, and the SNRs lie in the phase's range, one per image."""
    cfg = parse_train_config(CONFIG).phases[0].conditioning
    model = DeepJSCC(channels=4, features=[8, 16], stages=2, extra_layers=0)
    seen = []

    def channel(x, snr_db):
        seen.append(snr_db)
        return x, torch.zeros(x.shape)

    images = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    loss = _deepjscc_loss(model, images, channel, cfg, torch.Generator().manual_seed(1))
    expected = ((model.decode(model.encode(images), (64, 64)) - images) ** 2).mean()
    torch.testing.assert_close(loss, expected)
    (snr,) = seen
    assert snr.shape == (3,) and bool(((snr >= 10) & (snr <= 20)).all())
    assert len(set(snr.tolist())) == 3
