"""Links: what happens to one batch between the transmitter's input and the receiver's output.

- :mod:`semlink.links.ber`: random bits through (LDPC +) QAM and the channel: BER/BLER curves.
- :mod:`semlink.links.classical`: JPEG2000 + CRC + 5G LDPC + QAM.
- :mod:`semlink.links.amc`: adaptive modulation and coding for the classical link.
- :mod:`semlink.links.semantic`: Stable Cascade encoder, channel, stage B + stage A.
"""
