"""Tests of the scoring computations: RFM, historical and predictive CLV, and their validation on CDNOW."""
