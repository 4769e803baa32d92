"""Tests of weight loading: both published layouts, key conversion, errors, download errors."""
from __future__ import annotations

import json
import sys
import types

import pytest
import torch

from semlink.cli import main
from semlink.errors import InputError
from semlink.models import weights as W
from semlink.models.encoder import SemanticEncoder
from semlink.models.stage_a import build_stage_a
from semlink.models.stage_b import build_stage_b
from tests.weights_layout import (assert_state_equal, randomize, save, to_original_stage_a,
                                  to_original_stage_b, write_diffusers)


pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def encoder_sd() -> dict[str, torch.Tensor]:
    return randomize(SemanticEncoder(), seed=1)


@pytest.fixture(scope="module")
def _encoder() -> SemanticEncoder:
    return SemanticEncoder()


@pytest.fixture
def encoder(_encoder) -> SemanticEncoder:
    """A full-size encoder with zero floats and counters at 7 (cheaper than one per test)."""
    with torch.no_grad():
        for t in _encoder.state_dict().values():
            t.fill_(0 if t.is_floating_point() else 7)
    return _encoder


@pytest.fixture(scope="module")
def tiny_b():
    model = build_stage_b("tiny")
    return model, randomize(model, seed=2)


@pytest.fixture(scope="module")
def tiny_a():
    model = build_stage_a("tiny")
    return model, randomize(model, seed=3)


# ---------------------------------------------------------------- key conversion, real configs

@pytest.mark.parametrize("name", ["stable-cascade-lite", "stable-cascade"])
def test_real_stage_b_original_layout_converts_to_model(name):
    model_sd = build_stage_b(name, meta=True).state_dict()
    original = to_original_stage_b(model_sd)
    component = "stage_b_lite" if name.endswith("lite") else "stage_b"
    # Literal keys of Stability AI's StageB for these configs.
    c = 1152 if component == "stage_b_lite" else 1280
    assert tuple(original["clip_mapper.weight"].shape) == (1280 * 4, 1280)
    assert tuple(original["down_blocks.2.2.attention.attn.in_proj_weight"].shape) == (3 * c, c)
    assert tuple(original["down_blocks.2.2.attention.attn.in_proj_bias"].shape) == (3 * c,)
    assert tuple(original["down_blocks.2.2.attention.attn.out_proj.weight"].shape) == (c, c)
    assert tuple(original["effnet_mapper.0.weight"].shape) == (320 * 4, 16, 1, 1)
    assert "pixels_mapper.2.weight" in original and "down_blocks.1.1.mapper_sca.weight" in original
    converted = W.convert_stage_b_original(original)
    assert {k: tuple(v.shape) for k, v in converted.items()} == \
        {k: tuple(v.shape) for k, v in model_sd.items()}
    assert {k: v[0] for k, v in W._file_layout(component, "original", model_sd).items()} == \
        {k: tuple(v.shape) for k, v in original.items()}


