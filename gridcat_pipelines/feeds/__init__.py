"""Feed (GAQL report) and customer configuration."""
