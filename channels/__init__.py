"""Channel models on complex baseband symbols: AWGN, Rayleigh flat fading, OFDM with 3GPP TDL/CDL.

Every model shares one call convention, ``x_hat, no_eff = channel(x, snr_db)``, returning the
equalised symbols and the effective noise variance per symbol for the demapper.
"""
