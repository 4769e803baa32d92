"""5G NR LDPC channel coding with one CRC per code block: segmentation plan, encoder, decoder.

A payload of arbitrary length is cut into ``num_blocks`` code blocks of
``payload_bits_per_block = k - 24`` bits; the last block is completed with zero filler bits
(counted in :attr:`CodeBlockPlan.num_filler_bits`, never hidden). Each block gets its own 24-bit
CRC (3GPP TS 38.212 Sec. 5.1, CRC24A by default) and is encoded by Sionna's 5G NR LDPC encoder
with rate matching to ``n`` bits (TS 38.212 Sec. 5.3.2 and 5.4.2, redundancy version 0).

Differences from TS 38.212 code block segmentation (Sec. 5.2.2), on purpose: there is no
transport-block CRC on top of the per-block CRCs, all blocks share one ``k`` and ``n``, and the
filler bits go to the end of the last block (they are transmitted, not LDPC filler bits).
"""
from __future__ import annotations

import dataclasses
import functools
import math
from fractions import Fraction

import torch
from sionna.phy import Block
from sionna.phy.fec.crc import CRCDecoder, CRCEncoder
from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder

from semlink.channels._checks import check_int, check_one_of, check_type, sionna_device

__all__ = [
    "CRC_TYPES",
    "CRC_LENGTH",
    "MIN_CODE_RATE",
    "REDUNDANCY_VERSIONS",
    "MAX_CODE_RATE",
    "MAX_BLOCK_INFO_BITS",
    "CN_UPDATES",
    "CodeBlockPlan",
    "information_bits_per_block",
    "plan_code_blocks",
    "CodeBlockEncoder",
    "CodeBlockDecoder",
]

#: 24-bit CRCs of TS 38.212 Sec. 5.1 offered per code block.
CRC_TYPES: tuple[str, ...] = ("CRC24A", "CRC24B")
#: CRC parity bits per code block.
CRC_LENGTH = 24
#: Lowest LDPC rate k/n without repetition (base graph 2, TS 38.212).
MIN_CODE_RATE = 1 / 5
#: Highest LDPC rate k/n allowed by TS 38.212 Sec. 5.4.2.1.
MAX_CODE_RATE = 948 / 1024
#: Check-node updates of Sionna's BP decoder offered here (plain min-sum is left out: worse).
CN_UPDATES: tuple[str, ...] = ("boxplus", "boxplus-phi", "offset-minsum")
#: Redundancy versions of a 5G LDPC code block, in the order HARQ sends them (TS 38.321).
REDUNDANCY_VERSIONS: tuple[int, ...] = (0, 2, 3, 1)

#: Most information bits (CRC included) of one code block: k of base graph 1.
MAX_BLOCK_INFO_BITS = 8448
# Exact rates for the bounds on k and n: 1/5 as a float is a hair above 1/5, and n = k / 0.2
# can land one bit short.
_MIN_RATE, _MAX_RATE = Fraction(1, 5), Fraction(948, 1024)


def information_bits_per_block(code_rate: float, n: int) -> int:
    """``k``, the information bits (CRC included) of a code block of ``n`` bits at
    ``code_rate``: ``round(code_rate * n)``, kept within the rates 5G LDPC allows.

    Rounding alone can step over a bound: at the highest rate 948/1024 and n = 2000,
    ``round(1851.56) = 1852`` is a rate of 0.926 > 0.92578; ``k`` is then 1851.

    :param code_rate: float in [MIN_CODE_RATE, MAX_CODE_RATE].
    :param n: int >= 1; codeword bits per block.
    :output k: int with ``MIN_CODE_RATE <= k / n <= MAX_CODE_RATE``.

    >>> information_bits_per_block(948 / 1024, 2000), information_bits_per_block(0.5, 2048)
    (1851, 1024)
    """
    return min(max(round(code_rate * n), math.ceil(_MIN_RATE * n)), math.floor(_MAX_RATE * n))


