"""Bits and reals to channel symbols and back: QAM mapping and LLR demapping, 5G LDPC with CRC,
analog mapping of a real embedding, and uniform quantisation."""
