"""Customer analytics over the profile store: RFM, and lifetime value with the BG/NBD and Gamma-Gamma models.

``config`` (``[analytics]``), ``orders`` (order histories, set-based), ``rfm`` (scores and groups),
``lifetime`` (the models' input from the store), ``traits`` (the computed traits); the models are pure
numerical code: ``bgnbd`` (how many purchases a customer will make, and whether they are still a customer),
``gammagamma`` (spend per purchase, and the discounted lifetime value of both), ``holdout`` (how well a fit
predicted a holdout period). numpy and scipy are imported by those modules only, so importing this package
costs nothing (docs/analytics.md).
"""
