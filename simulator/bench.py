"""Receiver benchmarks: seconds per image of the semantic receiver (stage B sampling + stage A
decoding) for any preset and image size, and, on CUDA, the Stable Diffusion 1.5 img2img pipeline the
paper compares speed against and the whole Img2Img-SC link (its transmission included). Random
weights of the real architectures are allowed: speed does not depend on the weights' values.

Results are a JSON-serialisable dict with the device name, dtype, steps, batch sizes, s/image,
images/s and peak memory; optionally the classical link's bit chain (CRC + 5G LDPC + QAM, AWGN,
BP decoding) in information bits per second at given numbers of code blocks per call.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from semlink.devices import describe_device, package_versions
from semlink.models.presets import get_preset
from semlink.models.receiver import SemanticReceiver
from semlink.models.stage_a import decode_latents
from semlink.profiling import summarize_trace
from semlink.seeding import make_generator

__all__ = ["LdpcChain", "bench_ldpc_chain", "bench_receiver", "bench_sd15_img2img",
           "build_ldpc_chain", "profile_trace", "run_bench", "sd15_models"]


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _peak_memory_reset(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def _peak_memory_mib(device: str) -> float | None:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return None


def bench_receiver(preset: str, image_size: int, batch_size: int, *, device: str,
                   steps: int = 10, guidance: float = 1.1, repeats: int = 2,
                   cuda_graphs: bool = False, compiled: bool = False,
                   channels_last: bool = False,
                   profile_dir: str | None = None) -> dict[str, Any]:
    """Time ``repeats`` receiver calls after one warm-up call, then stage A's decoding alone
    (its share of the time: the rest is stage B sampling).

    :param cuda_graphs: Replay the receiver as a CUDA graph (:mod:`semlink.models.graphs`);
        the warm-up call then includes the capture.
    :param compiled: Run stage B through ``torch.compile``
        (:class:`~semlink.models.receiver.SemanticReceiver`'s ``compiled``); the warm-up call
        then includes the compilation. The row's ``compiled`` says whether the timed calls ran
        compiled (False after a compilation that failed), and ``difference_from_eager`` how far
        their images are from the eager path's on the same inputs (``max`` and ``mean``
        absolute difference of the [0, 1] images; one more, eager, call).
    :param channels_last: Convolution weights in the channels-last memory format
        (:class:`~semlink.models.receiver.SemanticReceiver`'s ``channels_last``).
    :param profile_dir: Folder for a torch profiler trace (Chrome JSON) of one steady-state
        call, ``receiver-{preset}-{size}px-b{batch}.json``; None = no trace.
    :output result: ``{"preset", "image_size", "batch_size", "steps", "guidance", "dtype",
        "cuda_graphs", "compiled", "channels_last", "warmup_seconds", "seconds_per_image",
        "images_per_second", "stage_a_seconds_per_image", "peak_memory_mib",
        "random_weights"}`` (and ``"graph_fallback"``, why capture failed,
        ``"difference_from_eager"`` when compiled, and ``"profile"``, the trace's path, with
        ``"profile_summary"``, :func:`semlink.profiling.summarize_trace` of it: launches, host
        syncs, kernels, device busy time).
    """
    p = get_preset(preset)
    dtype = p.default_dtype(device)
    rx = SemanticReceiver.from_preset(preset, device=device, dtype=dtype, cuda_graphs=cuda_graphs,
                                      compiled=compiled, channels_last=channels_last)
    rx.random_weights = False  # speed only; suppress the warning
    channels = p.embedding_channels
    side = -(-round(image_size * p.encoder_resize_factor) // 32)
    zhat = torch.randn(batch_size, channels, side, side, device=device, dtype=dtype)
    gens = [make_generator(i, device) for i in range(batch_size)]

    def call():
        return rx(zhat, gens, image_size=image_size, steps=steps, guidance=guidance)

    _sync(device)
    start = time.perf_counter()
    call()  # warm-up: kernel selection, allocator, the graph's capture, the compilation
    _sync(device)
    warmup = time.perf_counter() - start
    _peak_memory_reset(device)
    start = time.perf_counter()
    for _ in range(repeats):
        call()
    _sync(device)
    seconds = (time.perf_counter() - start) / (repeats * batch_size)
    peak = _peak_memory_mib(device)
    latents = torch.randn(batch_size, rx.stage_b.config.in_channels, image_size // 4,
                          image_size // 4, device=device, dtype=dtype)
    with torch.no_grad():
        start = time.perf_counter()
        for _ in range(repeats):
            decode_latents(rx.stage_a, latents, rx.latent_scale_factor)
        _sync(device)
    stage_a = (time.perf_counter() - start) / (repeats * batch_size)
    result = {"preset": preset, "image_size": image_size, "batch_size": batch_size,
              "steps": steps, "guidance": guidance, "dtype": str(dtype).replace("torch.", ""),
              "cuda_graphs": cuda_graphs and rx.graphs.captures > 0, "compiled": rx.compiled,
              "channels_last": channels_last, "warmup_seconds": warmup,
              "seconds_per_image": seconds, "images_per_second": 1.0 / seconds,
              "stage_a_seconds_per_image": stage_a, "peak_memory_mib": peak,
              "random_weights": True}
    if rx.graphs.fallback_reason is not None:
        result["graph_fallback"] = rx.graphs.fallback_reason
    if rx.compiled:
        result["difference_from_eager"] = _difference_from_eager(
            rx, zhat, image_size=image_size, steps=steps, guidance=guidance)
    if profile_dir is not None:
        name = f"receiver-{preset}-{image_size}px-b{batch_size}.json"
        result["profile"] = profile_trace(call, device, Path(profile_dir) / name)
        result["profile_summary"] = summarize_trace(result["profile"])
    return result


def _difference_from_eager(rx: SemanticReceiver, zhat: torch.Tensor, *, image_size: int,
                           steps: int, guidance: float) -> dict[str, float]:
    """Max and mean absolute difference between ``rx``'s images of ``zhat`` and those of the
    same call with stage B eager (no graph, no compilation), both with generators seeded 0, 1,
    ... per row: the compiler's rounding, in [0, 1] units."""
    def call() -> torch.Tensor:
        generators = [make_generator(i, zhat.device) for i in range(len(zhat))]
        return rx(zhat, generators, image_size=image_size, steps=steps, guidance=guidance)

    images = call().clone()  # a graph replay's output is overwritten by the next replay
    flags = rx.compiled, rx.cuda_graphs
    rx.compiled = rx.cuda_graphs = False
    try:
        difference = (images - call()).abs()
    finally:
        rx.compiled, rx.cuda_graphs = flags
    return {"max": float(difference.max()), "mean": float(difference.mean())}


def profile_trace(fn: Callable[[], Any], device: str, path: Path) -> str:
    """Run ``fn`` once under the torch profiler (CPU and, on CUDA, device activity) and write
    its Chrome trace to ``path`` (open it in Perfetto or chrome://tracing): the launches, the
    host's gaps between them and any synchronisation show there.

    :output path: The trace's path, as a string.
    """
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if device.startswith("cuda"):
        activities.append(ProfilerActivity.CUDA)
    path.parent.mkdir(parents=True, exist_ok=True)
    with profile(activities=activities) as prof:
        fn()
        _sync(device)
    prof.export_chrome_trace(str(path))
    return str(path)


@dataclasses.dataclass(frozen=True)
class LdpcChain:
    """The classical link's bit chain, built by :func:`build_ldpc_chain`.

    :param transmit: ``transmit()``: the information bits through CRC + LDPC encoding, QAM,
        AWGN and demapping -> [batch_blocks, n] LLRs.
    :param decoder: The BP decoder (:class:`~semlink.modulation.ldpc.CodeBlockDecoder`):
        LLRs -> (decoded bits, per-block CRC pass).
    :param k: Information bits per block (CRC included).
    :param plan: The code-block plan.
    """

    transmit: Callable[[], torch.Tensor]
    decoder: torch.nn.Module
    k: int
    plan: Any


def build_ldpc_chain(batch_blocks: int, *, device: str, n: int = 1536, code_rate: float = 0.5,
                     modulation: int = 16, snr_db: float = 10.0, num_iter: int = 20,
                     cn_update: str = "boxplus", seed: int = 0) -> LdpcChain:
    """The chain :func:`bench_ldpc_chain` times (its parameters), on random information bits
    of ``batch_blocks`` code blocks drawn once from ``seed``."""
    from semlink.channels.awgn import AWGNChannel
    from semlink.modulation.ldpc import (CRC_LENGTH, CodeBlockDecoder, CodeBlockEncoder,
                                         information_bits_per_block, plan_code_blocks)
    from semlink.modulation.qam import QAMDemapper, QAMMapper, bits_per_symbol_for_order

    bits_per_symbol = bits_per_symbol_for_order(modulation)
    k = information_bits_per_block(code_rate, n)
    plan = plan_code_blocks(k - CRC_LENGTH, n=n, k=k)
    encoder = CodeBlockEncoder(plan, bits_per_symbol=bits_per_symbol, check_values=False,
                               device=device)
    decoder = CodeBlockDecoder(encoder, num_iter=num_iter, cn_update=cn_update, device=device)
    mapper = QAMMapper(bits_per_symbol=bits_per_symbol, check_values=False, device=device)
    demapper = QAMDemapper(bits_per_symbol=bits_per_symbol, check_values=False, device=device)
    generator = make_generator(seed, device)
    channel = AWGNChannel(generator=generator, check_values=False, device=device)
    bits = torch.randint(0, 2, (batch_blocks, plan.num_payload_bits), generator=generator,
                         device=device).float()

    def transmit() -> torch.Tensor:
        y, no = channel(mapper(encoder(bits)), snr_db)
        return demapper(y, no)

    return LdpcChain(transmit, decoder, k, plan)


def bench_ldpc_chain(batch_blocks: int, *, device: str, n: int = 1536, code_rate: float = 0.5,
                     modulation: int = 16, snr_db: float = 10.0, num_iter: int = 20,
                     cn_update: str = "boxplus", repeats: int = 2, seed: int = 0,
                     compiled: bool = False) -> dict[str, Any]:
    """Throughput of the classical link's bit chain on ``device``: random information bits of
    ``batch_blocks`` code blocks through CRC + 5G LDPC encoding, Gray QAM, AWGN, app demapping
    and BP decoding (the chain of :mod:`semlink.links.classical`, without the JPEG2000 codec),
    timed after one warm-up call.

    :param batch_blocks: int >= 1; code blocks per call (one row each).
    :param n: Codeword bits per block; default 1536.
    :param code_rate: LDPC rate ``k / n`` (CRC inside ``k``); default 1/2.
    :param modulation: QAM order; default 16.
    :param snr_db: Es/N0 of the AWGN channel, dB; default 10 (a working point: BLER ~ 0).
    :param compiled: Run the BP decoder through ``torch.compile`` (static shapes; compiled in
        the warm-up call: about a minute on a CPU for 20 iterations). It decodes as the eager
        decoder (tests/simulator/test_bench_extras.py: the same block errors).
    :output result: ``{"n", "k", "payload_bits", "batch_blocks", "modulation", "snr_db",
        "num_iter", "cn_update", "compiled", "warmup_seconds", "seconds_per_call",
        "information_bits_per_second", "payload_bits_per_second",
        "information_mbit_per_second", "decoder_share", "block_error_rate"}``: information
        bits = ``k`` per block (CRC included, what the decoder delivers), payload bits = ``k - 24``;
        ``decoder_share`` the fraction of the time spent in BP decoding.
    """
    chain = build_ldpc_chain(batch_blocks, device=device, n=n, code_rate=code_rate,
                             modulation=modulation, snr_db=snr_db, num_iter=num_iter,
                             cn_update=cn_update, seed=seed)
    k, plan = chain.k, chain.plan
    decode = torch.compile(chain.decoder, dynamic=False) if compiled else chain.decoder
    seconds = {"decode": 0.0}

    def call():
        llr = chain.transmit()
        _sync(device)
        start = time.perf_counter()
        decoded, block_ok = decode(llr)
        _sync(device)
        seconds["decode"] += time.perf_counter() - start
        return decoded, block_ok

    start = time.perf_counter()
    # Warm-up (and the compilation). Sionna's blocks build on their first call, after which
    # compiled code is traced again: a compiled decoder warms up with two calls.
    for _ in range(2 if compiled else 1):
        call()
    warmup = time.perf_counter() - start
    seconds["decode"] = 0.0
    start = time.perf_counter()
    errors = 0.0
    for _ in range(repeats):
        _, block_ok = call()
        errors += float((~block_ok.bool()).float().sum())
    _sync(device)
    per_call = (time.perf_counter() - start) / repeats
    return {"n": n, "k": k, "payload_bits": plan.num_payload_bits, "batch_blocks": batch_blocks,
            "modulation": modulation, "snr_db": snr_db, "num_iter": num_iter,
            "cn_update": cn_update, "compiled": compiled, "warmup_seconds": warmup,
            "seconds_per_call": per_call,
            "information_bits_per_second": batch_blocks * k / per_call,
            "payload_bits_per_second": batch_blocks * plan.num_payload_bits / per_call,
            "information_mbit_per_second": batch_blocks * k / per_call / 1e6,
            "decoder_share": seconds["decode"] / (per_call * repeats),
            "block_error_rate": errors / (repeats * batch_blocks)}


def sd15_models(*, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                meta: bool = False) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Randomly initialised UNet and VAE of Stable Diffusion 1.5's published configuration
    (859,520,964 and 83,653,863 parameters), in eval mode.

    :param meta: Build on the meta device (no memory; for counting parameters).
    """
    from diffusers import AutoencoderKL, UNet2DConditionModel

    with torch.device("meta" if meta else device):
        unet = UNet2DConditionModel(
            sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
            block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=768,
            attention_head_dim=8,
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        )
        vae = AutoencoderKL(
            in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2,
            sample_size=512, block_out_channels=(128, 256, 512, 512),
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
        )
    # nn.Module.to: diffusers' ModelMixin.to would warn about meta tensors
    return (torch.nn.Module.to(unet, dtype=dtype).eval(),
            torch.nn.Module.to(vae, dtype=dtype).eval())


def bench_sd15_img2img(image_size: int, batch_size: int, *, device: str, steps: int = 30,
                       strength: float = 1.0, repeats: int = 2) -> dict[str, Any]:
    """Time SD 1.5 img2img with random weights of the real UNet and VAE (float16 on CUDA,
    float32 on the CPU).

    The paper's Img2Img-SC baseline: VAE-encode, ``steps * strength`` UNet steps with
    classifier-free guidance (batch doubled) on a 77-token text embedding, VAE-decode.
    """
    from diffusers import DDIMScheduler

    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    unet, vae = sd15_models(device=device, dtype=dtype)
    scheduler = DDIMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear",
                              beta_start=0.00085, beta_end=0.012)
    text = torch.randn(2 * batch_size, 77, 768, device=device, dtype=dtype)
    image = torch.rand(batch_size, 3, image_size, image_size, device=device, dtype=dtype) * 2 - 1

    @torch.no_grad()
    def once():
        scheduler.set_timesteps(steps, device=device)
        timesteps = scheduler.timesteps[int(steps * (1 - strength)):]
        latents = vae.encode(image).latent_dist.sample() * 0.18215
        latents = scheduler.add_noise(latents, torch.randn_like(latents), timesteps[:1])
        for t in timesteps:
            eps = unet(torch.cat([latents] * 2), t, encoder_hidden_states=text).sample
            uncond, cond = eps.chunk(2)
            latents = scheduler.step(uncond + 7.5 * (cond - uncond), t, latents).prev_sample
        return vae.decode(latents / 0.18215).sample

    once()
    _sync(device)
    _peak_memory_reset(device)
    start = time.perf_counter()
    for _ in range(repeats):
        once()
    _sync(device)
    seconds = (time.perf_counter() - start) / (repeats * batch_size)
    return {"pipeline": "sd15-img2img", "image_size": image_size, "batch_size": batch_size,
            "steps": steps, "strength": strength, "dtype": str(dtype).replace("torch.", ""),
            "seconds_per_image": seconds, "images_per_second": 1.0 / seconds,
            "peak_memory_mib": _peak_memory_mib(device), "random_weights": True}


def run_bench(*, preset: str, sizes: list[int], batch_sizes: list[int], device: str,
              steps: int = 10, guidance: float = 1.1, sd15: bool | None = None,
              img2img_sc: bool | None = None, repeats: int = 2, cuda_graphs: bool = False,
              compiled: bool = False, channels_last: bool = False,
              profile_dir: str | None = None, ldpc_blocks: Sequence[int] = (),
              on_result: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """All receiver timings of one invocation; SD 1.5 img2img too on CUDA (unless ``sd15`` is
    False). ``cuda_graphs``, ``compiled``, ``channels_last`` and ``profile_dir`` go to
    :func:`bench_receiver` (``compiled`` runs on the CPU too: inductor compiles C++ there); on
    the CPU ``cuda_graphs`` is ignored (nothing to capture: the rows say ``"cuda_graphs":
    false``) and ``note`` says so. A batch that runs out of GPU memory is recorded as such and
    ends that size's sweep. No ``sizes``: no receiver (nor SD 1.5, nor Img2Img-SC) timing.

    ``ldpc_blocks``: also time the classical link's bit chain (:func:`bench_ldpc_chain`, with
    ``compiled`` its BP decoder through ``torch.compile``; n = 1536, rate 1/2, 16-QAM) at these
    numbers of code blocks per call, into ``ldpc_chain``, after the receivers; out of GPU
    memory is recorded and ends that sweep.

    ``img2img_sc``: also time the Img2Img-SC link as published
    (:func:`semlink.links.img2img.bench_img2img_sc`: VAE encoding, the 64-bit floats through
    the 16-QAM bit error rate at 10 dB, 30 of 50 DDIM steps with guidance 9, VAE decoding) at
    each size with the first batch size, into ``img2img_sc``; None = wherever SD 1.5 img2img
    is timed. Random weights of SD 1.5's real UNet and VAE on CUDA, the tiny random models on
    the CPU (each row's ``model`` says which).
    ``on_result(results)`` is called after each measurement with the results so far, so a run
    cut short (a time limit, a crash) keeps what it measured.

    On the CPU a real Stable Cascade preset (hundreds of millions of parameters, meant for a GPU)
    is replaced by ``small``; the JSON then names both (``requested_preset``, ``preset``) and
    says so in ``note``.
    """
    requested = preset
    notes = []
    if device == "cpu" and sizes and get_preset(preset).shipped_weights is None:
        preset = "small"
        notes.append(f"CPU run: preset {requested!r} is timed on a CUDA device only; this run "
                     "timed the 'small' preset instead")
    elif device == "cpu" and sizes:
        notes.append("CPU run: the real presets are timed on a CUDA device only")
    if cuda_graphs and sizes and not device.startswith("cuda"):
        notes.append("cuda_graphs ignored: CUDA graphs need a CUDA device; timed eagerly")
    versions = package_versions()
    results: dict[str, Any] = {
        "device": device, "device_name": describe_device(device), "torch": torch.__version__,
        "diffusers": versions.get("diffusers", "-"), "versions": versions,
        "cuda_graphs": cuda_graphs, "compiled": compiled, "channels_last": channels_last,
        "requested_preset": requested, "preset": preset, "steps": steps, "guidance": guidance,
        "receiver": [], "sd15_img2img": [], "img2img_sc": [], "ldpc_chain": [],
        "note": "; ".join(notes),
    }
    report = on_result or (lambda _: None)
    for size in sizes:
        for batch in batch_sizes:
            try:
                results["receiver"].append(bench_receiver(
                    preset, size, batch, device=device, steps=steps, guidance=guidance,
                    repeats=repeats, cuda_graphs=cuda_graphs, compiled=compiled,
                    channels_last=channels_last, profile_dir=profile_dir))
            except torch.cuda.OutOfMemoryError:
                results["receiver"].append({"image_size": size, "batch_size": batch,
                                            "error": "out of memory"})
                torch.cuda.empty_cache()
                report(results)
                break
            report(results)
    if sd15 or (sd15 is None and device.startswith("cuda")):
        for size in sizes:
            for batch in batch_sizes[:1]:
                results["sd15_img2img"].append(
                    bench_sd15_img2img(size, batch, device=device, repeats=repeats))
                report(results)
    if img2img_sc or (img2img_sc is None and (sd15 or (sd15 is None
                                                      and device.startswith("cuda")))):
        _bench_img2img_sc(results, sizes, batch_sizes[:1], device=device, repeats=repeats,
                          report=report)
    for blocks in ldpc_blocks:
        try:
            results["ldpc_chain"].append(bench_ldpc_chain(blocks, device=device,
                                                          repeats=repeats, compiled=compiled))
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            results["ldpc_chain"].append({"batch_blocks": blocks, "error": "out of memory"})
            report(results)
            break
        report(results)
    return results


def _bench_img2img_sc(results: dict[str, Any], sizes: list[int], batch_sizes: list[int], *,
                      device: str, repeats: int,
                      report: Callable[[dict[str, Any]], None]) -> None:
    """Append the Img2Img-SC link's timings to ``results["img2img_sc"]`` (real SD 1.5 sizes on
    CUDA, the tiny models on the CPU), reporting each; out of GPU memory is recorded
    and ends that size's sweep."""
    from semlink.links.img2img import bench_img2img_sc

    model = "sd15" if device.startswith("cuda") else "tiny"
    for size in sizes:
        for batch in batch_sizes:
            try:
                row = bench_img2img_sc(size, batch, device=device, model=model,
                                       repeats=repeats)
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                results["img2img_sc"].append({"pipeline": "img2img-sc", "model": model,
                                              "image_size": size, "batch_size": batch,
                                              "error": "out of memory"})
                report(results)
                break
            results["img2img_sc"].append(row)
            report(results)
