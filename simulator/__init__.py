"""semlink's simulator: links (semantic, classical), models and weights, codecs, metrics,
scenarios, sweeps, results, plots and the command line.

Import submodules directly (``from semlink.metrics import psnr_db``); this package imports
nothing heavy so that ``semlink --help`` stays fast.
"""
__version__ = "0.1.0"
