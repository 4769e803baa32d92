"""The scenario's LDPC decoder section reaches every decoder: BER links, classical links and the
adaptive choice of MCS, digital semantic links; what iterations and check-node rules do to
the same noise draws at a waterfall point."""
from __future__ import annotations

import pytest
import torch

from semlink.channels.awgn import AWGNChannel
from semlink.modulation.ldpc import CN_UPDATES
from semlink.links.amc import select_mcs
from semlink.links.ber import simulate_ber_point
from semlink.links.decoder import decoder_settings
from semlink.links.semantic import SemanticLink
from semlink.scenario import (LDPC_CHECK_NODES, AWGNConfig, BERLinkConfig, DigitalTransmission,
                                LDPCDecoderConfig, MonteCarloConfig)
from semlink.seeding import make_generator

pytestmark = pytest.mark.usefixtures("one_thread")

MC = MonteCarloConfig(target_bit_errors=1, min_bits=100_000, max_bits=100_000,
                      batch_bits=20_000)


def _block_errors(decoder: LDPCDecoderConfig | None) -> int:
    link = BERLinkConfig(type="ber", modulation=4, code_rate=0.5, codeword_length=1024,
                         decoder=decoder)
    return simulate_ber_point(link, AWGNConfig(type="awgn"), 1.5, snr_kind="esno",
                              monte_carlo=MC, seed=3, device="cpu").block_errors


def test_iterations_and_check_node_rules_reach_the_ber_decoder():
    """QPSK rate 1/2 at 1.5 dB, the same 205 blocks and noise each time: one iteration
    decodes nothing, 20 (the default) lose 18, 50 lose 2; offset min-sum loses more than the
    exact rule (32), and boxplus-phi, the exact rule in the log domain, the same 18."""
    default = _block_errors(None)
    assert default == _block_errors(LDPCDecoderConfig()) == 18
    assert _block_errors(LDPCDecoderConfig(iterations=1)) == 205
    assert _block_errors(LDPCDecoderConfig(iterations=50)) < default / 3
    assert _block_errors(LDPCDecoderConfig(check_node="offset-minsum")) > 1.4 * default
    assert _block_errors(LDPCDecoderConfig(check_node="boxplus-phi")) == default


def test_the_schemas_rules_are_the_decoders():
    assert tuple(LDPC_CHECK_NODES) == tuple(CN_UPDATES)
    assert decoder_settings(LDPCDecoderConfig(iterations=7, check_node="offset-minsum")) == {
        "num_iter": 7, "cn_update": "offset-minsum"}


def test_amc_estimates_the_blers_with_the_links_decoder():
    """Adaptive MCS at 6 dB over AWGN for 288 channel uses of a 64 px image: the entry that
    meets a 10 % BLER with 20 decoder iterations misses it with one, so the choice falls to a
    smaller frame, or to none that meets the target."""
    kwargs = dict(channel_config=AWGNConfig(type="awgn"), seed=1, device="cpu")
    good = select_mcs(288, (64, 64), 6.0, **kwargs)
    weak = select_mcs(288, (64, 64), 6.0, num_iter=1, **kwargs)
    assert good.meets_target
    assert (not weak.meets_target) or weak.estimate.payload_bytes < good.estimate.payload_bytes


def test_digital_semantic_link_uses_its_decoder():
    """A digital embedding (6 bits per value, 16-QAM rate 1/2) at 7 dB: 20 iterations deliver
    every code block, a single one loses most of them."""
    z = torch.randn(2, 16, 6, 6, generator=torch.Generator().manual_seed(0))
    errors = {}
    for iterations in (1, 20):
        tx = DigitalTransmission(mode="digital", bits_per_value=6, clip=[-4, 4], modulation=16,
                                 code_rate=0.5, decoder=LDPCDecoderConfig(iterations=iterations))
        link = SemanticLink(preset="small", image_size=256, transmission=tx)
        sent = link.send(z, AWGNChannel(generator=make_generator(4)), 7.0)
        errors[iterations] = int(sent.block_errors.sum())
    assert errors[20] == 0 and errors[1] > link.code_plan.num_blocks


def test_a_scenarios_classical_link_is_built_with_its_decoder():
    """The task runner hands the link's decoder section to the classical link: at 10 dB over
    AWGN the 16-QAM rate-1/2 frames of 64 px images arrive with 20 iterations and not with
    one."""
    from pathlib import Path

    from semlink.scenario import parse_scenario
    from semlink.tasks import TaskRunner

    failed = {}
    for iterations in (1, 20):
        scenario = parse_scenario(f"""\
name: d
device: cpu
images: {{source: sample, size: 64, count: 2}}
snr: {{points_db: [10]}}
links:
  j: {{type: classical, bandwidth: {{channel_uses: 288}}, decoder: {{iterations: {iterations}}}}}
""")
        link = TaskRunner(scenario, base_dir=Path.cwd(), device="cpu").link("j")
        images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
        out = link.send(images, AWGNChannel(generator=make_generator(1)), 10.0)
        failed[iterations] = int(out.failed.sum())
    assert failed == {1: 2, 20: 0}
