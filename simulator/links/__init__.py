"""Links: what happens to one batch between the transmitter's input and the receiver's output.

- :mod:`simulator.links.ber`: random bits through (LDPC +) QAM and the channel: BER/BLER curves.
- :mod:`simulator.links.classical`: JPEG2000 + CRC + 5G LDPC + QAM.
- :mod:`simulator.links.amc`: adaptive modulation and coding for the classical link.
- :mod:`simulator.links.semantic`: Stable Cascade encoder, channel, stage B + stage A.
"""
