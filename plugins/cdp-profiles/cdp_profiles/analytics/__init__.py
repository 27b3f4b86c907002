"""Customer analytics over the profile store: RFM, and lifetime value with the BG/NBD and Gamma-Gamma models.

``config`` (``[analytics]``), ``orders`` (order histories, set-based), ``rfm`` (scores and groups),
``lifetime`` (the models' input from the store, holdout check), ``traits`` (the computed traits);
``bgnbd`` and ``gammagamma`` are the models, pure numerical code (docs/analytics.md).
"""
