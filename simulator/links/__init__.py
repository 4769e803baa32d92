"""Links: what happens to one batch between the transmitter's input and the receiver's output.

- :mod:`semlink.links.protocol`: what every link implements (config ``build``, ``transmit``,
  ``dimensionality``), the one dispatch of the task runner.
- :mod:`semlink.links.builder`: a scenario's links, built once (or per SNR point) and kept.
- :mod:`semlink.links.ber`: random bits through (LDPC +) QAM and the channel: BER/BLER curves.
- :mod:`semlink.links.classical`: JPEG2000 (or JPEG) + CRC + 5G LDPC + QAM.
- :mod:`semlink.links.amc`: adaptive modulation and coding for the classical link.
- :mod:`semlink.links.capacity`: the classical link's frames over an ideal code.
- :mod:`semlink.links.semantic`: Stable Cascade encoder, channel, stage B + stage A.
- :mod:`semlink.links.user`: a user's class (``type: python``), held to the protocol.
"""