@functools.lru_cache(maxsize=64)
def _ldpc_structure(k: int, n: int) -> tuple[str, int, int]:
    """(base graph, lifting size Z, compressed circular buffer length) of Sionna's (k, n) code.

    Sionna is the single source of truth for base-graph and lifting selection; its errors are
    re-raised naming ``k`` and ``n``.
    """
    try:
        enc = LDPC5GEncoder(k, n, device="cpu")
    except ValueError as err:
        raise ValueError(f"`k`, `n` must form a 5G NR LDPC code; got k={k!r}, n={n!r} "
                         f"(Sionna: {err})") from None
    base_graph = "bg1" if enc.n_ldpc == 68 * enc.z else "bg2"  # 68 (bg1) or 52 (bg2) columns
    return base_graph, enc.z, enc.n_cb_comp


@dataclasses.dataclass(frozen=True)
class CodeBlockPlan:
    """Segmentation of a payload into CRC-protected 5G LDPC code blocks (all sizes in bits).

    Construct with :func:`plan_code_blocks` or directly from ``(num_payload_bits, k, n)``;
    everything else is derived and checked in ``__post_init__``.

    :param num_payload_bits: int >= 1; payload bits to carry.
    :param k: int in [25, 8448]; LDPC information bits per block, CRC included.
    :param n: int; codeword bits per block after rate matching, with
        ``MIN_CODE_RATE <= k / n <= MAX_CODE_RATE`` and no repetition
        (``n <= ldpc_buffer_bits``, implied by the rate bounds).
    :param crc_type: "CRC24A" (default) or "CRC24B"; CRC attached to every block.
    :ivar crc_length: 24, CRC bits per block.
    :ivar payload_bits_per_block: ``k - crc_length``.
    :ivar num_blocks: ``ceil(num_payload_bits / payload_bits_per_block)``.
    :ivar num_filler_bits: zeros appended to the payload in the last block,
        ``num_blocks * payload_bits_per_block - num_payload_bits``.
    :ivar num_coded_bits: ``num_blocks * n``; transmitted bits.
    :ivar code_rate: ``k / n``, LDPC rate of one block (CRC bits count as information).
    :ivar effective_rate: ``num_payload_bits / num_coded_bits``; use it for Eb/N0.
    :ivar base_graph: "bg1" or "bg2", chosen as in TS 38.212 Sec. 7.2.2.
    :ivar lifting_size: Z of TS 38.212 Table 5.3.2-1.
    :ivar ldpc_buffer_bits: compressed circular buffer length; the largest ``n``.
    :raises TypeError: If an argument has the wrong type.
    :raises ValueError: If ``k``, ``n`` or ``num_payload_bits`` is out of range, or
        ``(k, n)`` is not a 5G NR LDPC code; the message names the parameter.

    >>> p = CodeBlockPlan(num_payload_bits=3000, k=1000, n=2000)
    >>> p.num_blocks, p.num_filler_bits, p.num_coded_bits
    (4, 904, 8000)
    """

    num_payload_bits: int
    k: int
    n: int
    crc_type: str = "CRC24A"
    crc_length: int = dataclasses.field(init=False)
    payload_bits_per_block: int = dataclasses.field(init=False)
    num_blocks: int = dataclasses.field(init=False)
    num_filler_bits: int = dataclasses.field(init=False)
    num_coded_bits: int = dataclasses.field(init=False)
    code_rate: float = dataclasses.field(init=False)
    effective_rate: float = dataclasses.field(init=False)
    base_graph: str = dataclasses.field(init=False)
    lifting_size: int = dataclasses.field(init=False)
    ldpc_buffer_bits: int = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        check_int(self.num_payload_bits, name="num_payload_bits", low=1)
        check_int(self.k, name="k", low=CRC_LENGTH + 1, high=MAX_BLOCK_INFO_BITS)
        check_type(self.n, int, name="n")
        n_low = math.ceil(self.k / _MAX_RATE)
        n_high = math.floor(self.k / _MIN_RATE)
        if not n_low <= self.n <= n_high:
            raise ValueError(f"`n` must be in [{n_low}, {n_high}] for k={self.k} "
                             f"(rate k/n in [{MIN_CODE_RATE}, {MAX_CODE_RATE}]); got {self.n!r}.")
        check_type(self.crc_type, str, name="crc_type")
        check_one_of(self.crc_type, CRC_TYPES, name="crc_type")
        base_graph, z, buffer_bits = _ldpc_structure(self.k, self.n)
        # 10 Z >= k (bg2) and 22 Z >= k (bg1, rate >= 1/3) leave room for n <= 5 k (3 k): the
        # rate matching never repeats bits, which Sionna's decoder would not undo.
        assert self.n <= buffer_bits, (self.k, self.n, buffer_bits)
        b = self.k - CRC_LENGTH
        num_blocks = -(-self.num_payload_bits // b)
        derived = {
            "crc_length": CRC_LENGTH,
            "payload_bits_per_block": b,
            "num_blocks": num_blocks,
            "num_filler_bits": num_blocks * b - self.num_payload_bits,
            "num_coded_bits": num_blocks * self.n,
            "code_rate": self.k / self.n,
            "effective_rate": self.num_payload_bits / (num_blocks * self.n),
            "base_graph": base_graph,
            "lifting_size": z,
            "ldpc_buffer_bits": buffer_bits,
        }
        for name, value in derived.items():
            object.__setattr__(self, name, value)


def plan_code_blocks(num_payload_bits: int, *, n: int, code_rate: float | None = None,
                     k: int | None = None, crc_type: str = "CRC24A") -> CodeBlockPlan:
    """Plan the code blocks for ``num_payload_bits`` bits at block length ``n``.

    Give exactly one of ``code_rate`` and ``k``. With ``code_rate``,
    ``k = information_bits_per_block(code_rate, n)`` (CRC included, ``round(code_rate * n)``
    within the allowed rates); the exact LDPC rate ``k / n`` and the
    payload rate are reported in the plan (``code_rate``, ``effective_rate``).

    :param num_payload_bits: int >= 1; payload bits.
    :param n: int; codeword bits per block (e.g. 2048).
    :param code_rate: float in [MIN_CODE_RATE, MAX_CODE_RATE], e.g. 1/3, 1/2, 2/3, 3/4, 5/6.
    :param k: int in [25, 8448]; info bits per block including the CRC.
    :param crc_type: "CRC24A" (default) or "CRC24B".
    :output plan: :class:`CodeBlockPlan`.
    :raises TypeError: If an argument has the wrong type.
    :raises ValueError: If both or neither of ``code_rate`` and ``k`` are given, or any value is
        out of range (message names the parameter).

    >>> plan_code_blocks(1000, n=2048, code_rate=0.5).num_blocks
    1
    """
    if (code_rate is None) == (k is None):
        raise ValueError(f"Exactly one of `code_rate` and `k` must be given; "
                         f"got code_rate={code_rate!r}, k={k!r}.")
    check_int(n, name="n", low=1)
    if code_rate is not None:
        check_type(code_rate, (int, float), name="code_rate")
        if not MIN_CODE_RATE <= code_rate <= MAX_CODE_RATE:  # NaN fails too
            raise ValueError(f"`code_rate` must be in [{MIN_CODE_RATE}, {MAX_CODE_RATE}]; "
                             f"got {code_rate!r}.")
        k = information_bits_per_block(code_rate, n)
    return CodeBlockPlan(num_payload_bits=num_payload_bits, k=k, n=n, crc_type=crc_type)


class CodeBlockEncoder(Block):
    """Segment payload bits into blocks, attach a CRC to each and 5G-LDPC-encode them.

    :param plan: :class:`CodeBlockPlan`.
    :param bits_per_symbol: None (default) or int dividing ``plan.n``; if given, apply the
        TS 38.212 Sec. 5.4.2.2 bit interleaver for that QAM order to every codeword.
    :param check_values: bool, default True; check per call that the payload is 0/1
        (device sync).
    :input bits: [..., num_payload_bits], float, 0/1.
    :input rv: int in 0..3 or None (default: 0); the redundancy version (TS 38.212 Table
        5.4.2.1-2): where in each block's circular buffer its ``n`` coded bits start. Versions
        other than 0 are the retransmissions of HARQ with incremental redundancy.
    :output codewords: [..., num_blocks * n], float, 0/1; block ``i`` occupies
        ``[i * n, (i + 1) * n)``.
    :raises ValueError: On a wrong last dimension or (when checked) non-binary bits.

    >>> enc = CodeBlockEncoder(plan_code_blocks(100, n=200, code_rate=0.5))  # 2 blocks of 76
    >>> enc(torch.zeros(3, 100)).shape
    torch.Size([3, 400])
    """

    def __init__(self, plan: CodeBlockPlan, *, bits_per_symbol: int | None = None,
                 check_values: bool = True, precision: str | None = None,
                 device: str | None = None) -> None:
        device = sionna_device(device)  # Sionna names CUDA devices cuda:N only
        super().__init__(precision=precision, device=device)
        check_type(plan, CodeBlockPlan, name="plan")
        check_type(check_values, bool, name="check_values")
        if bits_per_symbol is not None:
            check_int(bits_per_symbol, name="bits_per_symbol", low=1)
            if plan.n % bits_per_symbol != 0:
                raise ValueError(f"`bits_per_symbol` must divide n={plan.n}; "
                                 f"got {bits_per_symbol!r}.")
        self._plan = plan
        self._bits_per_symbol = bits_per_symbol
        self._check_values = check_values
        self._crc_encoder = CRCEncoder(plan.crc_type, k=plan.payload_bits_per_block,
                                       precision=precision, device=device)
        self._ldpc_encoder = LDPC5GEncoder(plan.k, plan.n, num_bits_per_symbol=bits_per_symbol,
                                           check_input=False, precision=precision,
                                           device=device)

    @property
    def plan(self) -> CodeBlockPlan:
        """The segmentation plan."""
        return self._plan

    @property
    def bits_per_symbol(self) -> int | None:
        """QAM order of the output bit interleaver, None if not interleaved."""
        return self._bits_per_symbol

    @property
    def crc_encoder(self) -> CRCEncoder:
        """Sionna CRC encoder for one block's payload (shared with the decoder)."""
        return self._crc_encoder

    @property
    def ldpc_encoder(self) -> LDPC5GEncoder:
        """Sionna 5G LDPC encoder for one block (shared with the decoder)."""
        return self._ldpc_encoder

    def call(self, bits: torch.Tensor, *, rv: int | None = None) -> torch.Tensor:
        p = self._plan
        if bits.is_complex() or bits.dim() == 0 or bits.shape[-1] != p.num_payload_bits:
            raise ValueError(f"`bits` must be real with last dimension num_payload_bits="
                             f"{p.num_payload_bits}; got shape {tuple(bits.shape)}, "
                             f"dtype {bits.dtype}.")
        if self._check_values and not bool(torch.all((bits == 0) | (bits == 1))):
            raise ValueError("`bits` must contain only 0 and 1.")
        lead = bits.shape[:-1]
        bits = torch.nn.functional.pad(bits, (0, p.num_filler_bits))  # zeros at the end
        blocks = bits.reshape(*lead, p.num_blocks, p.payload_bits_per_block)
        blocks = self._crc_encoder(blocks)  # [..., num_blocks, k]
        if rv is None:
            cw = self._ldpc_encoder(blocks)  # [..., num_blocks, n]
        else:
            check_one_of(rv, REDUNDANCY_VERSIONS, name="rv")
            cw = self._ldpc_encoder(blocks, rv=[rv])[..., 0, :]
        return cw.reshape(*lead, p.num_coded_bits)


class CodeBlockDecoder(Block):
    """Belief-propagation decoding of every code block and CRC check of each.

    :param encoder: The :class:`CodeBlockEncoder` whose codewords are decoded (its plan,
        interleaver and CRC are reused).
    :param num_iter: int >= 1, default 20; BP iterations (flooding schedule, no early stop).
    :param cn_update: Check-node rule, one of :data:`CN_UPDATES`; default "boxplus" (exact
        sum-product via tanh, faster than Sionna's default "boxplus-phi" on CPU).
    :input llr: [..., num_blocks * n], float; channel LLRs with Sionna's sign,
        ``llr = log P(b=1) / P(b=0)`` (what :class:`~semlink.modulation.qam.QAMDemapper` outputs); with
        ``rv``, [..., len(rv), num_blocks * n]: the LLRs of every transmission.
    :input rv: list of int in 0..3, or None (default: one transmission of version 0); the
        redundancy version of each transmission in ``llr``, whose LLRs the decoder adds in
        each block's circular buffer (HARQ with incremental redundancy; a version sent twice
        adds up like Chase combining).
    :output bits: [..., num_payload_bits], float, 0/1; hard-decided payload (filler removed).
    :output block_ok: [..., num_blocks], bool; CRC of each decoded block matches.
    :raises ValueError: On a wrong last dimension of ``llr``.
    """

    def __init__(self, encoder: CodeBlockEncoder, *, num_iter: int = 20,
                 cn_update: str = "boxplus", precision: str | None = None,
                 device: str | None = None) -> None:
        device = sionna_device(device)  # Sionna names CUDA devices cuda:N only
        super().__init__(precision=precision, device=device)
        check_type(encoder, CodeBlockEncoder, name="encoder")
        check_int(num_iter, name="num_iter", low=1)
        check_type(cn_update, str, name="cn_update")
        check_one_of(cn_update, CN_UPDATES, name="cn_update")
        self._plan = encoder.plan
        self._ldpc_decoder = LDPC5GDecoder(encoder.ldpc_encoder, cn_update=cn_update,
                                           num_iter=num_iter, hard_out=True,
                                           return_infobits=True, precision=precision,
                                           device=device)
        self._crc_decoder = CRCDecoder(encoder.crc_encoder, precision=precision, device=device)
        # Sionna's HARQ decoder, built on first use: a decoder of one version keeps its path.
        self._harq = dict(encoder=encoder.ldpc_encoder, cn_update=cn_update, num_iter=num_iter,
                          hard_out=True, return_infobits=True, harq_mode=True,
                          precision=precision, device=device)
        self._harq_decoder: LDPC5GDecoder | None = None

    @property
    def plan(self) -> CodeBlockPlan:
        """The segmentation plan."""
        return self._plan

    def call(self, llr: torch.Tensor, *, rv: list[int] | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
        p = self._plan
        if llr.is_complex() or llr.dim() == 0 or llr.shape[-1] != p.num_coded_bits:
            raise ValueError(f"`llr` must be real with last dimension num_blocks * n="
                             f"{p.num_coded_bits}; got shape {tuple(llr.shape)}, "
                             f"dtype {llr.dtype}.")
        if rv is None:
            lead = llr.shape[:-1]
            blocks = self._ldpc_decoder(llr.reshape(-1, p.n))  # [batch * num_blocks, k], 0/1
        else:
            rv = list(rv)
            for version in rv:
                check_one_of(version, REDUNDANCY_VERSIONS, name="rv")
            if llr.dim() < 2 or llr.shape[-2] != len(rv):
                raise ValueError(f"`llr` must be [..., len(rv) = {len(rv)}, "
                                 f"{p.num_coded_bits}]; got shape {tuple(llr.shape)}.")
            if self._harq_decoder is None:
                self._harq_decoder = LDPC5GDecoder(**self._harq)
            lead = llr.shape[:-2]
            per_block = llr.reshape(-1, len(rv), p.num_blocks, p.n).transpose(1, 2)
            blocks = self._harq_decoder(per_block.reshape(-1, len(rv), p.n), rv=rv)
        payload, ok = self._crc_decoder(blocks)  # [., k - 24], [., 1]
        bits = payload.reshape(*lead, p.num_blocks * p.payload_bits_per_block)
        bits = bits[..., :p.num_payload_bits]
        return bits, ok.reshape(*lead, p.num_blocks)
