"""Hypergradients by reversible learning: exact reverse of SGD with momentum, schedule tuning."""
