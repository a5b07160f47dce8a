"""Fitting: the factor structure of a design, the optimiser driver and the fit record."""
