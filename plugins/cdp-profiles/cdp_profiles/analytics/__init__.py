"""Customer analytics: lifetime-value models as pure numerical code.

:mod:`.bgnbd` (how many purchases a customer will make, and whether they are still a customer),
:mod:`.gammagamma` (how much they spend per purchase, and the discounted lifetime value of both),
:mod:`.holdout` (how well a fit predicted a holdout period). numpy and scipy are imported by those
modules only, so importing this package costs nothing.
"""
