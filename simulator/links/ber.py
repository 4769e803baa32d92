"""BER link: random bits -> (CRC + 5G LDPC) -> QAM -> channel -> LLRs -> (decoder), counted.

One call simulates one SNR point until the Monte-Carlo stop rule holds and returns error *counts*
(not rates), so points merge and resume by adding. A coded link with ``harq`` resends each code
block whose CRC fails (Chase combining or incremental redundancy), and counts the sends and
channel uses, from which the summary gives its throughput.

:class:`BERLink` is the ``ber`` link of the protocol (:class:`~semlink.links.protocol.BitLink`).
"""
from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

import torch

from semlink.channels.ofdm import OFDMSISOChannel
from semlink.channels.phase_tracking import PhaseTrackingChannel, pilot_overhead
from semlink.channels.snr import ebno_db_to_esno_db, esno_db_to_ebno_db
from semlink.modulation.ldpc import (CodeBlockDecoder, CodeBlockEncoder, information_bits_per_block,
                             plan_code_blocks)
from semlink.modulation.qam import QAMDemapper, QAMMapper, bits_per_symbol_for_order
from semlink.channel import build_channel
from semlink.error_rates import effective_errors
from semlink.links.decoder import decoder_settings
from semlink.links.harq import harq_settings, retransmit
from semlink.scenario import BERLinkConfig, ChannelConfig, MonteCarloConfig
from semlink.seeding import make_generator
from semlink.stage_times import StageTimer

if TYPE_CHECKING:
    from semlink.links.protocol import LinkContext

__all__ = ["BERCounts", "BERLink", "ber_link_rate", "data_energy_share", "simulate_ber_point"]


@dataclasses.dataclass(frozen=True)
class BERCounts:
    """Error counts of one SNR point. Blocks are LDPC code blocks (coded) or rows (uncoded);
    errors are those left after the last transmission (HARQ). ``transmissions`` counts every
    send of every block (``blocks`` without HARQ) and ``channel_uses`` the complex channel uses
    they took; ``transmissions_squared`` sums each block's sends squared and
    ``delivered_transmissions`` the sends of the blocks delivered without error, the moments
    the throughput's interval needs (:func:`semlink.summary.throughput_interval`).
    ``units`` are the independent units the errors were counted in, the rows (``blocks``: each
    row is its own draw of the channel), and ``bit_errors_squared`` sums each row's bit errors
    squared, the moment the BER's interval and stop rule need
    (:mod:`semlink.error_rates`)."""

    bits: int
    bit_errors: int
    blocks: int
    block_errors: int
    esno_db: float
    ebno_db: float
    transmissions: int
    channel_uses: int
    transmissions_squared: int
    delivered_transmissions: int
    units: int
    bit_errors_squared: int


def ber_link_rate(link: BERLinkConfig) -> tuple[int, int, float]:
    """``(bits_per_symbol, codeword_bits, payload_rate)`` of a BER link.

    The codeword length is rounded down to a multiple of bits per symbol; the payload rate counts
    the CRC as overhead (it is what Eb/N0 refers to).
    """
    bits_per_symbol = bits_per_symbol_for_order(link.modulation)
    n = link.codeword_length - link.codeword_length % bits_per_symbol
    if link.code_rate is None:
        return bits_per_symbol, n, 1.0
    plan = _plan(link, n)
    return bits_per_symbol, n, plan.effective_rate


def _plan(link: BERLinkConfig, n: int):
    k = information_bits_per_block(link.code_rate, n)
    return plan_code_blocks(k - 24, n=n, k=k)


def data_energy_share(channel, symbols: int) -> float:
    """The share of a row's transmitted energy that its ``symbols`` data symbols carry.

    Pilots are sent at the data's mean power: a single-carrier phase tracker's blocks
    (:func:`semlink.channels.phase_tracking.pilot_overhead`); on OFDM the pilot symbols and PT-RS of
    every slot the row takes (its padding carries nothing), and the cyclic prefix, which
    repeats ``cp`` of every ``N`` samples: ``N / (N + cp)`` of a symbol's energy is its own.

    :param channel: A channel block built from a scenario
        (:func:`semlink.channel.build_channel`).
    :param symbols: int >= 1; data symbols per row.
    :output: float in (0, 1].
    """
    if isinstance(channel, PhaseTrackingChannel):
        return 1.0 - pilot_overhead(symbols, channel.pilot_spacing, channel.pilot_length)
    if isinstance(channel, OFDMSISOChannel):
        grid = channel.resource_grid
        pilots = (grid.num_ofdm_symbols * grid.num_effective_subcarriers
                  - channel.num_data_symbols)
        sent = symbols + channel.num_slots(symbols) * pilots
        return symbols / sent * grid.fft_size / (grid.fft_size + grid.cyclic_prefix_length)
    return 1.0


