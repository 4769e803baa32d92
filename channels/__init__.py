"""Channel models on complex baseband symbols: AWGN, Rayleigh and Rician flat fading (block-wise or
with a Jakes Doppler spectrum, one or two transmit antennas), OFDM with 3GPP TDL/CDL (per
resource element or as a waveform), a transmit power amplifier (in front of the single-carrier
ones, on the time-domain signal inside OFDM), receiver phase noise and frequency offset,
pilot-aided phase tracking on a single carrier, and peak-to-average power measures.

Every model shares one call convention, ``x_hat, no_eff = channel(x, snr_db)``, returning the
equalised symbols and the effective noise variance per symbol for the demapper:
``x`` [batch, n] complex64, ``snr_db`` float or [batch] tensor (Es/N0 in dB relative to the
measured mean power of each row), ``x_hat`` [batch, n] complex64, ``no_eff`` [batch, n] float32.
Randomness comes from the ``generator`` constructor argument of each model.
"""
from semlink.channels.amplifier import AmplifiedChannel, PowerAmplifier
from semlink.channels.awgn import AWGN, AWGNChannel
from semlink.channels.doppler import jakes_process
from semlink.channels.ofdm import MODELS as OFDM_MODELS
from semlink.channels.ofdm import OFDMSISOChannel, interleaver, pack_slots, unpack_slots
from semlink.channels.ofdm_ptrs import PTRSTracker
from semlink.channels.ofdm_time import TimeDomainOFDM
from semlink.channels.papr import papr_db, power_ccdf, power_levels_db
from semlink.channels.oscillator import OscillatorChannel, oscillator_phase, wiener_phase
from semlink.channels.phase_tracking import PhaseTrackingChannel
from semlink.channels.rayleigh import RayleighChannel
from semlink.channels.rician import RicianChannel
from semlink.channels.snr import ebno_db_to_esno_db, esno_db_to_ebno_db, mean_power, noise_variance

__all__ = [
    "AWGN",
    "AWGNChannel",
    "AmplifiedChannel",
    "OFDMSISOChannel",
    "OFDM_MODELS",
    "OscillatorChannel",
    "PTRSTracker",
    "PhaseTrackingChannel",
    "PowerAmplifier",
    "RayleighChannel",
    "RicianChannel",
    "TimeDomainOFDM",
    "ebno_db_to_esno_db",
    "esno_db_to_ebno_db",
    "interleaver",
    "jakes_process",
    "mean_power",
    "noise_variance",
    "oscillator_phase",
    "pack_slots",
    "papr_db",
    "power_ccdf",
    "power_levels_db",
    "unpack_slots",
    "wiener_phase",
]
