"""Studies: the study file, its design points and units of work, their execution and the store."""