def simulate_ber_point(link: BERLinkConfig, channel: ChannelConfig, snr_db: float, *,
                       snr_kind: str, monte_carlo: MonteCarloConfig, seed: int,
                       device: str, timer: StageTimer | None = None) -> BERCounts:
    """Simulate one SNR point of a BER link.

    :param snr_db: SNR in dB, Es/N0 (``snr_kind="esno"``) or Eb/N0 (``"ebno"``, per payload bit;
        the energy of the CRC, of pilots and of OFDM's cyclic prefix counted too:
        :func:`data_energy_share`).
    :param monte_carlo: Stop when the effective bit errors reach ``target_bit_errors`` (and,
        for coded links, ``block_errors >= target_block_errors``) once ``min_bits`` are
        simulated, or at ``max_bits``. Effective errors are the bit errors over their design
        effect across the rows (:func:`semlink.error_rates.effective_errors`): all of them
        where errors are independent, about the number of rows in error where a row's errors
        come together (a fade, an OFDM slot, a failed code block). Checked after each batch.
    :param seed: Seeds the bit source, fading and noise.
    :param timer: Where the point's seconds per stage go (:mod:`semlink.stage_times`): set-up,
        payload, encoding and mapping as ``transmit``, the channel's calls as ``channel``,
        demapping, decoding and resends as ``receive``, error counting as ``metrics``. None:
        not kept.
    """
    timer = StageTimer() if timer is None else timer  # a CPU timer reads a clock, nothing else
    timer.switch("transmit")
    bits_per_symbol, n, rate = ber_link_rate(link)
    gen = make_generator(seed, device)
    mapper = QAMMapper(bits_per_symbol=bits_per_symbol, check_values=False, device=device)
    demapper = QAMDemapper(bits_per_symbol=bits_per_symbol, method=link.demapping,
                           check_values=False, device=device)
    block = build_channel(channel, generator=gen, device=device)
    # Eb/N0 charges every bit with the energy sent for it: pilots and the cyclic prefix too.
    rate *= data_energy_share(block, n // bits_per_symbol)
    chan = timer.timed(block)
    if snr_kind == "ebno":
        esno_db, ebno_db = ebno_db_to_esno_db(snr_db, bits_per_symbol, rate), snr_db
    else:
        esno_db, ebno_db = snr_db, esno_db_to_ebno_db(snr_db, bits_per_symbol, rate)
    coded = link.code_rate is not None
    if coded:
        encoder = CodeBlockEncoder(_plan(link, n), bits_per_symbol=bits_per_symbol,
                                   check_values=False, device=device)
        decoder = CodeBlockDecoder(encoder, **decoder_settings(link.decoder), device=device)
        payload_bits = encoder.plan.num_payload_bits
    else:
        payload_bits = n
    rows = max(1, math.ceil(monte_carlo.batch_bits / payload_bits))
    bits = bit_errors = blocks = block_errors = transmissions = squared = delivered = 0
    bit_errors_squared = 0
    while True:
        timer.switch("transmit")
        source = torch.randint(0, 2, (rows, payload_bits), generator=gen, device=device)
        source = source.to(torch.float32)
        sent = encoder(source) if coded else source
        x = mapper(sent)
        x_hat, no_eff = chan(x, esno_db)
        llr = demapper(x_hat, no_eff)
        if coded:
            received, ok = decoder(llr)
            sends = retransmit(
                **harq_settings(link.harq), bits=source, x=x, x_hat=x_hat, no_eff=no_eff,
                received=received, block_ok=ok, channel=chan, snr_db=esno_db, encoder=encoder,
                mapper=mapper, demapper=demapper, decoder=decoder).transmissions  # [rows]
        else:
            received = (llr > 0).to(torch.float32)
            sends = torch.ones(rows, dtype=torch.int64, device=device)
        timer.switch("metrics")
        errors = received != source  # [rows, payload_bits]
        failed = errors.any(dim=1)  # [rows]; a row is one code block
        transmissions += int(sends.sum())
        squared += int(sends.square().sum())
        delivered += int(sends[~failed].sum())
        per_row = errors.sum(dim=1)  # [rows], int64
        bits += errors.numel()
        bit_errors += int(per_row.sum())
        bit_errors_squared += int(per_row.square().sum())
        blocks += rows
        block_errors += int(failed.sum())
        enough = effective_errors(bit_errors, bits, blocks, bit_errors_squared) >= \
            monte_carlo.target_bit_errors and \
            (not coded or block_errors >= monte_carlo.target_block_errors)
        if bits >= monte_carlo.max_bits or (enough and bits >= monte_carlo.min_bits):
            break
    return BERCounts(bits=bits, bit_errors=bit_errors, blocks=blocks, block_errors=block_errors,
                     esno_db=float(esno_db), ebno_db=float(ebno_db),
                     transmissions=transmissions,
                     channel_uses=transmissions * (n // bits_per_symbol),
                     transmissions_squared=squared, delivered_transmissions=delivered,
                     units=blocks, bit_errors_squared=bit_errors_squared)


class BERLink:
    """A scenario's ``ber`` section as a built link: its code blocks planned (a setting no 5G
    LDPC code has fails here, before any task), its points simulated by
    :func:`simulate_ber_point`.

    :param config: The ``ber`` section.
    :param context: Where it runs: the scenario's channel section and the device.
    """

    kind = "bits"

    def __init__(self, config: BERLinkConfig, context: LinkContext) -> None:
        ber_link_rate(config)  # plans the code blocks
        self.config = config
        self.channel = context.channel
        self.device = context.device

    def simulate(self, snr_db: float, *, snr_kind: str, monte_carlo: MonteCarloConfig,
                 seed: int, timer: StageTimer | None = None) -> dict[str, Any]:
        """One SNR point (:func:`simulate_ber_point`, its seconds per stage into ``timer``):
        the ``ber`` row's ``modulation``, ``code_rate`` (NaN uncoded) and counts."""
        counts = simulate_ber_point(self.config, self.channel, snr_db, snr_kind=snr_kind,
                                    monte_carlo=monte_carlo, seed=seed, device=self.device,
                                    timer=timer)
        code_rate = self.config.code_rate
        return {"modulation": self.config.modulation,
                "code_rate": float("nan") if code_rate is None else code_rate,
                **dataclasses.asdict(counts)}
