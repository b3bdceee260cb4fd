"""Ads sources: the synthetic source (with fault injection) and the Google Ads API adapter."""
