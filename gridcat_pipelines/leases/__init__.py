"""Leases that pin the authoritative runs a reader is reading (seed 001's query leases)."""
