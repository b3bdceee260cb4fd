"""Leases that pin the authoritative runs a reader is reading (the catalog RPC conventions' query leases)."""
