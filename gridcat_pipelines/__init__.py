"""gridcat: decides, per daily Google Ads report partition, whether it is safe to consume
and which raw run is authoritative, and lets downstream loads read only that run."""

__version__ = "0.1.0"