def test_real_stage_b_sparse_file_with_wrong_shape(tmp_path):
    """A full-size header (sparse data) is checked against a meta model without reading data."""
    model = build_stage_b("stable-cascade-lite", meta=True)
    original = to_original_stage_b(model.state_dict())
    original["down_blocks.2.2.attention.attn.in_proj_weight"] = torch.empty(3 * 1152, 1000,
                                                                            device="meta")
    header, offset = {}, 0
    for k, v in original.items():
        n = v.numel() * 2
        header[k] = {"dtype": "BF16", "shape": list(v.shape), "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    path = tmp_path / "stage_b_lite_bf16.safetensors"
    with path.open("wb") as f:
        f.write(len(raw).to_bytes(8, "little") + raw)
        f.truncate(8 + len(raw) + offset)  # sparse: no data written
    report = W.scan_weights_dir(tmp_path)
    (entry,) = report.found("stage_b_lite")
    assert entry.ok and entry.dtype == "bfloat16"
    assert entry.num_values == 699_471_248 - 3 * 1152 * 152
    with pytest.raises(InputError, match=r"stage_b_lite_bf16.safetensors: wrong shape for "
                       r"`down_blocks.2.2.attention.attn.in_proj_weight`: expected "
                       r"\[3456, 1152\], got \[3456, 1000\]"):
        W.load_stage_b(model, tmp_path)


def test_real_stage_a_original_layout():
    model_sd = build_stage_a("stable-cascade", meta=True).state_dict()
    assert tuple(model_sd["vquantizer.embedding.weight"].shape) == (8192, 4)
    original = to_original_stage_a(model_sd)
    assert W.convert_stage_a_original(original).keys() == model_sd.keys()


def test_convert_in_proj_not_divisible_by_three():
    with pytest.raises(InputError, match=r"`x.attn.in_proj_weight` must have a first dim "
                       r"divisible by 3.*\[4, 2\]"):
        W.convert_stage_b_original({"x.attn.in_proj_weight": torch.zeros(4, 2)})


# ---------------------------------------------------------------- round trips

def test_encoder_round_trip(tmp_path, encoder_sd, encoder):
    save(encoder_sd, tmp_path / "effnet_encoder.safetensors")
    enc = encoder
    found = W.load_encoder(enc, tmp_path)
    assert (found.component, found.layout, found.dtype) == ("encoder", "original", "float32")
    assert len(found.tensors) == 784
    assert_state_equal(enc, encoder_sd)
    assert not enc.training and not any(p.requires_grad for p in enc.parameters())


def test_encoder_weights_with_infinity_are_refused(tmp_path, encoder_sd, encoder):
    bad = dict(encoder_sd)
    key = next(k for k, v in bad.items() if v.is_floating_point())
    bad[key] = bad[key].clone()
    bad[key].view(-1)[0] = float("inf")
    save(bad, tmp_path / "effnet_encoder.safetensors")
    with pytest.raises(InputError, match=rf"effnet_encoder\.safetensors: {key} holds NaN or "
                       "infinite values"):
        W.load_encoder(encoder, tmp_path)


def test_encoder_into_meta_model_runs(tmp_path, encoder_sd):
    save(encoder_sd, tmp_path / "effnet_encoder.safetensors")
    with torch.device("meta"):
        enc = SemanticEncoder()
    W.load_encoder(enc, tmp_path)
    assert_state_equal(enc, encoder_sd)
    assert not any(p.requires_grad for p in enc.parameters())  # frozen survives assign
    with torch.no_grad():
        assert enc(torch.rand(1, 3, 64, 64)).shape == (1, 16, 2, 2)


def test_encoder_bf16_file_into_float32(tmp_path, encoder_sd, encoder):
    save(encoder_sd, tmp_path / "effnet_encoder.safetensors", dtype=torch.bfloat16)
    enc = encoder
    W.load_encoder(enc, tmp_path)
    assert_state_equal(enc, {k: (v.bfloat16().float() if v.is_floating_point() else v)
                             for k, v in encoder_sd.items()})


def test_encoder_without_num_batches_tracked(tmp_path, encoder_sd, encoder):
    save({k: v for k, v in encoder_sd.items() if not k.endswith("num_batches_tracked")},
         tmp_path / "effnet_encoder.safetensors")
    enc = encoder
    W.load_encoder(enc, tmp_path)
    assert torch.equal(enc.state_dict()["mapper.0.weight"], encoder_sd["mapper.0.weight"])
    assert int(enc.state_dict()["mapper.1.num_batches_tracked"]) == 0


@pytest.mark.parametrize("layout, shards, variant, dtype", [
    ("original", 1, "", None),
    ("original", 1, "bf16", torch.bfloat16),
    ("diffusers", 1, "", None),
    ("diffusers", 3, "", None),
    ("diffusers", 2, "bf16", torch.bfloat16),
])
def test_stage_b_round_trip(tmp_path, tiny_b, layout, shards, variant, dtype):
    source, sd = tiny_b
    if layout == "original":
        name = "stage_b_lite_bf16.safetensors" if variant else "stage_b_lite.safetensors"
        save(to_original_stage_b(sd), tmp_path / name, dtype=dtype)
    else:
        stored = {k: v.to(dtype) for k, v in sd.items()} if dtype else sd
        write_diffusers(tmp_path / "decoder_lite", source, stored, shards, variant)
    model = build_stage_b("tiny")
    found = W.load_stage_b(model, tmp_path, variant="lite")
    assert found.layout == layout and found.dtype == ("bfloat16" if dtype else "float32")
    assert len(found.files) == shards
    assert_state_equal(model, {k: v.to(dtype).float() if dtype else v for k, v in sd.items()})


def test_stage_b_into_meta_model(tmp_path, tiny_b):
    _, sd = tiny_b
    save(to_original_stage_b(sd), tmp_path / "stage_b.safetensors")
    model = build_stage_b("tiny", meta=True)
    W.load_stage_b(model, tmp_path, variant="full")
    assert {p.device.type for p in model.parameters()} == {"cpu"}
    assert_state_equal(model, sd)


def test_bf16_file_into_meta_float32_model_stays_float32(tmp_path, tiny_b):
    """A meta model gets the tensors assigned, not copied: read_weights must cast them to the
    model's dtype first, or the "float32" model silently becomes bfloat16."""
    _, sd = tiny_b
    save(to_original_stage_b(sd), tmp_path / "stage_b_bf16.safetensors", dtype=torch.bfloat16)
    model = build_stage_b("tiny", meta=True)
    found = W.load_stage_b(model, tmp_path, variant="full")
    assert found.dtype == "bfloat16"
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert_state_equal(model, {k: v.bfloat16().float() for k, v in sd.items()})


@pytest.mark.parametrize("layout", ["original", "diffusers"])
def test_stage_a_round_trip(tmp_path, tiny_a, layout):
    source, sd = tiny_a
    if layout == "original":
        save(to_original_stage_a(sd), tmp_path / "stage_a.safetensors")
    else:
        write_diffusers(tmp_path / "vqgan", source, sd)
    model = build_stage_a("tiny")
    assert W.load_stage_a(model, tmp_path).layout == layout
    assert_state_equal(model, sd)


def test_layout_choice(tmp_path, tiny_a):
    source, sd = tiny_a
    save(to_original_stage_a(sd), tmp_path / "stage_a.safetensors")
    other = {k: v + 1 if v.is_floating_point() else v for k, v in sd.items()}
    write_diffusers(tmp_path / "vqgan", source, other)
    model = build_stage_a("tiny")
    assert W.load_stage_a(model, tmp_path).layout == "original"  # original first
    assert_state_equal(model, sd)
    assert W.load_stage_a(model, tmp_path, layout="diffusers").layout == "diffusers"
    assert_state_equal(model, other)


def test_dtype_choice_follows_model(tmp_path, tiny_b):
    _, sd = tiny_b
    original = to_original_stage_b(sd)
    save(original, tmp_path / "stage_b_lite.safetensors")
    save({k: v + 1 for k, v in original.items()}, tmp_path / "stage_b_lite_bf16.safetensors",
         dtype=torch.bfloat16)
    assert W.load_stage_b(build_stage_b("tiny"), tmp_path, variant="lite").dtype == "float32"
    found = W.load_stage_b(build_stage_b("tiny", dtype=torch.bfloat16), tmp_path, variant="lite")
    assert found.dtype == "bfloat16"


def test_read_weights_leaves_model_alone(tmp_path, tiny_a):
    _, sd = tiny_a
    save(to_original_stage_a(sd), tmp_path / "stage_a.safetensors")
    template = build_stage_a("tiny", meta=True)
    state, found = W.read_weights(template, tmp_path, "stage_a")
    assert found.layout == "original" and state.keys() == sd.keys()
    assert all(torch.equal(state[k], v) for k, v in sd.items())
    assert all(p.is_meta for p in template.parameters())


@pytest.mark.gpu
def test_load_onto_cuda(tmp_path, tiny_b):
    _, sd = tiny_b
    save(to_original_stage_b(sd), tmp_path / "stage_b_lite_bf16.safetensors", dtype=torch.bfloat16)
    model = build_stage_b("tiny", device="cuda")
    W.load_stage_b(model, tmp_path, variant="lite")
    got = model.state_dict()
    assert {t.device.type for t in got.values()} == {"cuda"}
    for k, v in sd.items():
        assert torch.equal(got[k].cpu(), v.bfloat16().float()), k


# ---------------------------------------------------------------- scan and describe

def test_scan_and_describe(tmp_path, encoder_sd, tiny_a, tiny_b):
    save(encoder_sd, tmp_path / "effnet_encoder.safetensors")
    write_diffusers(tmp_path / "vqgan", tiny_a[0], tiny_a[1])
    save(to_original_stage_b(tiny_b[1]), tmp_path / "stage_b_lite_bf16.safetensors",
         dtype=torch.bfloat16)
    report = W.scan_weights_dir(tmp_path)
    assert [(e.component, e.layout) for e in report.entries] == [
        ("encoder", "original"), ("stage_a", "diffusers"), ("stage_b_lite", "original")]
    assert report.missing == ("stage_b",)
    enc = report.found("encoder")[0]
    assert enc.num_values == sum(v.numel() for v in encoder_sd.values() if v.is_floating_point())
    assert report.found("stage_a")[0].config["embed_dim"] == 32
    text = W.describe_weights_dir(tmp_path)
    assert "effnet_encoder.safetensors" in text and "vqgan/diffusion_pytorch_model" in text
    assert "bfloat16" in text and "not found: stage_b.safetensors" in text
    assert "semantic link: ready" in text
    assert main(["weights", str(tmp_path)]) == 0


@pytest.mark.parametrize("leave_out", ["encoder", "stage_a"])
def test_a_folder_without_the_encoder_or_stage_a_is_not_ready(leave_out, tmp_path, encoder_sd,
                                                              tiny_a, tiny_b, capsys):
    """The semantic link loads the encoder, stage A and a stage B: a folder missing the encoder
    or stage A is not ready (and `semlink weights` exits 2), whatever else it holds."""
    if leave_out != "encoder":
        save(encoder_sd, tmp_path / "effnet_encoder.safetensors")
    if leave_out != "stage_a":
        write_diffusers(tmp_path / "vqgan", tiny_a[0], tiny_a[1])
    save(to_original_stage_b(tiny_b[1]), tmp_path / "stage_b_lite_bf16.safetensors",
         dtype=torch.bfloat16)
    report = W.scan_weights_dir(tmp_path)
    assert report.missing == (leave_out, "stage_b") and not report.semantic_link_ready
    assert "semantic link: not ready" in W.describe_weights_dir(tmp_path)
    assert main(["weights", str(tmp_path)]) == 2
    assert "not ready for the semantic link" in capsys.readouterr().err


def test_describe_empty_dir(tmp_path, capsys):
    text = W.describe_weights_dir(tmp_path)
    assert text.count("not found") == 4 and "semantic link: not ready" in text
    assert W.scan_weights_dir(tmp_path).missing == W.COMPONENTS
    # `semlink weights` prints the table and fails, so that a script can check a folder.
    assert main(["weights", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert out.startswith(text + "\nLPIPS AlexNet backbone: ")  # then LPIPS, SD 1.5, BLIP
    assert err == (f"semlink: error: {tmp_path}: not ready for the semantic link (needs the "
                   "encoder, stage A and stage B lite or stage B)\n")


def test_scan_flags_wrong_stage_b_size(tmp_path):
    save({"clip_mapper.weight": torch.zeros(8, 4),
          "down_blocks.1.0.channelwise.0.weight": torch.zeros(4, 640)},
         tmp_path / "stage_b_lite.safetensors")
    (entry,) = W.scan_weights_dir(tmp_path).found("stage_b_lite")
    assert not entry.ok
    assert "holds stage B weights, not stage B lite" in entry.issues[0]
    with pytest.raises(InputError, match=r"stage_b_lite.safetensors: holds stage B weights"):
        W.load_stage_b(build_stage_b("tiny"), tmp_path, variant="lite")


# ---------------------------------------------------------------- bad directories

def test_missing_directory(tmp_path):
    with pytest.raises(InputError, match=r"nowhere: weights directory does not exist"):
        W.load_encoder(SemanticEncoder(width_mult=0.25, depth_mult=0.25), tmp_path / "nowhere")


def test_file_instead_of_directory(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputError, match=r"f: not a directory"):
        W.scan_weights_dir(tmp_path / "f")


def test_empty_directory(tmp_path):
    with pytest.raises(InputError, match=r"no semantic encoder weights; expected "
                       r"effnet_encoder.safetensors"):
        W.load_encoder(SemanticEncoder(width_mult=0.25, depth_mult=0.25), tmp_path)
    with pytest.raises(InputError, match=r"expected stage_b_lite.safetensors or "
                       r"stage_b_lite_bf16.safetensors or decoder_lite/"):
        W.load_stage_b(build_stage_b("tiny"), tmp_path, variant="lite")
    with pytest.raises(InputError, match=r"no stage A \(VQGAN\) weights; expected "
                       r"vqgan/diffusion_pytorch_model"):
        W.load_stage_a(build_stage_a("tiny"), tmp_path, layout="diffusers")


@pytest.mark.parametrize("edit, match", [
    (lambda sd: sd.update({"mapper.0.weight": torch.zeros(8, 1280, 1, 1)}),
     r"effnet_encoder.safetensors: wrong shape for `mapper.0.weight`: expected "
     r"\[16, 1280, 1, 1\], got \[8, 1280, 1, 1\]"),
    (lambda sd: sd.update({"extra.weight": torch.zeros(1)}),
     r"effnet_encoder.safetensors: 1 unexpected key\(s\): `extra.weight`"),
    (lambda sd: sd.pop("backbone.7.0.weight"),
     r"effnet_encoder.safetensors: 1 key\(s\) missing for semantic encoder: "
     r"`backbone.7.0.weight`"),
    (lambda sd: sd.update({"mapper.1.num_batches_tracked": torch.zeros(())}),
     r"`mapper.1.num_batches_tracked` has dtype F32, expected an integer type"),
])
def test_bad_encoder_file(tmp_path, encoder_sd, encoder, edit, match):
    sd = dict(encoder_sd)
    edit(sd)
    save(sd, tmp_path / "effnet_encoder.safetensors")
    enc = encoder
    before = enc.state_dict()["backbone.0.0.weight"].clone()
    with pytest.raises(InputError, match=match):
        W.load_encoder(enc, tmp_path)
    assert torch.equal(enc.state_dict()["backbone.0.0.weight"], before)  # untouched


def test_many_missing_keys_are_abbreviated(tmp_path, tiny_b):
    save({"clip_mapper.weight": torch.zeros(2)}, tmp_path / "stage_b.safetensors")
    with pytest.raises(InputError, match=r"stage_b.safetensors: \d+ key\(s\) missing for stage B: "
                       r"`[^`]+`, `[^`]+`, `[^`]+`, \.\.\. \(original layout\)\.$"):
        W.load_stage_b(build_stage_b("tiny"), tmp_path, variant="full")


def test_truncated_file(tmp_path, tiny_a):
    path = tmp_path / "stage_a.safetensors"
    save(to_original_stage_a(tiny_a[1]), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    (entry,) = W.scan_weights_dir(tmp_path).found("stage_a")
    assert not entry.ok
    with pytest.raises(InputError, match=r"stage_a.safetensors: truncated safetensors file"):
        W.load_stage_a(build_stage_a("tiny"), tmp_path)


@pytest.mark.parametrize("content", [b"", b"hello, this is not safetensors",
                                     b"\x05\x00\x00\x00\x00\x00\x00\x00{abc}"])
def test_not_safetensors(tmp_path, content):
    (tmp_path / "effnet_encoder.safetensors").write_bytes(content)
    with pytest.raises(InputError, match=r"effnet_encoder.safetensors: not a safetensors file"):
        W.load_encoder(SemanticEncoder(width_mult=0.25, depth_mult=0.25), tmp_path)


def test_diffusers_folder_without_config(tmp_path, tiny_b):
    save(tiny_b[1], tmp_path / "decoder" / "diffusion_pytorch_model.safetensors")
    with pytest.raises(InputError, match=r"decoder/config.json: missing"):
        W.load_stage_b(build_stage_b("tiny"), tmp_path, variant="full")


def test_diffusers_folder_without_weights(tmp_path):
    (tmp_path / "vqgan").mkdir()
    (tmp_path / "vqgan" / "config.json").write_text("{}")
    with pytest.raises(InputError, match=r"vqgan: no diffusion_pytorch_model\*.safetensors"):
        W.load_stage_a(build_stage_a("tiny"), tmp_path)


def test_index_with_missing_shard(tmp_path, tiny_b):
    write_diffusers(tmp_path / "decoder_lite", tiny_b[0], tiny_b[1], shards=2)
    (tmp_path / "decoder_lite" / "diffusion_pytorch_model-00002-of-00002.safetensors").unlink()
    with pytest.raises(InputError, match=r"diffusion_pytorch_model-00002-of-00002.safetensors: "
                       r"missing \(listed in diffusion_pytorch_model.safetensors.index.json\)"):
        W.load_stage_b(build_stage_b("tiny"), tmp_path, variant="lite")


def test_original_file_in_diffusers_key_layout(tmp_path, tiny_b):
    save(tiny_b[1], tmp_path / "stage_b_lite.safetensors")  # diffusers keys under original name
    with pytest.raises(InputError, match=r"stage_b_lite.safetensors: no `clip_mapper.weight`: "
                       r"not stage B lite weights in the original layout"):
        W.load_stage_b(build_stage_b("tiny"), tmp_path, variant="lite")


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"`variant` must be 'lite' or 'full'.*\[32, 64\]"):
        W.load_stage_b(build_stage_b("tiny"), tmp_path)
    with pytest.raises(ValueError, match=r"`variant` must be one of 'lite', 'full'; got 'big'"):
        W.load_stage_b(build_stage_b("tiny"), tmp_path, variant="big")
    with pytest.raises(ValueError, match=r"`layout` must be one of 'original', 'diffusers'"):
        W.load_stage_a(build_stage_a("tiny"), tmp_path, layout="hf")
    with pytest.raises(ValueError, match=r"`component` must be one of"):
        W.load_weights(build_stage_a("tiny"), tmp_path, "stage_c")
    with pytest.raises(TypeError, match=r"`model` must be SemanticEncoder"):
        W.load_encoder(build_stage_a("tiny"), tmp_path)


# ---------------------------------------------------------------- download

def test_download_without_huggingface_hub(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(InputError, match=r"needs huggingface_hub"):
        W.download_weights(tmp_path)


class GatedRepoError(Exception):
    """Stands in for huggingface_hub's (told apart by class name)."""


@pytest.mark.parametrize("error, says", [
    (ConnectionError("no route\nto host"), r"huggingface\.co cannot be reached from here "
     r"\(ConnectionError: no route to host\)\. Download the files on a machine with network"),
    (GatedRepoError("401 Client Error"), r"access refused \(GatedRepoError: 401 Client Error\)\. "
     r"The repository is gated: accept its licence on huggingface\.co and run `hf auth login`"),
    (RuntimeError("disk"), r"RuntimeError: disk\. The repository is gated"),
])
def test_download_failure_is_one_line_saying_why(tmp_path, monkeypatch, caplog, error, says):
    import logging

    def fail(*args, **kwargs):
        logging.getLogger("huggingface_hub.utils._http").warning("Retrying in 1s [Retry 1/5].")
        raise error
    fake = types.SimpleNamespace(hf_hub_download=fail, snapshot_download=fail)
    monkeypatch.setitem(sys.modules, "huggingface_hub", fake)
    level = logging.getLogger("huggingface_hub").level
    with pytest.raises(InputError, match=r"could not download effnet_encoder.safetensors from "
                       r"stabilityai/stable-cascade into .*w: " + says) as info:
        W.download_weights(tmp_path / "w")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "w").exists()  # the folder it made for the download is gone
    assert "Retrying" not in caplog.text  # the hub's retry warnings are not shown
    assert logging.getLogger("huggingface_hub").level == level  # as it was


def test_download_failure_keeps_a_folder_it_did_not_make(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise ConnectionError("offline")
    monkeypatch.setitem(sys.modules, "huggingface_hub",
                        types.SimpleNamespace(hf_hub_download=fail, snapshot_download=fail))
    (tmp_path / "w").mkdir()
    with pytest.raises(InputError, match="cannot be reached"):
        W.download_weights(tmp_path / "w")
    assert (tmp_path / "w").is_dir()


def test_download_into_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputError, match=r"f: not a directory"):
        W.download_weights(tmp_path / "f")


@pytest.mark.parametrize("layout, bf16", [("original", True), ("diffusers", False)])
def test_download_requests(tmp_path, monkeypatch, layout, bf16):
    calls = []

    def hf_hub_download(repo_id, filename, *, local_dir):
        calls.append(filename)
        save({"x": torch.zeros(1)}, local_dir / filename)
        return str(local_dir / filename)

    def snapshot_download(repo_id, *, local_dir, allow_patterns, ignore_patterns):
        calls.append((tuple(allow_patterns), ignore_patterns))
        return str(local_dir)

    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(
        hf_hub_download=hf_hub_download, snapshot_download=snapshot_download))
    report = W.download_weights(tmp_path / "w", "full", layout=layout, bf16=bf16)
    if layout == "original":
        assert calls == ["effnet_encoder.safetensors", "stage_a.safetensors",
                         "stage_b_bf16.safetensors"]
        assert {e.component for e in report.entries} == {"encoder", "stage_a", "stage_b"}
    else:
        assert calls[0] == "effnet_encoder.safetensors"
        patterns, ignore = calls[1]
        assert "decoder/config.json" in patterns and "vqgan/config.json" in patterns
        assert ignore == ["*bf16*", "*fp16*"]
