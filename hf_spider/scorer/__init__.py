"""The Model Spider scorer: model (``TransferScorer``), listwise training, the benchmark protocol, ``SpiderRanker``."""
