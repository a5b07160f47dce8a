"""Simulation: the rows of a data set (layouts, covariates) and responses drawn over them."""
