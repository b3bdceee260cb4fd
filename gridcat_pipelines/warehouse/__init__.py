"""Warehouse targets and the loader that copies exactly the authoritative run into them."""
