"""Heavy work off the trading process: a pool of worker processes (`pool`) and the research
jobs it runs for the research app (`research`)."""
