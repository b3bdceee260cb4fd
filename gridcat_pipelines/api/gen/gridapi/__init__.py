"""Generated from proto/ by scripts/generate_proto.py. DO NOT EDIT."""
