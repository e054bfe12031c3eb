"""Scoring: nightly RFM and CLV runs and the segment dashboards."""
