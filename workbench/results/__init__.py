"""Results: performance measures, exact theory, validation and the report."""
