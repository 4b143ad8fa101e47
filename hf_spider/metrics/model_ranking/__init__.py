"""The ``model_ranking`` ``evaluate`` module; load it with :func:`hf_spider.metrics.load_model_ranking`."""
