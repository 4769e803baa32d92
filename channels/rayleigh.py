"""Rayleigh flat fading, block-wise or time-correlated (Jakes Doppler spectrum), with coherent
equalisation, perfect or imperfect CSI, one or more receive antennas (maximum-ratio
combining) and one or two transmit antennas (Alamouti's space-time block code)."""
from __future__ import annotations

import math

import torch
from sionna.phy import Block

from semlink.channels._checks import check_int, check_one_of, check_type, sionna_device
from semlink.channels._common import check_generator, check_symbols_and_snr
from semlink.channels.doppler import check_normalized_doppler, jakes_process
from semlink.channels.snr import mean_power

__all__ = ["RayleighChannel"]

EQUALIZERS = ("zf", "mmse")


class RayleighChannel(Block):
    r"""Rayleigh block-fading channel, coherent equalisation with the receiver's CSI.

    ``y_i = h_i x_i + n_i`` with ``n_i ~ CN(0, N0)``, ``N0 = mean(|x|^2 over the row) /
    10^(snr_db/10)``, and ``h_i ~ CN(0, 1)`` (``E|h|^2 = 1``, so the mean received SNR is
    ``snr_db``). Fading is block-wise: each row is cut into consecutive blocks of
    ``coherence_symbols`` symbols (the last one possibly shorter) and every block gets its own
    independent coefficient. ``coherence_symbols=1`` is fast (i.i.d.) fading; a value
    ``>= n`` gives one coefficient per row (quasi-static fading).

    With ``normalized_doppler = nu`` instead, the coefficients vary from symbol to symbol as a
    terminal moving through isotropic scattering sees them: each row (and antenna) is a
    Rayleigh process with the Jakes autocorrelation ``J0(2 pi nu k)`` at a lag of ``k`` symbols,
    ``nu = f_D T_s`` (:func:`semlink.channels.doppler.jakes_process`; every coefficient is still
    CN(0, 1)). Then ``coherence_symbols`` must be 1, and a channel-estimation error is drawn
    per symbol.

    Equalisation with the true ``h`` (perfect CSI):

    - ``"zf"``: ``x_hat = y / h``, ``no_eff = N0 / |h|^2``.
    - ``"mmse"``: the *unbiased* LMMSE estimate (Sionna's convention for its equalisers).
      The biased estimate ``x_b = conj(h) y / (|h|^2 + N0/Es)`` has mean ``beta x`` with
      ``beta = |h|^2 / (|h|^2 + N0/Es)``; dividing by ``beta`` gives ``x_hat = y / h`` and
      ``no_eff = Es (1/beta - 1) = N0 / |h|^2``. For a single tap this is identical to ZF,
      so both options return the same tensors; ``"mmse"`` exists so that scenarios can name
      the equaliser they mean and so that it matches the OFDM model's LMMSE equaliser.

    ``x_hat = x + e`` with ``e ~ CN(0, no_eff)`` given ``h``, which is what a demapper expects.

    With ``num_rx_antennas = A > 1`` (receive diversity, SIMO) every antenna ``a`` sees its own
    independent coefficient ``h_{a,i}`` (same blocks) and noise, each at the mean SNR
    ``snr_db``, and the receiver combines them by maximum-ratio combining, the optimal linear
    combiner with perfect CSI: ``x_hat = sum_a conj(h_a) y_a / sum_a |h_a|^2``, ``no_eff = N0 /
    sum_a |h_a|^2`` (ZF and unbiased LMMSE are again the same). ``A = 1`` draws exactly the
    numbers it always did.

    With ``num_tx_antennas = 2`` the transmitter sends Alamouti's space-time block code: each
    pair of symbols ``(s1, s2)`` takes two channel uses, antenna 1 sending ``s1, -conj(s2)``
    and antenna 2 ``s2, conj(s1)``, each at half the power (the total is the row's); every
    (receive, transmit) antenna pair has its own coefficient. Per pair and receive antenna the
    receiver stacks ``y1`` and ``conj(y2)`` into ``z = H s + n`` with ``H = [[h11, h21],
    [conj(h12'), -conj(h11')]] / sqrt(2)`` (``'``: the second channel use) and equalises all
    antennas' rows jointly: ZF, ``s_hat = (H^H H)^-1 H^H z``, ``no_eff = N0 diag((H^H
    H)^-1)``, or the unbiased LMMSE. Where a pair sees one coefficient per antenna pair (blocks
    of an even number of symbols) ``H`` has orthogonal columns and this is Alamouti's
    combining, ``no_eff = 2 N0 / sum |h|^2``: the diversity of ``2 A`` branches at half the SNR
    each, for the same channel uses. Under faster fading the columns are no longer orthogonal
    and the equaliser pays for it. An odd row gets one zero symbol to complete its last pair
    (it carries no power of the row).

    Imperfect CSI (``csi_error_var = s2 > 0``): the receiver equalises with an estimate
    ``h_est`` of each coefficient, the true one being ``h = h_est + e`` with ``e ~ CN(0, s2)``
    independent of ``h_est`` (the error of an MMSE channel estimate; ``h_est`` then has the
    scattered power less ``s2``), one error per block and antenna. The equalised symbol is
    ``x_hat = sum_a conj(h_est_a) y_a / sum_a |h_est_a|^2`` and its effective noise
    ``no_eff = (N0 + s2 P) / sum_a |h_est_a|^2`` (``P`` the row's mean symbol power): the
    estimation error acts as extra noise of power ``s2 P`` per antenna. The errors are drawn
    after the noise, so ``s2 = 0`` draws exactly what perfect CSI draws.

    :param coherence_symbols: int >= 1, default 1; symbols per fading block (L).
    :param normalized_doppler: float in (0, 0.5] or None (default: block fading); maximum
        Doppler shift times the symbol period, ``f_D T_s``.
    :param num_rx_antennas: int >= 1, default 1; receive antennas combined by MRC.
    :param num_tx_antennas: 1 (default) or 2 (Alamouti's space-time block code).
    :param csi_error_var: float in [0, scattered power), default 0; variance of the receiver's
        channel-estimation error relative to ``E|h|^2 = 1`` (the scattered power is 1 here).
    :param equalizer: ``"zf"`` (default) | ``"mmse"``; see above.
    :param return_channel: bool, default False; if True, also return ``h``.
    :param generator: Source of ``h`` and noise, on ``device``; None = Sionna's per-device
        generator. ``h`` is drawn first, then the noise.
    :param check_values: Check ``snr_db`` is not NaN or ``-inf`` per call (device sync);
        default True.
    :param precision: ``"single"`` (complex64 out, default) | ``"double"`` | None.
    :param device: Device string; None = Sionna's default.
    :input x: [batch, n], complex. Any average energy.
    :input snr_db: float or [batch] float tensor; mean Es/N0 in dB per complex symbol,
        relative to the measured mean power of each row of ``x``. ``+inf`` = no noise.
    :output x_hat: [batch, n], complex; equalised symbols, unbiased estimate of ``x``.
    :output no_eff: [batch, n], float; effective noise variance ``N0/|h|^2`` per symbol
        (``N0 / sum_a |h_a|^2`` with several antennas).
    :output h: [batch, n] complex (``[batch, num_rx_antennas, n]`` with several receive
        antennas, ``[batch, num_rx_antennas, 2, n]`` with two transmit antennas); the true
        channel coefficient of each channel use. Only if ``return_channel`` is True.
    :raises TypeError: If an argument has the wrong type.
    :raises ValueError: If ``coherence_symbols < 1``, ``equalizer`` is unknown,
        ``normalized_doppler`` is out of range or given with ``coherence_symbols > 1``, ``x``
        is not 2-D, or ``snr_db`` has a bad shape or value.

    >>> import torch
    >>> ch = RayleighChannel(coherence_symbols=4, return_channel=True,
    ...                      generator=torch.Generator().manual_seed(0))
    >>> x_hat, no_eff, h = ch(torch.ones(2, 10, dtype=torch.complex64), 20.0)
    >>> bool((h[:, :4] == h[:, :1]).all()), x_hat.dtype, no_eff.dtype
    (True, torch.complex64, torch.float32)
    """

    def __init__(self, *, coherence_symbols: int = 1, equalizer: str = "zf",
                 num_rx_antennas: int = 1, num_tx_antennas: int = 1,
                 csi_error_var: float = 0.0, normalized_doppler: float | None = None,
                 return_channel: bool = False, generator: torch.Generator | None = None,
                 check_values: bool = True, precision: str | None = None,
                 device: str | None = None) -> None:
        device = sionna_device(device)  # Sionna names CUDA devices cuda:N only
        super().__init__(precision=precision, device=device)
        check_int(coherence_symbols, name="coherence_symbols", low=1)
        check_int(num_rx_antennas, name="num_rx_antennas", low=1)
        check_int(num_tx_antennas, name="num_tx_antennas", low=1, high=2)
        check_type(csi_error_var, (int, float), name="csi_error_var")
        scattered = self._fading_powers()[1]
        if not 0.0 <= csi_error_var < scattered:  # NaN fails too
            raise ValueError(f"`csi_error_var` must be in [0, {scattered:.6g}) (the scattered "
                             f"power of the channel); got {csi_error_var!r}.")
        self._csi_error_var = float(csi_error_var)
        if normalized_doppler is not None:
            normalized_doppler = check_normalized_doppler(normalized_doppler)
            if coherence_symbols != 1:
                raise ValueError("`normalized_doppler` replaces block fading: "
                                 f"`coherence_symbols` must be 1; got {coherence_symbols}.")
        self._normalized_doppler = normalized_doppler
        check_type(equalizer, str, name="equalizer")
        check_one_of(equalizer, EQUALIZERS, name="equalizer")
        check_type(return_channel, bool, name="return_channel")
        check_type(check_values, bool, name="check_values")
        check_generator(generator, self.device)
        self._coherence_symbols = coherence_symbols
        self._num_rx_antennas = num_rx_antennas
        self._num_tx_antennas = num_tx_antennas
        self._equalizer = equalizer
        self._return_channel = return_channel
        self._check_values = check_values
        self._generator = generator

    @property
    def coherence_symbols(self) -> int:
        """Symbols per fading block."""
        return self._coherence_symbols

    @property
    def num_rx_antennas(self) -> int:
        """Receive antennas combined by MRC."""
        return self._num_rx_antennas

    @property
    def num_tx_antennas(self) -> int:
        """Transmit antennas: 1, or 2 with Alamouti's code."""
        return self._num_tx_antennas

    @property
    def normalized_doppler(self) -> float | None:
        """``f_D T_s`` of time-correlated fading; None for block fading."""
        return self._normalized_doppler

    @property
    def equalizer(self) -> str:
        """``"zf"`` or ``"mmse"``."""
        return self._equalizer

    @property
    def csi_error_var(self) -> float:
        """Variance of the receiver's channel-estimation error (0 = perfect CSI)."""
        return self._csi_error_var

    def _fading_powers(self) -> tuple[float, float]:
        """(line-of-sight amplitude, scattered power) of a coefficient: (0, 1) for Rayleigh."""
        return 0.0, 1.0

    def _estimates(self, draws: torch.Tensor) -> torch.Tensor:
        """The receiver's coefficients from unit CN(0, 1) draws: the line-of-sight amplitude
        plus the draws scaled to the scattered power less the estimation error's."""
        los, scattered = self._fading_powers()
        h_est = math.sqrt(scattered - self._csi_error_var) * draws
        return los + h_est if los else h_est

    def call(self, x: torch.Tensor, snr_db: torch.Tensor | float
             ) -> tuple[torch.Tensor, ...]:
        snr_db = check_symbols_and_snr(x, snr_db, check_values=self._check_values)  # [batch, 1]
        gen = self.torch_rng if self._generator is None else self._generator
        batch, n = x.shape
        tx = self._num_tx_antennas
        if tx == 2 and n % 2:  # complete the last pair; the zero carries no power
            x = torch.nn.functional.pad(x, (0, 1))
        power = mean_power(x[:, :n]).unsqueeze(-1)  # [batch, 1]
        n_sent = x.shape[1]
        antennas = self._num_rx_antennas * tx  # one coefficient per antenna pair
        num_blocks = -(-n_sent // self._coherence_symbols)
        blocks = (batch, antennas * num_blocks)

        def per_symbol(coefficients: torch.Tensor) -> torch.Tensor:  # [batch, paths, n]
            coefficients = coefficients.reshape(batch, antennas, num_blocks)
            return coefficients.repeat_interleave(self._coherence_symbols, dim=2)[:, :, :n_sent]

        if self._normalized_doppler is None:
            # Drawn as [batch, A * ...] and reshaped: one antenna draws what it always did.
            unit = per_symbol(torch.randn(blocks, dtype=x.dtype, device=x.device, generator=gen))
        else:
            unit = jakes_process((batch, antennas), n_sent, self._normalized_doppler,
                                 generator=gen, dtype=x.dtype, device=x.device)
        h_est = self._estimates(unit)
        no = power * torch.pow(10.0, -snr_db / 10.0)  # [batch, 1]
        rx = self._num_rx_antennas  # noise per receive antenna, whatever the transmitters
        noise = torch.randn((batch, rx * n_sent), dtype=x.dtype, device=x.device,
                            generator=gen).reshape(batch, rx, n_sent)
        h = h_est
        if self._csi_error_var > 0:
            h = h_est + math.sqrt(self._csi_error_var) * per_symbol(
                torch.randn(blocks, dtype=x.dtype, device=x.device, generator=gen))
        noise_var = no + self._csi_error_var * power  # [batch, 1]; what the receiver assumes
        if tx == 2:
            x_hat, no_eff = self._alamouti(x, h, h_est, no, noise, noise_var, power)
            x_hat, no_eff = x_hat[:, :n], no_eff[:, :n]
            if self._return_channel:
                return x_hat, no_eff, h.reshape(batch, -1, 2, n_sent)[..., :n]
            return x_hat, no_eff
        y = h * x.unsqueeze(1) + no.sqrt().unsqueeze(1) * noise  # [batch, A, n]

        # MRC with the estimates; for one antenna the unbiased LMMSE == ZF (see above).
        gain2 = h_est.abs().square().sum(dim=1)  # [batch, n]
        x_hat = (y * h_est.conj()).sum(dim=1) / gain2
        no_eff = (noise_var / gain2).to(self.dtype)
        if self._return_channel:
            return x_hat, no_eff, (h[:, 0] if antennas == 1 else h)
        return x_hat, no_eff

    def _alamouti(self, x: torch.Tensor, h: torch.Tensor, h_est: torch.Tensor,
                  no: torch.Tensor, noise: torch.Tensor, noise_var: torch.Tensor,
                  power: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Alamouti's code over the drawn coefficients, then joint equalisation per pair.

        :input x: [batch, 2 P] complex; ``P`` pairs.
        :input h, h_est: [batch, A * 2, 2 P]; true and estimated coefficients, receive antenna
            major (row ``2 a + t`` is receive antenna ``a``, transmit antenna ``t``).
        :input no: [batch, 1]; noise variance. ``noise``: [batch, A, 2 P] unit draws.
        :input noise_var, power: [batch, 1]; the noise the receiver assumes, the row's power.
        :output x_hat, no_eff: [batch, 2 P]; unbiased estimates and their noise.
        """
        batch, n_sent = x.shape
        rx = h.shape[1] // 2

        def pair_matrix(c: torch.Tensor) -> torch.Tensor:  # -> [batch, P, 2 A, 2]
            c = c.reshape(batch, rx, 2, n_sent) / math.sqrt(2.0)
            first, second = c[..., 0::2], c[..., 1::2]  # [batch, A, 2, P] per channel use
            row1 = first.movedim(2, -1)  # y1 = h1 s1 + h2 s2
            row2 = torch.stack([second[:, :, 1].conj(), -second[:, :, 0].conj()], dim=-1)
            return torch.stack([row1, row2], dim=2).permute(0, 3, 1, 2, 4).reshape(
                batch, -1, 2 * rx, 2)  # rows: (antenna, use)

        s = x.reshape(batch, -1, 2, 1)  # [batch, P, 2, 1]: (s1, s2) of each pair
        w = noise.reshape(batch, rx, -1, 2).permute(0, 2, 1, 3)  # [batch, P, A, 2]
        w = torch.stack([w[..., 0], w[..., 1].conj()], dim=-1).reshape(batch, -1, 2 * rx, 1)
        z = pair_matrix(h) @ s + no.sqrt().reshape(batch, 1, 1, 1) * w  # [batch, P, 2A, 1]
        hh = pair_matrix(h_est)
        gram = hh.mH @ hh  # [batch, P, 2, 2]
        nv = noise_var.reshape(batch, 1, 1, 1)
        if self._equalizer == "mmse":
            eye = torch.eye(2, dtype=gram.dtype, device=gram.device)
            safe = power.reshape(batch, 1, 1, 1).clamp_min(torch.finfo(power.dtype).tiny)
            filt = _inverse_2x2(gram + (nv / safe) * eye) @ hh.mH  # a zero row: ZF
            bias = torch.diagonal(filt @ hh, dim1=-2, dim2=-1).real  # [batch, P, 2]
            s_hat = (filt @ z).squeeze(-1) / bias
            no_eff = power.reshape(batch, 1, 1) * (1.0 / bias - 1.0)
        else:
            inverse = _inverse_2x2(gram)
            s_hat = (inverse @ hh.mH @ z).squeeze(-1)  # [batch, P, 2]
            no_eff = nv.squeeze(-1) * torch.diagonal(inverse, dim1=-2, dim2=-1).real
        return s_hat.reshape(batch, n_sent), no_eff.reshape(batch, n_sent).to(self.dtype)


def _inverse_2x2(m: torch.Tensor) -> torch.Tensor:
    """[..., 2, 2] inverses written out: no solver, so no singularity check that would read a
    flag back from the device."""
    a, b, c, d = m[..., 0, 0], m[..., 0, 1], m[..., 1, 0], m[..., 1, 1]
    det = a * d - b * c
    return torch.stack([torch.stack([d, -b], dim=-1), torch.stack([-c, a], dim=-1)],
                       dim=-2) / det[..., None, None]
