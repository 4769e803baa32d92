"""Scenario schema: what a YAML scenario may say, validated by pydantic into frozen models.

A scenario names the images, the links to compare (semantic, classical, a user's Python class,
or plain BER links), the channel, the SNR points, the Monte-Carlo stop rules and where results
go. Every problem in a file is reported as one line ``FILE:LINE: yaml.path: message``, all
problems at once.

Example::

    name: quickstart
    images: {source: sample, size: 256}
    channel: {type: awgn}
    snr: {points_db: [1, 5, 10, 15, 20]}
    links:
      semantic: {type: semantic, preset: small}
      jpeg2000: {type: classical, modulation: 16, code_rate: 1/2, bandwidth: {match: semantic}}

The package, by concern (every public name is importable from ``semlink.scenario``):

- :mod:`~semlink.scenario.limits`: the ranges a scenario may ask for and the shared field types;
- :mod:`~semlink.scenario.channels`: the channel configs, each building its channel;
- :mod:`~semlink.scenario.links`: the link configs (``LINK_CONFIGS`` registers a link type);
- :mod:`~semlink.scenario.link_python`: the ``python`` link (a user's class);
- :mod:`~semlink.scenario.model`: the whole scenario, its hash, loading a file;
- :mod:`~semlink.scenario.loading`: YAML reading, ``base:``/``set:`` layering, the command
  line's ``--set`` overrides, required values (``???``) and the one-line error messages
  (training recipes use it too).
"""
from __future__ import annotations

from semlink.scenario.channels import (CHANNEL_TYPES, AmplifierConfig, AWGNConfig, ChannelConfig,
                                       OFDMConfig, OFDMPhaseTrackingConfig, PhaseTrackingConfig,
                                       RayleighConfig, RicianConfig)
# The ranges too (semlink.scenario.MAX_HARQ_TRANSMISSIONS, ...), and _Frozen for the other
# schemas built on this one (semlink.training.config).
from semlink.scenario.limits import (AMPLIFIER_BACKOFF_RANGE_DB, CHANNEL_IMPAIRMENTS,
                                     CODE_BLOCK_INFO_BITS, CODE_RATE_RANGE, ENCODER_STRIDE,
                                     LINK_NAME, MAX_HARQ_TRANSMISSIONS, MAX_NORMALIZED_DOPPLER,
                                     MAX_PHASE_NOISE_LINEWIDTH, MAX_RX_ANTENNAS, MAX_SNR_POINTS,
                                     METRICS, OFDM_CARRIER_RANGE_HZ, OFDM_MAX_DELAY_SPREAD_S,
                                     OFDM_MAX_FFT_SIZE, OFDM_MAX_OFDM_SYMBOLS, OFDM_MAX_SPEED_MPS,
                                     OFDM_MODELS, OFDM_SUBCARRIER_SPACING_RANGE_HZ, QAM_ORDERS,
                                     SET_METRICS, CodeRate, FiniteSnrDb, ImageSide, Seed, SnrDb,
                                     _Frozen, parse_rate,
                                     union_members)
from semlink.scenario.links import (LDPC_CHECK_NODES, LINK_CONFIGS, LINK_TYPES,
                                    AnalogTransmission, BandwidthConfig, BERLinkConfig,
                                    ClassicalLinkConfig, DigitalTransmission, HarqConfig,
                                    LDPCDecoderConfig, LinkConfig, PythonLinkConfig,
                                    SemanticLinkConfig, Transmission)
from semlink.scenario.loading import (MISSING, REMOVE, Override, OverrideError, ScenarioError,
                                      apply_overrides, as_overrides, missing_paths,
                                      read_yaml_file, resolve_yaml, validate_yaml, yaml_text)
from semlink.scenario.model import (ImagesConfig, MonteCarloConfig, Scenario, SNRConfig,
                                    load_scenario, parse_scenario, scenario_hash)

__all__ = [
    "ImageSide",
    "SnrDb",
    "FiniteSnrDb",
    "Seed",
    "METRICS",
    "SET_METRICS",
    "parse_rate",
    "Scenario",
    "ScenarioError",
    "ImagesConfig",
    "SNRConfig",
    "MonteCarloConfig",
    "AmplifierConfig",
    "CHANNEL_IMPAIRMENTS",
    "PhaseTrackingConfig",
    "OFDMPhaseTrackingConfig",
    "LDPCDecoderConfig",
    "LDPC_CHECK_NODES",
    "AWGNConfig",
    "RayleighConfig",
    "RicianConfig",
    "OFDMConfig",
    "ChannelConfig",
    "AnalogTransmission",
    "DigitalTransmission",
    "Transmission",
    "SemanticLinkConfig",
    "BandwidthConfig",
    "HarqConfig",
    "ClassicalLinkConfig",
    "BERLinkConfig",
    "PythonLinkConfig",
    "LinkConfig",
    "CHANNEL_TYPES",
    "LINK_CONFIGS",
    "LINK_TYPES",
    "union_members",
    "load_scenario",
    "parse_scenario",
    "validate_yaml",
    "read_yaml_file",
    "apply_overrides",
    "yaml_text",
    "OverrideError",
    "Override",
    "as_overrides",
    "MISSING",
    "REMOVE",
    "missing_paths",
    "resolve_yaml",
    "scenario_hash",
]
